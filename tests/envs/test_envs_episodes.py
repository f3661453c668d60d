"""Whole episodes: determinism, batch == single env, reward scale, scripted win rates."""

from __future__ import annotations

import numpy as np
import pytest

from mast.envs import make_batch_env, make_env
from mast.envs.scripted import focus_fire_actions, random_actions, run_episodes
from mast.errors import UserError


def rollout(env, n_steps, seed):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_steps):
        acts = random_actions(env.get_avail_actions(), rng)
        r, term, info = env.step(acts)
        out.append((env.get_obs().copy(), env.get_state().copy(), r, term, info["battle_won"]))
    return out


@pytest.mark.parametrize("map_name", ["3m", "2s3z", "MMM"])
def test_same_seed_same_episode(map_name):
    a = rollout(make_batch_env(map_name=map_name, n_envs=4, seed=7), 40, seed=1)
    b = rollout(make_batch_env(map_name=map_name, n_envs=4, seed=7), 40, seed=1)
    for x, y in zip(a, b, strict=True):
        for u, v in zip(x, y, strict=True):
            np.testing.assert_array_equal(u, v)
    c = make_batch_env(map_name=map_name, n_envs=4, seed=8)
    assert not np.array_equal(
        c.get_state(), make_batch_env(map_name=map_name, n_envs=4, seed=7).get_state()
    )


def test_rng_state_round_trip_replays_the_next_episodes():
    env = make_batch_env(map_name="3m", n_envs=3, seed=5)
    rollout(env, 30, seed=2)
    saved = env.rng_state()
    env.reset()
    first = env.get_state().copy()
    env.reset()
    assert not np.array_equal(env.get_state(), first)  # start positions are jittered
    env.set_rng_state(saved)
    env.reset()
    np.testing.assert_array_equal(env.get_state(), first)
    with pytest.raises(UserError, match="2 environments, not 3"):
        env.set_rng_state(saved[:2])


@pytest.mark.parametrize("map_name", ["3m", "3s5z", "MMM"])
def test_batch_equals_single_envs_step_for_step(map_name):
    n = 3
    benv = make_batch_env("builtin", map_name=map_name, n_envs=n, seed=11)
    singles = [make_env("builtin", map_name=map_name, seed=11 + i) for i in range(n)]
    benv.reset()
    for env in singles:
        env.reset()
    rng = np.random.default_rng(0)
    done = np.zeros(n, dtype=bool)
    for _ in range(benv.episode_limit + 2):
        avail = benv.get_avail_actions()
        for i, env in enumerate(singles):
            if not done[i]:
                np.testing.assert_array_equal(avail[i], env.get_avail_actions())
                np.testing.assert_array_equal(benv.get_obs()[i], np.stack(env.get_obs()))
                np.testing.assert_array_equal(benv.get_state()[i], env.get_state())
                np.testing.assert_array_equal(benv.get_obs()[i, 1], env.get_obs_agent(1))
        acts = random_actions(avail, rng)
        acts[done] = 0
        r, term, info = benv.step(acts)
        for i, env in enumerate(singles):
            if done[i]:
                assert r[i] == 0 and term[i]
                continue
            ri, ti, inf = env.step(acts[i].tolist())
            assert (r[i], term[i], info["battle_won"][i]) == (np.float32(ri), ti, inf["battle_won"])
            assert info["episode_limit"][i] == inf.get("episode_limit", False)
        done |= term
        if done.all():
            break
    assert done.all()


def test_reward_scale_max_return_is_20():
    env = make_batch_env(map_name="3m", n_envs=64, seed=0)
    env.reset()
    ret = np.zeros(env.n_envs)
    won = np.zeros(env.n_envs, dtype=bool)
    done = np.zeros(env.n_envs, dtype=bool)
    while not done.all():
        r, done, info = env.step(focus_fire_actions(env))
        assert (r >= 0).all()
        ret += r
        won |= info["battle_won"]
    # every enemy hp + kill bonus + win bonus, scaled: a win returns exactly 20
    np.testing.assert_allclose(ret[won], 20.0, rtol=1e-5)
    assert (ret[~won] < 20 - 200 / 365 * 20 + 1e-5).all()
    assert env.max_reward == 3 * 10 + 200 + 3 * 45


def test_kill_reward_and_single_env_info():
    env = make_env(map_name="3m", seed=0)
    env.reset()
    b = env.batch
    pos = [[10, 16], [10, 17], [10, 18], [15, 16], [30, 2], [30, 4]]
    b.set_units(0, pos=np.asarray(pos, float), hp=[45, 45, 45, 6, 45, 45])
    r, term, info = env.step([6, 1, 1])
    assert r == pytest.approx((6 + 10) / 365 * 20)
    assert not term and info == {"battle_won": False, "dead_allies": 0, "dead_enemies": 1}
    assert env.get_avail_agent_actions(0)[6] == 0


def test_focus_fire_wins_3m_and_random_does_not():
    env = make_batch_env(map_name="3m", n_envs=100, seed=0)
    focus = run_episodes(env, "focus_fire")
    rand = run_episodes(env, "random", seed=0)
    assert focus["win_rate"] >= 0.8
    assert rand["win_rate"] <= 0.1
    assert focus["mean_return"] > rand["mean_return"]


def _run_to_time_out(env):
    far = np.array([[2, 10], [2, 12], [2, 14], [30, 18], [30, 20], [30, 22]], dtype=float)
    for e in range(env.n_envs):
        env.set_units(e, pos=far)
    env.engine.kind[:, 3:] = 0  # enemies hold position
    for t in range(env.episode_limit):
        r, term, info = env.step(np.ones((env.n_envs, 3), dtype=np.int64))
        assert term.all() == (t == env.episode_limit - 1)
    assert not info["battle_won"].any()
    return info


def test_time_out_is_terminal_and_a_draw_by_default():
    """SMAC's default (continuing_episode=False): no episode_limit flag, the time-out is an
    ordinary terminal step, and get_stats counts it in battles_draw."""
    env = make_batch_env(map_name="3m", n_envs=2, seed=0)
    info = _run_to_time_out(env)
    assert not info["episode_limit"].any()
    stats = env.get_stats()
    assert stats["timeouts"] == 2 and stats["battles_draw"] == 2 and stats["battles_game"] == 2
    single = make_env(map_name="3m", seed=0)
    far = np.array([[2, 10], [2, 12], [2, 14], [30, 18], [30, 20], [30, 22]])
    single.batch.set_units(0, pos=far)
    single.batch.engine.kind[:, 3:] = 0
    for _ in range(single.episode_limit):
        _, term, inf = single.step([1, 1, 1])
    assert term and "episode_limit" not in inf
    assert single.get_stats()["battles_draw"] == 1


def test_continuing_episode_marks_time_outs():
    env = make_batch_env(map_name="3m", n_envs=2, seed=0, continuing_episode=True)
    info = _run_to_time_out(env)
    assert info["episode_limit"].all()
    assert env.get_stats()["battles_draw"] == 2
