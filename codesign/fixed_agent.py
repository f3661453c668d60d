"""The trained agent network executed in a profile's fixed-point arithmetic.

:class:`FixedPointAgent` replaces a float :class:`mast.agents.RNNAgent` behind the
controller. Its matrix products are the accelerator's: every agent layer's exported
:class:`~mast.sparsity.layer.SparseLayer` (masked weights) is compiled for the profile
with :func:`hw.compiler.compile_layer` (``forward``, ``M`` = environments x agents of a
step, the compiler's dataflow choice) and run with :func:`sim.simulate_op`, the
bit-exact golden model of the RTL. Columns are independent, so batching environments
changes cycles, not results.

What runs beside the PE array, in this documented form:

- inputs and the hidden state are operand integers (:func:`hw.numerics.quantize`); each
  product is requantised by the PE array (``requant``);
- biases are quantised to operands and added with operand saturation (``sat_op``), ReLU
  is ``max(0, .)`` on the integers (the drain of ``fc1``);
- the GRU gates run on the host in float64 from the dequantised operand integers
  (``r = sigmoid(i_r + h_r)``, ``z = sigmoid(i_z + h_z)``, ``n = tanh(i_n + r h_n)``,
  ``h' = (1 - z) n + z h``) and ``h'`` is quantised back to an operand, because it is the
  next step's matrix input;
- Q-values are the dequantised ``fc2`` outputs (bias added as above).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from hw.numerics import dequantize, quantize, sat_op
from hw.profiles import HwProfile
from mast.agents import RNNAgent
from mast.sparsity.layer import SparseLayer

__all__ = ["FixedPointAgent", "agent_layers"]

_MATRICES = ("fc1", "gru.ih", "gru.hh", "fc2")


def agent_layers(layers: Sequence[SparseLayer], prefix: str = "agent.") -> dict[str, SparseLayer]:
    """Exported agent records keyed by ``<module>.weight`` (``[t]`` suffix per type slice)."""
    return {
        lay.name[len(prefix) :]: lay
        for lay in layers
        if lay.role == "agent" and lay.name.startswith(prefix)
    }


class FixedPointAgent(nn.Module):
    """Drop-in for :class:`~mast.agents.RNNAgent` computing in fixed point (module doc).

    Parameters
    ----------
    agent:
        The trained float agent (biases, agent types, sizes; kept as a submodule).
    layers:
        Its exported records with values (``learner.sparsity.export_layers(True)``).
    profile:
        The accelerator whose number format and compiler are used.

    Attributes
    ----------
    products:
        ``(layer, x_int, y_int)`` of every matrix product of the last step when
        ``record`` is true (for equivalence checks).
    sim_cycles:
        ``sim`` cycles of all matrix products run so far.
    """

    def __init__(self, agent: RNNAgent, layers: Sequence[SparseLayer], profile: HwProfile) -> None:
        super().__init__()
        self.float_agent = agent
        self.profile = profile
        self.n_agents, self.hidden_dim = agent.n_agents, agent.hidden_dim
        by_name = agent_layers(layers)
        self.types = agent.type_ids.cpu().numpy()
        self.layers: dict[tuple[str, int], SparseLayer] = {}
        self.bias: dict[tuple[str, int], np.ndarray] = {}
        for mat in _MATRICES:
            module = agent.get_submodule(mat)
            for t in range(agent.n_types):
                key = f"{mat}.weight" + (f"[{t}]" if agent.n_types > 1 else "")
                if key not in by_name:
                    raise ValueError(f"no exported agent layer {('agent.' + key)!r}")
                self.layers[(mat, t)] = by_name[key]
                b = module.bias.detach().cpu().numpy()
                self.bias[(mat, t)] = quantize(b if agent.n_types == 1 else b[t], profile)
        self._programs: dict[tuple[str, int, int], object] = {}
        self.record = False
        self.products: list[tuple[str, np.ndarray, np.ndarray]] = []
        self.sim_cycles = 0

    def init_hidden(self, batch: int) -> torch.Tensor:
        return self.float_agent.init_hidden(batch)

    def matmul(self, mat: str, t: int, x: np.ndarray) -> np.ndarray:
        """``W x`` on the accelerator model: operand integers ``(in, M) -> (out, M)``."""
        from hw.compiler import compile_layer
        from sim import simulate_op

        key = (mat, t, x.shape[1])
        if key not in self._programs:
            self._programs[key] = compile_layer(
                self.layers[(mat, t)], "forward", self.profile, x.shape[1]
            )
        prog = self._programs[key]
        op = prog.ops[0]
        res = simulate_op(prog, op, op.fold_samples(x), None)
        y = op.unfold_samples(res.output)  # (out, M) also for a sample-unrolled op
        self.sim_cycles += res.cycles
        if self.record:
            self.products.append((self.layers[(mat, t)].name, x.copy(), y.copy()))
        return np.asarray(y, dtype=np.int64)

    def _affine(self, mat: str, t: int, x: np.ndarray) -> np.ndarray:
        return sat_op(self.matmul(mat, t, x) + self.bias[(mat, t)][:, None], self.profile)

    def _step_type(self, t: int, x: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One type's agents: ``x (in, M)``, ``h (H, M)`` operand ints -> ``(q, h')``."""
        p, hd = self.profile, self.hidden_dim
        y = np.maximum(self._affine("fc1", t, x), 0)
        gi = dequantize(self._affine("gru.ih", t, y), p)
        gh = dequantize(self._affine("gru.hh", t, h), p)
        r = 1.0 / (1.0 + np.exp(-(gi[:hd] + gh[:hd])))
        z = 1.0 / (1.0 + np.exp(-(gi[hd : 2 * hd] + gh[hd : 2 * hd])))
        n = np.tanh(gi[2 * hd :] + r * gh[2 * hd :])
        h_new = quantize((1.0 - z) * n + z * dequantize(h, p), p)
        q = dequantize(self._affine("fc2", t, h_new), p)
        return q, h_new

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x (B, n_agents, in)``, ``h (B, n_agents, H)`` floats -> ``(q, h_next)`` floats.

        ``h`` is carried as floats holding exact dequantised operands, so quantising it
        again is lossless.
        """
        self.products = []
        p = self.profile
        b = x.shape[0]
        xs = quantize(x.detach().cpu().numpy(), p)
        hs = quantize(h.detach().cpu().numpy(), p)
        q_out = np.zeros((b, self.n_agents, self.layers[("fc2", 0)].n_out))
        h_out = np.zeros((b, self.n_agents, self.hidden_dim), dtype=np.int64)
        for t in np.unique(self.types):
            idx = np.flatnonzero(self.types == t)
            xt = xs[:, idx].reshape(-1, xs.shape[-1]).T
            ht = hs[:, idx].reshape(-1, self.hidden_dim).T
            q, hn = self._step_type(int(t), xt, ht)
            q_out[:, idx] = q.T.reshape(b, len(idx), -1)
            h_out[:, idx] = hn.T.reshape(b, len(idx), -1)
        dev = x.device
        return (
            torch.as_tensor(q_out, dtype=torch.float32, device=dev),
            torch.as_tensor(dequantize(h_out, p), dtype=torch.float32, device=dev),
        )
