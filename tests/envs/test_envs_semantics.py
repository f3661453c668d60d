"""Observation, state, action and combat semantics on hand-built situations."""

from __future__ import annotations

import numpy as np
import pytest

from mast.envs import BuiltinBatchEnv, make_batch_env, register_map
from mast.errors import UserError

FAR = [[2.0, 2.0], [2.0, 4.0], [2.0, 6.0]]


def battle(map_name, pos, hp=None, **kw):
    env = make_batch_env("builtin", map_name=map_name, n_envs=1, seed=0)
    env.set_units(0, pos=np.asarray(pos, dtype=float), hp=hp, **kw)
    return env


def test_visibility_and_shooting_range_3m():
    # agent 0 at (10, 16); enemies at distance 5.9 (attackable), 8.9 (visible only), 9.1
    pos = [[10, 16], [10, 18], [10, 30], [15.9, 16], [10, 7.1], [10, 25.1]]
    env = battle("3m", pos)
    obs = env.get_obs()[0, 0]
    avail = env.get_avail_actions()[0, 0]
    assert avail.tolist() == [0, 1, 1, 1, 1, 1, 1, 0, 0]
    enemies = obs[4:19].reshape(3, 5)
    np.testing.assert_allclose(enemies[0], [1, 5.9 / 9, 5.9 / 9, 0, 1], rtol=1e-6)
    np.testing.assert_allclose(enemies[1], [0, 8.9 / 9, 0, -8.9 / 9, 1], rtol=1e-6)
    assert not enemies[2].any()
    allies = obs[19:29].reshape(2, 5)
    np.testing.assert_allclose(allies[0], [1, 2 / 9, 0, 2 / 9, 1], rtol=1e-6)
    assert not allies[1].any()  # 14 away: out of sight
    assert obs[29] == 1.0  # own health


def test_dead_units_only_noop_and_vanish():
    pos = [[10, 16], [10, 17], [10, 18], [14, 16], [14, 17], [14, 18]]
    env = battle("3m", pos, hp=[0, 45, 45, 20, 0, 45])
    avail = env.get_avail_actions()[0]
    assert avail[0].tolist() == [1, 0, 0, 0, 0, 0, 0, 0, 0]
    assert avail[1].tolist() == [0, 1, 1, 1, 1, 1, 1, 0, 1]
    obs = env.get_obs()[0]
    assert not obs[0].any()
    enemies = obs[1, 4:19].reshape(3, 5)
    assert enemies[0, 4] == pytest.approx(20 / 45) and not enemies[1].any()
    allies = obs[1, 19:29].reshape(2, 5)
    assert not allies[0].any() and allies[1, 0] == 1
    state = env.get_state()[0]
    assert not state[0:4].any() and not state[12 + 3 : 12 + 6].any()
    assert state[12] == pytest.approx(20 / 45)
    with pytest.raises(ValueError, match="env 0: agent 0 cannot perform action 1"):
        env.step([[1, 1, 1]])


def test_move_flags_follow_the_pathable_band():
    """Open maps: pathable rows y = 8..23 over the full width (SMAC's map data)."""
    env = battle("3m", [[0.6, 16], [16, 23.5], [16, 8.4]] + FAR)
    avail = env.get_avail_actions()[0]
    assert avail[0, 2:6].tolist() == [1, 1, 1, 0]  # north, south, east, west
    assert avail[1, 2:6].tolist() == [0, 1, 1, 1]
    assert avail[2, 2:6].tolist() == [1, 0, 1, 1]
    grid = env.engine.spec.pathing_grid()
    assert grid[:, 8:24].all() and not grid[:, :8].any() and not grid[:, 24:].any()
    eng = env.engine
    for _ in range(6):  # orders past the band's edge (the engine, unchecked) stop at it
        eng.command(np.array([[1, 2, 3]]), np.array([True]))
        eng.step(np.array([True]))
    assert 23.0 < eng.pos[0, 1, 1] < 24.0 and 8.0 <= eng.pos[0, 2, 1] < 9.0


def test_move_flags_on_2c_vs_64zg_follow_the_pathing_grid():
    zg = make_batch_env("builtin", map_name="2c_vs_64zg", n_envs=1)
    pos = zg.engine.pos[0].copy()
    pos[0] = [16, 20.5]  # the plateau's north edge: nothing pathable beyond
    pos[1] = [16, 13.5]  # the plateau's south edge: colossi may step down the cliff
    zg.set_units(0, pos=pos)
    assert zg.get_avail_actions()[0, 0, 2:6].tolist() == [0, 1, 1, 1]
    assert zg.get_obs()[0, 0, :4].tolist() == [0, 1, 1, 1]
    assert zg.get_avail_actions()[0, 1, 2:6].tolist() == [1, 1, 1, 1]


def test_state_layout_3m():
    pos = [[16, 16], [8, 24], [10, 16], [20, 12], [24, 16], [2, 2]]
    env = battle("3m", pos)
    s = env.get_state()[0]
    np.testing.assert_allclose(s[0:4], [1, 0, 0, 0])
    np.testing.assert_allclose(s[4:8], [1, 0, -8 / 32, 8 / 32])
    np.testing.assert_allclose(s[12:15], [1, 4 / 32, -4 / 32])
    assert not s[21:].any()  # no last actions yet
    env.step([[6, 1, 2]])
    s = env.get_state()[0]
    assert s[1] == pytest.approx((0.61 * 22.4 - 8) / 15)  # marine fired: cooldown left
    la = s[21:].reshape(3, 9)
    assert la.argmax(1).tolist() == [6, 1, 2] and la.sum() == 3


def test_type_bits_and_shields_2s3z():
    # SMAC numbers allied stalker 0 / zealot 1 but enemy zealot 0 / stalker 1
    pos = [
        [10, 16],
        [10, 18],
        [10, 20],
        [10, 22],
        [10, 24],
        [14, 16],
        [14, 18],
        [14, 20],
        [14, 22],
        [14, 24],
    ]
    env = battle("2s3z", pos)
    obs = env.get_obs()[0, 0]
    enemies = obs[4:44].reshape(5, 8)
    assert enemies[0, 6:].tolist() == [0, 1] and enemies[2, 6:].tolist() == [1, 0]
    allies = obs[44:76].reshape(4, 8)
    assert allies[0, 6:].tolist() == [1, 0] and allies[1, 6:].tolist() == [0, 1]
    assert obs[76:].tolist() == [1, 1, 1, 0]


def test_shields_regenerate_as_in_smac_map_data():
    """ShieldRegenDelay 10 and ShieldRegenRate 2 in game seconds of 16 loops: nothing for
    160 loops (20 steps) after the last damage, then 2 per 16 loops (1 per step)."""
    pos = [[10, 16], [2, 9], [2, 11], [2, 13], [2, 15], [30, 16], [30, 9], [30, 11]]
    pos += [[30, 13], [30, 15]]
    env = battle("2s3z", pos, hp=[80, 80, 100, 100, 100, 80, 0, 0, 0, 0])
    eng = env.engine
    eng.kind[0, 5] = 0  # the enemy stalker holds position
    shield = eng.shield[0].copy()
    shield[5] = 10.0
    eng.shield[0] = shield
    eng.since_hit[0, 5] = 0.0
    seen = []
    for _ in range(24):
        env.step([[1, 1, 1, 1, 1]])
        seen.append(eng.shield[0, 5])
    assert seen[:19] == [10.0] * 19
    assert seen[19:] == pytest.approx([10.0, 11.0, 12.0, 13.0, 14.0])


def test_shields_absorb_first_then_armor():
    pos = [[10, 16], [2, 2], [2, 4], [2, 6], [2, 8], [15, 16], [30, 2], [30, 4], [30, 6], [30, 8]]
    env = battle("2s3z", pos, hp=[80, 80, 100, 100, 100, 80, 0, 0, 0, 0])
    env.step([[6, 1, 1, 1, 1]])  # stalker hits stalker: 13 + 5 (armored) = 18 on shields
    eng = env.engine
    assert (eng.hp[0, 5], eng.shield[0, 5]) == (80, 62)
    shield = eng.shield[0].copy()
    shield[5] = 5.0
    eng.shield[0] = shield
    eng.cooldown[0, 0] = 0.0
    env.step([[6, 1, 1, 1, 1]])  # 5 absorbed, the other 13 - armor 1 = 12 on hp
    assert (eng.hp[0, 5], eng.shield[0, 5]) == (68, 0)


def test_cooldown_sets_fire_rate():
    # a marine in range hits every 0.61 s = 13.66 loops: 6 shots in 10 steps (80 loops)
    pos = [[10, 16], [2, 2], [2, 4], [15, 16], [30, 2], [30, 4]]
    env = battle("3m", pos, hp=[45, 45, 45, 45, 0, 0])
    for _ in range(10):
        env.step([[6, 1, 1]])
    assert env.engine.hp[0, 3] == 45 - 6 * 6


def test_medivac_heals_allies_with_energy():
    slots = 20
    pos = np.array([[2.0 + (i % 10) * 2, 2.0 + 2 * (i // 10)] for i in range(slots)])
    pos[2] = [16, 16]  # marine (agent 2)
    pos[9] = [17.5, 16]  # medivac (agent 9)
    pos[10:] += [0, 26]
    hp = np.full(slots, 1.0)
    hp[2] = 20
    hp[9] = 150
    env = battle("MMM", pos, hp=hp)
    avail = env.get_avail_actions()[0, 9]
    assert avail[6 + 2] == 1 and avail[6 + 9] == 0  # heals the marine, not itself
    actions = np.ones((1, 10), dtype=np.int64)
    actions[0, 9] = 6 + 2
    energy = env.engine.energy[0, 9]
    env.step(actions)
    healed = 12.6 * 8 / 22.4
    assert env.engine.hp[0, 2] == pytest.approx(20 + healed)
    regen = 0.7875 * 8 / 22.4
    assert env.engine.energy[0, 9] == pytest.approx(energy - healed / 3 + regen)
    state = env.get_state()[0]
    assert state[9 * 7 + 1] == pytest.approx(env.engine.energy[0, 9] / 200)


def test_colossus_line_splash(tmp_path):
    path = tmp_path / "1c_vs_4zg.yaml"
    path.write_text("episode_limit: 20\nallies: {colossus: 1}\nenemies: {zergling: 4}\n")
    register_map(path)
    # fire along +x at (15, 16): the bar spans y in [14.6, 17.4]
    pos = [[9, 16], [15, 16], [15, 17.6], [15, 14.6], [15.9, 16]]
    env = battle("1c_vs_4zg", pos)
    env.step([[6]])
    hp = env.engine.hp[0, 1:]
    assert hp[:3].tolist() == [5, 5, 5] and hp[3] == 35  # (10 + 5 light) x 2 each


def test_melee_units_surround_instead_of_stacking(tmp_path):
    path = tmp_path / "1c_vs_8zg.yaml"
    path.write_text(
        "episode_limit: 50\nallies: {colossus: 1}\nenemies: {zergling: 8}\n"
        "ally_start: [16, 16]\nenemy_start: [24, 16]\n"
    )
    register_map(path)
    env = make_batch_env("builtin", map_name="1c_vs_8zg", n_envs=1)
    eng = env.engine
    eng.hp_max[0] = 1e9
    for _ in range(16):  # an immortal colossus that never fires
        eng.hp[0, 0] = eng.shield[0, 0] = eng.cooldown[0, 0] = 1e9
        env.step([[1]])
    assert eng.alive[0].all()
    rel = eng.pos[0, 1:] - eng.pos[0, 0]
    dist = np.linalg.norm(rel, axis=1)
    assert (dist <= 1.0 + 0.375 + 0.1 + 0.1).all()  # all zerglings in melee reach
    ang = np.sort(np.arctan2(rel[:, 1], rel[:, 0]))
    gaps = np.diff(np.concatenate([ang, ang[:1] + 2 * np.pi]))
    assert gaps.max() < 3.0  # spread round more than half the target, not piled up
    d = np.linalg.norm(eng.pos[0, 1:, None] - eng.pos[0, None, 1:], axis=-1)
    assert d[np.triu_indices(8, 1)].min() > 0.75 * 0.7


def test_2c_vs_64zg_ground_and_starts():
    """SMAC's 2c_vs_64zg: plateau (128) x 7..24, y 13..20; low ground (64) y 5..12 and the
    flanks x <= 3, x >= 28 up to y 20; ramps x 4..6 and 25..27, y 13..18."""
    env = make_batch_env("builtin", map_name="2c_vs_64zg", n_envs=1)
    lvl = env.engine.spec.ground_levels()
    assert (lvl[7:25, 13:21] == 128).all()
    assert (lvl[:, 5:13] == 64).all() and (lvl[:, :5] == -1).all() and (lvl[:, 21:] == -1).all()
    assert (lvl[:4, 13:21] == 64).all() and (lvl[28:, 13:21] == 64).all()
    assert lvl[4:7, 13].tolist() == [72, 88, 104] and lvl[25:28, 13].tolist() == [104, 88, 72]
    assert (lvl[4:7, 19:21] == -1).all() and (lvl[25:28, 19:21] == -1).all()
    pos = env.engine.pos[0]
    np.testing.assert_allclose(pos[:2].mean(0), [16, 16], atol=0.2)
    np.testing.assert_allclose(pos[2:].mean(0)[0], 16, atol=0.2)
    assert (lvl[np.floor(pos[:2, 0]).astype(int), np.floor(pos[:2, 1]).astype(int)] == 128).all()
    zx, zy = np.floor(pos[2:]).astype(int).T
    assert (lvl[zx, zy] == 64).all() and zy.max() <= 12 and abs(pos[2, 1] - 9) < 1


def test_zerglings_go_round_by_the_ramps():
    """The y 12 -> 13 edge below the plateau is a cliff: zerglings ordered to attack the
    colossi never cross it and reach the plateau by a ramp (x 4..6 or 25..27)."""
    env = make_batch_env("builtin", map_name="2c_vs_64zg", n_envs=1)
    eng = env.engine
    eng.hp_max[:2] = 1e9
    lvl = eng.spec.ground_levels()
    prev = np.floor(eng.pos[0, 2:]).astype(int)
    climbed = np.zeros(64, dtype=bool)
    for _ in range(30):
        eng.hp[0, :2] = eng.shield[0, :2] = eng.cooldown[0, :2] = 1e9  # passive colossi
        env.step([[1, 1]])
        cells = np.floor(eng.pos[0, 2:]).astype(int)
        assert (lvl[cells[:, 0], cells[:, 1]] >= 0).all()  # always on pathable ground
        up = (lvl[cells[:, 0], cells[:, 1]] == 128) & (lvl[prev[:, 0], prev[:, 1]] == 64)
        assert not up.any()  # never straight from low ground onto the plateau
        via_ramp = (lvl[prev[:, 0], prev[:, 1]] == 104) & (lvl[cells[:, 0], cells[:, 1]] == 128)
        climbed |= via_ramp
        prev = cells
    assert climbed.any()  # some reached the plateau, by a ramp
    assert (eng.kind[0, 2:] == 4).all()  # they hunt the colossi wherever they are


def test_zerglings_attack_the_colossi_as_a_group():
    """attack_units: every zergling goes for the nearest colossus even from far away
    (an attack-mover would stop at its point and only engage what it meets)."""
    env = make_batch_env("builtin", map_name="2c_vs_64zg", n_envs=1)
    eng = env.engine
    pos = eng.pos[0].copy()
    pos[:2] = [[30, 20], [31, 20]]  # colossi on the east flank, far from the swarm
    env.set_units(0, pos=pos)
    d0 = np.linalg.norm(eng.pos[0, 2:] - eng.pos[0, :1], axis=1)
    env.step([[1, 1]])
    assert (eng.target[0, 2:] >= 0).all() and (eng.target[0, 2:] < 2).all()
    d1 = np.linalg.norm(eng.pos[0, 2:] - eng.pos[0, :1], axis=1)
    assert (d1 < d0).mean() > 0.9


def test_terminated_envs_ignore_actions_until_reset():
    pos = [[10, 16], [10, 17], [10, 18], [15, 16], [30, 2], [30, 4]]
    env = battle("3m", pos, hp=[45, 45, 45, 3, 0, 0])
    r, term, info = env.step([[6, 6, 6]])
    assert term[0] and info["battle_won"][0] and info["dead_enemies"][0] == 3
    before = env.get_state().copy()
    r, term, info = env.step([[0, 0, 0]])
    assert r[0] == 0 and term[0] and not info["battle_won"][0]
    np.testing.assert_array_equal(env.get_state(), before)
    env.reset()
    assert not env.terminated.any() and env.engine.alive.all()


def test_bad_config_and_set_units_shape():
    with pytest.raises(UserError, match=r"substeps must divide 8 \(1, 2, 4, 8\), got 3"):
        BuiltinBatchEnv(
            "3m", engine=__import__("mast.envs", fromlist=["x"]).EngineConfig(substeps=3)
        )
    env = make_batch_env(map_name="3m")
    with pytest.raises(UserError, match=r"set_units: pos must have shape \(6, 2\), got \(3, 2\)"):
        env.set_units(0, pos=np.zeros((3, 2)))


def test_zerglings_cannot_bite_across_the_cliff():
    """Colossi at the plateau's south edge are out of reach of zerglings at the cliff foot
    (melee attacks need the same ground) while colossi shoot down."""
    env = make_batch_env("builtin", map_name="2c_vs_64zg", n_envs=1)
    eng = env.engine
    pos = eng.pos[0].copy()
    pos[:2] = [[15, 13.5], [17, 13.5]]
    pos[2:] = [[8 + (i % 16), 12.6 - 0.8 * (i // 16)] for i in range(64)]
    env.set_units(0, pos=pos)
    for _ in range(4):
        env.step([[1, 1]])  # colossi stop; idle colossi fire at zerglings within reach
    assert (eng.hp[0, :2] == 200).all() and (eng.shield[0, :2] == 150).all()
    assert eng.alive[0, 2:].sum() < 64


def test_idle_units_fire_back_without_chasing():
    # agent 0 stops: it fires at the enemy within its reach (5.75) and stays put
    pos = [[10, 16], [2, 2], [2, 4], [15.5, 16], [30, 2], [30, 4]]
    env = battle("3m", pos, hp=[45, 45, 45, 45, 0, 0])
    env.engine.kind[0, 3] = 0  # the enemy holds position too
    env.step([[1, 1, 1]])
    assert env.engine.hp[0, 3] == 45 - 6
    assert env.engine.pos[0, 0].tolist() == [10, 16]
    far = [[10, 16], [2, 2], [2, 4], [16.5, 16], [30, 2], [30, 4]]
    env = battle("3m", far, hp=[45, 45, 45, 45, 0, 0])
    env.engine.kind[0, 3] = 0
    env.step([[1, 1, 1]])
    assert env.engine.hp[0, 3] == 45 and env.engine.pos[0, 0].tolist() == [10, 16]


def test_opponent_attack_moves_toward_the_agents():
    env = make_batch_env("builtin", map_name="3m", n_envs=1)
    p0 = env.engine.pos[0, 3:].copy()
    env.step([[1, 1, 1]])
    step = env.engine.pos[0, 3:] - p0
    np.testing.assert_allclose(np.linalg.norm(step, axis=1), 3.15 * 8 / 22.4, rtol=1e-6)
    assert (step[:, 0] < -1.1).all()  # marine speed, toward the agents' start (west)


def test_opponent_hunts_agents_away_from_its_attack_point():
    env = make_batch_env("builtin", map_name="3m", n_envs=1)
    pos = env.engine.pos[0].copy()
    pos[:3] = [[30, 2], [30, 3], [30, 4]]  # agents hide in a far corner
    env.set_units(0, pos=pos)
    for _ in range(30):
        env.step(np.where(env.get_avail_actions()[..., 0] > 0, 0, 1))
    d = np.linalg.norm(env.engine.pos[0, 3:, None] - env.engine.pos[0, None, :3], axis=-1)
    assert d.min() < 6.0 or not env.engine.alive[0, :3].all()


@pytest.mark.parametrize("map_name", ["3m", "2s3z", "MMM"])
def test_allies_are_sorted_by_type_then_position_at_reset(map_name):
    """SMAC orders its agents by (unit_type, x, y) at every reset."""
    env = make_batch_env("builtin", map_name=map_name, n_envs=8, seed=3)
    spec = env.engine.spec
    types = np.array([spec.allies.index(t) for t in spec.allies])
    for _ in range(3):
        env.reset()
        for e in range(env.n_envs):
            p = env.engine.pos[e, : env.n_agents]
            order = np.lexsort((p[:, 1], p[:, 0], types))
            assert order.tolist() == list(range(env.n_agents))


def test_obs_last_action_appends_allies_last_actions():
    """SMAC's obs_last_action: each visible ally's features end with its previous action's
    one-hot (zero before the first step); get_env_info grows by (n_agents - 1) x n_actions."""
    plain = make_batch_env("builtin", map_name="3m", n_envs=1, seed=0)
    env = make_batch_env("builtin", map_name="3m", n_envs=1, seed=0, obs_last_action=True)
    assert env.get_env_info()["obs_shape"] == plain.get_env_info()["obs_shape"] + 2 * 9 == 48
    pos = [[10, 16], [10, 18], [10, 20], [24, 12], [24, 16], [24, 20]]
    env.set_units(0, pos=np.asarray(pos, dtype=float))
    allies = env.get_obs()[0, 0, 19:47].reshape(2, 14)
    assert not allies[:, 5:].any()
    env.step([[1, 2, 5]])  # stop, north, west
    allies = env.get_obs()[0, 0, 19:47].reshape(2, 14)
    assert allies[0, 5:].tolist() == np.eye(9)[2].tolist()
    assert allies[1, 5:].tolist() == np.eye(9)[5].tolist()
    np.testing.assert_array_equal(allies[:, :5].ravel(), plain_ally_features(pos, [1, 2, 5]))


def plain_ally_features(pos, actions):
    env = make_batch_env("builtin", map_name="3m", n_envs=1, seed=0)
    env.set_units(0, pos=np.asarray(pos, dtype=float))
    env.step([actions])
    return env.get_obs()[0, 0, 19:29]
