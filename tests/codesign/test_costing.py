"""Snapshot costs against direct calls of the cost model."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from codesign.costing import dense_layers, snapshot_costs
from cost_models.networks import mast_network_layers
from cost_models.report import evaluate
from cost_models.rundir import workload_config
from hw.profiles import get_profile
from mast.presets import resolve_config


def test_snapshot_costs_equal_the_cost_model():
    layers = mast_network_layers("3m", 0.9, seed=0)
    cfg = resolve_config(None, "qmix", "mast", {}, ["learner.batch_size=4"])
    run = workload_config(cfg, episode_limit=60)
    prof = get_profile("sparse_pe_16")
    got = snapshot_costs(prof, layers, run)
    rep = evaluate(prof, layers, dataclasses.replace(run, topology_updates=False))
    one = evaluate(prof, layers, dataclasses.replace(run, update_interval_iters=1))
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
