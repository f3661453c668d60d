"""Adapter to the real StarCraft Multi-Agent Challenge (``smac.env.StarCraft2Env``).

The package is imported only when this environment is built. It is installed from source
(``pip install git+https://github.com/oxwhirl/smac.git``) and needs the StarCraft II game
(``SC2PATH``). The PyPI package named ``smac`` is SMAC3, an unrelated hyperparameter
optimiser; it is detected and reported as such.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from mast.envs.base import MultiAgentEnv, env_info_dict
from mast.errors import UserError

__all__ = ["SC2Env", "import_starcraft2env"]

_INSTALL = "pip install git+https://github.com/oxwhirl/smac.git"


def import_starcraft2env():
    """Return ``smac.env.StarCraft2Env`` or raise :class:`UserError` saying what is missing."""
    try:
        smac = importlib.import_module("smac")
    except ImportError:
        raise UserError(
            f"env 'sc2' needs the StarCraft Multi-Agent Challenge package: {_INSTALL}"
        ) from None
    try:
        env_mod = importlib.import_module("smac.env")
        return env_mod.StarCraft2Env
    except (ImportError, AttributeError):
        version = getattr(smac, "version", getattr(smac, "__version__", "unknown"))
        raise UserError(
            f"the installed 'smac' package (version {version}) is SMAC3, the hyperparameter "
            f"optimiser from PyPI, not the StarCraft Multi-Agent Challenge; uninstall it and "
            f"run: {_INSTALL}"
        ) from None


def _check_game() -> None:
    path = Path(os.environ.get("SC2PATH", Path.home() / "StarCraftII"))
    if not path.is_dir():
        raise UserError(
            f"env 'sc2' needs StarCraft II: no game found at {path} (set SC2PATH), "
            "or use the built-in simulator (env 'builtin')"
        )


class SC2Env(MultiAgentEnv):
    """Real SMAC behind the same API, with ``battle_won`` and ``episode_limit`` always
    present in ``info``.

    ``episode_limit`` is SMAC's own: True only for a time-out when SMAC runs with
    ``continuing_episode=True``; with SMAC's default every end, a time-out included, is
    terminal and it is False. The adapter never infers a time-out from the step count (a
    battle lost on the last step is a loss).

    Parameters
    ----------
    map_name:
        A SMAC map name (e.g. ``3m``).
    seed:
        Game seed.
    **kwargs:
        Passed on to ``StarCraft2Env`` (SMAC's own flags).
    """

    def __init__(self, map_name: str = "3m", seed: int = 0, **kwargs) -> None:
        cls = import_starcraft2env()
        _check_game()
        self._env = cls(map_name=map_name, seed=seed, **kwargs)
        info = self._env.get_env_info()
        self.n_agents = info["n_agents"]
        self.n_actions = info["n_actions"]
        self.episode_limit = info["episode_limit"]
        # SMAC appends the last actions to the state, then the time step if that is asked.
        self.state_last_action = bool(
            self._env.state_last_action and not self._env.state_timestep_number
        )

    def reset(self):
        return self._env.reset()

    def step(self, actions) -> tuple[float, bool, dict]:
        reward, terminated, info = self._env.step(list(actions))
        info = dict(info)
        info["battle_won"] = bool(info.get("battle_won", False))
        info["episode_limit"] = bool(info.get("episode_limit", False))
        return float(reward), bool(terminated), info

    def get_obs(self):
        return self._env.get_obs()

    def get_state(self):
        return self._env.get_state()

    def get_avail_actions(self):
        return self._env.get_avail_actions()

    def get_env_info(self) -> dict:
        return env_info_dict(
            **{
                k: v
                for k, v in self._env.get_env_info().items()
                if k in ("state_shape", "obs_shape", "n_actions", "n_agents", "episode_limit")
            }
        )

    def get_stats(self) -> dict:
        return self._env.get_stats()

    def close(self) -> None:
        self._env.close()
