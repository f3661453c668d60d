"""Environment and map registries, env_info per map, adapters' error messages."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from mast.envs import ENVS, MAPS, UNIT_TYPES, make_batch_env, make_env, register_map
from mast.envs.base import VectorEnv
from mast.errors import UserError

# get_env_info() of real SMAC with its default flags, derived from its feature layout.
SMAC_ENV_INFO = {
    "3m": (48, 30, 9, 3, 60),
    "8m": (168, 80, 14, 8, 120),
    "5m_vs_6m": (98, 55, 12, 5, 70),
    "2s3z": (120, 80, 11, 5, 120),
    "3s5z": (216, 128, 14, 8, 150),
    "MMM": (290, 160, 16, 10, 150),
    "2c_vs_64zg": (342, 332, 70, 2, 400),
}
KEYS = ("state_shape", "obs_shape", "n_actions", "n_agents", "episode_limit")


@pytest.mark.parametrize("map_name", sorted(SMAC_ENV_INFO))
def test_env_info_equals_smac(map_name):
    want = dict(zip(KEYS, SMAC_ENV_INFO[map_name], strict=True))
    env = make_env("builtin", map_name=map_name, seed=0)
    assert env.get_env_info() == want
    assert all(type(v) is int for v in env.get_env_info().values())
    benv = make_batch_env("builtin", map_name=map_name, n_envs=2, seed=0)
    assert benv.get_env_info() == want
    assert (benv.n_envs, benv.n_agents, benv.n_actions, benv.episode_limit) == (
        2,
        want["n_agents"],
        want["n_actions"],
        want["episode_limit"],
    )
    assert benv.get_obs().shape == (2, want["n_agents"], want["obs_shape"])
    assert benv.get_obs().dtype == np.float32
    assert benv.get_state().shape == (2, want["state_shape"])
    assert benv.get_state().dtype == np.float32
    assert benv.get_avail_actions().shape == (2, want["n_agents"], want["n_actions"])
    assert env.get_obs_size() == want["obs_shape"]
    assert env.get_state_size() == want["state_shape"]
    assert env.get_total_actions() == want["n_actions"]


def test_registries_list_known_names():
    assert set(SMAC_ENV_INFO) <= set(MAPS)
    assert list(ENVS) == ["builtin", "sc2", "mpe_spread"]
    with pytest.raises(UserError, match=r"unknown map '4m'; known maps: .*3m.*MMM"):
        make_env("builtin", map_name="4m")
    with pytest.raises(
        UserError,
        match=r"unknown env 'starcraft'; known envs: builtin, sc2, "
        r"mpe_spread",
    ):
        make_batch_env("starcraft", map_name="3m")
    with pytest.raises(UserError, match="n_envs must be >= 1, got 0"):
        make_batch_env("builtin", map_name="3m", n_envs=0)


def test_user_map_file_registers(tmp_path):
    path = tmp_path / "2m_vs_1zg.yaml"
    path.write_text("episode_limit: 30\nallies: {marine: 2}\nenemies: {zergling: 1}\n")
    spec = register_map(path)
    assert spec.name == "2m_vs_1zg" and MAPS["2m_vs_1zg"] is spec
    info = make_env(map_name="2m_vs_1zg").get_env_info()
    # move 4 + enemy 1 x 5 + ally 1 x 5 + own 1; state 2 x 4 + 1 x 3 + 2 x 7
    assert info == {
        "state_shape": 25,
        "obs_shape": 15,
        "n_actions": 7,
        "n_agents": 2,
        "episode_limit": 30,
    }
    bad = tmp_path / "bad.yaml"
    bad.write_text("episode_limit: 30\nallies: {hydralisk: 2}\nenemies: {marine: 1}\n")
    with pytest.raises(UserError, match=r"map 'bad': unknown unit type 'hydralisk'; known: "):
        register_map(bad)
    bad.write_text("episode_limit: 30\nallies: {marine: 2}\nenemies: {marine: 1}\nfoo: 1\n")
    with pytest.raises(UserError, match=r"unknown key\(s\) \['foo'\]"):
        register_map(bad)


def test_unit_stats_are_sc2s():
    m = UNIT_TYPES["marine"]
    assert (m.hp, m.armor, m.damage, m.cooldown_s, m.speed, m.range, 2 * m.radius) == (
        45,
        0,
        6,
        0.61,
        3.15,
        5.0,
        0.75,
    )
    z = UNIT_TYPES["zealot"]
    assert (z.hp, z.shield, z.armor, z.damage, z.attacks) == (100, 50, 1, 8, 2)
    c = UNIT_TYPES["colossus"]
    assert c.splash is not None and c.cliff_walk and c.bonus["light"] == 5
    assert UNIT_TYPES["medivac"].heal.hp_per_s == 12.6


def _fake_smac(monkeypatch, with_env: bool):
    smac = types.ModuleType("smac")
    smac.version = "2.0.2"
    monkeypatch.setitem(sys.modules, "smac", smac)
    if with_env:
        env_mod = types.ModuleType("smac.env")
        env_mod.StarCraft2Env = FakeStarCraft2Env
        monkeypatch.setitem(sys.modules, "smac.env", env_mod)
    else:
        monkeypatch.setitem(sys.modules, "smac.env", None)


def test_sc2_adapter_missing_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "smac", None)
    with pytest.raises(
        UserError,
        match="env 'sc2' needs the StarCraft Multi-Agent Challenge package: pip install git",
    ):
        make_env("sc2", map_name="3m")


def test_sc2_adapter_detects_smac3(monkeypatch):
    _fake_smac(monkeypatch, with_env=False)
    with pytest.raises(
        UserError,
        match=r"the installed 'smac' package \(version 2.0.2\) is "
        "SMAC3, the hyperparameter optimiser",
    ):
        make_env("sc2", map_name="3m")


def test_sc2_adapter_missing_game(monkeypatch, tmp_path):
    _fake_smac(monkeypatch, with_env=True)
    monkeypatch.setenv("SC2PATH", str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match="env 'sc2' needs StarCraft II: no game found at"):
        make_env("sc2", map_name="3m")


def test_sc2_adapter_batches_real_smac_api(monkeypatch, tmp_path):
    _fake_smac(monkeypatch, with_env=True)
    monkeypatch.setenv("SC2PATH", str(tmp_path))
    benv = make_batch_env("sc2", map_name="3m", n_envs=3, seed=4)
    assert isinstance(benv, VectorEnv)
    assert [e._env.seed for e in benv.envs] == [4, 5, 6]
    assert benv.get_env_info()["obs_shape"] == 5
    benv.reset()
    assert benv.get_obs().shape == (3, 2, 5) and benv.get_state().shape == (3, 7)
    for _ in range(3):
        r, term, info = benv.step(np.ones((3, 2), dtype=np.int64))
        assert r.dtype == np.float32 and r.tolist() == [1.0, 1.0, 1.0]
    # SMAC's default: the last step ends the episode without an episode_limit flag (a
    # loss on the final step is not mislabelled as a time-out)
    assert term.all() and not info["episode_limit"].any() and not info["battle_won"].any()
    r, term, _ = benv.step(np.ones((3, 2), dtype=np.int64))
    assert term.all() and r.tolist() == [0.0, 0.0, 0.0]


def test_sc2_adapter_passes_smac_time_out_flag(monkeypatch, tmp_path):
    _fake_smac(monkeypatch, with_env=True)
    monkeypatch.setenv("SC2PATH", str(tmp_path))
    env = make_env("sc2", map_name="3m", continuing_episode=True)
    env.reset()
    infos = [env.step([1, 1])[2] for _ in range(3)]
    assert [i["episode_limit"] for i in infos] == [False, False, True]


def test_mpe_adapter_needs_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpe2", None)
    monkeypatch.setitem(sys.modules, "mpe2.simple_spread_v3", None)
    with pytest.raises(
        UserError,
        match=r"env 'mpe_spread' needs the optional extra: "
        r"pip install -e '\.\[mpe\]'",
    ):
        make_env("mpe_spread")


class FakeStarCraft2Env:
    """The slice of ``smac.env.StarCraft2Env``'s API the adapter uses (2 agents, limit 3)."""

    state_last_action = False  # its state is too short to hold them
    state_timestep_number = False

    def __init__(self, map_name, seed, continuing_episode=False, **kwargs):
        self.map_name, self.seed, self.t = map_name, seed, 0
        self.continuing_episode = continuing_episode

    def get_env_info(self):
        return {"state_shape": 7, "obs_shape": 5, "n_actions": 4, "n_agents": 2, "episode_limit": 3}

    def reset(self):
        self.t = 0
        return self.get_obs(), self.get_state()

    def step(self, actions):
        self.t += 1
        info = {"battle_won": False}
        if self.t >= 3 and self.continuing_episode:
            info["episode_limit"] = True  # as SMAC: only when continuing episodes
        return 1.0, self.t >= 3, info

    def get_obs(self):
        return [np.full(5, self.t, dtype=np.float32)] * 2

    def get_state(self):
        return np.zeros(7, dtype=np.float32)

    def get_avail_actions(self):
        return [[0, 1, 1, 1]] * 2

    def get_stats(self):
        return {}

    def close(self):
        return None


class _Space:
    def __init__(self, n=None, shape=None):
        self.n, self.shape = n, shape


class FakeSpreadParallelEnv:
    """The PettingZoo parallel API slice ``MPESpreadEnv`` uses (max_cycles steps)."""

    def __init__(self, N, local_ratio, max_cycles, continuous_actions):
        assert not continuous_actions
        self.possible_agents = [f"agent_{i}" for i in range(N)]
        self.max_cycles, self.t = max_cycles, 0
        self.state_space = _Space(shape=(N * 6,))

    def action_space(self, agent):
        return _Space(n=5)

    def observation_space(self, agent):
        return _Space(shape=(6,))

    def reset(self, seed=None):
        self.t = 0
        return {a: np.full(6, 0.5, np.float32) for a in self.possible_agents}, {}

    def step(self, actions):
        self.t += 1
        trunc = self.t >= self.max_cycles
        obs = {a: np.full(6, self.t, np.float32) for a in self.possible_agents}
        rew = {a: -float(actions[a]) for a in self.possible_agents}
        return (
            obs,
            rew,
            dict.fromkeys(self.possible_agents, False),
            dict.fromkeys(self.possible_agents, trunc),
            {},
        )

    def state(self):
        return np.zeros(len(self.possible_agents) * 6, np.float32)

    def close(self):
        return None


def test_mpe_adapter_wraps_pettingzoo_parallel_api(monkeypatch):
    mod = types.ModuleType("mpe2.simple_spread_v3")
    mod.parallel_env = FakeSpreadParallelEnv
    monkeypatch.setitem(sys.modules, "mpe2", types.ModuleType("mpe2"))
    monkeypatch.setitem(sys.modules, "mpe2.simple_spread_v3", mod)
    benv = make_batch_env("mpe_spread", n_envs=2, seed=0, n_agents=3, episode_limit=2)
    assert benv.get_env_info() == {
        "state_shape": 18,
        "obs_shape": 6,
        "n_actions": 5,
        "n_agents": 3,
        "episode_limit": 2,
    }
    benv.reset()
    assert benv.get_avail_actions().tolist() == [[[1] * 5] * 3] * 2
    r, term, info = benv.step(np.array([[1, 2, 0], [0, 0, 0]]))
    assert r.tolist() == [-3.0, 0.0] and not term.any()
    r, term, info = benv.step(np.zeros((2, 3), dtype=np.int64))
    assert term.all() and info["episode_limit"].all()
    assert benv.get_obs().shape == (2, 3, 6) and benv.get_state().shape == (2, 18)
