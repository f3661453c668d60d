"""Where a route congests: nextpnr router2's heatmaps, summarised by RTL signal.

With ``--router2-heatmap PREFIX`` nextpnr's ``router2`` writes, after each of its
iterations ``N``, the files ``PREFIX_congestion_by_net_N.csv`` (``net,overuse``: how many
overused wires each net still holds), ``..._by_coordinate_N.csv``, ``..._by_wiretype_N.csv``
and ``PREFIX_utilisation_by_wiretype_N.csv``. A route that does not converge leaves the
last iteration's files behind; :func:`congestion_groups` folds its per-net counts into the
design's signals (the bits of a bus, the copies of a per-PE or per-bank signal and the
cells nextpnr split off a net are one group), so a failed route names the part of the RTL
that congests it. Router1 writes no heatmaps.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "HEATMAP_DIR",
    "HEATMAP_PREFIX",
    "CongestionGroup",
    "clear_heatmaps",
    "congestion_groups",
    "keep_last_heatmaps",
    "last_overuse",
    "signal_group",
]

HEATMAP_DIR = "heatmap"
"""Folder of the heatmaps in a route's work folder."""
HEATMAP_PREFIX = f"{HEATMAP_DIR}/route"
"""``--router2-heatmap`` prefix, relative to the work folder."""

_BY_NET = re.compile(r"_congestion_by_net_(\d+)\.csv$")
_ITER = re.compile(r"iter=(\d+)\s+wires=(\d+)\s+overused=(\d+)")
# What nextpnr and Yosys append to a signal's name when they split or map its net: a
# packed cell's pins, an IO buffer, a memory block's port.
_MAPPED = re.compile(
    r"(_TRELLIS_|_LUT4_|_PFUMX|_L6MUX21|_CCU2C|_MULT18X18D|_DP16KD|_SB_|"
    r"\$TRELLIS_IO|\$SB_IO|_DO\b|_DI[AB]\d|_AD[AB]\d|\$abc|\$auto).*$"
)
_BIT = re.compile(r"\[\d+\]$")
_INDEX = re.compile(r"\d+")


@dataclass(frozen=True)
class CongestionGroup:
    """One signal's share of a route's overused wires."""

    signal: str
    """The RTL signal with its indices as ``*`` (``array.pe*.rp_off``)."""
    overuse: int
    """Overused wires its nets hold."""
    nets: int
    """Routed nets in the group (bits, copies, mapped pieces)."""
    share: float
    """``overuse`` as a fraction of all overuse."""


def signal_group(net: str) -> str:
    """The RTL signal a routed net belongs to, its indices as ``*``.

    ``array.pe5.dy_addr_r_LUT4_B_3_Z`` -> ``array.pe*.dy_addr_r``; ``host__wdata[6]$TRELLIS_IO_IN``
    -> ``host__wdata``; ``array.act_data12`` -> ``array.act_data*``.
    """
    name = _BIT.sub("", net.strip())
    name = _MAPPED.sub("", name) or name
    name = _BIT.sub("", name)
    return _INDEX.sub("*", name)


def congestion_groups(by_net_csv: str, top: int = 10) -> tuple[CongestionGroup, ...]:
    """The ``top`` signals holding the most overused wires in a ``congestion_by_net``
    heatmap, largest first (ties by name)."""
    overuse: dict[str, int] = {}
    nets: dict[str, int] = {}
    for row in csv.reader(io.StringIO(by_net_csv)):
        if len(row) < 2 or not row[1].strip().isdigit():
            continue
        key = signal_group(row[0])
        overuse[key] = overuse.get(key, 0) + int(row[1])
        nets[key] = nets.get(key, 0) + 1
    total = sum(overuse.values())
    if not total:
        return ()
    ranked = sorted(overuse.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return tuple(CongestionGroup(k, v, nets[k], v / total) for k, v in ranked)


def last_overuse(log: str) -> tuple[int, int] | None:
    """``(iteration, overused wires)`` of router2's last iteration in a nextpnr log."""
    hits = _ITER.findall(log)
    if not hits:
        return None
    it, _, over = hits[-1]
    return int(it), int(over)


def _iteration(path: Path) -> int:
    m = _BY_NET.search(path.name)
    return int(m.group(1)) if m else -1


def keep_last_heatmaps(folder: Path) -> Path | None:
    """Delete all but the last iteration's heatmaps in ``folder``; its ``by_net`` file
    (``None`` when there is none)."""
    if not folder.is_dir():
        return None
    nets = sorted(folder.glob("*_congestion_by_net_*.csv"), key=_iteration)
    if not nets:
        return None
    suffix = f"_{_iteration(nets[-1])}.csv"
    for f in folder.glob("*.csv"):
        if not f.name.endswith(suffix):
            f.unlink()
    return nets[-1]


def clear_heatmaps(folder: Path) -> None:
    """Delete an earlier route's heatmaps in ``folder`` (before a route writes its own, so
    :func:`keep_last_heatmaps` cannot take a higher-numbered stale iteration for the new
    route's last)."""
    for f in folder.glob("*.csv") if folder.is_dir() else ():
        f.unlink()
