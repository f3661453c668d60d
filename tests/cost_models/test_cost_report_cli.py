"""``mast-hw report``: files written, run-mask reports, one-line errors."""

import csv
import dataclasses
import json
import sys

import pytest

from codesign.hw_cli import main
from cost_models.networks import get_map, mast_network_layers
from cost_models.render import REPORT_FILES
from cost_models.report import evaluate
from cost_models.workload import WorkloadConfig
from hw.profiles import get_profile
from mast.sparsity.layer import save_layers

FAST = ["--batch-size", "2", "--seq-len", "4"]


@pytest.fixture
def cli(monkeypatch, capsys):
    """Run ``mast-hw report ARGV``; returns (exit code, stdout, stderr)."""

    def run(argv):
        monkeypatch.setattr(sys, "argv", ["mast-hw", "report", *argv])
        with pytest.raises(SystemExit) as exc:
            main(["report", *argv])
        out = capsys.readouterr()
        return exc.value.code, out.out, out.err

    return run


def test_sweep_writes_every_file(tmp_path, cli):
    out = tmp_path / "rep"
    code, stdout, _ = cli(
        [
            "--profile",
            "sparse_pe_16",
            "--sparsity",
            "0,0.9",
            "--map",
            "3m",
            "--out",
            str(out),
            *FAST,
        ]
    )
    assert code == 0 and "## Training" in stdout and "speedup vs dense" in stdout
    assert f"wrote {out / 'report.md'} and summary.csv" in stdout
    assert sorted(p.name for p in out.iterdir()) == sorted(REPORT_FILES)
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert [float(r["sparsity"]) for r in rows] == [0.0, 0.9]
    # at sparsity 0 the masks are dense: the speedup is the dense network's iteration
    # over the same network carrying the amortised topology updates (below 1)
    run = WorkloadConfig(batch_size=2, seq_len=4, episode_limit=get_map("3m").episode_limit)
    dense = mast_network_layers("3m", 0.0, seed=0)
    p16 = get_profile("sparse_pe_16")
    steady = evaluate(p16, dense, dataclasses.replace(run, topology_updates=False))
    amortised = evaluate(p16, dense, run)
    want = steady.training.cycles / amortised.training.cycles
    assert float(rows[0]["train_speedup_vs_dense"]) == pytest.approx(want, rel=1e-12)
    assert want < 1
    assert float(rows[1]["train_speedup_vs_dense"]) > 3
    assert rows[1]["baseline"] == "systolic_4x4"
    doc = json.loads((out / "report.json").read_text())
    assert len(doc["reports"]) == 2 and doc["baseline"] == "systolic_4x4"
    assert (out / "cycles_energy.png").read_bytes()[:4] == b"\x89PNG"
    text = (out / "report.md").read_text()
    assert "sparse_pe_16 on 3m" in text and "| 0.90 |" in text
    # Every report states the clock's origin and the energy table's technology.
    clock = "Clock: 200 MHz assumed (45 nm ASIC model: a typical target clock, not placed"
    energy = "Energy: 45nm (Horowitz ISSCC 2014) per-action figures of a 45 nm ASIC"
    assert clock in stdout and energy in stdout
    assert clock in text and energy in text
    assert "A run of t_max = 2,000,000 environment steps" in text


def test_refuses_non_empty_folder_unless_forced(tmp_path, cli):
    out = tmp_path / "rep"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    code, _, err = cli(["--sparsity", "0.5", "--out", str(out), *FAST])
    assert code == 2 and f"output folder '{out}' is not empty; pass --force" in err
    code, _, _ = cli(
        ["--sparsity", "0.5", "--out", str(out), "--force", "--baseline", "systolic_4x4", *FAST]
    )
    assert code == 0 and (out / "report.md").is_file()


def test_masks_of_a_run(tmp_path, cli):
    run = tmp_path / "run1"
    save_layers(run / "masks" / "masks_0.npz", mast_network_layers("3m", 0.5, seed=1))
    save_layers(run / "masks" / "masks_20000.npz", mast_network_layers("3m", 0.9, seed=1))
    (run / "config.yaml").write_text("env: {map_name: 3m}\nlearner: {batch_size: 2}\n")
    out = tmp_path / "rep"
    code, stdout, _ = cli(["--masks", str(run), "--out", str(out), "--seq-len", "4"])
    assert code == 0
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert len(rows) == 1 and float(rows[0]["sparsity"]) == pytest.approx(0.9, abs=1e-3)
    text = (out / "report.md").read_text()
    assert "masks_20000.npz" in text
    # the training defaults fill what config.yaml leaves out
    assumed = [ln for ln in text.splitlines() if "assumed" in ln]
    assert "no config.yaml" not in text and all(ln.startswith("- Clock:") for ln in assumed)


_PROFILES = (
    "sparse_pe_16, sparse_pe_16_ecp5, sparse_pe_256, sparse_pe_4, sparse_pe_64, sparse_pe_64_xc7, "
    "systolic_16x16, systolic_2x2, systolic_4x4, systolic_8x8"
)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--profile", "nope"], f"unknown hardware profile 'nope'; known: {_PROFILES}"),
        (["--sparsity", "0.5,1.2"], "sparsity must be in [0, 1), got 1.2"),
        (["--sparsity", "0.5,abc"], "sparsity must be a number in [0, 1), got 'abc'"),
        (["--sparsity", "-0.1"], "sparsity must be in [0, 1), got -0.1"),
        (
            ["--map", "4m"],
            "unknown map '4m'; known: 3m, 8m, 5m_vs_6m, 2s3z, 3s5z, MMM, 2c_vs_64zg",
        ),
        (["--density", "er"], "unknown density rule 'er'; known: uniform, erdos_renyi"),
        (["--baseline", "nope"], f"unknown hardware profile 'nope'; known: {_PROFILES}"),
    ],
)
def test_bad_input_one_line_errors(tmp_path, cli, argv, message):
    code, _, err = cli([*argv, "--out", str(tmp_path / "o")])
    assert code == 2
    assert err == f"mast-hw: error: {message}\n"
    assert not (tmp_path / "o").exists()


def test_bad_run_directories(tmp_path, cli):
    code, _, err = cli(["--masks", str(tmp_path / "none")])
    assert code == 2 and f"run folder '{tmp_path / 'none'}' does not exist" in err
    (tmp_path / "empty").mkdir()
    code, _, err = cli(["--masks", str(tmp_path / "empty")])
    assert code == 2 and "has no masks/masks_*.npz snapshot" in err
