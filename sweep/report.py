"""``mast-sweep report``: ``results.csv``, ``summary.md`` and plots of a sweep folder.

- ``results.csv``: one row per started run (:data:`RESULT_COLUMNS`);
- ``summary.md``: per map, one row per method (algorithm, method, sparsity, variant): the
  median final test win, and the score, the mean test win rate over each run's last ``k``
  evaluation points, as median, IQM and mean with 95 % bootstrap CIs (:mod:`sweep.stats`),
  IQM as % of dense, the probability of improvement over dense, FLOPs ratios, hardware
  speedup and energy ratio (runs with ``--hw-profile``), wall time and env steps/s; then
  the same estimates aggregated over the maps;
- ``plots/sample_efficiency_<map>.png``: IQM test win rate with 95 % CI bands against
  environment steps (the j-th evaluation of every run, at the runs' median step count);
- ``plots/performance_profile.png``: fraction of runs whose score exceeds tau, with CIs.

Only finished runs (``done``) enter the statistics; the others are listed.
"""

from __future__ import annotations

import csv
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sweep.results import RunRecord, read_sweep
from sweep.stats import aggregate_estimates, cell_estimates, curve_iqm, improvement, seeded

__all__ = ["RESULT_COLUMNS", "Report", "write_report"]

RESULT_COLUMNS = (
    "run", "map", "alg", "method", "target_sparsity", "variant", "seed", "state", "t_env", "t_max",
    "evals", "final_test_win", "last_k_mean", "flops_train", "flops_test", "sparsity",
    "hw_profile", "hw_speedup", "hw_energy_ratio", "wall_s", "env_steps_per_s", "attempts",
    "run_dir",
)  # fmt: skip
"""Columns of ``results.csv`` (``last_k_mean``: mean test win of the last k evaluations)."""


@dataclass(frozen=True)
class Report:
    """Paths written by :func:`write_report`."""

    results_csv: Path
    summary_md: Path
    plots: tuple[Path, ...]


def _label(r: RunRecord) -> str:
    sp = "" if r.target_sparsity is None else f" {r.target_sparsity:g}"
    var = "" if r.variant is None else f" +{r.variant}"
    return f"{r.alg} {r.method}{sp}{var}"


def _row(r: RunRecord, k: int) -> dict[str, object]:
    return {
        "run": r.name, "map": r.map_name, "alg": r.alg, "method": r.method,
        "target_sparsity": "" if r.target_sparsity is None else r.target_sparsity,
        "variant": r.variant or "",
        "seed": r.seed, "state": r.state, "t_env": r.t_env, "t_max": r.t_max,
        "evals": len(r.evals), "final_test_win": r.final_win, "last_k_mean": r.last_k_mean(k),
        "flops_train": r.flops_train, "flops_test": r.flops_test, "sparsity": r.sparsity,
        "hw_profile": r.hw_profile or "", "hw_speedup": r.hw_speedup,
        "hw_energy_ratio": r.hw_energy_ratio, "wall_s": r.wall_s,
        "env_steps_per_s": r.steps_per_s, "attempts": r.attempts, "run_dir": r.run_dir,
    }  # fmt: skip


def _mean(xs: list[float]) -> float:
    xs = [x for x in xs if not math.isnan(x)]
    return statistics.mean(xs) if xs else math.nan


def _f(x: float, spec: str = ".3f") -> str:
    return "-" if math.isnan(x) else format(x, spec)


def _groups(records: list[RunRecord]) -> dict[str, dict[str, list[RunRecord]]]:
    """map -> method label -> finished runs (in grid order)."""
    out: dict[str, dict[str, list[RunRecord]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        if r.state == "done":
            out[r.map_name][_label(r)].append(r)
    return out


def _dense_of(label: str) -> str:
    return f"{label.split()[0]} dense"


def _map_section(map_name: str, cells: dict[str, list[RunRecord]], k: int, reps: int) -> list[str]:
    scores = {lab: np.array([r.last_k_mean(k) for r in rs]) for lab, rs in cells.items()}
    est = cell_estimates(scores, reps=reps)
    lines = [
        f"### {map_name}",
        "",
        f"| method | runs | final win, median | last-{k} mean: median [95% CI] | IQM [95% CI] "
        "| mean [95% CI] | IQM % of dense | P(better than dense) [95% CI] | FLOPs train "
        "| FLOPs test | hw speedup | hw energy ratio | wall s/run | env steps/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for lab, rs in cells.items():
        dense = _dense_of(lab)
        e = est[lab]
        pct, poi = "-", "-"
        if dense in est and lab != dense:
            ref = est[dense]["iqm"].value
            pct = f"{100 * e['iqm'].value / ref:.0f} %" if ref > 0 else "-"
            poi = improvement(scores[lab], scores[dense], reps=reps).fmt(2)
        lines.append(
            f"| {lab} | {len(rs)} | {statistics.median(r.final_win for r in rs):.3f} "
            f"| {e['median'].fmt()} | {e['iqm'].fmt()} | {e['mean'].fmt()} | {pct} | {poi} "
            f"| {_f(_mean([r.flops_train for r in rs]), '.4f')} "
            f"| {_f(_mean([r.flops_test for r in rs]), '.4f')} "
            f"| {_f(_mean([r.hw_speedup for r in rs]), '.2f')} "
            f"| {_f(_mean([r.hw_energy_ratio for r in rs]), '.2f')} "
            f"| {_f(_mean([r.wall_s for r in rs]), '.0f')} "
            f"| {_f(_mean([r.steps_per_s for r in rs]), '.0f')} |"
        )
    return [*lines, ""]


def _aggregate(groups: dict[str, dict[str, list[RunRecord]]], k: int, reps: int) -> list[str]:
    """Over maps: methods that have the same number of finished runs on every map."""
    maps = list(groups)
    labels = [lab for lab in groups[maps[0]] if all(lab in groups[m] for m in maps)]
    n = {lab: {len(groups[m][lab]) for m in maps} for lab in labels}
    labels = [lab for lab in labels if len(n[lab]) == 1]
    if len(maps) < 2 or not labels:
        return []
    scores = {
        lab: np.array([[r.last_k_mean(k) for r in groups[m][lab]] for m in maps]).T
        for lab in labels
    }
    est = aggregate_estimates(scores, reps=reps)
    lines = [
        f"### All maps ({', '.join(maps)})",
        "",
        "rliable's aggregates: median and mean of the per-map means, IQM over all runs; "
        "CIs resample runs within each map.",
        "",
        "| method | runs per map | median [95% CI] | IQM [95% CI] | mean [95% CI] "
        "| P(better than dense) [95% CI] |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for lab in labels:
        dense = _dense_of(lab)
        poi = "-"
        if dense in scores and lab != dense:
            poi = improvement(scores[lab], scores[dense], reps=reps).fmt(2)
        e = est[lab]
        lines.append(
            f"| {lab} | {n[lab].pop()} | {e['median'].fmt()} | {e['iqm'].fmt()} "
            f"| {e['mean'].fmt()} | {poi} |"
        )
    return [*lines, ""]


def _curves_plot(path: Path, map_name: str, cells: dict[str, list[RunRecord]], reps: int):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for lab, rs in cells.items():
        n = min(len(r.evals) for r in rs)
        if n == 0:
            continue
        curves = np.array([[e.win_rate for e in r.evals[:n]] for r in rs])
        x = np.median(np.array([[e.t_env for e in r.evals[:n]] for r in rs]), axis=0)
        point, interval = curve_iqm({lab: curves}, reps=reps)
        ax.plot(x, point[lab], marker="o", ms=3, label=f"{lab} ({len(rs)} runs)")
        ax.fill_between(x, interval[lab][0], interval[lab][1], alpha=0.2)
    ax.set(xlabel="environment steps", ylabel="test win rate (IQM, 95% CI)", title=map_name)
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _profile_plot(path: Path, groups: dict[str, dict[str, list[RunRecord]]], k: int, reps: int):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from rliable import library, plot_utils

    maps = list(groups)
    labels = [lab for lab in groups[maps[0]] if all(lab in groups[m] for m in maps)]
    labels = [lab for lab in labels if len({len(groups[m][lab]) for m in maps}) == 1]
    if not labels:
        return False
    scores = {
        lab: np.array([[r.last_k_mean(k) for r in groups[m][lab]] for m in maps]).T
        for lab in labels
    }
    taus = np.linspace(0.0, 1.0, 41)
    with seeded(0):
        profiles, cis = library.create_performance_profile(scores, taus, reps=reps)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    plot_utils.plot_performance_profiles(
        profiles, taus, performance_profile_cis=cis, ax=ax,
        xlabel=rf"last-{k} mean test win rate ($\tau$)", labelsize="medium",
        ticklabelsize="medium",
    )  # fmt: skip
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def write_report(sweep_dir: str | Path, k: int = 5, reps: int = 2000) -> Report:
    """Write ``results.csv``, ``summary.md`` and the plots into ``sweep_dir``.

    Raises
    ------
    FileNotFoundError
        ``sweep_dir`` does not exist.
    ValueError
        ``k`` < 1, or no run of the sweep has started.
    """
    if k < 1 or reps < 1:
        raise ValueError(f"--last-k and --reps must be >= 1, got {k} and {reps}")
    root = Path(sweep_dir)
    records = read_sweep(root)
    if not records:
        raise ValueError(f"sweep folder {str(sweep_dir)!r} has no runs")
    csv_path = root / "results.csv"
    with open(csv_path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=RESULT_COLUMNS)
        w.writeheader()
        w.writerows(_row(r, k) for r in records)
    groups = _groups(records)
    plots: list[Path] = []
    (root / "plots").mkdir(exist_ok=True)
    lines = [
        f"# Sweep {root.name}",
        "",
        f"{len(records)} runs started, {sum(r.state == 'done' for r in records)} finished. "
        f"Score: each run's mean test win rate over its last {k} evaluation points. "
        f"Median, IQM and mean over runs with 95 % stratified bootstrap CIs ({reps} "
        "resamples, rliable); P(better than dense): probability of improvement over the "
        "same algorithm's plain dense runs (no variant); hw ratios: whole-run accelerator "
        "time and energy of the dense network over the run's (`--hw-profile`).",
        "",
    ]
    unfinished = [r for r in records if r.state != "done"]
    if unfinished:
        names = ", ".join(f"{r.name} ({r.state}, {r.t_env} steps)" for r in unfinished)
        lines += [f"Not in the statistics (unfinished): {names}", ""]
    for map_name, cells in groups.items():
        lines += _map_section(map_name, cells, k, reps)
        p = root / "plots" / f"sample_efficiency_{map_name}.png"
        _curves_plot(p, map_name, cells, reps=min(reps, 500))
        plots.append(p)
    if groups:
        lines += _aggregate(groups, k, reps)
        p = root / "plots" / "performance_profile.png"
        if _profile_plot(p, groups, k, reps):
            plots.append(p)
    lines += ["## Plots", ""] + [f"![{p.stem}](plots/{p.name})" for p in plots] + [""]
    md = root / "summary.md"
    md.write_text("\n".join(lines))
    return Report(csv_path, md, tuple(plots))
