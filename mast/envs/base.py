"""The two environment interfaces: SMAC's single ``MultiAgentEnv`` and the batch form.

``MultiAgentEnv`` is PyMARL/SMAC's API. ``BatchEnv`` steps ``n_envs`` copies at once with
arrays shaped ``(n_envs, ...)``; it is what the training runner drives. ``VectorEnv``
turns any list of ``MultiAgentEnv`` (the real-SMAC and MPE adapters) into a ``BatchEnv``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

__all__ = ["BatchEnv", "MultiAgentEnv", "VectorEnv", "env_info_dict"]


def env_info_dict(state_shape, obs_shape, n_actions, n_agents, episode_limit) -> dict:
    """The ``get_env_info()`` dictionary, every value a plain ``int``."""
    return {
        "state_shape": int(state_shape),
        "obs_shape": int(obs_shape),
        "n_actions": int(n_actions),
        "n_agents": int(n_agents),
        "episode_limit": int(episode_limit),
    }


class MultiAgentEnv(ABC):
    """SMAC's ``MultiAgentEnv``: one cooperative multi-agent episode at a time."""

    n_agents: int
    n_actions: int
    episode_limit: int
    state_last_action: bool = False
    """Whether the state ends with the one-hot codes of every agent's previous action
    (zero after reset), SMAC's ``state_last_action``; a replay buffer rebuilds them."""

    @abstractmethod
    def reset(self):
        """Start a new episode; returns ``(obs, state)`` as SMAC does."""

    @abstractmethod
    def step(self, actions) -> tuple[float, bool, dict]:
        """Apply one action per agent; returns ``(reward, terminated, info)``."""

    @abstractmethod
    def get_obs(self) -> list[np.ndarray]:
        """One observation vector per agent."""

    @abstractmethod
    def get_state(self) -> np.ndarray:
        """The global state vector."""

    @abstractmethod
    def get_avail_actions(self) -> list[list[int]]:
        """One 0/1 availability list per agent."""

    def get_obs_agent(self, agent_id: int) -> np.ndarray:
        return self.get_obs()[agent_id]

    def get_avail_agent_actions(self, agent_id: int) -> list[int]:
        return self.get_avail_actions()[agent_id]

    def get_obs_size(self) -> int:
        return int(self.get_env_info()["obs_shape"])

    def get_state_size(self) -> int:
        return int(self.get_env_info()["state_shape"])

    def get_total_actions(self) -> int:
        return int(self.n_actions)

    @abstractmethod
    def get_env_info(self) -> dict:
        """``{"state_shape", "obs_shape", "n_actions", "n_agents", "episode_limit"}``."""

    def get_stats(self) -> dict:
        return {}

    def seed(self, seed: int | None = None) -> None:
        """Reseed the environment's random generator (takes effect at the next reset)."""
        return None

    def close(self) -> None:
        """Release external resources."""
        return None

    def render(self) -> None:
        """Rendering is not supported by this environment."""
        raise NotImplementedError(f"{type(self).__name__} does not render")


class BatchEnv(ABC):
    """``n_envs`` environments stepped together (the training runner's interface).

    ``step(actions)`` takes an int array ``(n_envs, n_agents)`` and returns ``reward``
    float32 ``(n_envs,)``, ``terminated`` bool ``(n_envs,)`` and ``info``, a dict of
    ``(n_envs,)`` arrays: ``battle_won`` and ``episode_limit`` bool, ``dead_allies`` and
    ``dead_enemies`` int. ``episode_limit`` follows SMAC: True only for a time-out of an
    environment that continues episodes (``continuing_episode``), which the runner
    bootstraps; by default a time-out is an ordinary terminal step with it False.
    Environments that have terminated ignore their actions and return reward 0 and
    ``terminated`` True until ``reset()``.
    """

    n_envs: int
    n_agents: int
    n_actions: int
    episode_limit: int
    state_last_action: bool = False
    """See :attr:`MultiAgentEnv.state_last_action`."""

    @abstractmethod
    def reset(self, env_mask: np.ndarray | None = None) -> None:
        """Reset every environment, or those where the boolean ``env_mask`` is True."""

    @abstractmethod
    def step(self, actions) -> tuple[np.ndarray, np.ndarray, dict]: ...

    @abstractmethod
    def get_obs(self) -> np.ndarray:
        """float32 ``(n_envs, n_agents, obs_shape)``."""

    @abstractmethod
    def get_state(self) -> np.ndarray:
        """float32 ``(n_envs, state_shape)``."""

    @abstractmethod
    def get_avail_actions(self) -> np.ndarray:
        """int8 ``(n_envs, n_agents, n_actions)``."""

    @abstractmethod
    def get_env_info(self) -> dict: ...

    def get_stats(self) -> dict:
        return {}

    def rng_state(self) -> list | None:
        """The environments' random state between episodes, for exact resume; ``None``
        when the environment cannot expose it (external simulators)."""
        return None

    def set_rng_state(self, state: list | None) -> None:
        """Restore :meth:`rng_state` output (``None`` restores nothing)."""
        return None

    def close(self) -> None:
        """Release external resources."""
        return None


class VectorEnv(BatchEnv):
    """A :class:`BatchEnv` made of independent single environments stepped in turn."""

    def __init__(self, envs: Sequence[MultiAgentEnv]) -> None:
        if not envs:
            raise ValueError("VectorEnv needs at least one environment")
        self.envs = list(envs)
        self.n_envs = len(self.envs)
        info = self.envs[0].get_env_info()
        self.n_agents = info["n_agents"]
        self.n_actions = info["n_actions"]
        self.episode_limit = info["episode_limit"]
        self.state_last_action = self.envs[0].state_last_action
        self._info = env_info_dict(**info)
        self._done = np.zeros(self.n_envs, dtype=bool)

    def get_env_info(self) -> dict:
        return dict(self._info)

    def reset(self, env_mask: np.ndarray | None = None) -> None:
        mask = np.ones(self.n_envs, bool) if env_mask is None else np.asarray(env_mask, bool)
        for env, m in zip(self.envs, mask, strict=True):
            if m:
                env.reset()
        self._done[mask] = False

    def step(self, actions) -> tuple[np.ndarray, np.ndarray, dict]:
        actions = np.asarray(actions, dtype=np.int64)
        n = self.n_envs
        reward = np.zeros(n, dtype=np.float32)
        info = {
            "battle_won": np.zeros(n, dtype=bool),
            "episode_limit": np.zeros(n, dtype=bool),
            "dead_allies": np.zeros(n, dtype=np.int64),
            "dead_enemies": np.zeros(n, dtype=np.int64),
        }
        for i, env in enumerate(self.envs):
            if self._done[i]:
                continue
            r, term, inf = env.step(actions[i])
            reward[i] = r
            self._done[i] = bool(term)
            for k in info:
                info[k][i] = inf.get(k, 0)
        return reward, self._done.copy(), info

    def get_obs(self) -> np.ndarray:
        return np.stack([np.stack(e.get_obs()) for e in self.envs]).astype(np.float32)

    def get_state(self) -> np.ndarray:
        return np.stack([e.get_state() for e in self.envs]).astype(np.float32)

    def get_avail_actions(self) -> np.ndarray:
        return np.array([e.get_avail_actions() for e in self.envs], dtype=np.int8)

    def get_stats(self) -> dict:
        return {"envs": [e.get_stats() for e in self.envs]}

    def close(self) -> None:
        for env in self.envs:
            env.close()
