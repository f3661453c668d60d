"""A tiny vectorised cooperative game with the batch-environment API (test fixture only).

Each of ``n_agents`` agents sees a one-hot target signal and wins the episode by choosing
the signalled attack action; anything else costs a step. Episodes end on a win or at
``episode_limit`` (flagged as a continuing time-out, SMAC's ``continuing_episode=True``,
unless ``continuing_episode=False``).
"""

from __future__ import annotations

import numpy as np


class FakeBatchEnv:
    """Batch API of ``mast.envs.make_batch_env`` on a trivial signalling game."""

    def __init__(
        self,
        n_envs: int = 4,
        n_agents: int = 2,
        n_actions: int = 4,
        episode_limit: int = 6,
        seed: int = 0,
        continuing_episode: bool = True,
    ) -> None:
        self.n_envs, self.n_agents, self.n_actions = n_envs, n_agents, n_actions
        self.continuing_episode = continuing_episode
        self.episode_limit = episode_limit
        self.rng = np.random.default_rng(seed)
        self.reset()

    def get_env_info(self) -> dict:
        return {
            "state_shape": self.n_actions + 1,
            "obs_shape": self.n_actions + 1,
            "n_actions": self.n_actions,
            "n_agents": self.n_agents,
            "episode_limit": self.episode_limit,
            "agent_types": [0] * (self.n_agents - 1) + [1],
        }

    def reset(self) -> None:
        self.target = self.rng.integers(1, self.n_actions, self.n_envs)
        self.t = np.zeros(self.n_envs, np.int64)
        self.done = np.zeros(self.n_envs, bool)

    def _signal(self) -> np.ndarray:
        s = np.zeros((self.n_envs, self.n_actions + 1), np.float32)
        s[np.arange(self.n_envs), self.target] = 1.0
        s[:, -1] = self.t / self.episode_limit
        return s

    def get_obs(self) -> np.ndarray:
        return np.repeat(self._signal()[:, None], self.n_agents, axis=1)

    def get_state(self) -> np.ndarray:
        return self._signal()

    def get_avail_actions(self) -> np.ndarray:
        avail = np.ones((self.n_envs, self.n_agents, self.n_actions), bool)
        avail[:, :, 0] = False
        return avail

    def step(self, actions: np.ndarray):
        actions = np.asarray(actions)
        hit = (actions == self.target[:, None]).all(axis=1)
        active = ~self.done
        reward = np.where(active, np.where(hit, 1.0, -0.05), 0.0).astype(np.float32)
        self.t[active] += 1
        limit = active & ~hit & (self.t >= self.episode_limit)
        won = active & hit
        self.done |= won | limit
        info = {"battle_won": won, "episode_limit": limit & self.continuing_episode}
        return reward, self.done.copy(), info
