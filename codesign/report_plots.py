"""The plots of the end-of-run report (:mod:`codesign.report`), written to ``RUN_DIR/plots``.

- ``learning_curve.png``: test win rate and return against environment steps;
- ``sparsity_flops.png``: density per layer of the final masks and the share of each
  role's initial connections that topology updates replaced (:func:`mask_history`), with
  the overall sparsity and FLOPs ratios in the title;
- ``hw_cost.png``: cycles and energy per training iteration against environment steps on
  the profile, with the dense network on the profile and on the baseline;
- ``hw_totals.png``: the whole run's hardware time and energy on the three, with MAST's
  speedup and energy gain on the bars.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from codesign.mask_plot import write_run_mask_figure
from cost_models.plotting import save_png
from mast.run_folder import MASKS_DIR, mask_snapshots, snapshot_step

if TYPE_CHECKING:
    from mast.sparsity.layer import SparseLayer

__all__ = ["PLOTS", "csv_column", "csv_float", "mask_history", "write_plots"]

PLOTS = "plots"
"""Folder of the plots inside a run folder."""


def csv_float(v: str | None) -> float:
    """A CSV cell as a float (empty or malformed: NaN)."""
    try:
        return float(v) if v not in (None, "") else math.nan
    except ValueError:
        return math.nan


def csv_column(rows: Sequence[dict[str, str]], key: str) -> list[float]:
    """Column ``key`` of CSV rows as floats (:func:`csv_float`)."""
    return [csv_float(r.get(key)) for r in rows]


def _figure(ncols: int = 1, width: float = 5.4):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, 4.0), layout="constrained")
    return fig, [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]


def mask_history(run_dir: Path) -> tuple[list[int], list[SparseLayer], dict[str, list[float]]]:
    """The run's mask snapshots: their ``t_env``, the final layers, and per role (agent,
    mixer, hypernet) the fraction of the role's connections at the first snapshot that are
    not connected in each snapshot (0 throughout for a static topology)."""
    from mast.sparsity.layer import load_layers

    found = mask_snapshots(run_dir) if (run_dir / MASKS_DIR).is_dir() else []
    snaps = [(snapshot_step(p), p) for p in found]
    ts: list[int] = []
    changed: dict[str, list[float]] = {}
    first: dict = {}
    layers: list = []
    for t, path in snaps:
        layers = load_layers(path)
        first = first or {lay.name: lay.mask for lay in layers}
        ts.append(t)
        kept: dict[str, list[int]] = {}
        for lay in layers:
            k = kept.setdefault(lay.role, [0, 0])
            k[0] += int((lay.mask & first[lay.name]).sum())
            k[1] += int(first[lay.name].sum())
        for role, (both, before) in kept.items():
            changed.setdefault(role, []).append(1.0 - both / max(1, before))
    return ts, layers, changed


_ROLE_COLOURS = {"agent": "tab:blue", "mixer": "tab:orange", "hypernet": "tab:green"}


def _sparsity_plot(run_dir: Path, metrics, out: Path) -> None:
    """Per-layer density of the final masks and how much each role's topology changed."""
    from cost_models.plotting import steps_axis

    last = metrics[-1]
    ts, layers, changed = mask_history(run_dir)
    fig, (a, b) = _figure(2, 6.2)
    train, test = (csv_float(last.get(f"flops_{k}_ratio")) for k in ("train", "test"))
    fig.suptitle(
        f"overall sparsity {csv_float(last.get('sparsity')):.3f}; FLOPs / dense: train "
        f"{train:.3f}, test {test:.3f}"
    )
    if not ts:
        a.text(0.5, 0.5, "no mask snapshots", ha="center", transform=a.transAxes)
        b.axis("off")
        save_png(fig, out / "sparsity_flops.png")
        return
    dens = [100 * float(lay.mask.mean()) for lay in layers]
    bars = a.barh(
        [lay.name.removesuffix(".weight") for lay in layers],
        dens,
        color=[_ROLE_COLOURS.get(lay.role, "gray") for lay in layers],
    )
    a.bar_label(
        bars,
        labels=[f"{d:.1f}% ({lay.nnz:,})" for d, lay in zip(dens, layers, strict=True)],
        padding=2,
        fontsize=7,
    )
    a.invert_yaxis()
    a.set_xticks(range(0, 101, 20))
    a.tick_params(axis="y", labelsize=7)
    a.set(
        xlabel="density of the final masks (%), (non-zeros)",
        xlim=(0, 100 * 1.3),
        title="density per layer (colour: role)",
    )
    for role, ys in changed.items():
        c = _ROLE_COLOURS.get(role, "gray")
        b.plot(
            ts,
            [100 * y for y in ys],
            marker="o",
            ms=3,
            color=c,
            label=f"{role}: {100 * ys[-1]:.1f}%",
        )
    steps_axis(b)
    b.set(ylabel="initial connections replaced (%)", title="topology change by role")
    b.set_ylim(0, max(1.0, 100 * max(max(v) for v in changed.values())) * 1.15)
    b.legend(fontsize=8, loc="lower right", title="final", title_fontsize=8)
    b.grid(alpha=0.3)
    save_png(fig, out / "sparsity_flops.png")


def _hw_cost_plot(rows, meta, out: Path) -> None:
    """Per-iteration cycles and energy over the run, on linear axes with labelled values."""
    from cost_models.plotting import steps_axis

    te = csv_column(rows, "t_env")
    prof, base = meta["profile"]["name"], meta["baseline"]["name"]
    fig, axes = _figure(2)
    for ax, key, scale, unit, what in (
        (axes[0], "train_cycles", 1e-6, "million cycles", "cycles"),
        (axes[1], "train_energy_j", 1e3, "mJ", "energy"),
    ):
        ys = [v * scale for v in csv_column(rows, key)]
        dense, dense_b = meta["dense"][key] * scale, meta["dense_baseline"][key] * scale
        ax.step(te, ys, where="post", color="tab:blue", label=f"MAST on {prof}")
        ax.axhline(dense, ls="--", color="gray", label=f"dense on {prof}")
        ax.axhline(dense_b, ls=":", color="black", label=f"dense on {base}")
        for y, ref, c in (
            (ys[-1], None, "tab:blue"),
            (dense, ys[-1], "gray"),
            (dense_b, ys[-1], "black"),
        ):
            text = f"{y:.3g}" + (f" ({y / ref:.1f}x MAST)" if ref else "")
            ax.annotate(
                text,
                (te[-1], y),
                textcoords="offset points",
                xytext=(-4, 4),
                ha="right",
                fontsize=8,
                color=c,
            )
        steps_axis(ax)
        ax.set(
            ylabel=f"{unit} per training iteration",
            ylim=(0, max(ys + [dense, dense_b]) * 1.15),
            title=f"{what} per training iteration",
        )
        ax.legend(fontsize=7, loc="center right")
    save_png(fig, out / "hw_cost.png")


def _hw_totals_plot(rows, meta, out: Path) -> None:
    """The whole run's hardware time and energy, labelled with values and MAST's gain."""
    from cost_models.plotting import label_bars

    prof, base = meta["profile"]["name"], meta["baseline"]["name"]
    labels = [f"MAST\non {prof}", f"dense\non {prof}", f"dense\non {base}"]
    last = rows[-1]
    fig, axes = _figure(2)
    for ax, unit, what, keys in (
        (axes[0], "s", "time", ("cum_time_s", "cum_dense_time_s", "cum_baseline_time_s")),
        (axes[1], "J", "energy", ("cum_energy_j", "cum_dense_energy_j", "cum_baseline_energy_j")),
    ):
        vals = [csv_float(last[k]) for k in keys]
        bars = ax.bar(labels, vals, color=["tab:blue", "gray", "dimgray"])
        gain = "faster" if what == "time" else "lower"
        texts = [f"{vals[0]:.3g} {unit}"] + [
            f"{v:.3g} {unit}\nMAST {v / vals[0]:.2f}x {gain}" for v in vals[1:]
        ]
        label_bars(ax, bars, texts)
        ax.set(
            ylabel=f"hardware {what} of the run ({unit})",
            ylim=(0, max(vals) * 1.3),
            title=f"whole-run {what} (modelled)",
        )
        ax.tick_params(axis="x", labelsize=9)
    save_png(fig, out / "hw_totals.png")


def write_plots(run_dir: Path, metrics, trace) -> list[str]:
    """Write the plots of ``metrics`` (rows of ``metrics.csv``) and, if not ``None``, of
    ``trace`` (rows of ``hw_trace.csv``, ``hw_meta.json``); returns their file names."""
    from cost_models.plotting import steps_axis

    out = run_dir / PLOTS
    out.mkdir(exist_ok=True)
    t = csv_column(metrics, "t_env")
    fig, (a, b) = _figure(2)
    for ax, key, what, colour in (
        (a, "test_win_rate", "test win rate", "tab:blue"),
        (b, "test_return", "test return", "tab:green"),
    ):
        pts = [(x, y) for x, y in zip(t, csv_column(metrics, key), strict=True) if y == y]
        ax.plot([x for x, _ in pts], [y for _, y in pts], marker="o", ms=3, color=colour)
        if pts:  # the final and the best evaluation, labelled
            best = max(pts, key=lambda p: p[1])
            for (x, y), tag in ((pts[-1], "final"), (best, "best")):
                if tag == "best" and (x, y) == pts[-1]:
                    continue
                ax.annotate(
                    f"{tag} {y:.3g}",
                    (x, y),
                    textcoords="offset points",
                    xytext=(-6, 8),
                    ha="right",
                    fontsize=8,
                    color=colour,
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none"},
                )
        ax.set(title=f"{what} (greedy evaluation)")
        steps_axis(ax)
        ax.grid(alpha=0.3)
    a.set(ylabel="win rate", ylim=(-0.02, 1.1))
    b.set(ylabel="mean return per episode")
    b.margins(y=0.15)
    save_png(fig, out / "learning_curve.png")
    names = ["learning_curve.png", "sparsity_flops.png"]
    _sparsity_plot(run_dir, metrics, out)
    names += [n for n in [write_run_mask_figure(run_dir, out)] if n]
    if trace is None:
        return names
    rows, meta = trace
    _hw_cost_plot(rows, meta, out)
    _hw_totals_plot(rows, meta, out)
    return [*names, "hw_cost.png", "hw_totals.png"]
