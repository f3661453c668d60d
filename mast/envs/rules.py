"""Combat rules of :class:`~mast.envs.engine.CombatEngine`, one function per phase.

Each function updates the engine's state arrays in place for all battles at once (see the
engine's module docstring for the order of the phases and the rules they implement).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mast.envs.terrain import Terrain

if TYPE_CHECKING:
    from mast.envs.engine import CombatEngine

__all__ = [
    "ATTACK",
    "ATTACK_MOVE",
    "HUNT",
    "IDLE",
    "MOVE",
    "acquire",
    "apply_damage",
    "apply_heal",
    "block",
    "constrain",
    "separate",
]

IDLE, MOVE, ATTACK, ATTACK_MOVE, HUNT = 0, 1, 2, 3, 4
"""Order kinds: idle (fires at enemies within reach), move to a point, attack a unit,
attack-move (the scripted opponent), hunt (an attack-mover that reached its point with
nothing in sight goes for the nearest opponent anywhere, as the game's opponent does)."""

HEAL_SIGHT = 9.0
"""Range (map units) within which a scripted medivac looks for friends to heal."""


def acquire(eng: CombatEngine, dist: np.ndarray) -> None:
    """Targets for attack-moving and idle units (nearest threat; healers: the most
    hurt friend in sight); attack-movers keep a target while it is within reach.

    Fighters only look at the opposing side's slots and healers at their own side's,
    so the work is ``O(n_agents * n_enemies)`` per battle, not ``O(n_units^2)``.
    """
    alive = eng.alive
    kind = eng.kind
    tc = np.maximum(eng.target, 0)
    keep = (eng.target >= 0) & np.take(alive, eng._env_base + tc)
    keep &= eng._pick(dist, tc) <= np.take(eng._reach_flat, eng._unit_base + tc)
    hunt = kind == HUNT
    am = (kind == ATTACK_MOVE) | hunt
    pick = alive & ((am & ~keep) | ((kind == IDLE) & ~eng.healer))
    if not pick.any():
        return
    new = eng.target.copy()
    for rows, cols in eng._fight_blocks:
        if not pick[:, rows].any():
            continue
        d = dist[:, rows, cols]
        attacked_by = eng.target[:, None, cols] == np.arange(rows.start, rows.stop)[:, None]
        amf = am[:, rows, None]
        reach = (d <= eng._scan_edge[rows, cols]) | attacked_by | hunt[:, rows, None]
        reach = np.where(amf, reach, d <= eng.reach[rows, cols])
        ok = reach & eng.can_hit[rows, cols] & alive[:, None, cols]
        score = d + eng._threat_penalty[:, cols] + (~ok) * np.float32(1e9)
        best = np.where(ok.any(axis=2), score.argmin(axis=2) + cols.start, -1)
        new[:, rows] = best
    for rows, cols in eng._heal_blocks:
        d = dist[:, rows][:, :, cols]
        hurt = (1.0 - eng.hp[:, cols] / eng.hp_max[cols]).astype(np.float32)
        ok = eng.heal_ok[rows][:, cols] & alive[:, None, cols] & (d <= HEAL_SIGHT)
        score = d - 100.0 * hurt[:, None, :] + (~ok) * np.float32(1e9)
        new[:, rows] = np.where(ok.any(axis=2), score.argmin(axis=2) + cols.start, -1)
    eng.target = np.where(pick, new, eng.target)


def separate(eng: CombatEngine, moving: np.ndarray, envs: np.ndarray | None) -> np.ndarray:
    """One Jacobi sweep pushing overlapping ground units apart (movers take the larger
    share) in the battles ``envs`` (all when None). Returns the battles that had
    overlaps. Works on the list of unit pairs ``i < j``."""
    pos = eng.pos if envs is None else eng.pos[envs]
    pi, pj = eng._pair_i, eng._pair_j
    x, y = pos[..., 0].astype(np.float32), pos[..., 1].astype(np.float32)
    dx = np.take(x, pj, axis=1) - np.take(x, pi, axis=1)
    dy = np.take(y, pj, axis=1) - np.take(y, pi, axis=1)
    dist = np.sqrt(dx * dx + dy * dy)
    overlap = eng._pair_rsum - dist
    solid = eng.alive & ~eng.air
    if envs is not None:
        solid = solid[envs]
        moving = moving[envs]
    pair = (overlap > 0) & np.take(solid, pi, axis=1) & np.take(solid, pj, axis=1)
    flat = np.flatnonzero(pair)
    if flat.size == 0:
        return flat
    u, n_pairs = eng.n_units, len(pi)
    ev, pv = np.divmod(flat, n_pairs)
    iv, jv = pi[pv], pj[pv]
    w = 0.25 + 0.75 * moving.ravel()
    wi, wj = w[ev * u + iv], w[ev * u + jv]
    ov = overlap.ravel()[flat] / (wi + wj)
    d = dist.ravel()[flat]
    tie = d < 1e-6
    ux = np.where(tie, eng._tie_dir[iv, jv, 0], dx.ravel()[flat] / np.maximum(d, 1e-6))
    uy = np.where(tie, eng._tie_dir[iv, jv, 1], dy.ravel()[flat] / np.maximum(d, 1e-6))
    n = len(pos) * u
    ki, kj = ev * u + iv, ev * u + jv
    push_x = np.bincount(kj, ov * wj * ux, n) - np.bincount(ki, ov * wi * ux, n)
    push_y = np.bincount(kj, ov * wj * uy, n) - np.bincount(ki, ov * wi * uy, n)
    push = np.stack([push_x, push_y], -1).reshape(len(pos), u, 2)
    hit = np.unique(ev)
    if envs is None:
        eng.pos += push
        return hit
    eng.pos[envs] = pos + push
    return envs[hit]


def constrain(eng: CombatEngine, old: np.ndarray) -> None:
    """Keep units inside the map and ground units off ground they cannot enter (inside
    the pathable rectangle of open maps; elsewhere sliding along the obstacle where one
    axis is free)."""
    w, h = eng.spec.size
    r = eng.radius[None, :]
    x0, y0, x1, y1 = 0, 0, w, h
    if eng.terrain.rect is not None:  # one pathable rectangle: ground units stay inside it
        x0, y0, x1, y1 = (
            np.where(eng.air, b, eng.terrain.rect[i]) for i, b in enumerate((0, 0, w, h))
        )
    eng.pos[..., 0] = np.clip(eng.pos[..., 0], x0 + r, x1 - r)
    eng.pos[..., 1] = np.clip(eng.pos[..., 1], y0 + r, y1 - r)
    pairs = ((eng.terrain, ~eng.cliff_walk), (eng.cliff_terrain, eng.cliff_walk))
    for terrain, who in pairs:
        mask = who & ~eng.air
        if terrain.has_obstacles and mask.any():
            block(eng, terrain, old, mask[None, :] & eng.alive)


def block(eng: CombatEngine, terrain: Terrain, old: np.ndarray, bound: np.ndarray) -> None:
    """Units in ``bound`` that stepped from pathable ground onto ground of ``terrain`` they
    cannot enter (not pathable, or up or down a cliff) slide along the free axis, or go
    back to ``old`` when neither axis is free."""
    x, y = eng.pos[..., 0], eng.pos[..., 1]
    ox, oy = old[..., 0], old[..., 1]
    bad = bound & ~terrain.passable(ox, oy, x, y) & terrain.walkable(ox, oy)
    if not bad.any():
        return
    slide_x = bad & terrain.passable(ox, oy, x, oy)
    slide_y = bad & ~slide_x & terrain.passable(ox, oy, ox, y)
    back = bad & ~slide_x & ~slide_y
    eng.pos[..., 1] = np.where(slide_x | back, oy, y)
    eng.pos[..., 0] = np.where(slide_y | back, ox, eng.pos[..., 0])


def apply_damage(eng: CombatEngine, fire: np.ndarray, tc: np.ndarray) -> None:
    """Every unit in ``fire`` hits its target ``tc`` (and, with line splash, every enemy
    the bar touches); shields absorb first, armour reduces each hit that reaches hp."""
    e, u = eng.n_envs, eng.n_units
    ev, av = np.nonzero(fire)
    tv = tc[ev, av]
    flat = ev * u + tv
    d_sh = np.bincount(flat, eng.raw_hit[av, tv], e * u).reshape(e, u)
    n_hit = np.bincount(flat, eng.attacks[av], e * u).reshape(e, u)
    for s, half_w, half_d in eng.splash:
        f = fire[:, s]
        if not f.any():
            continue
        src = eng.pos[:, s]
        tpos = eng.pos[np.arange(e), tc[:, s]]
        fwd = tpos - src
        fwd /= np.maximum(np.linalg.norm(fwd, axis=-1, keepdims=True), 1e-9)
        rel = eng.pos - tpos[:, None, :]
        along = np.abs(np.einsum("euk,ek->eu", rel, fwd)) - half_d
        side = np.abs(rel[..., 0] * fwd[:, None, 1] - rel[..., 1] * fwd[:, None, 0]) - half_w
        gap2 = np.maximum(along, 0) ** 2 + np.maximum(side, 0) ** 2
        hit = f[:, None] & eng.alive & (gap2 <= eng.radius**2) & eng.can_hit[s][None, :]
        hit[np.arange(e), tc[:, s]] = False
        d_sh += hit * eng.raw_hit[s][None, :]
        n_hit += hit * eng.attacks[s]
    hit_any = d_sh > 0
    rem = np.maximum(d_sh - eng.shield, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        k = np.where(hit_any, np.ceil(n_hit * rem / d_sh - 1e-9), 0.0)
    loss = np.where(rem > 0, np.maximum(rem - eng.armor * k, 0.5 * k), 0.0)
    eng.hp = np.maximum(eng.hp - loss, 0.0)
    eng.shield = np.maximum(eng.shield - d_sh, 0.0)
    eng.since_hit[hit_any] = 0.0


def apply_heal(eng: CombatEngine, heal: np.ndarray, tc: np.ndarray, loops: float) -> None:
    """Healers in ``heal`` restore hp of their living target ``tc`` for ``loops`` game
    loops, limited by the target's missing hp and the healer's energy."""
    if not heal.any():
        return
    e, u = eng.n_envs, eng.n_units
    ev, hv = np.nonzero(heal)
    tv = tc[ev, hv]
    room = eng.hp_max[tv] - eng.hp[ev, tv]
    amount = np.minimum(
        np.minimum(eng.heal_loop[hv] * loops, room),
        eng.energy[ev, hv] * eng.hp_per_energy[hv],
    )
    amount *= eng.heal_ok[hv, tv] & (eng.hp[ev, tv] > 1e-9)
    eng.energy[ev, hv] -= amount / eng.hp_per_energy[hv]
    add = np.bincount(ev * u + tv, amount, e * u).reshape(e, u)
    eng.hp = np.minimum(eng.hp + add, eng.hp_max)
