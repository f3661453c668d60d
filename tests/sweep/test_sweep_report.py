"""``mast-sweep report`` on a synthetic sweep folder with hand-computed statistics."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from sweep.cli import main
from sweep.report import write_report

MAST = [0.9, 0.0, 0.3, 1.0, 0.2, 0.8, 0.1, 0.4]  # IQM 0.425, median 0.35 (test_stats.py)
DENSE = [0.3] * 8


def _run(
    root: Path, method: str, seed: int, score: float, t_env: int = 3000, variant: str = ""
) -> None:
    cell = "qmix_dense_3m" if method == "dense" else "qmix_mast_3m_sp0.9"
    cell += f"+{variant}" if variant else ""
    slot = root / cell / f"s{seed}"
    run_dir = slot / f"qmix_{method}_3m_s{seed}_20260101-000000"
    run_dir.mkdir(parents=True)
    cfg = {
        "env": {"map_name": "3m"},
        "learner": {"alg": "qmix"},
        "sparsity": {"method": method, "sparsity": 0.9},
        "run": {"seed": seed, "t_max": 3000, "test_interval": 1000, "log_interval": 500},
    }
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg))
    flops = 1.0 if method == "dense" else 0.1
    # Evaluations at 1000, 2000, 3000, each logged twice; the last two have the score.
    rows = [
        (t, w, t_eval, flops)
        for t, w, t_eval in [
            (500, "nan", -1),
            (1000, 0.0, 1000),
            (1500, 0.0, 1000),
            (2000, score, 2000),
            (2500, score, 2000),
            (3000, score, 3000),
        ]
    ]
    with open(run_dir / "metrics.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["t_env", "test_win_rate", "test_return", "test_t_env", "flops_train_ratio",
                    "flops_test_ratio", "sparsity"])  # fmt: skip
        w.writerows((t, win, 1.0, te, f, f, 1 - f) for t, win, te, f in rows)
    status = {"state": "done", "attempts": 1, "result": {"t_env": t_env, "wall_s": 30.0}}
    (slot / "status.json").write_text(json.dumps(status))


@pytest.fixture
def sweep_dir(tmp_path: Path) -> Path:
    root = tmp_path / "sw"
    for seed, (m, d) in enumerate(zip(MAST, DENSE, strict=True)):
        _run(root, "mast", seed, m)
        _run(root, "dense", seed, d)
    return root


def test_results_csv_one_row_per_run(sweep_dir):
    rep = write_report(sweep_dir, k=2, reps=200)
    with open(rep.results_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 16
    mast = [r for r in rows if r["method"] == "mast"]
    assert [float(r["last_k_mean"]) for r in mast] == MAST
    assert {r["evals"] for r in rows} == {"3"}  # six rows, three evaluations
    assert {float(r["env_steps_per_s"]) for r in rows} == {100.0}  # 3000 steps in 30 s
    assert {r["target_sparsity"] for r in mast} == {"0.9"}


def test_summary_by_hand(sweep_dir):
    text = write_report(sweep_dir, k=2, reps=200).summary_md.read_text()
    (mast_row,) = [ln for ln in text.splitlines() if ln.startswith("| qmix mast 0.9 |")]
    cols = [c.strip() for c in mast_row.strip("|").split("|")]
    assert cols[1] == "8"
    assert cols[2] == "0.350"  # median of the final evaluations
    assert cols[3].startswith("0.350 [")  # median of the last-2 means
    assert cols[4].startswith("0.425 [")  # IQM
    assert cols[5].startswith("0.463 [")  # mean 3.7 / 8
    assert cols[6] == "142 %"  # 0.425 / 0.3
    # P(mast > dense): four of eight runs above 0.3, one tie -> (4 + 0.5) / 8.
    assert cols[7].startswith("0.56 [")
    assert cols[8] == "0.1000"
    assert (sweep_dir / "plots" / "sample_efficiency_3m.png").stat().st_size > 0


def test_report_cli_errors(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"mast-sweep: error: sweep folder {str(tmp_path / 'nowhere')!r} does not exist"
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    assert "has no runs" in capsys.readouterr().err


def test_a_variant_is_its_own_row_compared_with_plain_dense(sweep_dir):
    # Dense with other targets: its own row, compared with the plain dense runs.
    for seed, m in enumerate(MAST):
        _run(sweep_dir, "dense", seed, m, variant="mast_targets")
    rep = write_report(sweep_dir, k=2, reps=200)
    with open(rep.results_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 24
    assert {r["variant"] for r in rows if "+" in r["run"]} == {"mast_targets"}
    assert {r["variant"] for r in rows if "+" not in r["run"]} == {""}
    text = rep.summary_md.read_text()
    (row,) = [ln for ln in text.splitlines() if ln.startswith("| qmix dense +mast_targets |")]
    (dense,) = [ln for ln in text.splitlines() if ln.startswith("| qmix dense |")]
    cols = [c.strip() for c in row.strip("|").split("|")]
    assert cols[1] == "8" and cols[4].startswith("0.425 [")  # the MAST scores, as above
    assert cols[6] == "142 %" and cols[7].startswith("0.56 [")  # against plain dense
    assert [c.strip() for c in dense.strip("|").split("|")][6] == "-"
