"""Adapter to PettingZoo MPE ``simple_spread`` (package ``mpe2``, optional extra ``mpe``).

Cooperative navigation: ``N`` agents cover ``N`` landmarks. The team reward is the sum of
the agents' rewards; every action is always available; ``battle_won`` is always False.
"""

from __future__ import annotations

import importlib

import numpy as np

from mast.envs.base import MultiAgentEnv, env_info_dict
from mast.errors import UserError

__all__ = ["MPESpreadEnv"]


def _import_spread():
    try:
        return importlib.import_module("mpe2.simple_spread_v3")
    except ImportError:
        raise UserError(
            "env 'mpe_spread' needs the optional extra: pip install -e '.[mpe]' "
            "(packages mpe2 and pettingzoo)"
        ) from None


class MPESpreadEnv(MultiAgentEnv):
    """``simple_spread`` with discrete actions behind SMAC's API.

    Parameters
    ----------
    n_agents:
        Agents (and landmarks).
    episode_limit:
        Steps per episode (MPE's ``max_cycles``).
    local_ratio:
        Weight of the local collision penalty in each agent's reward.
    seed:
        Seed of the first reset; later resets continue the environment's generator.
    """

    def __init__(
        self,
        n_agents: int = 3,
        episode_limit: int = 25,
        local_ratio: float = 0.5,
        seed: int = 0,
        **_ignored,
    ) -> None:
        mod = _import_spread()
        self._env = mod.parallel_env(
            N=n_agents, local_ratio=local_ratio, max_cycles=episode_limit, continuous_actions=False
        )
        self._seed: int | None = seed
        self.n_agents = n_agents
        self.episode_limit = episode_limit
        self._agents = list(self._env.possible_agents)
        self.n_actions = int(self._env.action_space(self._agents[0]).n)
        self._obs_size = int(self._env.observation_space(self._agents[0]).shape[0])
        self._state_size = int(np.prod(self._env.state_space.shape))
        self._obs: dict = {}
        self._steps = 0

    def reset(self):
        self._obs, _ = self._env.reset(seed=self._seed)
        self._seed = None
        self._steps = 0
        return self.get_obs(), self.get_state()

    def step(self, actions) -> tuple[float, bool, dict]:
        acts = {a: int(x) for a, x in zip(self._agents, actions, strict=True)}
        self._obs, rewards, terms, truncs, _ = self._env.step(acts)
        self._steps += 1
        done = all(terms.get(a, True) or truncs.get(a, True) for a in self._agents)
        timeout = done and any(truncs.values())
        return (
            float(sum(rewards.values())),
            bool(done),
            {
                "battle_won": False,
                "episode_limit": bool(timeout),
                "dead_allies": 0,
                "dead_enemies": 0,
            },
        )

    def get_obs(self) -> list[np.ndarray]:
        zero = np.zeros(self._obs_size, dtype=np.float32)
        return [np.asarray(self._obs.get(a, zero), dtype=np.float32) for a in self._agents]

    def get_state(self) -> np.ndarray:
        return np.asarray(self._env.state(), dtype=np.float32).ravel()

    def get_avail_actions(self) -> list[list[int]]:
        return [[1] * self.n_actions for _ in self._agents]

    def get_env_info(self) -> dict:
        return env_info_dict(
            self._state_size, self._obs_size, self.n_actions, self.n_agents, self.episode_limit
        )

    def seed(self, seed: int | None = None) -> None:
        self._seed = seed

    def close(self) -> None:
        self._env.close()
