"""``mast-hw eval``: the trained agent in fixed point, matrix products bit-exact with sim."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from codesign.evaluate import evaluate_run
from codesign.fixed_agent import FixedPointAgent
from hw.compiler import compile_layer
from hw.numerics import dequantize, quantize, reference_spmm
from hw.profiles import HwProfile, get_profile
from mast import run_dir as rd
from mast.envs import make_batch_env
from mast.learners import make_learner
from mast.train import env_agent_types
from sim import simulate

# One short training run per test worker: keep the tests that read it together.
pytestmark = pytest.mark.xdist_group("codesign_short_run")

PROFILE = get_profile("sparse_pe_64")


def _learner(run_dir):
    cfg = rd.read_config(run_dir)
    env = make_batch_env(cfg.env.name, map_name=cfg.env.map_name, n_envs=1, seed=0)
    info = {"agent_types": env_agent_types(env), **env.get_env_info()}
    learner = make_learner(cfg, info)
    learner.load_state_dict(rd.load_checkpoint(run_dir)["learner"])
    return learner


def test_matrix_products_equal_sim_and_integer_reference(short_run):
    learner = _learner(short_run)
    agent = learner.controller.agent
    layers = learner.sparsity.export_layers(with_values=True)
    fixed = FixedPointAgent(agent, layers, PROFILE)
    fixed.record = True
    gen = torch.Generator().manual_seed(0)
    x = torch.rand((5, agent.n_agents, agent.fc1.weight.shape[-1]), generator=gen)
    h = agent.init_hidden(5)
    by_name = {lay.name: lay for lay in layers}
    for _ in range(3):  # several steps: the hidden state feeds gru.hh
        q, h = fixed(x, h)
        assert len(fixed.products) == 4
        for name, xi, yi in fixed.products:
            lay = by_name[name]
            prog = compile_layer(lay, "forward", PROFILE, xi.shape[1], "sample")
            ref = simulate(prog, {name: {"x": xi}}).op(prog.ops[0].name).output
            np.testing.assert_array_equal(yi, ref)
            np.testing.assert_array_equal(
                yi, reference_spmm(quantize(lay.values, PROFILE), xi, PROFILE)
            )
    # The hidden state stays on the operand grid: quantising it again is lossless.
    hq = h.numpy()
    np.testing.assert_array_equal(dequantize(quantize(hq, PROFILE), PROFILE), hq)


def test_fixed_point_q_values_close_to_float(short_run):
    learner = _learner(short_run)
    agent = learner.controller.agent
    fixed = FixedPointAgent(agent, learner.sparsity.export_layers(with_values=True), PROFILE)
    gen = torch.Generator().manual_seed(1)
    x = torch.rand((8, agent.n_agents, agent.fc1.weight.shape[-1]), generator=gen)
    hf = hq = agent.init_hidden(8)
    for _ in range(4):
        with torch.no_grad():
            qf, hf = agent(x, hf)
        qq, hq = fixed(x, hq)
        assert torch.max(torch.abs(qf - qq)) < 0.02
        assert torch.max(torch.abs(hf - hq)) < 0.02


def test_eval_greedy_actions_mostly_equal(short_run):
    r = evaluate_run(short_run, "sparse_pe_64", episodes=4, seed=3)
    assert r.episodes == 4 and r.profile == "sparse_pe_64"
    assert r.action_agreement >= 0.9
    assert r.sim_cycles > 0
    # won episodes over played ones
    assert {4 * r.fixed_win_rate, 4 * r.float_win_rate} <= {0.0, 1.0, 2.0, 3.0, 4.0}


def test_eval_in_near_exact_arithmetic_replays_the_float_episodes(short_run):
    """With 20 fractional bits every greedy action agrees, so both policies play the very
    same episodes (same seeds): equal win rates and returns."""
    precise = HwProfile(
        name="precise", kind="sparse", n_pe=64, operand_bits=31, frac_bits=20, acc_bits=62
    )
    r = evaluate_run(short_run, precise, episodes=4, seed=5)
    assert r.action_agreement == 1.0
    assert r.fixed_win_rate == r.float_win_rate
    assert r.fixed_return == pytest.approx(r.float_return, abs=1e-3)


def _mast_hw(monkeypatch, *argv: str) -> int:
    from codesign.hw_cli import main

    monkeypatch.setattr(sys, "argv", ["mast-hw", *argv])
    with pytest.raises(SystemExit) as e:
        main(list(argv))
    return e.value.code


def test_mast_hw_eval_prints_both_win_rates(short_run, monkeypatch, capsys):
    assert _mast_hw(monkeypatch, "eval", str(short_run), "--episodes", "2") == 0
    out = capsys.readouterr().out.splitlines()
    r = evaluate_run(short_run, "sparse_pe_64", episodes=2, seed=0)
    float_row = next(line for line in out if line.startswith("float32"))
    fixed_row = next(line for line in out if line.startswith("fixed point (sparse_pe_64)"))
    assert [float(v) for v in float_row.split()[-2:]] == pytest.approx(
        [r.float_win_rate, r.float_return], abs=5e-3
    )
    assert [float(v) for v in fixed_row.split()[-2:]] == pytest.approx(
        [r.fixed_win_rate, r.fixed_return], abs=5e-3
    )
    summary = next(line for line in out if line.startswith("fixed/float win rate"))
    assert f"sim cycles of the matrix products {r.sim_cycles}" in summary


def test_mast_hw_eval_bad_input(short_run, tmp_path, monkeypatch, capsys):
    assert _mast_hw(monkeypatch, "eval", str(tmp_path / "nope")) == 2
    assert f"mast-hw: error: run folder {str(tmp_path / 'nope')!r} does not exist" in (
        capsys.readouterr().err
    )
    assert _mast_hw(monkeypatch, "eval", str(short_run), "--profile", "bogus") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mast-hw: error: unknown hardware profile 'bogus'; known: ")
    assert "sparse_pe_64" in err and len(err.splitlines()) == 1
    assert _mast_hw(monkeypatch, "eval", str(short_run), "--episodes", "0") == 2
    err = capsys.readouterr().err
    assert "argument --episodes: must be in [1, 16,384], got '0'" in err


def _records(agent) -> list:
    """Records of every agent matrix (random 70 % masks), named as the learner exports them."""
    from mast.sparsity.layer import SparseLayer

    rng = np.random.default_rng(0)
    out = []
    for mat in ("fc1", "gru.ih", "gru.hh", "fc2"):
        w = agent.get_submodule(mat).weight.detach().numpy()
        slices = (
            [(f"[{t}]", w[t]) for t in range(agent.n_types)] if agent.n_types > 1 else [("", w)]
        )
        for suffix, wt in slices:
            mask = rng.random(wt.shape) < 0.3
            out.append(
                SparseLayer(
                    f"agent.{mat}.weight{suffix}",
                    "agent",
                    mask,
                    np.where(mask, wt, 0),
                    uses_per_env_step=3,
                    uses_per_sample=3,
                )
            )
    return out


@pytest.mark.parametrize("types", [None, [0, 0, 1]])
def test_per_type_agents_in_fixed_point(types):
    from mast.agents import RNNAgent

    torch.manual_seed(0)
    agent = RNNAgent(12, 5, 3, hidden_dim=8, agent_types=types)
    layers = _records(agent)
    with torch.no_grad():  # the float agent uses the same masked weights
        for lay in layers:
            mat, _, idx = lay.name[len("agent.") :].partition("[")
            w = agent.get_submodule(mat.removesuffix(".weight")).weight
            (w[int(idx[:-1])] if idx else w).copy_(torch.as_tensor(lay.values))
    fixed = FixedPointAgent(agent, layers, PROFILE)
    x = torch.rand((4, 3, 12), generator=torch.Generator().manual_seed(2))
    hf = hq = agent.init_hidden(4)
    for _ in range(3):
        with torch.no_grad():
            qf, hf = agent(x, hf)
        qq, hq = fixed(x, hq)
        assert qq.shape == qf.shape == (4, 3, 5)
        assert torch.max(torch.abs(qf - qq)) < 0.02
