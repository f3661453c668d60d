"""End-of-run report: ``report.md``, ``report.json`` and PNG plots in a run folder.

:func:`write_run_report` reads what a run wrote (``config.yaml``, ``metrics.csv`` and,
with ``--hw-profile``, ``hw_trace.csv`` + ``hw_meta.json``) and writes:

- ``plots/*.png`` (:mod:`codesign.report_plots`): learning curve, density per layer and
  topology change, hardware cost per iteration and whole-run totals;
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
from typing import Any

import yaml

from codesign.mask_plot import allocation_markdown
from codesign.report_plots import PLOTS, csv_float, write_plots
from mast.atomicio import write_text
from mast.errors import UserError, reading

__all__ = ["find_synthesis", "hardware_lines", "run_summary", "write_run_report"]


TEXT_COLUMNS = frozenset({"event", "verify_layer"})
"""Columns of ``metrics.csv`` / ``hw_trace.csv`` that hold text; every other is a number."""


def _read_csv(
    path: Path, what: str = "table", required: Sequence[str] = ("t_env",)
) -> list[dict[str, str]]:
    """The rows of a run's CSV ``path``, checked: the ``required`` columns, at least one
    row, and a number (or nothing) in every cell outside :data:`TEXT_COLUMNS`.

    Raises :class:`mast.errors.UserError` naming the file, row and column of the first bad
    cell.
    """
    with reading(path, what, (OSError, ValueError, csv.Error)):
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
            columns = reader.fieldnames or []
    missing = [c for c in required if c not in columns]
    if missing:
        raise UserError(
            f"{what} {str(path)!r} has no column {missing[0]!r} (its header starts "
            f"{', '.join(columns[:4]) or 'empty'})"
        )
    if not rows:
        raise UserError(f"{what} {str(path)!r} has a header but no rows")
    for i, row in enumerate(rows, start=2):
        if None in row or None in row.values():
            raise UserError(
                f"{what} {str(path)!r} line {i}: {len(columns)} columns in the header, "
                f"a different number in the row"
            )
        for k, v in row.items():
            if k in TEXT_COLUMNS or v == "":
                continue
            try:
                float(v)
            except ValueError:
                raise UserError(
                    f"{what} {str(path)!r} line {i}: column {k!r} holds {v[:40]!r}, not a number"
                ) from None
    return rows


def _read_meta(run_dir: Path) -> dict[str, Any]:
    """``hw_meta.json`` of a run, checked for the entries the report reads."""
    path = run_dir / "hw_meta.json"
    with reading(path, "hardware metadata", (OSError, ValueError)):
        meta = json.loads(path.read_text())
    ok = isinstance(meta, dict) and all(isinstance(meta.get(k), dict) for k in META_KEYS)
    if not ok or not all(isinstance(meta[k].get("name"), str) for k in ("profile", "baseline")):
        raise UserError(
            f"hardware metadata {str(path)!r} is malformed: expected a JSON object with "
            f"{', '.join(META_KEYS)} (profile and baseline with a name)"
        )
    return meta


META_KEYS = ("profile", "baseline", "dense", "dense_baseline")
TRACE_COLUMNS = (
    "t_env",
    *(
        f"cum_{k}"
        for k in ("time_s", "energy_j", "dense_time_s", "dense_energy_j")
        + ("baseline_time_s", "baseline_energy_j")
    ),
)
"""Columns of ``hw_trace.csv`` the report cannot do without."""


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
    cfg_path = run_dir / "config.yaml"
    with reading(cfg_path, "run config", (OSError, ValueError, yaml.YAMLError)):
        cfg = yaml.safe_load(cfg_path.read_text()) or {}
    if not isinstance(cfg, dict) or not all(isinstance(v, dict) for v in cfg.values()):
        raise UserError(f"run config {str(cfg_path)!r} is malformed: expected groups of settings")
    metrics = _read_csv(metrics_path, "metrics file")
    last = metrics[-1]
    tested = [r for r in metrics if not math.isnan(csv_float(r.get("test_win_rate")))]
    out: dict[str, Any] = {
        "run_dir": str(run_dir),
        "config": {
            "alg": cfg.get("learner", {}).get("alg"),
            "method": cfg.get("sparsity", {}).get("method"),
            "map": cfg.get("env", {}).get("map_name"),
            "target_sparsity": cfg.get("sparsity", {}).get("sparsity"),
            "hw_aware_growth": cfg.get("sparsity", {}).get("hw_aware_growth"),
            "constant_fan_in": cfg.get("sparsity", {}).get("constant_fan_in", False),
            "t_max": cfg.get("run", {}).get("t_max"),
            "seed": cfg.get("run", {}).get("seed"),
        },
        "final": {
            k: csv_float(last.get(k))
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
        "best_test_win_rate": max(
            (csv_float(r["test_win_rate"]) for r in tested), default=math.nan
        ),
        "hardware": None,
    }
    trace_path = run_dir / "hw_trace.csv"
    if trace_path.is_file():
        out["hardware"] = _hw_summary(
            run_dir, _read_csv(trace_path, "hardware trace", TRACE_COLUMNS)
        )
    return out


def _hw_summary(run_dir: Path, trace: list[dict[str, str]]) -> dict[str, Any]:
    meta = _read_meta(run_dir)
    last = trace[-1]
    prof, base = meta["profile"]["name"], meta["baseline"]["name"]
    cum = {k[4:]: csv_float(v) for k, v in last.items() if k.startswith("cum_")}

    def ratio(a: float, b: float) -> float:
        return a / b if b else math.nan

    synth = find_synthesis(run_dir, prof)
    return {
        "profile": prof,
        "baseline": base,
        "snapshots": len(trace),
        "costing_s": sum(csv_float(r.get("costing_s")) for r in trace if r.get("costing_s")),
        "final_snapshot": {
            k: csv_float(last[k])
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
                "t_env": int(csv_float(r["t_env"])),
                "layer": r["verify_layer"],
                "sim_cycles": int(csv_float(r["verify_sim_cycles"])),
                "rtl_cycles": int(csv_float(r["verify_rtl_cycles"])),
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
        f"steps (t_max {c['t_max']}), hardware-aware growth: {c['hw_aware_growth']}, "
        f"constant fan-in: {c['constant_fan_in']}.",
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
    md += allocation_markdown(s["run_dir"], plots)
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
        "speedup below also counts the acting steps, the topology updates and the masks "
        "of earlier snapshots.",
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
    metrics = _read_csv(run_dir / "metrics.csv", "metrics file")
    trace = None
    if summary["hardware"] is not None:
        trace = (
            _read_csv(run_dir / "hw_trace.csv", "hardware trace", TRACE_COLUMNS),
            _read_meta(run_dir),
        )
    summary["plots"] = [f"{PLOTS}/{n}" for n in write_plots(run_dir, metrics, trace)]
    text = json.dumps(_json_ready(summary), indent=2, default=str)
    write_text(run_dir / "report.json", text + "\n")
    path = run_dir / "report.md"
    write_text(path, _markdown(summary, summary["plots"]))
    return path
