"""End-of-run report: ``report.md``, ``report.json`` and PNG plots in a run folder.

:func:`write_run_report` reads what a run wrote (``config.yaml``, ``metrics.csv`` and,
with ``--hw-profile``, ``hw_trace.csv`` + ``hw_meta.json``) and writes:

- ``plots/learning_curve.png``: test win rate (and return) against environment steps;
- ``plots/sparsity_flops.png``: density per layer of the final masks and the fraction of
  each layer's initial connections replaced over the run (from ``masks/``); the overall
  sparsity and FLOPs ratios in its title;
- ``plots/hw_cost.png``: cycles and energy per training iteration against environment
  steps on the profile, with the dense network on the profile and on the baseline;
- ``plots/hw_totals.png``: the whole run's hardware time and energy on the three, with
  MAST's speedup and energy gain on the bars;
- ``report.json``: the figures of the tables below;
- ``report.md``: the tables and plots, and the accelerator resource estimate when a
  ``resources.json`` of ``mast-hw synth`` for the profile exists (in ``RUN_DIR/synth/*/``
  or ``build/synth/<profile>-*/``), "not synthesised" otherwise.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from cost_models.plotting import save_png
from mast.atomicio import write_text

if TYPE_CHECKING:
    from mast.sparsity.layer import SparseLayer

__all__ = ["find_synthesis", "hardware_lines", "run_summary", "write_run_report"]

PLOTS = "plots"


def _num(v: str | None) -> float:
    try:
        return float(v) if v not in (None, "") else math.nan
    except ValueError:
        return math.nan


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _col(rows: Sequence[dict[str, str]], key: str) -> list[float]:
    return [_num(r.get(key)) for r in rows]


def find_synthesis(
    run_dir: Path, profile: str, roots: Sequence[Path] = (Path("build") / "synth",)
) -> list[dict]:
    """``resources.json`` results of ``mast-hw synth`` for ``profile`` (any target)."""
    found = []
    candidates = list((run_dir / "synth").glob("*/resources.json"))
    for root in roots:
        candidates += sorted(Path(root).glob(f"{profile}-*/resources.json"))
    for path in candidates:
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if data.get("profile") == profile:
            data["path"] = str(path)
            found.append(data)
    return found


def run_summary(run_dir: str | Path) -> dict[str, Any]:
    """The figures of the report as a JSON-ready dict (see the module docstring)."""
    run_dir = Path(run_dir)
    metrics_path = run_dir / "metrics.csv"
    if not metrics_path.is_file():
        raise FileNotFoundError(f"run folder {str(run_dir)!r} has no metrics.csv")
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    metrics = _read_csv(metrics_path)
    last = metrics[-1]
    tested = [r for r in metrics if not math.isnan(_num(r.get("test_win_rate")))]
    out: dict[str, Any] = {
        "run_dir": str(run_dir),
        "config": {
            "alg": cfg.get("learner", {}).get("alg"),
            "method": cfg.get("sparsity", {}).get("method"),
            "map": cfg.get("env", {}).get("map_name"),
            "target_sparsity": cfg.get("sparsity", {}).get("sparsity"),
            "hw_aware_growth": cfg.get("sparsity", {}).get("hw_aware_growth"),
            "t_max": cfg.get("run", {}).get("t_max"),
            "seed": cfg.get("run", {}).get("seed"),
        },
        "final": {
            k: _num(last.get(k))
            for k in (
                "t_env",
                "test_win_rate",
                "test_return",
                "sparsity",
                "size_ratio",
                "flops_train_ratio",
                "flops_test_ratio",
                "topology_updates",
            )
        },
        "best_test_win_rate": max((_num(r["test_win_rate"]) for r in tested), default=math.nan),
        "hardware": None,
    }
    trace_path = run_dir / "hw_trace.csv"
    if trace_path.is_file():
        out["hardware"] = _hw_summary(run_dir, _read_csv(trace_path))
    return out


def _hw_summary(run_dir: Path, trace: list[dict[str, str]]) -> dict[str, Any]:
    meta = json.loads((run_dir / "hw_meta.json").read_text())
    last = trace[-1]
    prof, base = meta["profile"]["name"], meta["baseline"]["name"]
    cum = {k[4:]: _num(v) for k, v in last.items() if k.startswith("cum_")}

    def ratio(a: float, b: float) -> float:
        return a / b if b else math.nan

    synth = find_synthesis(run_dir, prof)
    return {
        "profile": prof,
        "baseline": base,
        "snapshots": len(trace),
        "costing_s": sum(_num(r.get("costing_s")) for r in trace if r.get("costing_s")),
        "final_snapshot": {
            k: _num(last[k])
            for k in (
                "t_env",
                "sparsity",
                "train_cycles",
                "train_energy_j",
                "train_dram_bytes",
                "train_sram_bytes",
                "train_util",
                "infer_cycles",
                "infer_energy_j",
                "infer_util",
                "update_cycles",
                "update_energy_j",
                "speedup_vs_dense",
                "energy_gain_vs_dense",
                "speedup_vs_baseline",
                "energy_gain_vs_baseline",
                "infer_speedup_vs_dense",
                "infer_speedup_vs_baseline",
            )
        },
        "dense": meta["dense"],
        "dense_baseline": meta["dense_baseline"],
        "totals": {
            "time_s": cum["time_s"],
            "energy_j": cum["energy_j"],
            "dense_time_s": cum["dense_time_s"],
            "dense_energy_j": cum["dense_energy_j"],
            "baseline_time_s": cum["baseline_time_s"],
            "baseline_energy_j": cum["baseline_energy_j"],
            "speedup_vs_dense": ratio(cum["dense_time_s"], cum["time_s"]),
            "energy_gain_vs_dense": ratio(cum["dense_energy_j"], cum["energy_j"]),
            "speedup_vs_baseline": ratio(cum["baseline_time_s"], cum["time_s"]),
            "energy_gain_vs_baseline": ratio(cum["baseline_energy_j"], cum["energy_j"]),
        },
        "verify": [
            {
                "t_env": int(_num(r["t_env"])),
                "layer": r["verify_layer"],
                "sim_cycles": int(_num(r["verify_sim_cycles"])),
                "rtl_cycles": int(_num(r["verify_rtl_cycles"])),
                "ok": r["verify_ok"] == "1",
            }
            for r in trace
            if r.get("verify_layer")
        ],
        "synthesis": [
            {
                "target": s.get("target"),
                "resources": {
                    k: s.get("resources", {}).get(k) for k in ("lut", "ff", "dsp", "bram")
                },
                "bram_unit": s.get("bram_unit"),
                "path": s["path"],
            }
            for s in synth
        ],
    }


def hardware_lines(summary: dict[str, Any]) -> list[str]:
    """End-of-run summary lines of a run's hardware figures (from :func:`run_summary`, the
    same figures ``report.md`` shows); empty without a hardware trace."""
    hw = summary["hardware"]
    if hw is None:
        return []
    p, b, fs, t = hw["profile"], hw["baseline"], hw["final_snapshot"], hw["totals"]
    rows = (
        ("speedup, one training iteration (hw_speedup)", fs, "speedup"),
        ("speedup, whole run", t, "speedup"),
        ("energy gain, whole run", t, "energy_gain"),
    )
    return [
        f"hardware (modelled), MAST over dense:  on {p} | on {b}",
        *(
            f"  {label + ':':46s} {_fmt(d[f'{k}_vs_dense'])}x | {_fmt(d[f'{k}_vs_baseline'])}x"
            for label, d, k in rows
        ),
    ]


# ------------------------------------------------------------------------------ plots
def _figure(ncols: int = 1, width: float = 5.4):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, 4.0), layout="constrained")
    return fig, [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]


def mask_history(run_dir: Path) -> tuple[list[int], list[SparseLayer], dict[str, list[float]]]:
    """The run's mask snapshots: their ``t_env``, the final layers, and per role (agent,
    mixer, hypernet) the fraction of the role's connections at the first snapshot that are
    not connected in each snapshot (0 throughout for a static topology)."""
    from mast.sparsity.layer import load_layers

    snaps = sorted((int(p.stem.split("_")[-1]), p) for p in (run_dir / "masks").glob("masks_*.npz"))
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
    fig.suptitle(
        f"overall sparsity {_num(last.get('sparsity')):.3f}; FLOPs / dense: train "
        f"{_num(last.get('flops_train_ratio')):.3f}, test {_num(last.get('flops_test_ratio')):.3f}"
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

    te = _col(rows, "t_env")
    prof, base = meta["profile"]["name"], meta["baseline"]["name"]
    fig, axes = _figure(2)
    for ax, key, scale, unit, what in (
        (axes[0], "train_cycles", 1e-6, "million cycles", "cycles"),
        (axes[1], "train_energy_j", 1e3, "mJ", "energy"),
    ):
        ys = [v * scale for v in _col(rows, key)]
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
        vals = [_num(last[k]) for k in keys]
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


def _plots(run_dir: Path, metrics, trace) -> list[str]:
    from cost_models.plotting import steps_axis

    out = run_dir / PLOTS
    out.mkdir(exist_ok=True)
    t = _col(metrics, "t_env")
    fig, (a, b) = _figure(2)
    a.plot(t, _col(metrics, "test_win_rate"), marker="o", ms=3)
    a.set(ylabel="test win rate (greedy)", ylim=(-0.02, 1.02), title="test win rate")
    b.plot(t, _col(metrics, "test_return"), marker="o", ms=3, color="tab:green")
    b.set(ylabel="mean test return", title="test return")
    for ax in (a, b):
        steps_axis(ax)
        ax.grid(alpha=0.3)
    save_png(fig, out / "learning_curve.png")
    names = ["learning_curve.png", "sparsity_flops.png"]
    _sparsity_plot(run_dir, metrics, out)
    if trace is None:
        return names
    rows, meta = trace
    _hw_cost_plot(rows, meta, out)
    _hw_totals_plot(rows, meta, out)
    return [*names, "hw_cost.png", "hw_totals.png"]


# ------------------------------------------------------------------------------ markdown
def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "n/a"
        return f"{v:.4g}"
    return str(v)


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_fmt(c) for c in r) + " |" for r in rows]
    return lines + [""]


def _basis(profile: str) -> tuple[str, ...]:
    """Clock origin and energy technology of a built-in profile (none for other names)."""
    from hw.clocks import basis_lines
    from hw.profiles import PROFILES

    return basis_lines(PROFILES[profile]) if profile in PROFILES else ()


def _markdown(s: dict[str, Any], plots: Sequence[str]) -> str:
    c, f = s["config"], s["final"]
    md = [
        f"# Run report: {c['alg']} / {c['method']} on {c['map']}",
        "",
        f"Run folder `{s['run_dir']}`, seed {c['seed']}, {_fmt(f['t_env'])} environment "
        f"steps (t_max {c['t_max']}), hardware-aware growth: {c['hw_aware_growth']}.",
        "",
        "## Learning",
        "",
    ]
    md += _table(
        ["figure", "value"],
        [
            ("final test win rate", f["test_win_rate"]),
            ("best test win rate", s["best_test_win_rate"]),
            ("final test return", f["test_return"]),
            ("sparsity", f["sparsity"]),
            ("size / dense", f["size_ratio"]),
            ("FLOPs train / dense", f["flops_train_ratio"]),
            ("FLOPs test / dense", f["flops_test_ratio"]),
            ("topology updates", f["topology_updates"]),
        ],
    )
    md += [
        f"![learning curve]({PLOTS}/learning_curve.png)",
        "",
        f"![sparsity and FLOPs]({PLOTS}/sparsity_flops.png)",
        "",
    ]
    hw = s["hardware"]
    if hw is None:
        md += ["## Hardware", "", "No hardware trace (trained with `--hw-profile none`).", ""]
        return "\n".join(md)
    p, b, fs, t = hw["profile"], hw["baseline"], hw["final_snapshot"], hw["totals"]
    d, db = hw["dense"], hw["dense_baseline"]
    md += [
        f"## Hardware: {p} (dense baseline {b})",
        "",
        f"{hw['snapshots']} trace rows (`hw_trace.csv`, {hw['costing_s']:.2f} s of host time "
        "spent costing). Per steady training iteration (without regrowth), per topology "
        "update and per acting step (all agents), final masks versus the dense network:",
        "",
        *[f"- {line}" for line in _basis(p)],
        "",
    ]
    md += _table(
        ["", f"MAST on {p}", f"dense on {p}", f"dense on {b}"],
        [
            ("train cycles / iteration", fs["train_cycles"], d["train_cycles"], db["train_cycles"]),
            (
                "train energy (J) / iteration",
                fs["train_energy_j"],
                d["train_energy_j"],
                db["train_energy_j"],
            ),
            (
                "train DRAM bytes / iteration",
                fs["train_dram_bytes"],
                d["train_dram_bytes"],
                db["train_dram_bytes"],
            ),
            ("train PE utilisation", fs["train_util"], d["train_util"], db["train_util"]),
            ("topology update: extra cycles", fs["update_cycles"], "-", "-"),
            ("topology update: extra energy (J)", fs["update_energy_j"], "-", "-"),
            ("inference cycles / step", fs["infer_cycles"], d["infer_cycles"], db["infer_cycles"]),
            (
                "inference energy (J) / step",
                fs["infer_energy_j"],
                d["infer_energy_j"],
                db["infer_energy_j"],
            ),
            ("inference PE utilisation", fs["infer_util"], d["infer_util"], db["infer_util"]),
        ],
    )
    md += [
        f"Speedup of the final masks per steady training iteration (`hw_speedup`, the "
        f"figure the progress line shows): {_fmt(fs['speedup_vs_dense'])}x over dense on "
        f"{p}, {_fmt(fs['speedup_vs_baseline'])}x over dense on {b}. The whole run's "
        "speedup below also counts the acting steps, the topology updates and the denser "
        "masks of earlier snapshots.",
        "",
        "Whole run (training iterations, topology updates and acting steps, integrated "
        "over the trace):",
        "",
    ]
    md += _table(
        ["", f"MAST on {p}", f"dense on {p}", f"dense on {b}"],
        [
            ("hardware time (s)", t["time_s"], t["dense_time_s"], t["baseline_time_s"]),
            ("energy (J)", t["energy_j"], t["dense_energy_j"], t["baseline_energy_j"]),
            ("whole-run speedup of MAST", 1.0, t["speedup_vs_dense"], t["speedup_vs_baseline"]),
            ("energy gain of MAST", 1.0, t["energy_gain_vs_dense"], t["energy_gain_vs_baseline"]),
        ],
    )
    md += [
        f"![hardware cost over training]({PLOTS}/hw_cost.png)",
        "",
        f"![hardware totals]({PLOTS}/hw_totals.png)",
        "",
    ]
    if hw["verify"]:
        bad = sum(not v["ok"] for v in hw["verify"])
        md += [
            "### RTL checks (`--hw-verify`)",
            "",
            f"{len(hw['verify'])} replays on the Verilated RTL, {bad} mismatches.",
            "",
        ]
        md += _table(
            ["t_env", "layer", "sim cycles", "RTL cycles", "ok"],
            [
                (v["t_env"], v["layer"], v["sim_cycles"], v["rtl_cycles"], v["ok"])
                for v in hw["verify"]
            ],
        )
    md += ["### Accelerator resources", ""]
    if hw["synthesis"]:
        md += _table(
            ["target", "LUT", "FF", "DSP", "BRAM", "source"],
            [
                (
                    r["target"],
                    r["resources"]["lut"],
                    r["resources"]["ff"],
                    r["resources"]["dsp"],
                    f"{_fmt(r['resources']['bram'])} {r['bram_unit'] or ''}".strip(),
                    r["path"],
                )
                for r in hw["synthesis"]
            ],
        )
    else:
        md += [
            f"{p}: not synthesised (run `mast-hw synth --profile {p} --target ice40|ecp5|xc7`"
            " and regenerate this report).",
            "",
        ]
    return "\n".join(md)


def _json_ready(v: Any) -> Any:
    """NaN / infinity -> ``None`` (strict JSON), recursively."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _json_ready(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_json_ready(x) for x in v]
    return v


def write_run_report(run_dir: str | Path) -> Path:
    """Write ``report.md``, ``report.json`` and ``plots/*.png`` into ``run_dir``.

    Returns the path of ``report.md``.

    Raises
    ------
    FileNotFoundError
        ``run_dir`` has no ``metrics.csv`` (or a trace without ``hw_meta.json``).
    """
    run_dir = Path(run_dir)
    summary = run_summary(run_dir)
    metrics = _read_csv(run_dir / "metrics.csv")
    trace = None
    if summary["hardware"] is not None:
        trace = (
            _read_csv(run_dir / "hw_trace.csv"),
            json.loads((run_dir / "hw_meta.json").read_text()),
        )
    summary["plots"] = [f"{PLOTS}/{n}" for n in _plots(run_dir, metrics, trace)]
    text = json.dumps(_json_ready(summary), indent=2, default=str)
    write_text(run_dir / "report.json", text + "\n")
    path = run_dir / "report.md"
    write_text(path, _markdown(summary, summary["plots"]))
    return path
