"""The agents' final masks as pictures, one per layer and agent type or agent (the MAST
paper's Fig. 12 shows stalkers' and zealots' masks side by side).

A stacked agent tensor exports one :class:`~mast.sparsity.SparseLayer` per type or agent,
named ``agent.fc1.weight[1]``; a shared one a single record without an index. The picture
has a row per agent layer and a column per index, black for kept connections, each panel
titled with its non-zero count, so how the sparsity budget ended up split between types
or agents can be read off.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from pathlib import Path

import yaml

from mast.run_folder import MASKS_DIR, mask_snapshots
from mast.sparsity import SparseLayer

__all__ = [
    "FIGURE",
    "agent_mask_groups",
    "allocation_markdown",
    "column_labels",
    "save_agent_mask_figure",
    "write_run_mask_figure",
]

FIGURE = "agent_masks.png"
"""File name of the run's mask picture in its plots folder."""

_INDEXED = re.compile(r"^(?P<base>.+)\[(?P<index>[0-9,]+)\]$")


def agent_mask_groups(layers: Sequence[SparseLayer]) -> dict[str, dict[str, SparseLayer]]:
    """Agent-role records by layer (``agent.fc1.weight``) then index (``"1"``; ``"all"``
    for a matrix shared by every agent), in export order."""
    out: dict[str, dict[str, SparseLayer]] = {}
    for lay in layers:
        if lay.role != "agent":
            continue
        m = _INDEXED.match(lay.name)
        base, index = (m["base"], m["index"]) if m else (lay.name, "all")
        out.setdefault(base, {})[index] = lay
    return out


def save_agent_mask_figure(
    layers: Sequence[SparseLayer], path: str | Path, labels: Sequence[str] | None = None
) -> Path | None:
    """Write the mask picture of the agent records in ``layers`` to ``path`` (PNG).

    ``labels`` names the columns (e.g. unit types) in index order; by default they are
    ``type/agent i``. Returns the path, or ``None`` when ``layers`` hold no agent record.
    """
    from matplotlib.figure import Figure

    from cost_models.plotting import save_png

    groups = agent_mask_groups(layers)
    if not groups:
        return None
    columns = list(dict.fromkeys(i for g in groups.values() for i in g))
    rows = list(groups)
    fig = Figure(figsize=(2.6 * len(columns) + 0.6, 1.9 * len(rows) + 0.6), layout="constrained")
    axes = fig.subplots(len(rows), len(columns), squeeze=False)
    for r, base in enumerate(rows):
        for c, index in enumerate(columns):
            ax = axes[r][c]
            lay = groups[base].get(index)
            ax.set_xticks([])
            ax.set_yticks([])
            if lay is None:
                ax.set_axis_off()
                continue
            ax.imshow(lay.mask, cmap="Greys", aspect="auto", interpolation="nearest")
            short = base.removeprefix("agent.").removesuffix(".weight")
            ax.set_title(f"{short}: {lay.nnz} nnz ({lay.density:.1%})", fontsize=8)
            if c == 0:
                ax.set_ylabel(f"{short}\nout ({lay.n_out})", fontsize=8)
            if r == len(rows) - 1:
                ax.set_xlabel(f"in ({lay.n_in})", fontsize=8)
    for c, index in enumerate(columns):
        name = _column_label(index, c, labels)
        axes[0][c].set_title(f"{name}\n{axes[0][c].get_title()}", fontsize=8)
    fig.suptitle("final agent masks (black: kept connection)", fontsize=10)
    return save_png(fig, Path(path))


def _column_label(index: str, c: int, labels: Sequence[str] | None) -> str:
    if index == "all":
        return "all agents (shared)"
    if labels is not None and c < len(labels):
        return str(labels[c])
    return f"type/agent {index}"


def column_labels(config: dict) -> list[str] | None:
    """Unit-type names (``per_type``) or ``i: type`` (``per_agent``) of a run's config, for
    the built-in simulator's maps; ``None`` when they are not known."""
    env, agent = config.get("env", {}), config.get("agent", {})
    topology = agent.get("topology", "per_type" if agent.get("per_type") else "shared")
    if env.get("name", "builtin") != "builtin" or topology == "shared":
        return None
    from mast.envs.maps import MAPS

    if env.get("map_name") not in MAPS:
        return None
    allies = MAPS[env["map_name"]].allies
    if topology == "per_type":
        return list(dict.fromkeys(allies))
    return [f"agent {i}: {t}" for i, t in enumerate(allies)]


def _final_snapshot(run_dir: Path) -> Path | None:
    snaps = mask_snapshots(run_dir) if (run_dir / MASKS_DIR).is_dir() else []
    return snaps[-1] if snaps else None


def write_run_mask_figure(run_dir: str | Path, out: str | Path) -> str | None:
    """Write :data:`FIGURE` of a run folder's final mask snapshot into ``out``; returns
    the file name, or ``None`` when the run has no agent masks."""
    from mast.sparsity.layer import load_layers

    run_dir = Path(run_dir)
    snap = _final_snapshot(run_dir)
    if snap is None:
        return None
    cfg_path = run_dir / "config.yaml"
    cfg = (yaml.safe_load(cfg_path.read_text()) or {}) if cfg_path.is_file() else {}
    path = save_agent_mask_figure(load_layers(snap), Path(out) / FIGURE, column_labels(cfg))
    return None if path is None else FIGURE


def allocation_markdown(run_dir: str | Path, plots: Sequence[str] = ()) -> list[str]:
    """Report lines: the final non-zeros per agent layer and type or agent (the ``nnz:``
    columns of ``metrics.csv``) as a table, and the mask picture if it is in ``plots``."""
    run_dir = Path(run_dir)
    with open(run_dir / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    last = rows[-1] if rows else {}
    cells: dict[str, dict[str, str]] = {}
    for key, value in last.items():
        if key.startswith("nnz:") and value not in (None, ""):
            m = _INDEXED.match(key[4:])
            base, index = (m["base"], m["index"]) if m else (key[4:], "all")
            cells.setdefault(base, {})[index] = value
    if not cells:
        return []
    columns = list(dict.fromkeys(i for g in cells.values() for i in g))
    cfg_path = run_dir / "config.yaml"
    labels = column_labels(
        (yaml.safe_load(cfg_path.read_text()) or {}) if cfg_path.is_file() else {}
    )
    head = ["layer", *(_column_label(i, c, labels) for c, i in enumerate(columns))]
    md = [
        "## Agent masks",
        "",
        "Non-zeros of the final agent masks per layer and agent type or agent "
        "(`nnz:` columns of `metrics.csv`):",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for base, group in cells.items():
        md.append("| " + " | ".join([base, *(group.get(i, "") for i in columns)]) + " |")
    md.append("")
    pic = [p for p in plots if p.endswith(FIGURE)]
    if pic:
        md += [f"![agent masks]({pic[0]})", ""]
    return md
