"""Scripted policies for the built-in simulator: baselines, smoke runs and tests."""

from __future__ import annotations

import numpy as np

from mast.envs.builtin import BuiltinBatchEnv
from mast.envs.features import N_ACTIONS_NO_ATTACK
from mast.errors import UserError

__all__ = ["POLICIES", "focus_fire_actions", "random_actions", "run_episodes"]

POLICIES = ("focus_fire", "random")

STOP = 1
_MOVES = np.array([[0.0, 1.0], [0.0, -1.0], [1.0, 0.0], [-1.0, 0.0]])  # actions 2-5: N S E W


def random_actions(avail: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Uniformly random available action per agent; ``avail`` is ``(..., n_actions)``."""
    p = avail.astype(float)
    p /= p.sum(-1, keepdims=True)
    u = rng.random(p.shape[:-1])[..., None]
    return np.minimum((p.cumsum(-1) <= u).sum(-1), avail.shape[-1] - 1)


def focus_fire_actions(env: BuiltinBatchEnv) -> np.ndarray:
    """Advance and focus fire: every agent attacks the attackable enemy with the least
    hp + shield (lowest id on ties); agents with none in range step toward the enemy's
    start (the move action closest to that direction) or stop where they cannot. Dead
    agents no-op. Medivacs heal the most damaged ally in range."""
    avail = env.get_avail_actions()
    eng = env.engine
    a = env.n_agents
    hs = eng.hp + eng.shield
    frac = eng.hp / eng.hp_max
    enemy_score = np.broadcast_to(hs[:, None, a:], avail[..., N_ACTIONS_NO_ATTACK:].shape)
    heal_score = np.broadcast_to(
        frac[:, None, : env.n_enemies], avail[..., N_ACTIONS_NO_ATTACK:].shape
    )
    score = np.where(eng.healer[:a][None, :, None], heal_score, enemy_score)
    can = avail[..., N_ACTIONS_NO_ATTACK:].astype(bool)
    score = np.where(can, score, np.inf)
    attack = N_ACTIONS_NO_ATTACK + score.argmin(-1)
    spec = env.spec
    heading = np.subtract(spec.enemy_start, spec.ally_start)
    advance = 2 + int(np.argmax(_MOVES @ heading))
    fallback = np.where(avail[..., advance] > 0, advance, STOP)
    acts = np.where(can.any(-1), attack, fallback)
    return np.where(avail[..., 0] > 0, 0, acts)


def run_episodes(env: BuiltinBatchEnv, policy: str = "focus_fire", seed: int = 0) -> dict:
    """Run one episode in every battle of ``env`` with a scripted policy.

    Returns ``{"win_rate", "mean_return", "mean_length"}`` over the ``n_envs`` episodes.
    """
    if policy not in POLICIES:
        raise UserError(f"unknown policy {policy!r}; known policies: {', '.join(POLICIES)}")
    rng = np.random.default_rng(seed)
    env.reset()
    ret = np.zeros(env.n_envs)
    length = np.zeros(env.n_envs, dtype=np.int64)
    won = np.zeros(env.n_envs, dtype=bool)
    done = np.zeros(env.n_envs, dtype=bool)
    while not done.all():
        if policy == "focus_fire":
            acts = focus_fire_actions(env)
        else:
            acts = random_actions(env.get_avail_actions(), rng)
        acts[done] = 0
        r, term, info = env.step(acts)
        ret += r
        length += ~done
        won |= info["battle_won"]
        done = term
    return {
        "win_rate": float(won.mean()),
        "mean_return": float(ret.mean()),
        "mean_length": float(length.mean()),
    }
