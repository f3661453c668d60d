"""Evaluation points and per-run scores read back from run folders (sweep.results)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from sweep.results import eval_points, read_metrics

COLUMNS = ["t_env", "test_win_rate", "test_return", "test_t_env", "fps"]


def _write(path: Path, rows: list[tuple]) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        w.writerows(rows)
    return path


def test_repeated_rows_count_once(tmp_path):
    # test_interval 1000, log_interval 500: every second row repeats the last evaluation.
    # The run was resumed from a checkpoint at 2000, so the row at 2500 was written twice.
    rows = [
        (500, "nan", "nan", -1, 1.0),
        (1000, 0.5, 10.0, 1000, 1.0),
        (1500, 0.5, 10.0, 1000, 1.0),
        (2000, 0.25, 8.0, 2000, 1.0),
        (2500, 0.25, 8.0, 2000, 1.0),
        (2500, 0.25, 8.0, 2000, 2.0),
        (3000, 1.0, 20.0, 3000, 1.0),
    ]
    metrics = read_metrics(_write(tmp_path / "metrics.csv", rows))
    assert [int(r["t_env"]) for r in metrics] == [500, 1000, 1500, 2000, 2500, 3000]
    assert metrics[4]["fps"] == "2.0"  # the later of the two rows
    points = eval_points(metrics, test_interval=1000, log_interval=500)
    assert [(p.t_env, p.win_rate) for p in points] == [(1000, 0.5), (2000, 0.25), (3000, 1.0)]
    # Mean of the last three evaluations: (0.5 + 0.25 + 1.0) / 3, where the last three rows
    # (0.25, 0.25, 1.0) would give 0.5.
    assert sum(p.win_rate for p in points) / 3 == pytest.approx(0.5833333)


def test_rows_without_eval_step(tmp_path):
    rows = [(500, 0.5, 10.0, 1.0), (1000, 0.75, 12.0, 1.0)]
    with open(tmp_path / "metrics.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["t_env", "test_win_rate", "test_return", "fps"])
        w.writerows(rows)
    metrics = read_metrics(tmp_path / "metrics.csv")
    assert [p.win_rate for p in eval_points(metrics, 500, 500)] == [0.5, 0.75]
    with pytest.raises(ValueError, match="test_interval 1000 > log_interval 500"):
        eval_points(metrics, 1000, 500)
