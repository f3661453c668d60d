"""Where a profile's clock comes from: a routed Fmax on its part, or an assumption.

Routed clocks are recorded in ``hw/routed_clocks.json`` (one record per profile and part,
written by ``mast-hw pnr --record``; measured data, not generated output). A record holds
the :func:`rtl_hash` of the design it routed. :func:`clock_origin` says, for a profile:

- ``routed``: a record for the profile's ``part`` matches the current RTL hash;
- ``stale``: a record exists but the RTL changed since the route (it is not used);
- ``assumed``: no route applies; the reason is the profile's ``clock_note``.

:func:`rtl_hash` hashes what determines the generated netlist without elaborating it
(elaborating a 16-PE design takes about a minute): the profile's RTL parameters (not its
name, clock, energy or part), the source of every module the top level is built from
(``hw/rtl`` and the ``hw`` modules it imports, except ``hw.profiles`` whose content enters
through the parameters) and the Amaranth version.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from hw.profiles import HwProfile

__all__ = [
    "RECORDS_PATH",
    "ClockOrigin",
    "RoutedClock",
    "basis_lines",
    "clock_origin",
    "load_records",
    "rtl_hash",
    "save_record",
]

RECORDS_PATH = Path(__file__).with_name("routed_clocks.json")
"""The committed table of routed clocks."""

_HW = Path(__file__).resolve().parent
_ROOTS = ("rtl/top.py", "rtl/systolic_top.py")
_NOT_RTL = frozenset(
    {"name", "clock_hz", "dram_bytes_per_cycle", "energy_table", "energy_overrides", "part"}
    | {"clock_note", "holds_maps", "holds_sparsity"}
)


def _imports(path: Path) -> list[Path]:
    """``hw`` source files ``path`` imports (relative or ``hw.x``), except hw/profiles.py."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = path.parent
            for _ in range(node.level - 1):
                base = base.parent
            parts = node.module.split(".") if node.module else []
        elif node.module and node.module.split(".")[0] == "hw":
            base, parts = _HW, node.module.split(".")[1:]
        else:
            continue
        # ``from .x import y`` / ``from hw.x import y``: module x, or y if it is a submodule.
        names = ([parts] if node.module else []) + [[*parts, a.name] for a in node.names]
        for p in names:
            cand = base.joinpath(*p)
            for f in (cand.with_suffix(".py"), cand / "__init__.py"):
                if f.is_file() and f.resolve() != (_HW / "profiles.py"):
                    out.append(f.resolve())
    return out


def rtl_sources() -> list[Path]:
    """Source files the top levels are generated from (sorted, relative to ``hw/``)."""
    todo = [(_HW / r).resolve() for r in _ROOTS]
    seen: set[Path] = set()
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.add(f)
        todo.extend(_imports(f))
    return sorted(seen)


def rtl_hash(profile: HwProfile) -> str:
    """16 hex digits identifying ``profile``'s generated design (see the module doc)."""
    params = {k: v for k, v in profile.to_dict().items() if k not in _NOT_RTL}
    h = hashlib.sha256(json.dumps(params, sort_keys=True).encode())
    h.update(metadata.version("amaranth").encode())
    for f in rtl_sources():
        h.update(str(f.relative_to(_HW)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class RoutedClock:
    """One place-and-route result kept as a profile's clock evidence."""

    profile: str
    part: str
    package: str
    speed: str
    fmax_mhz: float
    """Achieved Fmax of the slowest clock."""
    target_mhz: float
    seed: int
    rtl_hash: str
    tools: Mapping[str, str]
    date: str
    command: str
    """The command that reproduces the route."""
    resources: Mapping[str, Mapping[str, float]]
    """Resource class (lut, ff, dsp, bram) -> used, capacity, percent."""
    wall_s: float
    """Synthesis plus place and route wall time."""
    router: str = ""
    """nextpnr's router (empty in records kept before the field: read the command)."""
    floorplan: bool = False
    """The block RAMs were pinned by PE (``mast-hw pnr --floorplan``, :mod:`hw.floorplan`)."""

    @property
    def router_used(self) -> str:
        """The router of the route: ``router`` or the one its command names, else ``''``
        (the family's default)."""
        if self.router:
            return self.router
        words = self.command.split()
        return words[words.index("--router") + 1] if "--router" in words[:-1] else ""


def load_records(path: Path = RECORDS_PATH) -> list[RoutedClock]:
    """Every record of ``path`` (none when the file does not exist)."""
    if not Path(path).is_file():
        return []
    return [RoutedClock(**r) for r in json.loads(Path(path).read_text())]


def find_record(
    profile: str, part: str, records: list[RoutedClock] | None = None
) -> RoutedClock | None:
    """The record of ``profile`` on ``part`` (any RTL version), or ``None``."""
    records = load_records() if records is None else records
    return next((r for r in records if (r.profile, r.part) == (profile, part)), None)


def save_record(rec: RoutedClock, path: Path = RECORDS_PATH) -> None:
    """Add ``rec``, replacing the record of the same profile and part."""
    keep = [r for r in load_records(path) if (r.profile, r.part) != (rec.profile, rec.part)]
    rows = sorted([*keep, rec], key=lambda r: (r.profile, r.part))
    Path(path).write_text(json.dumps([dataclasses.asdict(r) for r in rows], indent=2) + "\n")


@dataclass(frozen=True)
class ClockOrigin:
    """Where ``clock_hz`` comes from."""

    kind: str
    """``routed``, ``stale`` or ``assumed``."""
    record: RoutedClock | None
    """The route behind ``routed`` / ``stale``."""
    text: str
    """One line for reports, e.g. ``routed: 104.2 MHz Fmax on LFE5U-25F ...``."""


def clock_origin(
    profile: HwProfile, records: list[RoutedClock] | None = None, *, current: str | None = None
) -> ClockOrigin:
    """The origin of ``profile.clock_hz`` (``current``: its RTL hash, computed if omitted)."""
    records = load_records() if records is None else records
    mhz = f"{profile.clock_hz / 1e6:g} MHz"
    rec = find_record(profile.name, profile.part, records)
    if rec is None:
        why = profile.clock_note or "no routed record"
        return ClockOrigin("assumed", None, f"{mhz} assumed ({why})")
    where = (
        f"{rec.fmax_mhz:.1f} MHz Fmax on {rec.part} ({rec.package}-{rec.speed}), "
        f"nextpnr {_nextpnr_version(rec)}, {rec.date[:10]}, design {rec.rtl_hash}"
    )
    current = rtl_hash(profile) if current is None else current
    if rec.rtl_hash != current:
        return ClockOrigin(
            "stale", rec, f"{mhz} assumed: the route ({where}) is STALE, RTL now {current}"
        )
    return ClockOrigin("routed", rec, f"{mhz} routed: {where}")


def _nextpnr_version(rec: RoutedClock) -> str:
    return next((v for k, v in rec.tools.items() if "nextpnr" in k), "?")


def basis_lines(profile: HwProfile) -> tuple[str, ...]:
    """What a report's seconds and joules rest on: the clock's origin and the energy
    table's technology (one line each)."""
    e = profile.energy
    return (
        f"Clock: {clock_origin(profile).text}; every time in seconds converts cycles at it.",
        f"Energy: {e.node} per-action figures of a 45 nm ASIC (SRAM priced by the physical "
        "bank an access reaches); not an FPGA power estimate.",
    )
