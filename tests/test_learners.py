"""Learners, agents and mixers: equivalences and the masked-training invariants."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from fake_env import FakeBatchEnv

from mast.agents import GRUCell, RNNAgent
from mast.buffer import DualReplayBuffer, smac_scheme
from mast.learners import make_learner
from mast.learners.res import discounted_returns, softmax_joint_value
from mast.mixers import VDNMixer
from mast.presets import apply_overrides, resolve_config
from mast.runner import EpisodeRunner

torch.set_num_threads(1)  # small matrices: threads only add synchronisation


def _setup(alg="qmix", method="mast", *overrides, n_envs=8):
    cfg = apply_overrides(
        resolve_config(alg=alg, method=method),
        [
            "learner.batch_size=8",
            "sparsity.delta_t=100",
            "sparsity.t_end=100000",
            "buffer.on_capacity=8",
            *overrides,
        ],
    )
    torch.manual_seed(0)
    env = FakeBatchEnv(n_envs=n_envs, n_agents=3, n_actions=5, episode_limit=6, seed=0)
    info = env.get_env_info()
    learner = make_learner(cfg, info)
    runner = EpisodeRunner(env, learner.controller, torch.Generator().manual_seed(0))
    scheme = smac_scheme(
        info["n_agents"], info["n_actions"], info["obs_shape"], info["state_shape"]
    )
    buf = DualReplayBuffer(scheme, info["episode_limit"], 64, 8, cfg.buffer.on_fraction)
    for _ in range(3):
        batch, lengths, _ = runner.run(epsilon=1.0)
        batch.pop("filled")
        buf.insert(batch, lengths)
    return cfg, learner, buf


def test_gru_cell_matches_torch():
    torch.manual_seed(0)
    ours, ref = GRUCell(7, 5), torch.nn.GRUCell(7, 5)
    with torch.no_grad():
        ref.weight_ih.copy_(ours.ih.weight)
        ref.weight_hh.copy_(ours.hh.weight)
        ref.bias_ih.copy_(ours.ih.bias)
        ref.bias_hh.copy_(ours.hh.bias)
    x, h = torch.randn(4, 3, 7), torch.randn(4, 3, 5)
    got = ours(x, h, torch.zeros(3, dtype=torch.long))
    want = ref(x.reshape(-1, 7), h.reshape(-1, 5)).reshape(4, 3, 5)
    torch.testing.assert_close(got, want)


def test_per_type_agent_has_its_own_weights():
    torch.manual_seed(0)
    agent = RNNAgent(6, 4, n_agents=3, hidden_dim=8, agent_types=[0, 0, 1])
    assert agent.gru.hh.weight.shape == (2, 24, 8)
    x, h = torch.randn(2, 3, 6), agent.init_hidden(2)
    q0, _ = agent(x, h)
    with torch.no_grad():
        agent.fc2.weight[1].add_(1.0)
    q1, _ = agent(x, h)
    assert torch.equal(q0[:, :2], q1[:, :2]) and not torch.equal(q0[:, 2], q1[:, 2])
    spec = {s.name: s for s in agent.layer_specs()}
    assert spec["fc1.weight"].uses_per_env_step == (2, 1)


@pytest.mark.parametrize("alg", ["vdn", "qmix", "ow_qmix", "cw_qmix", "res"])
def test_every_weight_matrix_is_masked(alg):
    _, learner, _ = _setup(alg)
    assert learner.cfg.agent.topology == "per_type"  # MAST's preset: stacked (2, out, in)
    matrices = {
        n for n, p in learner.nets.named_parameters() if p.dim() >= 2 and n.endswith("weight")
    }
    assert set(learner.sparsity.names) == matrices
    assert learner.sparsity.sparsity == pytest.approx(0.9, abs=0.01)
    roles = {layer.name.split("[")[0]: layer.role for layer in learner.sparsity.export_layers()}
    assert roles["agent.gru.hh.weight"] == "agent"
    if alg in ("ow_qmix", "cw_qmix"):
        assert roles["central_agent.fc1.weight"] == "mixer"  # training only


def _check_invariants(learner):
    mgr = learner.sparsity
    target = dict(learner.target.named_parameters())
    for name in mgr.names:
        m = mgr.mask(name)
        p = learner.nets.get_parameter(name)
        assert not p[~m].any(), name
        assert not target[name][~m].any(), name
        if p.grad is not None:
            assert not p.grad[~m].any(), name
        state = learner.optimizer.state.get(p, {})
        if "square_avg" in state:
            assert not state["square_avg"][~m].any(), name


@pytest.mark.parametrize(
    ("alg", "extra"),
    [
        ("qmix", ()),
        ("qmix", ("agent.topology=per_agent",)),
        ("cw_qmix", ()),
        ("res", ("agent.topology=per_type",)),
    ],
)
def test_masked_training_invariants_over_topology_updates(alg, extra):
    cfg, learner, buf = _setup(alg, "mast", *extra)
    rng = np.random.default_rng(0)
    nnz = {n: learner.sparsity.nnz(n) for n in learner.sparsity.names}
    masks0 = {n: m.clone() for n, m in learner.sparsity.masks.items()}
    updates = 0
    for it in range(1, 9):
        t_env = it * 60  # an update is due every 100 steps
        before = {n: learner.nets.get_parameter(n).detach().clone() for n in nnz}
        old = {n: m.clone() for n, m in learner.sparsity.masks.items()}
        stats = learner.train(buf.sample(8, rng), t_env, episode=it * 8)
        assert np.isfinite(stats.loss)
        _check_invariants(learner)
        if stats.update is not None:
            updates += 1
            for n in nnz:  # optimizer step skipped: surviving weights unchanged
                keep = old[n] & learner.sparsity.mask(n)
                p = learner.nets.get_parameter(n).detach()
                assert torch.equal(p[keep], before[n][keep]), n
                grown = learner.sparsity.mask(n) & ~old[n]
                assert not p[grown].any(), n
    assert updates >= 3
    assert {n: learner.sparsity.nnz(n) for n in nnz} == nnz
    assert any(not torch.equal(masks0[n], learner.sparsity.masks[n]) for n in masks0)


def test_target_network_updates_every_interval():
    _, learner, buf = _setup("qmix", "dense", "learner.target_update_interval=16")
    rng = np.random.default_rng(0)
    learner.train(buf.sample(8, rng), 10, episode=8)
    w = "mixer.hyper_w1.0.weight"
    assert not torch.equal(learner.nets.get_parameter(w), learner.target.get_parameter(w))
    learner.train(buf.sample(8, rng), 20, episode=16)
    assert torch.equal(learner.nets.get_parameter(w), learner.target.get_parameter(w))


def test_tiny_matches_the_sparse_weight_count():
    _, tiny, _ = _setup("qmix", "tiny")
    _, sparse, _ = _setup("qmix", "static")
    dense_count = sparse.sparsity.numel()
    assert tiny.sparsity.sparsity == 0.0
    assert tiny.sparsity.numel() == pytest.approx(0.1 * dense_count, rel=0.15)
    assert tiny.nets["agent"].hidden_dim < 64


def test_res_softmax_value_limits_against_enumeration():
    torch.manual_seed(0)
    b, t, n, a = 2, 3, 3, 4
    q = torch.randn(b, t, n, a)
    avail = torch.rand(b, t, n, a) > 0.3
    avail[..., 0] = True
    greedy = q.masked_fill(~avail, -1e9).argmax(-1)
    states = torch.zeros(b, t, 1)
    mixer = VDNMixer()
    for bi, ti in itertools.product(range(b), range(t)):
        base = q[bi, ti].gather(-1, greedy[bi, ti, :, None]).squeeze(-1)
        values = {tuple(greedy[bi, ti].tolist()): float(base.sum())}
        for i, act in itertools.product(range(n), range(a)):
            if avail[bi, ti, i, act]:
                u = greedy[bi, ti].clone()
                u[i] = act
                values[tuple(u.tolist())] = float(base.sum() - base[i] + q[bi, ti, i, act])
        v = np.array(list(values.values()))
        hi = softmax_joint_value(mixer, q, avail, greedy, states, beta=1e4)[bi, ti, 0]
        lo = softmax_joint_value(mixer, q, avail, greedy, states, beta=1e-6)[bi, ti, 0]
        assert float(hi) == pytest.approx(v.max(), abs=1e-4)
        assert float(lo) == pytest.approx(v.mean(), abs=1e-4)


def test_discounted_returns_brute_force():
    r = torch.tensor([[1.0, 2.0, 3.0, 0.0], [1.0, 1.0, 1.0, 1.0]]).unsqueeze(-1)
    d = torch.tensor([[0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]]).unsqueeze(-1)
    m = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0]]).unsqueeze(-1)
    g = discounted_returns(r, d, m, 0.5).squeeze(-1)
    torch.testing.assert_close(g[0], torch.tensor([1 + 0.5 * 2 + 0.25 * 3, 2 + 0.5 * 3, 3.0, 0.0]))
    torch.testing.assert_close(g[1], torch.tensor([1.875, 1.75, 1.5, 1.0]))


@pytest.mark.parametrize("alg", ["ow_qmix", "cw_qmix"])
def test_weighted_qmix_trains_the_central_value(alg):
    _, learner, buf = _setup(alg, "dense")
    before = learner.nets["central_mixer"].net[0].weight.detach().clone()
    learner.train(buf.sample(8, np.random.default_rng(0)), 10, episode=8)
    assert not torch.equal(before, learner.nets["central_mixer"].net[0].weight)


def test_policy_distance_counts_greedy_disagreements_on_real_choices():
    # Without last-action inputs the greedy actions do not depend on the stored actions.
    _, learner, buf = _setup("qmix", "rlx2", "agent.obs_last_action=false")
    b = dict(buf.sample(8, np.random.default_rng(0)))
    avail = b["avail_actions"].clone()
    avail[:, :, 0] = False  # agent 0 has a single choice: its decisions do not count
    avail[:, :, 0, 1] = True
    b["avail_actions"] = avail
    q = learner.controller.unroll(b["obs"], torch.zeros_like(avail[..., 0], dtype=torch.long))
    greedy = q[:, :-1].masked_fill(~avail[:, :-1], float("-inf")).argmax(-1)
    choice = (avail[:, :-1].sum(-1) > 1) & b["filled"].unsqueeze(-1)
    assert not choice[:, :, 0].any() and choice.any()
    assert learner.policy_distance({**b, "actions": greedy}) == 0.0
    # Another available action on every second real decision, anything on the others.
    alt = (avail[:, :-1] & (torch.arange(5) != greedy.unsqueeze(-1))).float().argmax(-1)
    flip = choice & (torch.arange(choice.numel()).reshape(choice.shape) % 2 == 0)
    actions = torch.where(flip, alt, torch.where(choice, greedy, (greedy + 3) % 5))
    want = int(flip.sum()) / int(choice.sum())
    assert learner.policy_distance({**b, "actions": actions}) == pytest.approx(want)


@pytest.mark.parametrize("topology", ["per_type", "per_agent"])
def test_stacked_topology_moves_budget_and_survives_a_checkpoint(topology):
    """Per-type / per-agent masks are ranked jointly: the non-zeros of a layer move between
    types or agents while the layer's total stays; masks and the zeros outside them survive
    a learner checkpoint round trip; the export names one record per type or agent."""
    cfg, learner, buf = _setup("qmix", "mast", f"agent.topology={topology}")
    n = 2 if topology == "per_type" else 3
    assert learner.nets["agent"].fc1.weight.shape[0] == n
    mgr = learner.sparsity
    start = mgr.allocation()
    assert len(start) == 4 * n and all(k.startswith("nnz:agent.") for k in start)
    rng = np.random.default_rng(0)
    for it in range(1, 9):
        learner.train(buf.sample(8, rng), it * 60, episode=it * 8)
    end = mgr.allocation()
    assert end != start  # the split between types / agents changed
    for layer in ("fc1", "gru.ih", "gru.hh", "fc2"):
        keys = [f"nnz:agent.{layer}.weight[{i}]" for i in range(n)]
        assert sum(end[k] for k in keys) == sum(start[k] for k in keys)
    records = {lay.name: lay.nnz for lay in mgr.export_layers(roles=["agent"])}
    assert records == {k.removeprefix("nnz:"): v for k, v in end.items()}
    state = learner.state_dict()
    torch.manual_seed(1)
    other = make_learner(cfg, {**_env_info(), "agent_types": [0, 0, 1]})
    assert other.sparsity.allocation() != end
    other.load_state_dict(state)
    assert other.sparsity.allocation() == end
    for name in mgr.names:
        assert torch.equal(other.sparsity.mask(name), mgr.mask(name))
    _check_invariants(other)


def _env_info():
    return FakeBatchEnv(n_envs=1, n_agents=3, n_actions=5, episode_limit=6).get_env_info()
