"""Writing a :class:`~cost_models.sweep.SweepResult`: Markdown, CSV, JSON and PNG plots."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from cost_models.energy import COMPONENTS  # noqa: E402
from cost_models.plotting import label_points, readable_y, save_png  # noqa: E402
from cost_models.sweep import SweepResult  # noqa: E402
from mast.atomicio import atomic_open, write_text  # noqa: E402

__all__ = ["REPORT_FILES", "write_report", "markdown"]

REPORT_FILES: tuple[str, ...] = (
    "report.md",
    "summary.csv",
    "layers.csv",
    "report.json",
    "cycles_energy.png",
    "energy_breakdown.png",
)
"""Files :func:`write_report` creates."""

_COLUMNS = (
    ("sparsity", "sparsity", "{:.2f}"),
    ("train cycles", "train_cycles", "{:,.0f}"),
    ("train ms", "train_time_s", "{:.3f}"),
    ("train mJ", "train_energy_j", "{:.3f}"),
    ("train DRAM MB", "train_dram_bytes", "{:.2f}"),
    ("PE util (compute / e2e)", ("train_util_compute", "train_util"), "{:.2f} / {:.2f}"),
    ("speedup vs dense", "train_speedup_vs_dense", "{:.2f}x"),
    ("energy gain vs dense", "train_energy_gain_vs_dense", "{:.2f}x"),
    ("speedup vs baseline", "train_speedup_vs_baseline", "{:.2f}x"),
    ("energy gain vs baseline", "train_energy_gain_vs_baseline", "{:.2f}x"),
)
_INFER_COLUMNS = (
    ("sparsity", "sparsity", "{:.2f}"),
    ("cycles / step", "infer_cycles", "{:,.0f}"),
    ("us / step", "infer_time_s", "{:.3f}"),
    ("uJ / step", "infer_energy_j", "{:.3f}"),
    ("PE util (compute / e2e)", ("infer_util_compute", "infer_util"), "{:.2f} / {:.2f}"),
    ("speedup vs dense", "infer_speedup_vs_dense", "{:.2f}x"),
    ("energy gain vs dense", "infer_energy_gain_vs_dense", "{:.2f}x"),
    ("speedup vs baseline", "infer_speedup_vs_baseline", "{:.2f}x"),
    ("energy gain vs baseline", "infer_energy_gain_vs_baseline", "{:.2f}x"),
)
_SCALE = {
    "train_time_s": 1e3,
    "train_energy_j": 1e3,
    "train_dram_bytes": 1e-6,
    "infer_time_s": 1e6,
    "infer_energy_j": 1e6,
}


def _cell(row: dict[str, Any], key, fmt: str) -> str:
    keys = key if isinstance(key, tuple) else (key,)
    return fmt.format(*(row[k] * _SCALE.get(k, 1.0) for k in keys))


def _table(rows: list[dict[str, Any]], columns) -> list[str]:
    lines = ["| " + " | ".join(c[0] for c in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(r, k, f) for _, k, f in columns) + " |" for r in rows]
    return lines


def markdown(result: SweepResult) -> str:
    """The report as Markdown: training and inference tables plus the model's notes."""
    rows = result.table()
    first = result.levels[0].report
    run = first.run
    out = [
        f"# Accelerator cost report: {result.profile} on {result.workload}",
        "",
        f"Dense references: the dense network on {result.profile} and on the baseline "
        f"{result.baseline}. Speedup and energy gain are reference / this (> 1 is better).",
        "",
        f"Training iteration: B={run.batch_size} episodes x T={run.steps} steps; topology "
        f"update every {run.update_interval_iters} iterations (amortised); "
        f"{run.env_steps_per_iteration:g} env steps per iteration; t_max={run.t_max:,}.",
        "Cycles are the list-scheduled makespan of the iteration's kernel graph (PE array, "
        "vector unit and DRAM channel overlap where dependencies allow).",
        "",
        "Workloads: " + "; ".join(c.report.label for c in result.levels) + ".",
        "",
        *[f"- {line}" for line in result.basis],
        *([""] if result.basis else []),
        "## Training (one iteration)",
        "",
        *_table(rows, _COLUMNS),
        "",
        "## Inference (one environment step, all agents)",
        "",
        *_table(rows, _INFER_COLUMNS),
        "",
        "## Whole run",
        "",
        f"A run of t_max = {run.t_max:,} environment steps (`--t-max`; with `--masks` the "
        "training run's own t_max; without either 2,000,000, the paper's run length, "
        "which is longer than mast-train's default run).",
        "",
        "| sparsity | train cycles / env step | run time s | run energy J |",
        "|---|---|---|---|",
    ]
    out += [
        f"| {r['sparsity']:.2f} | {r['train_cycles_per_env_step']:,.0f} | "
        f"{r['run_time_s']:.1f} | {r['run_energy_j']:.2f} |"
        for r in rows
    ]
    crit = ", ".join(
        f"{c.report.sparsity:.2f}: {c.report.training.critical_path:,.0f}" for c in result.levels
    )
    out += ["", f"Critical path of the training graph (cycles, by sparsity): {crit}.", ""]
    notes = sorted({n for c in result.levels for n in c.report.notes})
    if notes:
        out += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    out += [
        "Files: `summary.csv` (this table), `layers.csv` (per layer x phase), "
        "`report.json` (everything), `cycles_energy.png`, `energy_breakdown.png`.",
        "",
    ]
    return "\n".join(out)


def _layers_csv(result: SweepResult, path: Path) -> None:
    with atomic_open(path, "w", newline="") as fh:
        w = None
        for c in result.levels:
            text = c.report.rows_csv().splitlines()
            rdr = csv.reader(text)
            head = next(rdr)
            if w is None:
                w = csv.writer(fh)
                w.writerow(["sparsity", *head])
            for row in rdr:
                w.writerow([f"{c.report.sparsity:.4f}", *row])


def _plots(result: SweepResult, out: Path) -> None:
    rows = result.table()
    s = [r["sparsity"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), layout="constrained")
    fig.suptitle(
        f"{result.profile} on {result.workload} (modelled); labels: MAST's speedup or energy "
        "gain over the dense network on the same profile"
    )
    panels = (
        ("train_time_s", "train_speedup_vs_dense", "training iteration", "time (ms)", 1e3),
        (
            "train_energy_j",
            "train_energy_gain_vs_dense",
            "training iteration",
            "energy (mJ)",
            1e3,
        ),
        ("infer_time_s", "infer_speedup_vs_dense", "acting step (all agents)", "time (us)", 1e6),
    )
    for ax, (key, ref, what, unit, scale) in zip(axes, panels, strict=True):
        ys = [r[key] * scale for r in rows]
        dense = [y * r[ref] for y, r in zip(ys, rows, strict=True)]
        base_key = ref.replace("dense", "baseline")
        base = [y * r[base_key] for y, r in zip(ys, rows, strict=True)]
        ax.plot(s, ys, "o-", label=f"{result.profile}")
        ax.plot(s, dense, "--", color="gray", label=f"dense on {result.profile}")
        ax.plot(s, base, ":", color="black", label=f"dense on {result.baseline}")
        label_points(ax, s, ys, [f"{y:.3g}\n{r[ref]:.2f}x" for y, r in zip(ys, rows, strict=True)])
        readable_y(ax, ys + dense + base)
        ax.set(
            xlabel="overall weight sparsity", ylabel=f"{unit} per {what}", title=f"{what}: {unit}"
        )
        ax.set_xlim(min(s) - 0.05, max(s) + 0.12)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    save_png(fig, out / "cycles_energy.png")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7.5, 4.5), layout="constrained")
    bottom = [0.0] * len(rows)
    labels = [f"{r['sparsity']:.2f}" for r in rows]
    for comp in COMPONENTS:
        vals = [c.report.training.energy_pj[comp] * 1e-9 for c in result.levels]
        ax.bar(labels, vals, bottom=bottom, label=comp)
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    for i, total in enumerate(bottom):
        ax.annotate(
            f"{total:.3g} mJ",
            (i, total),
            textcoords="offset points",
            xytext=(0, 3),
            ha="center",
            fontsize=9,
        )
    ax.set_ylim(0, max(bottom) * 1.12)
    ax.set_xlabel("overall weight sparsity")
    ax.set_ylabel("energy per training iteration (mJ)")
    ax.set_title(f"training energy by component, {result.profile} on {result.workload}")
    ax.legend(fontsize=8)
    save_png(fig, out / "energy_breakdown.png")
    plt.close(fig)


def write_report(result: SweepResult, out: Path) -> list[Path]:
    """Write every file of :data:`REPORT_FILES` into ``out`` (created if missing)."""
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "report.md", markdown(result))
    rows = result.table()
    with atomic_open(out / "summary.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    _layers_csv(result, out / "layers.csv")
    doc = {
        "profile": result.profile,
        "baseline": result.baseline,
        "workload": result.workload,
        "summary": rows,
        "reports": [c.report.to_dict() for c in result.levels],
        "dense": result.levels[0].dense.to_dict(),
        "baseline_dense": result.levels[0].baseline.to_dict(),
    }
    write_text(out / "report.json", json.dumps(doc, indent=1, default=str))
    _plots(result, out)
    return [out / f for f in REPORT_FILES]
