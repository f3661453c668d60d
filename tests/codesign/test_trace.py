"""The hardware trace of a short run equals direct cost-model calls on the saved masks."""

from __future__ import annotations

import csv
import dataclasses
import json
import math

import pytest

from codesign.costing import SnapshotCost, dense_layers
from codesign.trace import read_trace
from cost_models.report import evaluate
from cost_models.rundir import load_run
from cost_models.workload import WorkloadConfig
from hw.profiles import get_profile
from mast.sparsity import load_layers

# One short training run per test worker: keep the tests that read it together.
pytestmark = pytest.mark.xdist_group("codesign_short_run")

FIGURES = [f for f in SnapshotCost.__dataclass_fields__ if f != "profile"]


def _meta(run_dir):
    return json.loads((run_dir / "hw_meta.json").read_text())


def test_trace_has_one_row_per_mask_snapshot(short_run):
    rows = read_trace(short_run)
    snaps = sorted(int(p.stem.split("_")[1]) for p in (short_run / "masks").glob("masks_*.npz"))
    updates = [int(r["t_env"]) for r in rows if r["event"] in ("start", "update")]
    assert updates == snaps
    assert rows[0]["event"] == "start" and rows[0]["t_env"] == "0"
    assert len(snaps) >= 3
    meta = _meta(short_run)
    assert meta["profile"]["name"] == "sparse_pe_64"
    assert meta["baseline"]["name"] == "systolic_8x8"
    # the same cost-model settings `mast-hw report --masks RUN_DIR` reads from the folder
    assert WorkloadConfig(**meta["run_config"]) == load_run(short_run).run


def test_trace_figures_equal_cost_model_on_saved_masks(short_run):
    """Every row, from the cost model's own entry point on the saved masks, with the
    settings the folder reader takes from ``config.yaml`` (not from the trace)."""
    prof = get_profile("sparse_pe_64")
    run = load_run(short_run).run
    steady_run = dataclasses.replace(run, topology_updates=False)
    update_run = dataclasses.replace(run, update_interval_iters=1)
    for row in read_trace(short_run):
        if row["event"] == "end":
            continue
        layers = load_layers(short_run / "masks" / f"masks_{row['t_env']}.npz")
        rep = evaluate(prof, layers, steady_run)
        one = evaluate(prof, layers, update_run)
        t, i, u = rep.training, rep.inference, one.training
        want = {
            "train_cycles": t.cycles,
            "train_time_s": t.cycles / prof.clock_hz,
            "train_energy_j": t.energy_j,
            "train_dram_bytes": sum(t.dram_bytes.values()),
            "train_sram_bytes": sum(t.sram_bytes.values()),
            "train_util": t.utilisation_compute,
            "infer_cycles": i.cycles,
            "infer_time_s": i.cycles / prof.clock_hz,
            "infer_energy_j": i.energy_j,
            "infer_util": i.utilisation_compute,
            "update_cycles": u.cycles - t.cycles,
            "update_time_s": (u.cycles - t.cycles) / prof.clock_hz,
            "update_energy_j": u.energy_j - t.energy_j,
            "sparsity": rep.sparsity,
        }
        assert set(FIGURES) <= set(want)
        for f, v in want.items():
            assert float(row[f]) == pytest.approx(v, rel=1e-9), f
        assert float(row["update_cycles"]) > 0 and float(row["update_energy_j"]) > 0
        for lay in layers:
            assert int(row[f"nnz:{lay.name}"]) == lay.nnz
            assert float(row[f"density:{lay.name}"]) == pytest.approx(lay.density)


def test_dense_references_and_ratios(short_run):
    meta = _meta(short_run)
    run = dataclasses.replace(load_run(short_run).run, topology_updates=False)
    layers = dense_layers(load_layers(short_run / "masks" / "masks_0.npz"))
    dense = evaluate(get_profile("sparse_pe_64"), layers, run)
    base = evaluate(get_profile("systolic_8x8"), layers, run)
    assert meta["dense"]["train_cycles"] == pytest.approx(dense.training.cycles)
    assert meta["dense_baseline"]["train_cycles"] == pytest.approx(base.training.cycles)
    assert meta["dense_baseline"]["infer_energy_j"] == pytest.approx(base.inference.energy_j)
    assert meta["dense"]["update_cycles"] == meta["dense_baseline"]["update_energy_j"] == 0
    for row in read_trace(short_run):
        c = float(row["train_cycles"])
        assert float(row["speedup_vs_dense"]) == pytest.approx(dense.training.cycles / c)
        t = float(row["train_time_s"])
        assert float(row["speedup_vs_baseline"]) == pytest.approx(base.training.time_s / t)
        assert float(row["infer_energy_gain_vs_dense"]) == pytest.approx(
            dense.inference.energy_j / float(row["infer_energy_j"])
        )
        # 90 % sparse masks beat the dense network on the same sparse PE array
        assert float(row["speedup_vs_dense"]) > 1.5


def test_speedups_are_time_ratios_across_clocks(tmp_path, short_trainer):
    """A baseline at another clock: the speedup is the ratio of times, not of cycles."""
    run_dir = short_trainer(
        tmp_path, "--hw-profile", "sparse_pe_4", "--hw-baseline", "systolic_2x2", "--t-max", "60"
    )
    sparse, base = get_profile("sparse_pe_4"), get_profile("systolic_2x2")
    assert sparse.clock_hz != base.clock_hz
    ref = _meta(run_dir)["dense_baseline"]
    for row in read_trace(run_dir):
        want = ref["train_cycles"] / base.clock_hz / (float(row["train_cycles"]) / sparse.clock_hz)
        assert float(row["speedup_vs_baseline"]) == pytest.approx(want, rel=1e-9)
        want = ref["infer_cycles"] / base.clock_hz / (float(row["infer_cycles"]) / sparse.clock_hz)
        assert float(row["infer_speedup_vs_baseline"]) == pytest.approx(want, rel=1e-9)


def test_cumulative_time_and_energy_integrate_the_rows(short_run):
    rows = read_trace(short_run)
    meta = _meta(short_run)
    time_s = energy = dense_t = 0.0
    for prev, row in zip(rows[:-1], rows[1:], strict=True):
        d_it = int(row["iterations"]) - int(prev["iterations"])
        d_env = int(row["t_env"]) - int(prev["t_env"])
        upd = int(row["event"] == "update")
        time_s += (
            d_it * float(prev["train_time_s"])
            + d_env * float(prev["infer_time_s"])
            + upd * float(prev["update_time_s"])
        )
        energy += (
            d_it * float(prev["train_energy_j"])
            + d_env * float(prev["infer_energy_j"])
            + upd * float(prev["update_energy_j"])
        )
        dense_t += d_it * meta["dense"]["train_time_s"] + d_env * meta["dense"]["infer_time_s"]
        assert float(row["cum_time_s"]) == pytest.approx(time_s, rel=1e-9)
        assert float(row["cum_energy_j"]) == pytest.approx(energy, rel=1e-9)
        assert float(row["cum_dense_time_s"]) == pytest.approx(dense_t, rel=1e-9)
    assert int(rows[-1]["iterations"]) > 0 and time_s > 0


def test_metrics_show_the_current_speedup(short_run):
    with open(short_run / "metrics.csv", newline="") as fh:
        metrics = list(csv.DictReader(fh))
    rows = read_trace(short_run)
    meta = _meta(short_run)
    last = metrics[-1]
    current = [r for r in rows if int(r["t_env"]) <= int(last["t_env"])][-1]
    want = meta["dense"]["train_cycles"] / float(current["train_cycles"])
    assert math.isclose(float(last["hw_speedup"]), want, rel_tol=1e-9)


def test_resume_continues_the_trace(short_run, tmp_path, capsys):
    import shutil

    from codesign.train import main

    run = tmp_path / "run"
    shutil.copytree(short_run, run)
    before = read_trace(run)
    argv = ["--resume", str(run), "--no-progress"]
    assert main([*argv, "--hw-profile", "sparse_pe_16", "run.t_max=400"]) == 2
    assert "was traced with profile 'sparse_pe_64'; resume it with the same hardware flags" in (
        capsys.readouterr().err
    )
    assert read_trace(run) == before
    assert before[-1]["event"] == "end"  # written after the final checkpoint
    assert main([*argv, "run.t_max=400"]) == 0  # keeps the run's own profiles
    after = read_trace(run)
    kept = len(before) - 1
    assert after[:kept] == before[:kept] and after[kept]["event"] == "update"
    assert [r["event"] for r in after].count("end") == 1
    cum = [float(r["cum_time_s"]) for r in after]
    assert cum == sorted(cum) and cum[-1] > cum[kept - 1]
    assert int(after[-1]["t_env"]) >= 400
    assert main([*argv, "--hw-profile", "none", "run.t_max=500"]) == 0  # told to stop
    assert read_trace(run) == after
