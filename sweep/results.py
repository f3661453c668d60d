"""Reading a sweep's runs back: one :class:`RunRecord` per run folder, without torch
(configurations through :func:`mast.run_folder.read_config`).

Evaluation points: every ``metrics.csv`` row repeats the latest greedy evaluation, so when
``run.test_interval`` exceeds ``run.log_interval`` several rows carry the same evaluation.
:func:`eval_points` keeps each evaluation once, identified by the row's ``test_t_env`` (the
step it was taken at). Rows written twice for the same ``t_env`` (a run resumed from a
checkpoint older than its last rows) count once, the later one.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from mast.run_folder import read_config
from sweep.task import STATUS_FILE, find_run_dir, read_status

__all__ = ["EvalPoint", "RunRecord", "eval_points", "read_metrics", "read_run", "read_sweep"]


@dataclass(frozen=True)
class EvalPoint:
    """One greedy evaluation."""

    t_env: int
    """Environment steps when it was taken."""
    win_rate: float
    """Test win rate."""
    test_return: float
    """Mean test return."""


@dataclass(frozen=True)
class RunRecord:
    """What the report needs of one run."""

    name: str
    """``<cell>/s<seed>`` in the sweep folder."""
    cell: str
    """The cell's name (every setting but the seed)."""
    map_name: str
    alg: str
    method: str
    target_sparsity: float | None
    """``sparsity.sparsity`` (``None`` for dense)."""
    variant: str | None
    """The sweep variant of the cell (``None``: a plain cell; see :mod:`sweep.spec`)."""
    seed: int
    state: str
    """``done``, ``running``, ``failed``, ``interrupted`` (:mod:`sweep.task`) or ``unknown``."""
    t_max: int
    test_interval: int
    t_env: int
    evals: tuple[EvalPoint, ...]
    flops_train: float
    flops_test: float
    sparsity: float
    """Final measured sparsity of the masked weights."""
    hw_profile: str | None
    hw_speedup: float
    """Whole-run accelerator time of the dense network / the sparse run's (nan: no trace)."""
    hw_energy_ratio: float
    """Whole-run accelerator energy of the dense network / the sparse run's."""
    wall_s: float
    """Training wall time (all attempts)."""
    attempts: int
    run_dir: str

    def last_k_mean(self, k: int) -> float:
        """Mean test win rate of the last ``k`` evaluation points (fewer if fewer exist)."""
        wins = [e.win_rate for e in self.evals[-k:]]
        return sum(wins) / len(wins) if wins else math.nan

    @property
    def final_win(self) -> float:
        """Test win rate of the last evaluation."""
        return self.evals[-1].win_rate if self.evals else math.nan

    @property
    def steps_per_s(self) -> float:
        """Environment steps per second of training wall time (learning included)."""
        return self.t_env / self.wall_s if self.wall_s > 0 else math.nan


def _num(v: object) -> float:
    try:
        return float(v) if v not in (None, "") else math.nan  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def read_metrics(path: Path) -> list[dict[str, str]]:
    """``metrics.csv`` rows, one per ``t_env`` (the last written wins)."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    by_t: dict[int, dict[str, str]] = {}
    for r in rows:
        by_t[int(_num(r["t_env"]))] = r
    return [by_t[t] for t in sorted(by_t)]


def eval_points(rows: list[dict[str, str]], test_interval: int, log_interval: int):
    """The distinct evaluations in metrics rows, in order (see the module docstring).

    Rows without a ``test_t_env`` column (older runs) are each an evaluation only when
    ``test_interval <= log_interval``; otherwise they cannot be told apart.

    Raises
    ------
    ValueError
        Old rows with ``test_interval > log_interval``.
    """
    if rows and "test_t_env" not in rows[0]:
        if test_interval > log_interval:
            raise ValueError(
                f"metrics.csv has no test_t_env column and test_interval {test_interval} > "
                f"log_interval {log_interval}: its evaluation points cannot be told apart"
            )
        return tuple(
            EvalPoint(int(_num(r["t_env"])), _num(r["test_win_rate"]), _num(r["test_return"]))
            for r in rows
            if not math.isnan(_num(r["test_win_rate"]))
        )
    seen: dict[int, EvalPoint] = {}
    for r in rows:
        t = int(_num(r["test_t_env"]))
        if t >= 0 and t not in seen:
            seen[t] = EvalPoint(t, _num(r["test_win_rate"]), _num(r["test_return"]))
    return tuple(seen[t] for t in sorted(seen))


def _hw(run_dir: Path) -> tuple[str | None, float, float]:
    if not (run_dir / "hw_trace.csv").is_file():
        return None, math.nan, math.nan
    from codesign.report import run_summary

    hw = run_summary(run_dir)["hardware"]
    tot = hw["totals"]
    return hw["profile"], tot["speedup_vs_dense"], tot["energy_gain_vs_dense"]


def read_run(sweep_dir: Path, slot: Path) -> RunRecord:
    """The record of the run in ``slot`` (a started run: its folder has a ``config.yaml``)."""
    status = read_status(slot)
    run_dir = find_run_dir(slot)
    if run_dir is None:
        raise FileNotFoundError(f"slot {str(slot)!r} has no run folder")
    cfg = read_config(run_dir)
    run, sp = cfg.run, cfg.sparsity
    rows = read_metrics(run_dir / "metrics.csv") if (run_dir / "metrics.csv").is_file() else []
    last = rows[-1] if rows else {}
    result = status.get("result") or {}
    profile, speedup, energy = _hw(run_dir)
    cell = str(slot.parent.relative_to(sweep_dir))
    return RunRecord(
        name=str(slot.relative_to(sweep_dir)),
        cell=cell,
        map_name=cfg.env.map_name,
        alg=cfg.learner.alg,
        method=sp.method,
        target_sparsity=None if sp.method == "dense" else sp.sparsity,
        variant=cell.split("+", 1)[1] if "+" in cell else None,
        seed=run.seed,
        state=status.get("state") or "unknown",
        t_max=run.t_max,
        test_interval=run.test_interval,
        t_env=int(_num(last.get("t_env", 0))) if last else 0,
        evals=eval_points(rows, run.test_interval, run.log_interval),
        flops_train=_num(last.get("flops_train_ratio")),
        flops_test=_num(last.get("flops_test_ratio")),
        sparsity=_num(last.get("sparsity")),
        hw_profile=profile,
        hw_speedup=speedup,
        hw_energy_ratio=energy,
        wall_s=_num(result.get("wall_s")),
        attempts=int(status.get("attempts", 0)),
        run_dir=str(run_dir.relative_to(sweep_dir)),
    )


def read_sweep(sweep_dir: str | Path) -> list[RunRecord]:
    """Every started run of a sweep folder, sorted by cell and seed."""
    root = Path(sweep_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"sweep folder {str(sweep_dir)!r} does not exist")
    slots = sorted({p.parent for p in root.glob(f"*/s*/{STATUS_FILE}")})
    records = [read_run(root, s) for s in slots if find_run_dir(s) is not None]
    return sorted(records, key=lambda r: (r.cell, r.seed))
