"""Named FPGA parts: capacities from the vendors' data sheets and how to place and route them.

One table (:data:`PARTS`) serves ``mast-hw synth --device`` (resource fit of a synthesised
design), ``mast-hw pnr --part`` (place and route with nextpnr) and a profile's target
``part``. Capacities are counted in the units the synthesis report uses
(:mod:`hw.synth`): LUT4 (ECP5, iCE40) or LUT6 (7-series), flip-flops, DSP blocks and
block RAMs in the family's primitive (ECP5 ``DP16KD`` 18 Kbit, iCE40 ``SB_RAM40_4K``
4 Kbit, 7-series RAMB36 36 Kbit).

Xilinx parts have no place and route on PyPI: they are synthesis-only
(:attr:`Part.routable` is false) and their fit is checked on Yosys' counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mast.errors import UserError

__all__ = ["PARTS", "Part", "find_part", "get_part", "part_names"]


@dataclass(frozen=True)
class Part:
    """One FPGA part in one package and speed grade."""

    name: str
    """Vendor part name (``LFE5U-25F``); looked up case-insensitively."""
    family: str
    """Synthesis target family (:data:`hw.synth.TARGETS`): ``ecp5``, ``ice40`` or ``xc7``."""
    lut: int
    """Logic LUTs (LUT4 on ECP5 / iCE40, LUT6 on 7-series)."""
    ff: int
    """Flip-flops."""
    dsp: int
    """DSP blocks (ECP5 MULT18X18D, iCE40 SB_MAC16, 7-series DSP48E1)."""
    bram: int
    """Block RAMs in the family's primitive (see the module docstring)."""
    io: int
    """User I/O pins of :attr:`package`."""
    package: str = ""
    """Package the figures and the place and route use."""
    speed: str = ""
    """Speed grade placed and routed for (ECP5: 6 is the slowest and nextpnr's default)."""
    nextpnr: tuple[str, ...] = ()
    """Device arguments to ``nextpnr-<family>``; empty for parts without place and route."""
    source: str = ""
    """The data sheet the capacities come from."""
    aliases: tuple[str, ...] = ()
    """Other accepted names (lower case)."""
    synth_command: str = ""
    """Yosys synthesis command for this part when the family's default does not apply
    (``{top}`` is replaced by the top module)."""
    clock_pin: str = ""
    """Package pin of a dedicated clock input, where place and route puts the design's
    clock (a clock on a general-purpose pin cannot reach the global clock network)."""
    bram_rows: tuple[int, ...] = ()
    """Tile rows (nextpnr's ``Y``) of the block-RAM sites, for ``mast-hw pnr --floorplan``
    (:mod:`hw.floorplan`); empty where the site map is not tabulated."""
    bram_columns: tuple[int, ...] = ()
    """Tile columns (nextpnr's ``X``) of the block-RAM sites in every such row."""
    dsp_rows: tuple[int, ...] = ()
    """Tile rows of the multiplier (``MULT18X18D``) sites, for ``--floorplan``; empty where
    not tabulated."""
    dsp_columns: tuple[int, ...] = ()
    """Tile columns of the multiplier sites in every such row."""

    @property
    def routable(self) -> bool:
        """Whether ``mast-hw pnr`` can place and route this part (nextpnr from PyPI)."""
        return bool(self.nextpnr)


_ECP5_DS = "Lattice ECP5/ECP5-5G family data sheet FPGA-DS-02012"


# The block-RAM sites of the LFE5U-85F die, as nextpnr-ecp5's chip database names them
# (``X<column>/Y<row>/EBR<k>``, k = 0..3 along each group of four columns): four rows of
# 52, the part's 208 DP16KD. Read off nextpnr's placements and checked against its
# database by a placement that binds a block RAM to every site (tests/test_floorplan.py).
_ECP5_85_BLOCKS = (4, 13, 22, 31, 40, 49, 58, 69, 78, 87, 96, 105, 114)
_ECP5_85_EBR_ROWS = (22, 46, 70, 82)
_ECP5_85_EBR_COLUMNS = tuple(x0 + 2 * i for x0 in _ECP5_85_BLOCKS for i in range(4))
# Its multiplier sites (``X<column>/Y<row>/MULT18_<k>``, k the column's offset in its block
# of nine: 0, 1, 4, 5): three rows of 52, the part's 156 MULT18X18D, read off nextpnr's
# placement of 156 multipliers and checked the same way (tests/test_floorplan.py).
_ECP5_85_DSP_ROWS = (10, 34, 58)
_ECP5_85_DSP_COLUMNS = tuple(x0 + k for x0 in _ECP5_85_BLOCKS for k in (0, 1, 4, 5))


def _ecp5(size: int, lut: int, bram: int, dsp: int, io: int, speed: int = 6) -> Part:
    # CABGA381, the package every ECP5 size offers. ``LFE5U-<size>F`` is speed grade 6,
    # nextpnr's default and the slowest, so a clock routed on it holds on every grade;
    # ``LFE5U-<size>F-7`` / ``-8`` are the faster grades (the ordering code's digit).
    name = f"LFE5U-{size}F" + ("" if speed == 6 else f"-{speed}")
    return Part(
        name=name,
        family="ecp5",
        lut=lut,
        ff=lut,
        dsp=dsp,
        bram=bram,
        io=io,
        package="CABGA381",
        speed=str(speed),
        nextpnr=(f"--{size}k", "--package", "CABGA381", "--speed", str(speed)),
        source=_ECP5_DS,
        aliases=(name.lower(), f"lfe5u-{size}") if speed == 6 else (name.lower(),),
        # PCLKT6_0, a primary clock input of every CABGA381 ECP5
        clock_pin="G2",
        bram_rows=_ECP5_85_EBR_ROWS if size == 85 else (),
        bram_columns=_ECP5_85_EBR_COLUMNS if size == 85 else (),
        dsp_rows=_ECP5_85_DSP_ROWS if size == 85 else (),
        dsp_columns=_ECP5_85_DSP_COLUMNS if size == 85 else (),
    )


PARTS: Mapping[str, Part] = {
    p.name: p
    for p in (
        *(
            _ecp5(size, lut=lut, bram=bram, dsp=dsp, io=io, speed=speed)
            for speed in (6, 7, 8)
            for size, lut, bram, dsp, io in (
                (25, 24000, 56, 28, 197),
                (45, 44000, 108, 72, 203),
                (85, 84000, 208, 156, 205),
            )
        ),
        # iCE40 UltraPlus data sheet FPGA-DS-02008: 5,280 LUT4 + DFF, 8 MAC16, 30 EBR of
        # 4 Kbit (the 4 SPRAM blocks are not inferred by synth_ice40); SG48 has 39 I/O.
        Part(
            name="iCE40UP5K",
            family="ice40",
            lut=5280,
            ff=5280,
            dsp=8,
            bram=30,
            io=39,
            package="SG48",
            nextpnr=("--up5k", "--package", "sg48"),
            source="Lattice iCE40 UltraPlus family data sheet FPGA-DS-02008",
            aliases=("up5k", "ice40up5k"),
            clock_pin="35",  # IOT_46b_G0, a global buffer input
        ),
        # iCE40 LP/HX family data sheet: HX8K 7,680 LUT4 + DFF, 32 EBR, no DSP; CT256 has
        # 206 I/O.
        Part(
            name="iCE40HX8K",
            family="ice40",
            lut=7680,
            ff=7680,
            dsp=0,
            bram=32,
            io=206,
            package="CT256",
            nextpnr=("--hx8k", "--package", "ct256"),
            source="Lattice iCE40 LP/HX family data sheet FPGA-DS-02029",
            aliases=("hx8k", "ice40hx8k"),
            clock_pin="J3",  # a global buffer input of CT256
            # No MAC16 on the HX series: multipliers stay in logic.
            synth_command="synth_ice40 -top {top}",
        ),
        # 7 Series FPGAs product selection guide (XMP101): LUT6 / FF / DSP48E1 / RAMB36.
        Part(
            "XC7A35T",
            "xc7",
            20800,
            41600,
            90,
            50,
            io=250,
            source="Xilinx XMP101",
            aliases=("xc7a35t",),
        ),
        Part(
            "XC7A100T",
            "xc7",
            63400,
            126800,
            240,
            135,
            io=300,
            source="Xilinx XMP101",
            aliases=("xc7a100t",),
        ),
        Part(
            "XC7A200T",
            "xc7",
            134600,
            269200,
            740,
            365,
            io=500,
            source="Xilinx XMP101",
            aliases=("xc7a200t",),
        ),
        Part(
            "XC7Z020",
            "xc7",
            53200,
            106400,
            220,
            140,
            io=200,
            source="Xilinx XMP101",
            aliases=("xc7z020",),
        ),
    )
}
"""Named parts; capacities are the vendors' published figures."""

_BY_NAME: Mapping[str, Part] = {n: p for p in PARTS.values() for n in (p.name.lower(), *p.aliases)}


def part_names(*, routable: bool | None = None, family: str | None = None) -> list[str]:
    """Names of the parts (only routable / only one family when asked)."""
    return [
        p.name
        for p in PARTS.values()
        if (routable is None or p.routable == routable) and (family is None or p.family == family)
    ]


def find_part(name: str) -> Part | None:
    """The part ``name`` (any case, or an alias), or ``None``."""
    return _BY_NAME.get(str(name).lower())


def get_part(name: str, *, routable: bool = False, family: str | None = None) -> Part:
    """The part ``name`` (any case, or an alias); bad names list the valid choices.

    ``routable`` demands a part ``mast-hw pnr`` can route; ``family`` one of that family.
    """
    part = find_part(name)
    valid = part_names(routable=True if routable else None, family=family)
    if part is None:
        raise UserError(f"unknown part {name!r}; known: {', '.join(valid)}")
    if routable and not part.routable:
        raise UserError(
            f"part {name!r} ({part.family}) has no place and route on PyPI (synthesis only: "
            f"'mast-hw synth --target {part.family} --device {part.name}'); routable parts: "
            f"{', '.join(valid)}"
        )
    if family is not None and part.family != family:
        raise UserError(
            f"part {name!r} is a {part.family} part, not {family}; {family} parts: "
            f"{', '.join(valid) or 'none'}"
        )
    return part
