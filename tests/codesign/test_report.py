"""The end-of-run report: files, plots and figures consistent with the trace."""

from __future__ import annotations

import json

import pytest

from codesign.report import write_run_report
from codesign.trace import read_trace

# One short training run per test worker: keep the tests that read it together.
pytestmark = pytest.mark.xdist_group("codesign_short_run")

PNG = b"\x89PNG\r\n\x1a\n"


def test_report_files_exist(short_run):
    md = (short_run / "report.md").read_text()
    for name in ("learning_curve", "sparsity_flops", "hw_cost", "hw_totals"):
        png = short_run / "plots" / f"{name}.png"
        assert png.read_bytes()[:8] == PNG
        assert f"plots/{name}.png" in md
    assert "sparse_pe_64" in md and "systolic_8x8" in md
    assert "not synthesised" in md


def test_report_json_matches_trace(short_run):
    rep = json.loads((short_run / "report.json").read_text())
    last = read_trace(short_run)[-1]
    hw = rep["hardware"]
    assert hw["profile"] == "sparse_pe_64" and hw["baseline"] == "systolic_8x8"
    t = hw["totals"]
    assert t["time_s"] == pytest.approx(float(last["cum_time_s"]))
    assert t["speedup_vs_dense"] == pytest.approx(
        float(last["cum_dense_time_s"]) / float(last["cum_time_s"])
    )
    assert t["energy_gain_vs_baseline"] == pytest.approx(
        float(last["cum_baseline_energy_j"]) / float(last["cum_energy_j"])
    )
    assert hw["final_snapshot"]["train_cycles"] == pytest.approx(float(last["train_cycles"]))
    assert rep["final"]["sparsity"] == pytest.approx(0.9, abs=0.01)
    assert rep["config"]["method"] == "mast" and rep["config"]["map"] == "3m"


def test_report_lists_synthesis_results(short_run, tmp_path, monkeypatch):
    run = tmp_path / "run"
    run.mkdir()
    for name in ("config.yaml", "metrics.csv", "hw_trace.csv", "hw_meta.json"):
        (run / name).write_bytes((short_run / name).read_bytes())
    synth = tmp_path / "build" / "synth" / "sparse_pe_64-ice40"
    synth.mkdir(parents=True)
    (synth / "resources.json").write_text(
        json.dumps(
            {
                "profile": "sparse_pe_64",
                "target": "ice40",
                "bram_unit": "EBR",
                "resources": {"lut": 1234, "ff": 567, "dsp": 8, "bram": 9},
            }
        )
    )
    monkeypatch.chdir(tmp_path)
    md = write_run_report(run).read_text()
    assert "| ice40 | 1234 | 567 | 8 | 9 EBR |" in md
    assert "not synthesised" not in md


def test_report_without_metrics_fails_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="has no metrics.csv"):
        write_run_report(tmp_path)


def test_report_of_a_run_without_hardware_trace(short_run, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for name in ("config.yaml", "metrics.csv"):
        (run / name).write_bytes((short_run / name).read_bytes())
    md = write_run_report(run).read_text()
    assert "No hardware trace (trained with `--hw-profile none`)." in md
    assert sorted(p.name for p in (run / "plots").iterdir()) == [
        "learning_curve.png",
        "sparsity_flops.png",
    ]
    rep = json.loads((run / "report.json").read_text())
    assert rep["hardware"] is None and rep["final"]["t_env"] > 0


def test_report_and_summary_lines_show_both_speedups(short_run):
    from codesign.report import hardware_lines, run_summary

    summary = run_summary(short_run)
    hw = summary["hardware"]
    per_iter = hw["final_snapshot"]["speedup_vs_dense"]
    whole = hw["totals"]["speedup_vs_dense"]
    lines = hardware_lines(summary)
    (it_line,) = [x for x in lines if "one training iteration (hw_speedup)" in x]
    (run_line,) = [x for x in lines if "speedup, whole run" in x]
    assert f"{per_iter:.4g}x" in it_line and f"{whole:.4g}x" in run_line
    md = (short_run / "report.md").read_text()
    assert f"`hw_speedup`, the figure the progress line shows): {per_iter:.4g}x" in md
    assert "whole-run speedup of MAST" in md


def test_mask_history_measures_topology_change(short_run):
    from codesign.report_plots import mask_history

    ts, layers, changed = mask_history(short_run)
    assert ts == sorted(ts) and len(ts) >= 2 and layers
    assert set(changed) <= {"agent", "mixer", "hypernet"}
    for ys in changed.values():
        assert ys[0] == 0.0 and all(0.0 <= y <= 1.0 for y in ys)
    assert max(changed["agent"]) > 0.0  # MAST regrows connections of the agent network


def test_end_of_run_summary_matches_report(short_trainer, tmp_path, capsys):
    import csv

    run = short_trainer(tmp_path, "--hw-profile", "sparse_pe_64")
    out = capsys.readouterr().out
    with open(run / "metrics.csv", newline="") as fh:
        last = list(csv.DictReader(fh))[-1]
    rep = json.loads((run / "report.json").read_text())
    win = float(last["test_win_rate"])
    assert rep["final"]["test_win_rate"] == pytest.approx(win)
    assert f"test win rate {win:.3f} (last evaluation)" in out
    assert f"report: {run / 'report.md'}" in out
    assert f"{rep['hardware']['totals']['speedup_vs_dense']:.4g}x" in out
