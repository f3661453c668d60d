"""Per-agent recurrent Q-networks: ``fc -> explicit GRU cell -> fc``.

Every weight is a plain tensor so that masks apply to each matrix, the GRU's input and
hidden matrices included (masking ``nn.GRU`` through parametrizations silently stops its
training). Weights are shared by all agents by default; with ``agent_types`` each unit type
gets its own stacked slice (leading type dimension), so per-type masks exist; giving every
agent its own type index (``agent.topology=per_agent``) makes them per-agent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["LayerSpec", "TypedLinear", "GRUCell", "RNNAgent"]


@dataclass(frozen=True)
class LayerSpec:
    """How one weight matrix is used; turned into a sparsity registration by the learner.

    ``name`` is the parameter name relative to the module that reports it.
    """

    name: str
    """Parameter name (e.g. ``fc1.weight``)."""
    role: str
    """``agent``, ``mixer`` or ``hypernet``."""
    uses_per_env_step: int | tuple[int, ...]
    """Matrix-vector products per environment step when acting (one count per type slice
    for stacked per-type tensors)."""
    uses_per_sample: int | tuple[int, ...]
    """Matrix-vector products per training sample (one batch element, one time step)."""
    inputs: tuple[str, ...] = ()
    """Parameter names whose outputs this matrix consumes within one time step."""
    recurrent: bool = False
    """True for the hidden-to-hidden GRU matrix."""


class TypedLinear(nn.Module):
    """``y = W x + b`` with one weight slice per agent type when ``n_types > 1``.

    Shapes: ``weight`` is ``(out, in)`` when shared, ``(n_types, out, in)`` otherwise.
    Input ``(B, n_agents, in)`` -> output ``(B, n_agents, out)``; ``type_ids`` (``n_agents``
    long tensor) selects each agent's slice.
    """

    def __init__(self, n_in: int, n_out: int, n_types: int = 1) -> None:
        super().__init__()
        shape = (n_out, n_in) if n_types == 1 else (n_types, n_out, n_in)
        bshape = (n_out,) if n_types == 1 else (n_types, n_out)
        self.n_types = n_types
        self.weight = nn.Parameter(torch.empty(shape))
        self.bias = nn.Parameter(torch.empty(bshape))
        bound = 1.0 / math.sqrt(n_in)  # nn.Linear's default init
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor, type_ids: torch.Tensor) -> torch.Tensor:
        if self.n_types == 1:
            return nn.functional.linear(x, self.weight, self.bias)
        w = self.weight[type_ids]
        return torch.einsum("bni,noi->bno", x, w) + self.bias[type_ids]


class GRUCell(nn.Module):
    """GRU cell with explicit ``w_ih (3H x in)`` and ``w_hh (3H x H)`` (gates r, z, n).

    Same arithmetic and initialisation as ``torch.nn.GRUCell``; with ``n_types > 1`` the
    weights carry a leading type dimension.
    """

    def __init__(self, n_in: int, hidden: int, n_types: int = 1) -> None:
        super().__init__()
        self.hidden = hidden
        self.ih = TypedLinear(n_in, 3 * hidden, n_types)
        self.hh = TypedLinear(hidden, 3 * hidden, n_types)
        bound = 1.0 / math.sqrt(hidden)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(self, x: torch.Tensor, h: torch.Tensor, type_ids: torch.Tensor) -> torch.Tensor:
        gi = self.ih(x, type_ids)
        gh = self.hh(h, type_ids)
        i_r, i_z, i_n = gi.chunk(3, dim=-1)
        h_r, h_z, h_n = gh.chunk(3, dim=-1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        return (1.0 - z) * n + z * h


class RNNAgent(nn.Module):
    """Recurrent agent Q-network ``fc1 -> ReLU -> GRU -> fc2`` (PyMARL's ``rnn`` agent).

    Parameters
    ----------
    input_dim:
        Observation + last-action one-hot + agent-id one-hot width.
    n_actions:
        Output width (one Q-value per action).
    hidden_dim:
        Width of ``fc1`` and the GRU state (PyMARL: 64).
    agent_types:
        Type index of every agent; ``None`` (or a single type) shares all weights.
    """

    def __init__(
        self,
        input_dim: int,
        n_actions: int,
        n_agents: int,
        hidden_dim: int = 64,
        agent_types: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        types = list(agent_types) if agent_types is not None else [0] * n_agents
        if len(types) != n_agents:
            raise ValueError(f"agent_types has {len(types)} entries for {n_agents} agents")
        self.n_types = max(types) + 1
        self.n_agents = n_agents
        self.hidden_dim = hidden_dim
        self.register_buffer("type_ids", torch.tensor(types, dtype=torch.long))
        self.fc1 = TypedLinear(input_dim, hidden_dim, self.n_types)
        self.gru = GRUCell(hidden_dim, hidden_dim, self.n_types)
        self.fc2 = TypedLinear(hidden_dim, n_actions, self.n_types)

    def init_hidden(self, batch: int) -> torch.Tensor:
        """Zero hidden state of shape ``(batch, n_agents, hidden_dim)``."""
        return self.fc1.weight.new_zeros(batch, self.n_agents, self.hidden_dim)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x (B, n_agents, input_dim)``, ``h (B, n_agents, H)`` -> ``(q, h_next)``."""
        y = torch.relu(self.fc1(x, self.type_ids))
        h = self.gru(y, h, self.type_ids)
        return self.fc2(h, self.type_ids), h

    def layer_specs(self, role: str = "agent", acting: bool = True) -> list[LayerSpec]:
        """Usage of each weight matrix; ``acting=False`` for training-only copies."""
        counts = torch.bincount(self.type_ids, minlength=self.n_types).tolist()
        n = self.n_agents if self.n_types == 1 else tuple(int(c) for c in counts)
        step = n if acting else (0 if self.n_types == 1 else (0,) * self.n_types)
        return [
            LayerSpec("fc1.weight", role, step, n),
            LayerSpec("gru.ih.weight", role, step, n, ("fc1.weight",)),
            LayerSpec("gru.hh.weight", role, step, n, (), recurrent=True),
            LayerSpec("fc2.weight", role, step, n, ("gru.ih.weight", "gru.hh.weight")),
        ]
