"""Training configuration -> cost-model settings; snapshot costs against direct calls."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from codesign.costing import cost_run_config, dense_layers, snapshot_costs
from cost_models.networks import mast_network_layers
from cost_models.report import evaluate
from hw.profiles import get_profile
from mast.presets import resolve_config


def test_cost_run_config_of_the_default_run():
    cfg = resolve_config(None, "qmix", "mast", {}, [])
    run = cost_run_config(cfg, episode_limit=60)
    assert run.batch_size == cfg.learner.batch_size
    assert run.episode_limit == 60 and run.steps == 61
    episodes = max(1, round(cfg.env.n_envs / cfg.learner.updates_per_rollout))
    assert run.episodes_per_iteration == episodes
    want = max(1, round(cfg.sparsity.delta_t / (episodes * 60)))
    assert run.delta_t == want and run.topology_updates
    assert run.t_max == cfg.run.t_max


@pytest.mark.parametrize(
    "method, dynamic", [("static", False), ("dense", False), ("rigl", True), ("set", True)]
)
def test_only_dynamic_methods_pay_for_topology_updates(method, dynamic):
    cfg = resolve_config(None, "qmix", method, {}, [])
    assert cost_run_config(cfg, episode_limit=60).topology_updates is dynamic


def test_snapshot_costs_equal_the_cost_model():
    layers = mast_network_layers("3m", 0.9, seed=0)
    cfg = resolve_config(None, "qmix", "mast", {}, ["learner.batch_size=4"])
    run = cost_run_config(cfg, episode_limit=60)
    prof = get_profile("sparse_pe_16")
    got = snapshot_costs(prof, layers, run)
    rep = evaluate(prof, layers, dataclasses.replace(run, topology_updates=False))
    one = evaluate(prof, layers, dataclasses.replace(run, delta_t=1))
    assert got.train_cycles == rep.training.cycles
    assert got.infer_energy_j == rep.inference.energy_j
    assert got.train_sram_bytes == pytest.approx(sum(rep.training.sram_bytes.values()))
    assert got.update_cycles == one.training.cycles - rep.training.cycles > 0
    assert got.update_energy_j == pytest.approx(one.training.energy_j - rep.training.energy_j)
    # the amortised iteration of the cost model lies between steady and steady + update
    amortised = evaluate(prof, layers, run).training.cycles
    assert got.train_cycles < amortised < got.train_cycles + got.update_cycles
    dense = snapshot_costs(prof, layers, run, dense=True)
    d = dense_layers(layers)
    assert all(lay.mask.all() and lay.values is None for lay in d)
    assert [lay.name for lay in d] == [lay.name for lay in layers]
    no_updates = dataclasses.replace(run, topology_updates=False)
    assert np.isclose(dense.train_cycles, evaluate(prof, d, no_updates).training.cycles)
    assert dense.train_cycles > got.train_cycles
    assert dense.update_cycles == dense.update_energy_j == 0
