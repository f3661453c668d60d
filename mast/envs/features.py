"""SMAC's default observation, state and available-action features, batched.

Layouts follow ``smac.env.StarCraft2Env`` with its default flags (``obs_all_health``,
``obs_own_health``, ``state_last_action`` on; ``obs_last_action``, ``obs_pathing_grid``,
``obs_terrain_height``, ``obs_timestep_number`` off); ``obs_last_action`` may be switched on:

- observation per agent: 4 move flags; per enemy ``[attackable, dist, dx, dy, health,
  (shield), (type one-hot)]``; per other ally ``[visible, dist, dx, dy, health, (shield),
  (type), (last action one-hot, with SMAC's ``obs_last_action``)]``; own ``[health,
  (shield), (type)]``; distances and offsets divided by the
  sight range; zeros for units out of sight or dead, all zeros for a dead agent;
- state: per ally ``[health, cooldown (medivac: energy), x, y, (shield), (type)]`` with
  ``x, y`` relative to the map centre divided by the map size, per enemy ``[health, x, y,
  (shield), (type)]``, then every agent's last action one-hot;
- actions: 0 no-op (dead agents only), 1 stop, 2-5 move north/south/east/west (available
  when the point one unit away is pathable ground, as SMAC checks its pathing grid),
  then one attack per enemy within the shooting range (a medivac's are heals per
  non-medivac ally).
"""

from __future__ import annotations

import numpy as np

from mast.envs.engine import CombatEngine

__all__ = ["Features", "N_ACTIONS_NO_ATTACK", "SHOOT_RANGE", "SIGHT_RANGE"]

SIGHT_RANGE = 9.0
SHOOT_RANGE = 6.0
N_ACTIONS_NO_ATTACK = 6
_MOVE_PROBE = np.array([[0.0, 1.0], [0.0, -1.0], [1.0, 0.0], [-1.0, 0.0]])


class Features:
    """Feature extractor bound to one :class:`CombatEngine` (static tables precomputed)."""

    def __init__(self, engine: CombatEngine, obs_last_action: bool = False) -> None:
        self.engine = engine
        self.obs_last_action = bool(obs_last_action)
        spec = engine.spec
        a, n = spec.n_agents, spec.n_enemies
        self.n_agents, self.n_enemies = a, n
        self.n_actions = N_ACTIONS_NO_ATTACK + n
        self.bits = spec.unit_type_bits
        self.sb_al = spec.shield_bits_ally
        self.sb_en = spec.shield_bits_enemy
        self.nf_en = 4 + 1 + self.sb_en + self.bits
        self.nf_al = 4 + 1 + self.sb_al + self.bits + self.n_actions * self.obs_last_action
        self.nf_own = 1 + self.sb_al + self.bits
        self.obs_size = 4 + n * self.nf_en + (a - 1) * self.nf_al + self.nf_own
        self.nf_al_state = 4 + self.sb_al + self.bits
        self.nf_en_state = 3 + self.sb_en + self.bits
        self.state_size = a * self.nf_al_state + n * self.nf_en_state + a * self.n_actions
        onehot = np.zeros((a + n, self.bits))
        if self.bits:
            ids = [spec.ally_type_ids[t] for t in spec.allies]
            ids += [spec.enemy_type_ids[t] for t in spec.enemies]
            onehot[np.arange(a + n), ids] = 1.0
        self.onehot = onehot
        self.others = np.array([[j for j in range(a) if j != i] for i in range(a)], dtype=np.int64)
        if a == 1:
            self.others = np.zeros((1, 0), dtype=np.int64)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.inv_shield = np.where(engine.shield_max > 0, 1.0 / engine.shield_max, 0.0)
        healer = engine.healer[:a]
        tgt = np.zeros((a, n), dtype=np.int64)
        for i in range(a):
            tgt[i] = np.arange(n) if healer[i] else a + np.arange(n)
        self.target_slot = tgt
        heal_ok = np.zeros((a, n), dtype=bool)
        for i in np.flatnonzero(healer):
            cols = np.arange(min(n, a))
            heal_ok[i, cols] = ~engine.healer[cols] & (cols != i)
        self.target_ok = np.where(healer[:, None], heal_ok, True)
        self.centre = np.array(spec.size, dtype=float) / 2
        self.size = np.array(spec.size, dtype=float)

    def avail_actions(self) -> np.ndarray:
        """``(n_envs, n_agents, n_actions)`` int8 mask; dead agents may only no-op."""
        eng = self.engine
        a = self.n_agents
        pos = eng.pos[:, :a]
        alive = eng.alive[:, :a]
        e = eng.n_envs
        out = np.zeros((e, a, self.n_actions), dtype=np.int8)
        out[..., 0] = ~alive
        out[..., 1] = alive
        probe = pos[:, :, None, :] + _MOVE_PROBE
        free = eng.terrain.walkable(probe[..., 0], probe[..., 1])  # SMAC: the pathing grid
        out[..., 2:6] = free & alive[..., None]
        tpos = eng.pos[:, self.target_slot]
        d = tpos - pos[:, :, None, :]
        dist2 = np.einsum("eatk,eatk->eat", d, d)
        ok = (dist2 <= SHOOT_RANGE**2) & eng.alive[:, self.target_slot] & self.target_ok
        out[..., N_ACTIONS_NO_ATTACK:] = ok & alive[..., None]
        return out

    def obs(self, avail: np.ndarray, last_action: np.ndarray | None = None) -> np.ndarray:
        """``(n_envs, n_agents, obs_size)`` float32 observations; ``last_action`` (the
        ``(n_envs, n_agents)`` previous actions, ``-1``: none) is needed with
        ``obs_last_action``."""
        eng = self.engine
        a, n = self.n_agents, self.n_enemies
        e = eng.n_envs
        f32 = np.float32
        x = eng.pos[..., 0].astype(f32)
        y = eng.pos[..., 1].astype(f32)
        alive = eng.alive
        me_alive = alive[:, :a, None]
        hp_frac = (eng.hp / eng.hp_max).astype(f32)
        sh_frac = (eng.shield * self.inv_shield).astype(f32)
        out = np.zeros((e, a, self.obs_size), dtype=f32)
        out[..., :4] = avail[..., 2:6]
        o = 4
        blocks = [(np.arange(a, a + n)[None, :].repeat(a, 0), self.nf_en, self.sb_en, True)]
        if a > 1:
            blocks.append((self.others, self.nf_al, self.sb_al, False))
        for idx, nf, sb, is_enemy in blocks:
            k = idx.shape[1]
            dx = x[:, idx] - x[:, :a, None]
            dy = y[:, idx] - y[:, :a, None]
            dist = np.sqrt(dx * dx + dy * dy)
            vis = (dist < SIGHT_RANGE) & alive[:, idx] & me_alive
            f = np.zeros((e, a, k, nf), dtype=f32)
            f[..., 0] = avail[..., N_ACTIONS_NO_ATTACK:] if is_enemy else 1.0
            f[..., 1] = dist / SIGHT_RANGE
            f[..., 2] = dx / SIGHT_RANGE
            f[..., 3] = dy / SIGHT_RANGE
            f[..., 4] = hp_frac[:, idx]
            if sb:
                f[..., 5] = sh_frac[:, idx]
            if self.bits:
                f[..., 5 + sb : 5 + sb + self.bits] = self.onehot[idx]
            if self.obs_last_action and not is_enemy:
                la = np.zeros((e, a, self.n_actions), dtype=f32)
                has = last_action >= 0
                la[has] = np.eye(self.n_actions, dtype=f32)[last_action[has]]
                f[..., 5 + sb + self.bits :] = la[:, idx]
            f *= vis[..., None]
            out[..., o : o + k * nf] = f.reshape(e, a, -1)
            o += k * nf
        # own
        out[..., o] = hp_frac[:, :a]
        if self.sb_al:
            out[..., o + 1] = sh_frac[:, :a]
        if self.bits:
            out[..., o + 1 + self.sb_al :] = self.onehot[:a]
        out *= me_alive
        return out

    def state(self, last_action: np.ndarray) -> np.ndarray:
        """``(n_envs, state_size)`` float32 global state; ``last_action`` is the
        ``(n_envs, n_agents)`` int array of the previous actions (``-1``: none yet)."""
        eng = self.engine
        a, n = self.n_agents, self.n_enemies
        e = eng.n_envs
        alive = eng.alive
        xy = (eng.pos - self.centre) / self.size
        al = np.zeros((e, a, self.nf_al_state))
        al[..., 0] = eng.hp[:, :a] / eng.hp_max[:a]
        cd = np.where(eng.healer[:a], eng.energy[:, :a], eng.cooldown[:, :a])
        al[..., 1] = cd / eng.cooldown_norm[:a]
        al[..., 2:4] = xy[:, :a]
        if self.sb_al:
            al[..., 4] = eng.shield[:, :a] * self.inv_shield[:a]
        if self.bits:
            al[..., 4 + self.sb_al :] = self.onehot[:a]
        al *= alive[:, :a, None]
        en = np.zeros((e, n, self.nf_en_state))
        en[..., 0] = eng.hp[:, a:] / eng.hp_max[a:]
        en[..., 1:3] = xy[:, a:]
        if self.sb_en:
            en[..., 3] = eng.shield[:, a:] * self.inv_shield[a:]
        if self.bits:
            en[..., 3 + self.sb_en :] = self.onehot[a:]
        en *= alive[:, a:, None]
        la = np.zeros((e, a, self.n_actions))
        has = last_action >= 0
        la[has] = np.eye(self.n_actions)[last_action[has]]
        return np.concatenate(
            [al.reshape(e, -1), en.reshape(e, -1), la.reshape(e, -1)], axis=1
        ).astype(np.float32)
