"""A training run folder as the cost model reads it: one reader, one conversion."""

from __future__ import annotations

import dataclasses

import pytest

from cost_models.networks import mast_network_layers
from cost_models.rundir import load_run, workload_config
from cost_models.workload import WorkloadConfig
from mast.config import TrainConfig
from mast.errors import UserError
from mast.presets import resolve_config
from mast.run_dir import write_config
from mast.sparsity.layer import save_layers


def test_workload_of_the_default_run():
    # qmix_mast: 8 environments, 4 updates per rollout -> 2 episodes per iteration of
    # 60 steps; delta_t = 5000 env steps -> 5000 / 120 = 41.7 -> 42 iterations
    cfg = resolve_config(None, "qmix", "mast", {}, [])
    run = workload_config(cfg, episode_limit=60)
    assert run == WorkloadConfig(
        batch_size=32,
        episode_limit=60,
        episodes_per_iteration=2,
        update_interval_iters=42,
        t_max=60_000,
        topology_updates=True,
    )
    assert run.steps == 61


@pytest.mark.parametrize(
    "method, dynamic",
    [("static", False), ("dense", False), ("tiny", False), ("rigl", True), ("set", True)],
)
def test_only_dynamic_methods_pay_for_topology_updates(method, dynamic):
    cfg = resolve_config(None, "qmix", method, {}, [])
    assert workload_config(cfg, episode_limit=60).topology_updates is dynamic


def _run_folder(tmp_path, cfg: TrainConfig | None):
    run = tmp_path / "run"
    save_layers(run / "masks" / "masks_0.npz", mast_network_layers("3m", 0.5, seed=1))
    save_layers(run / "masks" / "masks_20000.npz", mast_network_layers("3m", 0.9, seed=1))
    if cfg is not None:
        write_config(run, cfg)
    return run


def test_load_run_reads_what_training_wrote(tmp_path):
    base = TrainConfig()
    cfg = dataclasses.replace(
        base,
        learner=dataclasses.replace(base.learner, batch_size=16, updates_per_rollout=2),
        sparsity=dataclasses.replace(base.sparsity, method="static", delta_t=3000),
        run=dataclasses.replace(base.run, t_max=9000),
    )
    got = load_run(_run_folder(tmp_path, cfg))
    assert got.snapshot.name == "masks_20000.npz" and got.map_name == "3m"
    # 8 environments / 2 updates per rollout = 4 episodes of 60 steps; 3000 / 240 -> 12
    assert got.run == WorkloadConfig(
        batch_size=16,
        episode_limit=60,
        episodes_per_iteration=4,
        update_interval_iters=12,
        t_max=9000,
        topology_updates=False,
    )
    assert got.notes == ()


def test_load_run_without_config_costs_the_defaults(tmp_path):
    got = load_run(_run_folder(tmp_path, None))
    assert got.run == WorkloadConfig() and got.map_name is None
    assert got.notes == ("no config.yaml; run settings are defaults",)


def test_load_run_refuses_a_bad_config(tmp_path):
    run = _run_folder(tmp_path, None)
    (run / "config.yaml").write_text("learner: {batch_sise: 4}\n")
    with pytest.raises(UserError, match=r"^unknown config key 'learner.batch_sise'"):
        load_run(run)
