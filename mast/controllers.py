"""Multi-agent controller: agent inputs, hidden state and epsilon-greedy action selection.

The controller owns the agent network and turns raw environment arrays into its inputs
(observation + last action one-hot + agent id one-hot, PyMARL's ``basic_mac``). The
runner calls :meth:`AgentController.act` once per environment step; learners call
:meth:`AgentController.unroll` over whole episode batches.
"""

from __future__ import annotations

import torch
from torch import nn

from mast.agents import RNNAgent

__all__ = ["AgentController", "epsilon_greedy"]


def epsilon_greedy(
    q: torch.Tensor, avail: torch.Tensor, epsilon: float, generator: torch.Generator
) -> torch.Tensor:
    """Actions ``q.shape[:-1]``: greedy over available actions, uniform-random ones w.p. eps.

    ``avail`` is boolean of ``q``'s shape with at least one True per row.
    """
    greedy = q.masked_fill(~avail, -float("inf")).argmax(dim=-1)
    if epsilon <= 0.0:
        return greedy
    u = torch.rand(greedy.shape, generator=generator, device=q.device)
    weights = avail.float().reshape(-1, avail.shape[-1])
    random = torch.multinomial(weights, 1, generator=generator).view(greedy.shape)
    return torch.where(u < epsilon, random, greedy)


class AgentController(nn.Module):
    """Wraps an :class:`~mast.agents.RNNAgent` with its input construction.

    Parameters
    ----------
    agent:
        The recurrent Q-network.
    n_agents, n_actions:
        Environment sizes.
    obs_last_action, obs_agent_id:
        Which extra inputs the agent sees (must match the agent's ``input_dim``).
    """

    def __init__(
        self,
        agent: RNNAgent,
        n_agents: int,
        n_actions: int,
        obs_last_action: bool = True,
        obs_agent_id: bool = True,
    ) -> None:
        super().__init__()
        self.agent = agent
        self.n_agents, self.n_actions = n_agents, n_actions
        self.obs_last_action, self.obs_agent_id = obs_last_action, obs_agent_id
        self.hidden: torch.Tensor | None = None

    @staticmethod
    def input_dim(
        obs_dim: int,
        n_agents: int,
        n_actions: int,
        obs_last_action: bool = True,
        obs_agent_id: bool = True,
    ) -> int:
        """Width of the agent input for the given options."""
        return obs_dim + n_actions * obs_last_action + n_agents * obs_agent_id

    def build_inputs(self, obs: torch.Tensor, last_actions: torch.Tensor) -> torch.Tensor:
        """``obs (..., n_agents, obs_dim)``, ``last_actions (..., n_agents)`` long (-1: none).

        Returns ``(..., n_agents, input_dim)``.
        """
        parts = [obs]
        if self.obs_last_action:
            onehot = torch.zeros(*last_actions.shape, self.n_actions + 1, device=obs.device)
            onehot.scatter_(-1, (last_actions + 1).clamp(min=0).unsqueeze(-1), 1.0)
            parts.append(onehot[..., 1:])
        if self.obs_agent_id:
            eye = torch.eye(self.n_agents, device=obs.device)
            parts.append(eye.expand(*obs.shape[:-1], self.n_agents))
        return torch.cat(parts, dim=-1)

    def init_hidden(self, batch: int) -> None:
        """Reset the acting hidden state for ``batch`` parallel episodes."""
        self.hidden = self.agent.init_hidden(batch)

    @torch.no_grad()
    def act(
        self,
        obs: torch.Tensor,
        last_actions: torch.Tensor,
        avail: torch.Tensor,
        epsilon: float,
        generator: torch.Generator,
    ) -> torch.Tensor:
        """One decentralised step for ``B`` environments; returns actions ``(B, n_agents)``."""
        q, self.hidden = self.agent(self.build_inputs(obs, last_actions), self.hidden)
        return epsilon_greedy(q, avail, epsilon, generator)

    def unroll(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Q-values ``(B, T, n_agents, n_actions)`` of a batch of episodes.

        ``obs (B, T, n_agents, obs_dim)``; ``actions (B, T, n_agents)`` are the actions
        taken (their one-hot at ``t - 1`` is the input at ``t``).
        """
        b, t_len = obs.shape[:2]
        last = torch.full_like(actions[:, :1], -1)
        last_actions = torch.cat([last, actions[:, :-1]], dim=1)
        inputs = self.build_inputs(obs, last_actions)
        h = self.agent.init_hidden(b)
        qs = []
        for t in range(t_len):
            q, h = self.agent(inputs[:, t], h)
            qs.append(q)
        return torch.stack(qs, dim=1)
