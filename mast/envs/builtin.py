"""The built-in SMAC-compatible environment: batch form and its single-env view.

``BuiltinBatchEnv`` adds SMAC's episode logic to the :class:`CombatEngine` physics and the
:class:`Features` layouts: reward shaping and scaling, win/loss/draw detection, the time
limit and statistics. ``BuiltinEnv`` is the same object with ``n_envs = 1`` behind the
single-environment ``MultiAgentEnv`` API.

Identical to SMAC (default flags): ``get_env_info()``, the observation / state / action
layouts and their normalisation, unit-type numbering per side, the reward (damage +
kill bonus + win bonus, ``reward_only_positive``, scaled so a won episode returns
``reward_scale_rate``), win / loss / draw rules (medivacs alone count as dead), the time
limit and 8 game loops per step, and SMAC's time-out semantics: with the default
``continuing_episode=False`` a time-out ends the episode like any other end (``info`` has
no ``episode_limit`` entry, so PyMARL stores it as terminal) and ``get_stats()`` counts it
in ``battles_draw``; with ``continuing_episode=True`` ``info["episode_limit"]`` marks it so
that the learner bootstraps it.

From SMAC's map files: the ground (the open maps' pathable band y = 8..23; 2c_vs_64zg's
plateau, ramps and cliffs), the spawn points, the 2c_vs_64zg zerglings' attack
on the colossi as a group, shield regeneration, and the agents' order at reset
(``(unit_type, x, y)``). Approximated (see ``engine.py``): SC2 pathfinding and steering
(straight lines, a grid flow field round obstacles and soft collision pushes), the game's
own opponent target priorities, projectile travel and attack delays (hits land when the
cooldown allows), the packing of units round a spawn point (lines with small jitter),
the ramps' exact steps, and colossi colliding with small ground units (in SC2 those walk
under them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mast.envs.base import BatchEnv, MultiAgentEnv, env_info_dict
from mast.envs.engine import CombatEngine, EngineConfig
from mast.envs.features import Features
from mast.envs.maps import MapSpec, get_map
from mast.errors import UserError

__all__ = ["BuiltinBatchEnv", "BuiltinEnv", "RewardConfig"]


@dataclass(frozen=True)
class RewardConfig:
    """SMAC's reward flags and their defaults."""

    reward_sparse: bool = False
    """Only +1 win / -1 loss at the end when True."""
    reward_only_positive: bool = True
    """Reward = |enemy damage + kill bonus| (SMAC's default; no penalty for own losses)."""
    reward_death_value: float = 10.0
    """Bonus per enemy killed (and penalty per ally lost when not only positive)."""
    reward_win: float = 200.0
    """Bonus for winning the battle."""
    reward_defeat: float = 0.0
    """Bonus for losing the battle."""
    reward_negative_scale: float = 0.5
    """Weight of own losses when ``reward_only_positive`` is False."""
    reward_scale: bool = True
    """Divide rewards by ``max_reward / reward_scale_rate``."""
    reward_scale_rate: float = 20.0
    """Maximum episode return after scaling."""


class BuiltinBatchEnv(BatchEnv):
    """``n_envs`` SMAC battles on one map, stepped together.

    Parameters
    ----------
    map_name:
        A registered map (see ``mast.envs.MAPS``) or a :class:`MapSpec`.
    n_envs:
        Number of parallel battles.
    seed:
        Battle ``i`` is seeded ``seed + i`` (so it matches ``BuiltinEnv(seed=seed + i)``).
    engine, reward:
        Physics and reward settings.
    continuing_episode:
        SMAC's flag: mark time-outs with ``info["episode_limit"]`` (bootstrapped by the
        runner) instead of leaving them terminal (SMAC's default, False).
    obs_last_action:
        SMAC's flag: append every other ally's previous action (one-hot) to its ally
        features in the observations (default False, as in SMAC).
    """

    state_last_action = True

    def __init__(
        self,
        map_name: str | MapSpec = "3m",
        n_envs: int = 1,
        seed: int = 0,
        engine: EngineConfig | None = None,
        reward: RewardConfig | None = None,
        continuing_episode: bool = False,
        obs_last_action: bool = False,
    ):
        if int(n_envs) < 1:
            raise UserError(f"n_envs must be >= 1, got {n_envs}")
        engine = engine or EngineConfig()
        reward = reward or RewardConfig()
        self.spec = map_name if isinstance(map_name, MapSpec) else get_map(map_name)
        self.n_envs = int(n_envs)
        self.seed_value = int(seed)
        self.reward_cfg = reward
        self.continuing_episode = bool(continuing_episode)
        self.engine = CombatEngine(
            self.spec, [self.seed_value + i for i in range(self.n_envs)], engine
        )
        self.features = Features(self.engine, obs_last_action)
        self.n_agents = self.spec.n_agents
        self.n_enemies = self.spec.n_enemies
        self.n_actions = self.features.n_actions
        self.episode_limit = self.spec.episode_limit
        eng = self.engine
        a = self.n_agents
        self.max_reward = (
            self.n_enemies * reward.reward_death_value
            + reward.reward_win
            + float((eng.hp_max[a:] + eng.shield_max[a:]).sum())
        )
        self._combat = ~eng.healer
        self.battles_won = 0
        self.battles_game = 0
        self.timeouts = 0
        self._cache: dict = {}
        self.steps = np.zeros(self.n_envs, dtype=np.int64)
        self.terminated = np.zeros(self.n_envs, dtype=bool)
        self.last_action = np.full((self.n_envs, self.n_agents), -1, dtype=np.int64)
        self.reset()

    # ------------------------------------------------------------------ API
    def get_env_info(self) -> dict:
        f = self.features
        return env_info_dict(
            f.state_size, f.obs_size, self.n_actions, self.n_agents, self.episode_limit
        )

    def rng_state(self) -> list[dict]:
        """The battles' start-jitter generator states (exact resume between episodes)."""
        return self.engine.rng_state()

    def set_rng_state(self, state: list[dict] | None) -> None:
        if state is not None:
            self.engine.set_rng_state(state)

    def reset(self, env_mask: np.ndarray | None = None) -> None:
        """Reset every battle, or only those where the boolean ``env_mask`` is True."""
        if env_mask is None:
            env_mask = np.ones(self.n_envs, dtype=bool)
        env_mask = np.asarray(env_mask, dtype=bool)
        if env_mask.shape != (self.n_envs,):
            raise UserError(f"env_mask must have shape ({self.n_envs},), got {env_mask.shape}")
        self.engine.reset(env_mask)
        self.steps[env_mask] = 0
        self.terminated[env_mask] = False
        self.last_action[env_mask] = -1
        self._cache.clear()

    def step(self, actions) -> tuple[np.ndarray, np.ndarray, dict]:
        eng = self.engine
        a = self.n_agents
        acts = np.array(actions, dtype=np.int64).reshape(self.n_envs, a)
        active = ~self.terminated
        acts[~active] = 0
        self._check(acts, active)
        self.last_action[active] = acts[active]
        hs_prev = eng.hp[:, a:] + eng.shield[:, a:]
        ally_prev = eng.hp[:, :a] + eng.shield[:, :a]
        alive_prev = eng.alive.copy()
        eng.command(acts, active)
        eng.step(active)
        self._cache.clear()
        alive = eng.alive
        reward = self._reward(hs_prev, ally_prev, alive_prev)
        n_al = alive[:, :a].sum(1)
        n_en = alive[:, a:].sum(1)
        combat = alive & self._combat
        n_al_c = combat[:, :a].sum(1)
        n_en_c = combat[:, a:].sum(1)
        heal_al = bool(eng.healer[:a].any())
        heal_en = bool(eng.healer[a:].any())
        lost = ((n_al == 0) & (n_en > 0)) | (heal_al & (n_al_c == 0))
        won = ~lost & (((n_al > 0) & (n_en == 0)) | (heal_en & (n_en_c == 0)))
        draw = ~lost & ~won & (n_al == 0) & (n_en == 0)
        self.steps += active
        ended = (lost | won | draw) & active
        timeout = active & ~ended & (self.steps >= self.episode_limit)
        rc = self.reward_cfg
        if rc.reward_sparse:
            reward = np.where(won, 1.0, np.where(lost, -1.0, 0.0))
        else:
            reward = reward + rc.reward_win * won + rc.reward_defeat * lost
        if rc.reward_scale:
            reward = reward / (self.max_reward / rc.reward_scale_rate)
        reward = np.where(active, reward, 0.0).astype(np.float32)
        won &= active
        self.terminated |= ended | timeout
        self.battles_game += int((ended | timeout).sum())
        self.battles_won += int(won.sum())
        self.timeouts += int(timeout.sum())
        info = {
            "battle_won": won,
            "episode_limit": timeout & self.continuing_episode,
            "dead_allies": a - n_al,
            "dead_enemies": self.n_enemies - n_en,
        }
        return reward, self.terminated.copy(), info

    def get_avail_actions(self) -> np.ndarray:
        return self._avail().copy()

    def get_obs(self) -> np.ndarray:
        if "obs" not in self._cache:
            self._cache["obs"] = self.features.obs(self._avail(), self.last_action)
        return self._cache["obs"].copy()

    def get_state(self) -> np.ndarray:
        if "state" not in self._cache:
            self._cache["state"] = self.features.state(self.last_action)
        return self._cache["state"].copy()

    def _avail(self) -> np.ndarray:
        if "avail" not in self._cache:
            self._cache["avail"] = self.features.avail_actions()
        return self._cache["avail"]

    def get_stats(self) -> dict:
        g = self.battles_game
        return {
            "battles_won": self.battles_won,
            "battles_game": g,
            "battles_draw": self.timeouts,
            "win_rate": self.battles_won / g if g else 0.0,
            "timeouts": self.timeouts,
            "restarts": 0,
        }

    def set_units(self, env: int = 0, **state) -> None:
        """Overwrite unit state of battle ``env``; see :meth:`CombatEngine.set_units`."""
        self.engine.set_units(env, **state)
        self._cache.clear()

    # ------------------------------------------------------------------ internals
    def _check(self, acts: np.ndarray, active: np.ndarray) -> None:
        if acts.min(initial=0) < 0 or acts.max(initial=0) >= self.n_actions:
            raise ValueError(
                f"actions must lie in [0, {self.n_actions}), got {acts.min()}..{acts.max()}"
            )
        ok = np.take_along_axis(self._avail(), acts[..., None], 2)[..., 0]
        bad = active[:, None] & (ok == 0)
        if bad.any():
            e, ag = np.argwhere(bad)[0]
            raise ValueError(
                f"env {e}: agent {ag} cannot perform action {acts[e, ag]} (not available)"
            )

    def _reward(self, hs_prev, ally_prev, alive_prev) -> np.ndarray:
        eng = self.engine
        a = self.n_agents
        rc = self.reward_cfg
        was = alive_prev[:, a:]
        killed = was & ~eng.alive[:, a:]
        delta_enemy = ((hs_prev - eng.hp[:, a:] - eng.shield[:, a:]) * was).sum(1)
        delta_deaths = rc.reward_death_value * killed.sum(1)
        if rc.reward_only_positive:
            return np.abs(delta_enemy + delta_deaths)
        was_al = alive_prev[:, :a]
        lost_al = was_al & ~eng.alive[:, :a]
        delta_ally = rc.reward_negative_scale * (
            (ally_prev - eng.hp[:, :a] - eng.shield[:, :a]) * was_al
        ).sum(1)
        delta_deaths = (
            delta_deaths - rc.reward_death_value * rc.reward_negative_scale * lost_al.sum(1)
        )
        return delta_enemy + delta_deaths - delta_ally


class BuiltinEnv(MultiAgentEnv):
    """One built-in battle behind SMAC's ``MultiAgentEnv`` API (a view of a one-battle
    :class:`BuiltinBatchEnv`; ``batch`` gives access to it, e.g. ``batch.set_units``)."""

    state_last_action = True

    def __init__(self, map_name: str | MapSpec = "3m", seed: int = 0, **kwargs) -> None:
        self.batch = BuiltinBatchEnv(map_name, n_envs=1, seed=seed, **kwargs)
        self.map_name = self.batch.spec.name
        self.n_agents = self.batch.n_agents
        self.n_enemies = self.batch.n_enemies
        self.n_actions = self.batch.n_actions
        self.episode_limit = self.batch.episode_limit

    def reset(self):
        self.batch.reset()
        return self.get_obs(), self.get_state()

    def step(self, actions) -> tuple[float, bool, dict]:
        r, term, info = self.batch.step(np.asarray(actions, dtype=np.int64).reshape(1, -1))
        out = {
            "battle_won": bool(info["battle_won"][0]),
            "dead_allies": int(info["dead_allies"][0]),
            "dead_enemies": int(info["dead_enemies"][0]),
        }
        if info["episode_limit"][0]:
            out["episode_limit"] = True
        return float(r[0]), bool(term[0]), out

    def get_obs(self) -> list[np.ndarray]:
        return list(self.batch.get_obs()[0])

    def get_obs_agent(self, agent_id: int) -> np.ndarray:
        return self.batch.get_obs()[0, agent_id]

    def get_state(self) -> np.ndarray:
        return self.batch.get_state()[0]

    def get_avail_actions(self) -> list[list[int]]:
        return self.batch.get_avail_actions()[0].tolist()

    def get_avail_agent_actions(self, agent_id: int) -> list[int]:
        return self.batch.get_avail_actions()[0, agent_id].tolist()

    def get_env_info(self) -> dict:
        return self.batch.get_env_info()

    def get_stats(self) -> dict:
        return self.batch.get_stats()

    def seed(self, seed: int | None = None) -> None:
        self.batch.engine.reseed([0 if seed is None else seed])
