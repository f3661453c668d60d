"""Vectorised episode runner: ``B`` parallel episodes per rollout over a batch environment.

One call of :meth:`EpisodeRunner.run` resets every environment of the batch, acts until
all have terminated (or hit the episode limit) and returns the episodes as padded arrays
``[B, T + 1, ...]`` (``T`` = the environment's episode limit) with their lengths:

``obs``, ``state``, ``avail_actions``
    at every step ``0..length`` (index ``length`` holds the state after the last action).
``actions``, ``reward``, ``terminated``
    for the transitions ``0..length - 1``; ``terminated`` is True at the episode's end,
    a time-out included, as PyMARL stores SMAC's default episodes. Only a step the
    environment marks with ``info["episode_limit"]`` (SMAC's ``continuing_episode=True``)
    is stored as not terminal, so its last transition is bootstrapped.
``filled``
    True for the transitions ``0..length - 1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mast.controllers import AgentController

__all__ = ["EpisodeRunner", "RolloutStats", "EpisodeBatch"]

EpisodeBatch = dict[str, np.ndarray]


@dataclass(frozen=True)
class RolloutStats:
    """Summary of the episodes of one rollout."""

    n_episodes: int
    """Episodes run."""
    steps: int
    """Environment steps taken (sum of the episode lengths)."""
    mean_return: float
    """Mean undiscounted episode return."""
    win_rate: float
    """Fraction of episodes with ``battle_won``."""
    mean_length: float
    """Mean episode length."""


class EpisodeRunner:
    """Runs batches of episodes of a batch environment with an :class:`AgentController`.

    Parameters
    ----------
    env:
        A batch environment (``mast.envs.make_batch_env``); ``env.n_envs`` episodes per run.
    controller:
        Acting network; its device is used for the forward passes.
    generator:
        Torch generator of the exploration randomness.
    """

    def __init__(self, env, controller: AgentController, generator: torch.Generator) -> None:
        self.env = env
        info = env.get_env_info()
        self.n_agents, self.n_actions = info["n_agents"], info["n_actions"]
        self.obs_dim, self.state_dim = info["obs_shape"], info["state_shape"]
        self.limit = info["episode_limit"]
        self.controller = controller
        self.generator = generator

    @property
    def device(self) -> torch.device:
        return next(self.controller.parameters()).device

    def _tensor(self, x: np.ndarray, dtype=torch.float32) -> torch.Tensor:
        return torch.as_tensor(x, dtype=dtype, device=self.device)

    def run(self, epsilon: float) -> tuple[EpisodeBatch, np.ndarray, RolloutStats]:
        """Run one episode per environment; ``epsilon = 0`` is a greedy (test) rollout.

        Returns the padded episode arrays, the lengths ``(B,)`` and the summary.
        """
        env, n_a, lim = self.env, self.n_agents, self.limit
        env.reset()
        obs, state, avail = env.get_obs(), env.get_state(), env.get_avail_actions()
        b = obs.shape[0]
        batch: EpisodeBatch = {
            "obs": np.zeros((b, lim + 1, n_a, self.obs_dim), np.float32),
            "state": np.zeros((b, lim + 1, self.state_dim), np.float32),
            "avail_actions": np.zeros((b, lim + 1, n_a, self.n_actions), bool),
            "actions": np.zeros((b, lim + 1, n_a), np.int64),
            "reward": np.zeros((b, lim + 1), np.float32),
            "terminated": np.zeros((b, lim + 1), bool),
            "filled": np.zeros((b, lim + 1), bool),
        }
        lengths = np.zeros(b, np.int64)
        returns = np.zeros(b, np.float64)
        won = np.zeros(b, bool)
        active = np.ones(b, bool)
        last_actions = torch.full((b, n_a), -1, dtype=torch.long, device=self.device)
        self.controller.init_hidden(b)
        for t in range(lim):
            avail = avail.astype(bool, copy=True)
            avail[~active] = False
            avail[~active, :, 0] = True  # finished episodes: act with a placeholder no-op
            batch["obs"][active, t] = obs[active]
            batch["state"][active, t] = state[active]
            batch["avail_actions"][active, t] = avail[active]
            actions = self.controller.act(
                self._tensor(obs),
                last_actions,
                self._tensor(avail, torch.bool),
                epsilon,
                self.generator,
            )
            act_np = actions.cpu().numpy()
            reward, terminated, info = env.step(act_np)
            reward, terminated = np.asarray(reward), np.asarray(terminated, bool)
            batch["actions"][active, t] = act_np[active]
            batch["reward"][active, t] = reward[active]
            cut = np.asarray(info.get("episode_limit", np.zeros(b, bool)), bool)
            batch["terminated"][active, t] = (terminated & ~cut)[active]
            batch["filled"][active, t] = True
            returns[active] += reward[active]
            won[active] |= np.asarray(info.get("battle_won", np.zeros(b, bool)), bool)[active]
            lengths[active] += 1
            last_actions = actions
            done_now = active & (terminated | (t + 1 >= lim))
            obs, state, avail = env.get_obs(), env.get_state(), env.get_avail_actions()
            ended = active.copy()
            batch["obs"][ended, t + 1] = obs[ended]
            batch["state"][ended, t + 1] = state[ended]
            batch["avail_actions"][ended, t + 1] = avail[ended]
            active &= ~done_now
            if not active.any():
                break
        stats = RolloutStats(
            n_episodes=b,
            steps=int(lengths.sum()),
            mean_return=float(returns.mean()),
            win_rate=float(won.mean()),
            mean_length=float(lengths.mean()),
        )
        return batch, lengths, stats
