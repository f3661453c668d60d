"""Episode storage (dtypes, exactness, FIFO) and the dual buffer's batch composition."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mast.buffer import DualReplayBuffer, EpisodeBuffer, FieldSpec, smac_scheme
from mast.errors import UserError

N_AGENTS, N_ACTIONS, OBS, STATE, LIMIT = 3, 9, 30, 48, 20


def episodes(rng, n, limit=LIMIT, t_in=None, lengths=None):
    """``n`` random SMAC-shaped episodes ``[n, t_in, ...]`` plus their lengths."""
    t_in = limit + 1 if t_in is None else t_in
    if lengths is None:
        lengths = rng.integers(1, min(limit, t_in) + 1, size=n)
    batch = {
        "obs": rng.normal(size=(n, t_in, N_AGENTS, OBS)).astype(np.float32),
        "state": rng.normal(size=(n, t_in, STATE)).astype(np.float32),
        "avail_actions": rng.random((n, t_in, N_AGENTS, N_ACTIONS)) < 0.5,
        "actions": rng.integers(0, N_ACTIONS, size=(n, t_in, N_AGENTS)),
        "reward": rng.normal(size=(n, t_in)).astype(np.float32),
        "terminated": rng.random((n, t_in)) < 0.5,
    }
    return batch, np.asarray(lengths)


def make(capacity=50, float_storage="float16", limit=LIMIT):
    scheme = smac_scheme(N_AGENTS, N_ACTIONS, OBS, STATE, float_storage=float_storage)
    return EpisodeBuffer(scheme, capacity, limit)


def test_scheme_dtypes_and_bytes_per_episode_of_2c_vs_64zg():
    scheme = smac_scheme(2, 70, 332, 342)
    assert scheme["actions"].dtype == np.int8
    assert scheme["avail_actions"].stored_shape == (2, 9)
    assert FieldSpec((2,), "index", "transition", num_values=200).dtype == np.int16
    assert FieldSpec((2,), "index", "transition", num_values=128).dtype == np.int8
    buf = EpisodeBuffer(scheme, 2, 400)
    per_ep = 401 * (2 * 332 * 2 + 342 * 2 + 2 * 9) + 400 * (2 * 1 + 4 + 1)
    assert buf.bytes_per_episode() == per_ep == 816_830
    assert buf.bytes_per_episode(10) == 11 * (1328 + 684 + 18) + 10 * 7
    assert buf.nbytes == 2 * per_ep + 2 * (4 + 4 + 8)


@pytest.mark.parametrize("float_storage", ["float16", "float32"])
def test_round_trip_exact_for_lossless_fields(float_storage):
    rng = np.random.default_rng(0)
    buf = make(float_storage=float_storage)
    batch, lengths = episodes(rng, 7)
    buf.insert(batch, lengths)
    out = buf.gather(buf.newest_slots(7))
    t = int(lengths.max())
    assert out["filled"].shape == (7, t) and out["obs"].shape == (7, t + 1, N_AGENTS, OBS)
    assert out["actions"].dtype == torch.int64 and out["avail_actions"].dtype == torch.bool
    assert out["obs"].dtype == torch.float32 and out["terminated"].dtype == torch.bool
    assert out["episode_id"].tolist() == list(range(7))
    for i, n in enumerate(lengths):
        assert out["filled"][i].tolist() == [k < n for k in range(t)]
        for name in ("actions", "reward", "terminated"):
            assert np.array_equal(out[name][i, :n].numpy(), batch[name][i, :n])
            assert not out[name][i, n:].any()
        for name in ("obs", "state", "avail_actions"):
            got = out[name][i, : n + 1].numpy()
            want = batch[name][i, : n + 1]
            if name != "avail_actions":
                want = want.astype(float_storage).astype(np.float32)
            assert np.array_equal(got, want)
            assert not out[name][i, n + 1 :].any()
    if float_storage == "float16":
        x = batch["obs"][0, : lengths[0] + 1]
        err = np.abs(out["obs"][0, : lengths[0] + 1].numpy() - x)
        assert np.all(err <= np.maximum(np.abs(x) * 2.0**-11, 2.0**-25))


def test_snorm8_storage_error_bound_exact_flags_and_range_check():
    rng = np.random.default_rng(7)
    buf = make(float_storage="snorm8")
    assert buf.scheme["obs"].dtype == np.int8
    batch, lengths = episodes(rng, 4, lengths=[LIMIT] * 4)
    batch["obs"] = rng.uniform(-1, 1, size=batch["obs"].shape).astype(np.float32)
    batch["obs"][:, :, 0, :3] = [-1.0, 0.0, 1.0]
    batch["state"] = np.tanh(batch["state"])
    buf.insert(batch, lengths)
    out = buf.gather(buf.newest_slots(4))
    for name in ("obs", "state"):
        err = np.abs(out[name].numpy() - batch[name])
        assert err.max() <= 1 / 254 + 1e-7
    assert out["obs"][:, :, 0, :3].unique().tolist() == [-1.0, 0.0, 1.0]
    batch["state"][1, 2, 5] = 1.5
    with pytest.raises(UserError, match=r"^field 'state' holds 1.5, outside snorm8's range"):
        buf.insert(batch, lengths)
    scheme = smac_scheme(2, 70, 332, 342, float_storage="snorm8")
    assert EpisodeBuffer(scheme, 1, 400).bytes_per_episode() == 413_424


def test_insert_accepts_tensors_and_transition_fields_without_trailing_slot():
    rng = np.random.default_rng(1)
    buf = make()
    batch, lengths = episodes(rng, 3, lengths=[4, 6, 2])
    short = {
        k: torch.from_numpy(v[:, :7] if k in ("obs", "state", "avail_actions") else v[:, :6])
        for k, v in batch.items()
    }
    buf.insert(short, torch.tensor([4, 6, 2]))
    out = buf.gather(buf.newest_slots(3))
    assert out["actions"].shape == (3, 6, N_AGENTS)
    assert np.array_equal(out["actions"][1].numpy(), batch["actions"][1, :6])


def test_custom_scheme_wide_index_and_scalar_fields_round_trip():
    scheme = {
        "choice": FieldSpec((2,), "index", "transition", num_values=300),
        "flag": FieldSpec((), "bool", "transition"),
        "mask": FieldSpec((3, 17), "bits"),
        "value": FieldSpec((), "float32"),
    }
    buf = EpisodeBuffer(scheme, 4, 6)
    assert buf.scheme["choice"].dtype == np.int16 and buf.scheme["mask"].stored_shape == (3, 3)
    rng = np.random.default_rng(8)
    batch = {
        "choice": torch.from_numpy(rng.integers(0, 300, size=(2, 6, 2))),
        "flag": torch.from_numpy(rng.random((2, 6)) < 0.5).float(),
        "mask": torch.from_numpy(rng.random((2, 7, 3, 17)) < 0.5),
        "value": torch.randn(2, 7, dtype=torch.float64),
    }
    buf.insert(batch, [6, 6])
    out = buf.gather(buf.newest_slots(2))
    assert torch.equal(out["choice"], batch["choice"])
    assert torch.equal(out["flag"], batch["flag"].bool())
    assert torch.equal(out["mask"], batch["mask"])
    assert torch.equal(out["value"], batch["value"].float())


def test_fifo_eviction_and_tail_cleared_on_overwrite():
    rng = np.random.default_rng(2)
    buf = make(capacity=5)
    for n in (3, 4):
        buf.insert(*episodes(rng, n, lengths=[LIMIT] * n))
    assert len(buf) == 5 and buf.total_inserted == 7
    assert sorted(buf.gather(buf.newest_slots(5))["episode_id"].tolist()) == [2, 3, 4, 5, 6]
    short, _ = episodes(rng, 5)
    buf.insert(short, [2] * 5)
    out = buf.gather(buf.newest_slots(5))
    assert out["episode_id"].tolist() == [7, 8, 9, 10, 11]
    assert out["obs"].shape[1] == 3
    full = {
        name: arr[buf.newest_slots(5)]
        for name, arr in buf.state_dict().items()
        if name.startswith("data.")
    }
    assert not full["data.obs"][:, 3:].any() and not full["data.actions"][:, 2:].any()
    big, lengths = episodes(rng, 12)
    buf.insert(big, lengths)
    out = buf.gather(buf.newest_slots(5))
    assert out["episode_id"].tolist() == list(range(19, 24))
    last = lengths[-1]
    assert np.array_equal(out["actions"][-1, :last].numpy(), big["actions"][-1, :last])


def test_uniform_sample_distinct_and_state_dict_round_trip():
    rng = np.random.default_rng(3)
    buf = make(capacity=10)
    buf.insert(*episodes(rng, 14))
    seen = set()
    for _ in range(50):
        ids = buf.sample(4, rng)["episode_id"].tolist()
        assert len(set(ids)) == 4 and all(4 <= i < 14 for i in ids)
        seen.update(ids)
    assert seen == set(range(4, 14))
    copy = make(capacity=10)
    copy.load_state_dict({k: np.copy(v) for k, v in buf.state_dict().items()})
    a, b = buf.gather(buf.newest_slots(10)), copy.gather(copy.newest_slots(10))
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(UserError, match="buffer state field 'obs' has shape"):
        make(capacity=3).load_state_dict(buf.state_dict())


def dual(on_capacity, on_fraction, off_capacity=40):
    scheme = smac_scheme(N_AGENTS, N_ACTIONS, OBS, STATE)
    return DualReplayBuffer(scheme, LIMIT, off_capacity, on_capacity, on_fraction)


def test_dual_batch_composition_newest_in_on_policy_part():
    rng = np.random.default_rng(4)
    buf = dual(on_capacity=6, on_fraction=0.25)
    buf.insert(*episodes(rng, 55))
    assert len(buf) == 40 and buf.on_len == 6
    assert buf.on_policy_count(16) == 4 and buf.on_policy_count(10) == 3
    seen_on, seen_off = set(), set()
    for _ in range(60):
        ids = buf.sample(16, rng)["episode_id"].tolist()
        on, off = ids[:4], ids[4:]
        assert len(set(on)) == 4 and len(set(off)) == 12
        assert all(49 <= i < 55 for i in on) and all(15 <= i < 55 for i in off)
        seen_on.update(on)
        seen_off.update(off)
    assert seen_on == set(range(49, 55)) and seen_off == set(range(15, 55))


def test_dual_when_on_policy_fifo_holds_fewer_than_its_share():
    rng = np.random.default_rng(5)
    buf = dual(on_capacity=3, on_fraction=1.0)
    buf.insert(*episodes(rng, 5))
    assert buf.on_policy_count(4) == 3
    ids = buf.sample(4, rng)["episode_id"].tolist()
    assert sorted(ids[:3]) == [2, 3, 4] and 0 <= ids[3] < 5
    plain = dual(on_capacity=3, on_fraction=0.0)
    plain.insert(*episodes(rng, 5))
    assert plain.on_policy_count(4) == 0 and plain.can_sample(5) and not plain.can_sample(6)
    assert sorted(plain.sample(5, rng)["episode_id"].tolist()) == [0, 1, 2, 3, 4]


def test_insert_rejects_bad_input_with_clear_messages():
    rng = np.random.default_rng(6)
    buf = make()
    batch, lengths = episodes(rng, 2, lengths=[3, 5])
    cases = [
        (
            {**batch, "extra": batch["reward"]},
            lengths,
            "unknown field 'extra'; scheme fields: obs, state, avail_actions, actions, reward, "
            "terminated",
        ),
        ({k: v for k, v in batch.items() if k != "reward"}, lengths, "missing field 'reward'"),
        (
            {**batch, "obs": batch["obs"][:, :, :, :5]},
            lengths,
            "field 'obs' has shape (2, 21, 3, 5); expected [2, 6..21, 3, 30]",
        ),
        (
            {**batch, "reward": batch["reward"][:, :4]},
            lengths,
            "field 'reward' has shape (2, 4); expected [2, 5..21]",
        ),
        ({**batch, "actions": batch["actions"] + 9}, lengths, "field 'actions' holds "),
        (
            {**batch, "obs": batch["obs"] * 1e5},
            lengths,
            "beyond float16's range (65504); store it as float32",
        ),
        (
            {**batch, "terminated": batch["terminated"] * 2},
            lengths,
            "field 'terminated' must hold booleans or 0/1 values",
        ),
        (batch, np.array([3, 21]), "episode length 21 outside [1, episode_limit=20]"),
        (batch, np.array([0, 2]), "episode length 0 outside [1, episode_limit=20]"),
    ]
    for bad, lens, message in cases:
        with pytest.raises(UserError) as err:
            buf.insert(bad, lens)
        assert message in str(err.value)
    assert len(buf) == 0


def test_constructors_reject_bad_settings():
    scheme = smac_scheme(N_AGENTS, N_ACTIONS, OBS, STATE)
    with pytest.raises(UserError, match=r"^on_capacity must be an integer in \[1, off_capacity=10"):
        DualReplayBuffer(scheme, LIMIT, off_capacity=10, on_capacity=11)
    with pytest.raises(UserError, match=r"^on_fraction must be in \[0, 1\], got 1.5$"):
        DualReplayBuffer(scheme, LIMIT, off_capacity=10, on_capacity=5, on_fraction=1.5)
    with pytest.raises(UserError, match=r"^buffer capacity must be an integer >= 1, got 0$"):
        EpisodeBuffer(scheme, 0, LIMIT)
    with pytest.raises(UserError, match=r"^unknown storage 'int4'; choose from: float32, "):
        FieldSpec((3,), "int4")
    with pytest.raises(UserError, match=r"^index field needs num_values >= 1, got 0$"):
        FieldSpec((3,), "index")
    with pytest.raises(UserError, match=r"^bits field needs at least one dimension"):
        FieldSpec((), "bits")
    with pytest.raises(UserError, match=r"^field shape must be positive integers, got \(3, 0\)$"):
        FieldSpec((3, 0), "float32")
    with pytest.raises(UserError, match=r"^field name 'filled' is reserved"):
        EpisodeBuffer({"filled": FieldSpec((1,), "bool")}, 2, 3)
    with pytest.raises(UserError, match=r"^unknown float storage 'int8'; choose from"):
        smac_scheme(1, 2, 3, 4, float_storage="int8")
    with pytest.raises(ValueError, match=r"^cannot sample 3 episodes from a buffer holding 0$"):
        EpisodeBuffer(scheme, 5, LIMIT).sample(3, np.random.default_rng(0))


def with_last_actions(batch, lengths):
    """``batch`` with the state's tail set to the one-hot codes of the previous actions."""
    tail = N_AGENTS * N_ACTIONS
    state = batch["state"].copy()
    state[..., -tail:] = 0.0
    for i, n in enumerate(lengths):
        codes = np.eye(N_ACTIONS, dtype=np.float32)[batch["actions"][i, :n]]
        state[i, 1 : n + 1, -tail:] = codes.reshape(n, tail)
    return {**batch, "state": state}


def test_last_action_tail_is_rebuilt_exactly_and_not_stored():
    rng = np.random.default_rng(8)
    scheme = smac_scheme(N_AGENTS, N_ACTIONS, OBS, STATE, state_last_action=True)
    assert scheme["state"].stored_shape == (STATE - N_AGENTS * N_ACTIONS,)
    buf, plain = EpisodeBuffer(scheme, 10, LIMIT), make(capacity=10)
    batch, lengths = episodes(rng, 6, lengths=[1, 4, 20, 7, 13, 2])
    batch = with_last_actions(batch, lengths)
    buf.insert(batch, lengths)
    plain.insert(batch, lengths)
    got, want = buf.sample(5, np.random.default_rng(1)), plain.sample(5, np.random.default_rng(1))
    assert got.keys() == want.keys()
    assert all(torch.equal(got[k], want[k]) for k in got)
    assert buf.bytes_per_episode() == plain.bytes_per_episode() - (LIMIT + 1) * 27 * 2
    big = EpisodeBuffer(smac_scheme(2, 70, 332, 342, state_last_action=True), 1, 400)
    assert big.bytes_per_episode() == 401 * (1328 + 202 * 2 + 18) + 400 * 7 == 704_550


def test_last_action_tail_mismatch_and_bad_tail_specs_are_rejected():
    rng = np.random.default_rng(9)
    buf = EpisodeBuffer(smac_scheme(N_AGENTS, N_ACTIONS, OBS, STATE, state_last_action=True), 5, 20)
    batch, lengths = episodes(rng, 2, lengths=[3, 5])
    batch = with_last_actions(batch, lengths)
    batch["state"][1, 2, STATE - 27 + 4] += 1.0
    with pytest.raises(UserError, match=r"^field 'state': feature 25 at step 2 is "):
        buf.insert(batch, lengths)
    with pytest.raises(UserError, match=r"^field 'actions' holds \d+, outside \[0, 9\)$"):
        buf.insert({**batch, "actions": batch["actions"] + 9}, lengths)
    assert len(buf) == 0
    with pytest.raises(UserError, match=r"^field 'state': tail_size 5 != 27, the one-hot size"):
        EpisodeBuffer(
            {
                "state": FieldSpec((48,), "float16", onehot_tail="actions", tail_size=5),
                "actions": FieldSpec((3,), "index", "transition", num_values=9),
            },
            2,
            3,
        )
    with pytest.raises(UserError, match=r"one-hot tail source 'reward' must be an index"):
        EpisodeBuffer(
            {
                "state": FieldSpec((48,), "float16", onehot_tail="reward", tail_size=5),
                "reward": FieldSpec((), "float32", "transition"),
            },
            2,
            3,
        )
    with pytest.raises(UserError, match=r"^a one-hot tail needs a 1-D float state field"):
        FieldSpec((3, 4), "float16", onehot_tail="actions", tail_size=2)


@pytest.mark.parametrize("map_name", ["3m", "MMM"])
def test_builtin_state_ends_with_last_actions(map_name):
    from mast.envs import make_batch_env

    env = make_batch_env("builtin", map_name=map_name, n_envs=4, seed=3)
    assert env.state_last_action
    info = env.get_env_info()
    n, a = info["n_agents"], info["n_actions"]
    states, actions = [env.get_state()], []
    rng = np.random.default_rng(0)
    for _ in range(10):
        avail = env.get_avail_actions().astype(bool)
        act = np.array([[rng.choice(np.flatnonzero(av)) for av in env_av] for env_av in avail])
        env.step(act)
        actions.append(act)
        states.append(env.get_state())
    assert not states[0][:, -n * a :].any()
    for t, act in enumerate(actions, start=1):
        codes = np.eye(a, dtype=np.float32)[act].reshape(4, n * a)
        assert np.array_equal(states[t][:, -n * a :], codes)


def test_drop_oldest_and_rlx2_trim_keep_fifo_order_and_checkpoint_state():
    rng = np.random.default_rng(10)
    buf = dual(on_capacity=4, on_fraction=0.0, off_capacity=30)
    buf.insert(*episodes(rng, 20))
    assert buf.store.drop_oldest(5) == 5 and len(buf) == 15
    ids = buf.store.gather(buf.store.newest_slots(15))["episode_id"].tolist()
    assert ids == list(range(5, 20))
    # Distance 1 for episodes older than 12, 0 after: trimmed in chunks of 4 while the
    # oldest chunk holds one of them and 6 episodes would remain (7 left: no more checks).
    seen = []

    def distance(batch):
        seen.append(batch["episode_id"].tolist())
        return float(batch["episode_id"].min() < 12)

    assert buf.trim(distance, oldest=4, threshold=0.5, min_episodes=6) == 8
    assert seen == [[5, 6, 7, 8], [9, 10, 11, 12]]
    assert sorted(buf.sample(7, rng)["episode_id"].tolist()) == list(range(13, 20))
    assert buf.trim(lambda b: 1.0, oldest=4, threshold=0.5, min_episodes=6) == 0
    small = {k: np.copy(v) for k, v in buf.state_dict(written_only=True).items()}
    assert small["data.obs"].shape[0] == 20  # every slot written so far, dropped ones too
    restored = dual(on_capacity=4, on_fraction=0.0, off_capacity=30)
    restored.insert(*episodes(np.random.default_rng(12), 25))  # overwritten by the load
    restored.load_state_dict(small)
    assert all(np.array_equal(v, buf.state_dict()[k]) for k, v in restored.state_dict().items())
    buf.insert(*episodes(np.random.default_rng(11), 15))
    restored.insert(*episodes(np.random.default_rng(11), 15))
    a = buf.store.gather(buf.store.newest_slots(len(buf)))
    b = restored.store.gather(restored.store.newest_slots(len(restored)))
    assert a["episode_id"].tolist() == list(range(13, 35))
    assert all(torch.equal(a[k], b[k]) for k in a)
