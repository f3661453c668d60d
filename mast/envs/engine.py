"""Vectorised SC2 micro-combat physics over ``n_envs`` independent battles.

All dynamic state is held in numpy arrays shaped ``(n_envs, n_units, ...)``; unit slots are
the map's allies (agent ids ``0..n_agents-1``) followed by its enemies. One call to
:meth:`CombatEngine.step` advances every active battle by one environment step of
``STEP_LOOPS`` game loops (22.4 loops per faster-speed second), split into
``EngineConfig.substeps`` equal sub-steps. Each sub-step:

1. the scripted opponent and idle units pick targets. The opponent attack-moves to the
   map's attack point (the agents' start), or on maps whose ``enemy_order`` is
   ``attack_units`` goes for the nearest living agent wherever it is; an attack-mover
   takes the nearest living unit it can hit within its scan range or that is attacking
   it (units that cannot attack, i.e. medivacs, last) and keeps it while it stays within
   weapon reach; a unit that reaches the point with nothing in range hunts the nearest
   opponent anywhere; an enemy medivac follows and heals the most hurt friend within
   sight;
2. units walk toward their goal (move point, or a target out of weapon reach), ground
   units round obstacles and cliffs (:class:`~mast.envs.terrain.Terrain`); a melee unit
   cannot hit a target across a cliff and walks round to it;
3. overlapping ground units push apart (stationary units yield less than moving ones,
   so melee units slide round and surround their target instead of stacking);
4. units with a target within ``range + both radii`` fire when their cooldown expires
   inside the sub-step (cooldowns are carried exactly in game loops, so the fire rate
   does not depend on the sub-step length); medivacs heal 12.6 hp/s at 1 energy per
   3 hp (a unit killed in the sub-step is not healed);
5. damage is applied simultaneously: shields absorb first (shield armour 0), the rest
   loses ``max(0.5, damage + bonus - armour)`` per hit; colossi hit every enemy touched
   by their line splash; when several hits land on one unit in one sub-step, the hits
   that reach hp are counted as ``ceil(n_hits * (damage beyond shield) / damage)`` for
   the armour reduction (exact for one hit and for unshielded units);
6. units at 0 hp die; shields regenerate ``SHIELD_REGEN_PER_LOOP`` per game loop from
   ``SHIELD_REGEN_DELAY_LOOPS`` loops after the last damage; medivacs regain energy.

Idle units (after ``stop`` or when their target died) fire at the nearest enemy within
weapon reach without chasing it, as SC2 units do. Colossi walk over cliffs; medivacs fly
(no collisions, no terrain). At every reset the allies of each unit type are re-sorted by
their start position ``(x, y)``, as SMAC orders its agents by ``(unit_type, x, y)``.
Shields follow SMAC's map data (``ShieldRegenRate = 2``, ``ShieldRegenDelay = 10`` in game
seconds of 16 loops): 2 shield per 16 loops, from 160 loops after the last damage.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mast.envs import rules
from mast.envs.maps import UNIT_TYPES, MapSpec
from mast.envs.rules import ATTACK, ATTACK_MOVE, HUNT, IDLE, MOVE
from mast.envs.terrain import MAX_STEP, Terrain
from mast.errors import UserError

__all__ = ["CombatEngine", "EngineConfig", "LOOPS_PER_S", "STEP_LOOPS"]

LOOPS_PER_S = 22.4
STEP_LOOPS = 8
LOOPS_PER_GAME_S = 16
"""Game loops per game second (the time base of SC2's data: 22.4 loops are one second of
"faster" real time, the base of the unit table)."""
SHIELD_REGEN_PER_LOOP = 2.0 / LOOPS_PER_GAME_S
SHIELD_REGEN_DELAY_LOOPS = 10 * LOOPS_PER_GAME_S
NON_THREAT_PENALTY = 1000.0
LINE_UNITS = 8


@dataclass(frozen=True)
class EngineConfig:
    """Simulation knobs of :class:`CombatEngine`."""

    substeps: int = 2
    """Sub-steps per environment step (8 game loops); must divide 8."""
    start_jitter: float = 0.1
    """Each unit's start position is shifted by U(-j, j) per axis at every reset."""
    separation_iters: int = 2
    """Collision-resolution sweeps per sub-step; later sweeps visit only battles that
    still had overlaps."""

    def __post_init__(self) -> None:
        if self.substeps not in (1, 2, 4, 8):
            raise UserError(f"substeps must divide {STEP_LOOPS} (1, 2, 4, 8), got {self.substeps}")
        if self.separation_iters < 1:
            raise UserError(f"separation_iters must be >= 1, got {self.separation_iters}")
        if self.start_jitter < 0:
            raise UserError(f"start_jitter must be >= 0, got {self.start_jitter}")


class CombatEngine:
    """Batch combat state and physics for one map.

    Parameters
    ----------
    spec:
        The map.
    seeds:
        One integer seed per environment (start-position jitter); ``len(seeds)`` is
        ``n_envs``. Environment ``i`` evolves exactly as a one-environment engine seeded
        ``seeds[i]`` given the same orders.
    config:
        Simulation knobs.
    """

    def __init__(self, spec: MapSpec, seeds, config: EngineConfig | None = None) -> None:
        config = config or EngineConfig()
        self.spec = spec
        self.config = config
        self.n_envs = len(seeds)
        self.n_agents = spec.n_agents
        self.n_enemies = spec.n_enemies
        self.n_units = spec.n_agents + spec.n_enemies
        self.reseed(seeds)
        self.terrain = Terrain(spec.pathing_grid(), spec.ground_levels())
        self.cliff_terrain = Terrain(spec.pathing_grid())
        self._init_static()
        e, u = self.n_envs, self.n_units
        self.pos = np.zeros((e, u, 2))
        self.hp = np.zeros((e, u))
        self.shield = np.zeros((e, u))
        self.energy = np.zeros((e, u))
        self.cooldown = np.zeros((e, u))
        self.since_hit = np.zeros((e, u))
        self.alive = np.zeros((e, u), dtype=bool)
        self.kind = np.zeros((e, u), dtype=np.int8)
        self.target = np.full((e, u), -1, dtype=np.int64)
        self.goal = np.zeros((e, u, 2))
        self.version = 0
        self._env_base = np.arange(e)[:, None] * u
        self._row_base = (np.arange(e)[:, None] * u + np.arange(u)[None, :]) * u
        self.reset()

    # ------------------------------------------------------------------ static tables
    def _init_static(self) -> None:
        spec = self.spec
        types = [UNIT_TYPES[n] for n in spec.allies + spec.enemies]
        self.types = types
        u = len(types)
        f = np.array
        self.is_ally = np.arange(u) < spec.n_agents
        self.hp_max = f([t.hp for t in types], dtype=float)
        self.shield_max = f([t.shield for t in types], dtype=float)
        self.armor = f([t.armor for t in types], dtype=float)
        self.radius = f([t.radius for t in types], dtype=float)
        self.weapon_range = f([t.range for t in types], dtype=float)
        self.scan_range = f([t.scan_range for t in types], dtype=float)
        self.speed_loop = f([t.speed for t in types], dtype=float) / LOOPS_PER_S
        self.cd_loops = f([t.cooldown_s for t in types], dtype=float) * LOOPS_PER_S
        self.cooldown_norm = f([t.cooldown_norm for t in types], dtype=float)
        self.air = f([t.air for t in types], dtype=bool)
        self.cliff_walk = f([t.cliff_walk for t in types], dtype=bool)
        self.healer = f([t.heal is not None for t in types], dtype=bool)
        self.attacks = f([t.attacks for t in types], dtype=float)
        heal = [t.heal for t in types]
        self.heal_loop = f([h.hp_per_s / LOOPS_PER_S if h else 0.0 for h in heal])
        self.hp_per_energy = f([h.hp_per_energy if h else 1.0 for h in heal])
        self.energy_max = f([h.energy_max if h else 0.0 for h in heal])
        self.energy_start = f([h.energy_start if h else 0.0 for h in heal])
        self.energy_regen_loop = f([h.energy_regen_per_s / LOOPS_PER_S if h else 0.0 for h in heal])
        opp = self.is_ally[:, None] != self.is_ally[None, :]
        reach_air = f([t.targets_air for t in types])[:, None] | ~self.air[None, :]
        self.can_hit = opp & reach_air & ~self.healer[:, None]
        raw = np.zeros((u, u))
        for i, a in enumerate(types):
            for j, t in enumerate(types):
                raw[i, j] = a.damage + sum(v for k, v in a.bonus.items() if k in t.attributes)
        raw *= self.can_hit
        self.raw_hit = raw * self.attacks[:, None]
        same = ~opp & ~np.eye(u, dtype=bool)
        heal_ok = np.zeros((u, u), dtype=bool)
        for i, a in enumerate(types):
            if a.heal is not None:
                heal_ok[i] = [any(x in t.attributes for x in a.heal.targets) for t in types]
        self.heal_ok = heal_ok & same
        self.non_threat = ~(self.can_hit.any(axis=1))
        self.melee = self.weapon_range < 1.0
        self._melee_cliffs = self.terrain.has_cliffs and bool(self.melee.any())
        self.start_kind = np.where(
            self.is_ally, IDLE, HUNT if spec.enemy_order == "attack_units" else ATTACK_MOVE
        )
        ally_types = np.array([spec.allies.index(t) for t in spec.allies])
        self._ally_groups = [np.flatnonzero(ally_types == t) for t in np.unique(ally_types)]
        self.splash = [
            (i, t.splash.width / 2, t.splash.depth / 2) for i, t in enumerate(types) if t.splash
        ]
        self.attack_point = np.array(spec.attack_point or spec.ally_start, dtype=float)
        ang = np.random.default_rng(12345).uniform(0, 2 * np.pi, (u, u))
        upper = np.triu(np.ones((u, u)), 1)[..., None] * np.stack([np.cos(ang), np.sin(ang)], -1)
        self._tie_dir = upper - np.swapaxes(upper, 0, 1)
        self._units = np.arange(u)
        self._unit_base = np.arange(u)[None, :] * u
        self.reach = self.weapon_range[:, None] + self.radius[:, None] + self.radius[None, :]
        self.reach = self.reach.astype(np.float32)
        self._reach_flat = self.reach.ravel()
        self._scan_edge = (self.scan_range[:, None] + self.radius[None, :]).astype(np.float32)
        self._threat_penalty = (NON_THREAT_PENALTY * self.non_threat[None, :]).astype(np.float32)
        self._pair_i, self._pair_j = np.triu_indices(u, 1)
        self._pair_rsum = (self.radius[self._pair_i] + self.radius[self._pair_j]).astype(np.float32)
        self._has_shields = bool((self.shield_max > 0).any())
        self._has_healers = bool(self.healer.any())
        a = spec.n_agents
        sides = (slice(0, a), slice(a, u))
        self._fight_blocks = [(sides[0], sides[1]), (sides[1], sides[0])]
        self._heal_blocks = [
            (np.flatnonzero(self.healer[side]) + side.start, side)
            for side in sides
            if self.healer[side].any()
        ]
        self._start = np.concatenate(
            [
                self._formation(spec.allies, spec.ally_start, spec.enemy_start),
                self._formation(spec.enemies, spec.enemy_start, spec.ally_start),
            ]
        )

    def reseed(self, seeds) -> None:
        """Replace the per-environment generators (one seed per environment)."""
        if len(seeds) != self.n_envs:
            raise UserError(f"reseed needs {self.n_envs} seeds, got {len(seeds)}")
        self._rngs = [np.random.default_rng(int(s)) for s in seeds]

    def rng_state(self) -> list[dict]:
        """The per-environment generators' states (:meth:`set_rng_state` restores them)."""
        return [g.bit_generator.state for g in self._rngs]

    def set_rng_state(self, state: list[dict]) -> None:
        """Restore :meth:`rng_state` output."""
        if len(state) != self.n_envs:
            raise UserError(f"rng state holds {len(state)} environments, not {self.n_envs}")
        for g, st in zip(self._rngs, state, strict=True):
            g.bit_generator.state = st

    def _formation(self, names: tuple[str, ...], centre, towards) -> np.ndarray:
        """Lines of ``max(LINE_UNITS, 2 sqrt(n))`` units facing ``towards``, further lines
        behind."""
        n = len(names)
        fwd = np.asarray(towards, dtype=float) - np.asarray(centre, dtype=float)
        fwd /= max(float(np.linalg.norm(fwd)), 1e-9)
        side = np.array([-fwd[1], fwd[0]])
        gap = 2 * max(UNIT_TYPES[x].radius for x in names) + 0.2
        per_line = max(LINE_UNITS, int(np.ceil(2 * np.sqrt(n))))
        line, slot = np.divmod(np.arange(n), per_line)
        width = np.minimum(n - line * per_line, per_line)
        off = (slot - (width - 1) / 2)[:, None] * side - line[:, None] * fwd
        return np.asarray(centre, dtype=float) + gap * off

    # ------------------------------------------------------------------ state control
    def reset(self, env_mask: np.ndarray | None = None) -> None:
        """Put the chosen environments (all by default) back at their start."""
        idx = np.arange(self.n_envs) if env_mask is None else np.flatnonzero(env_mask)
        j = self.config.start_jitter
        for i in idx:
            jit = self._rngs[i].uniform(-j, j, size=self._start.shape) if j else 0.0
            pos = self._start + jit
            for group in self._ally_groups:  # SMAC's agent order: (unit_type, x, y)
                p = pos[group]
                pos[group] = p[np.lexsort((p[:, 1], p[:, 0]))]
            self.pos[i] = pos
        self.hp[idx] = self.hp_max
        self.shield[idx] = self.shield_max
        self.energy[idx] = self.energy_start
        self.cooldown[idx] = 0.0
        self.since_hit[idx] = 0.0
        self.alive[idx] = True
        self.kind[idx] = self.start_kind
        self.target[idx] = -1
        self.goal[idx] = self.attack_point
        self.version += 1

    def set_units(
        self, env: int, *, pos=None, hp=None, shield=None, energy=None, cooldown=None
    ) -> None:
        """Overwrite unit state of environment ``env`` (for tests and scenarios).

        Each argument is an array over all unit slots (allies then enemies; ``pos`` is
        ``(n_units, 2)``) or ``None`` to keep the current values. Units with ``hp <= 0``
        are dead. Orders are reset (allies idle, enemies the map's order).
        """
        for name, val in (
            ("pos", pos),
            ("hp", hp),
            ("shield", shield),
            ("energy", energy),
            ("cooldown", cooldown),
        ):
            if val is not None:
                arr = getattr(self, name)
                val = np.asarray(val, dtype=float)
                if val.shape != arr.shape[1:]:
                    raise UserError(
                        f"set_units: {name} must have shape {arr.shape[1:]}, got {val.shape}"
                    )
                arr[env] = val
        self.hp[env] = np.clip(self.hp[env], 0.0, self.hp_max)
        self.shield[env] = np.clip(self.shield[env], 0.0, self.shield_max)
        self.alive[env] = self.hp[env] > 0
        self.shield[env] *= self.alive[env]
        self.kind[env] = self.start_kind
        self.target[env] = -1
        self.version += 1

    def distances(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pairwise offsets ``dx, dy`` (``pos[j] - pos[i]`` at ``[e, i, j]``) and centre
        distances, each ``(n_envs, n_units, n_units)``."""
        x = self.pos[..., 0].astype(np.float32)
        y = self.pos[..., 1].astype(np.float32)
        dx = x[:, None, :] - x[:, :, None]
        dy = y[:, None, :] - y[:, :, None]
        return dx, dy, np.sqrt(dx * dx + dy * dy)

    def _pick(self, m: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """``m[e, u, idx[e, u]]`` for a pairwise ``(n_envs, n_units, n_units)`` array."""
        return np.take(m, self._row_base + idx)

    def _across_cliff(self, tc: np.ndarray) -> np.ndarray:
        """Where a melee unit's target ``tc[e, u]`` stands across a cliff from it."""
        if not self._melee_cliffs:
            return np.zeros(tc.shape, dtype=bool)
        lvl = self.terrain.level_at(self.pos[..., 0], self.pos[..., 1])
        other = np.take(lvl, self._env_base + tc)
        return self.melee[None, :] & (np.abs(other - lvl) > MAX_STEP)

    def _target_dist(self, tc: np.ndarray) -> np.ndarray:
        """Centre distance of every unit to the unit ``tc[e, u]``."""
        d = np.take(self.pos.reshape(-1, 2), self._env_base + tc, axis=0) - self.pos
        return np.sqrt(d[..., 0] ** 2 + d[..., 1] ** 2)

    # ------------------------------------------------------------------ dynamics
    def command(self, actions: np.ndarray, active: np.ndarray) -> None:
        """Turn agent actions ``(n_envs, n_agents)`` into orders (SMAC action layout)."""
        a = self.n_agents
        act = np.asarray(actions, dtype=np.int64)
        live = self.alive[:, :a] & active[:, None]
        kind = self.kind[:, :a]
        kind[live] = np.where(act[live] >= 6, ATTACK, np.where(act[live] >= 2, MOVE, IDLE))
        step = np.array([[0, 2.0], [0, -2.0], [2.0, 0], [-2.0, 0]])
        mv = live & (act >= 2) & (act < 6)
        self.goal[:, :a][mv] = self.pos[:, :a][mv] + step[act[mv] - 2]
        at = live & (act >= 6)
        slot = act - 6 + np.where(self.healer[:a], 0, a)[None, :]
        tgt = self.target[:, :a]
        tgt[at] = slot[at]
        tgt[live & ~at] = -1

    def step(self, active: np.ndarray) -> None:
        """Advance active environments by one environment step (8 game loops)."""
        frozen = ~np.asarray(active, dtype=bool)
        saved = {}
        if frozen.any():
            saved = {k: getattr(self, k)[frozen].copy() for k in self._STATE}
        loops = STEP_LOOPS / self.config.substeps
        for _ in range(self.config.substeps):
            self._substep(loops)
        for k, val in saved.items():
            getattr(self, k)[frozen] = val
        self.version += 1

    _STATE = (
        "pos",
        "hp",
        "shield",
        "energy",
        "cooldown",
        "since_hit",
        "alive",
        "kind",
        "target",
        "goal",
    )

    def _substep(self, loops: float) -> None:
        alive = self.alive
        dx, dy, dist = self.distances()
        rules.acquire(self, dist)
        tgt = self.target
        tc = np.maximum(tgt, 0)
        has_t = (tgt >= 0) & alive & np.take(alive, self._env_base + tc)
        d_t = self._pick(dist, tc)
        r_t = np.take(self._reach_flat, self._unit_base + tc)
        cliff = self._across_cliff(tc)
        in_reach = has_t & (d_t <= r_t) & ~cliff
        # -- movement
        kind = self.kind
        chase = has_t & ~in_reach & (kind != IDLE)
        walk = alive & ((kind == MOVE) | ((kind == ATTACK_MOVE) & ~has_t))
        tpos = np.take(self.pos.reshape(-1, 2), self._env_base + tc, axis=0)
        goal = self.goal.copy()
        goal[chase] = tpos[chase]
        moving = chase | walk
        kind[(kind == ATTACK) & ~has_t] = IDLE
        to_point = self.goal - self.pos
        arrived = to_point[..., 0] ** 2 + to_point[..., 1] ** 2 < 1.0
        kind[(kind == ATTACK_MOVE) & ~has_t & arrived] = HUNT
        if self.terrain.has_obstacles:
            ground = moving & ~self.cliff_walk & ~self.air
            if ground.any():
                goal[ground] = self.terrain.steer(self.pos[ground], goal[ground])
        delta = goal - self.pos
        gd = np.sqrt(delta[..., 0] ** 2 + delta[..., 1] ** 2)
        kind[(kind == MOVE) & (gd < 1e-6)] = IDLE
        stop = gd.copy()
        near = np.minimum(np.maximum(d_t - r_t + 0.05, 0.0), gd)
        stop[chase] = np.where(cliff, gd, near)[chase]
        step_len = np.minimum(self.speed_loop * loops, stop) * moving / np.maximum(gd, 1e-9)
        old = self.pos.copy()
        self.pos += delta * step_len[..., None]
        envs = None
        for _ in range(self.config.separation_iters):
            envs = rules.separate(self, moving, envs)
            if envs.size == 0:
                break
        rules.constrain(self, old)
        # -- fire and heal
        in_reach = has_t & (self._target_dist(tc) <= r_t) & ~self._across_cliff(tc)
        fire = in_reach & (self.cooldown < loops) & ~self.healer
        heal = in_reach & self.healer
        cd = np.maximum(self.cooldown - loops, 0.0)
        cd[fire] = (np.maximum(self.cooldown, 0.0) + self.cd_loops - loops)[fire]
        self.cooldown = cd
        rules.apply_damage(self, fire, tc)
        rules.apply_heal(self, heal, tc, loops)
        # -- deaths and regeneration
        dead = alive & (self.hp <= 1e-9)
        if dead.any():
            self.hp[dead] = 0.0
            self.shield[dead] = 0.0
            self.alive &= ~dead
            self.kind[dead] = IDLE
            self.target[dead] = -1
        if self._has_shields:
            regen = (self.since_hit >= SHIELD_REGEN_DELAY_LOOPS) & self.alive
            sh = np.minimum(self.shield + SHIELD_REGEN_PER_LOOP * loops, self.shield_max)
            self.shield[regen] = sh[regen]
        self.since_hit += loops
        if self._has_healers:
            self.energy = np.minimum(self.energy + self.energy_regen_loop * loops, self.energy_max)
