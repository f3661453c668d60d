"""Hardware profiles: every parameter of one accelerator instance, defined once.

A :class:`HwProfile` is read by the mask compiler (:mod:`hw.compiler`), the cycle-level
reference model (:mod:`sim`), the analytical cost model (:mod:`cost_models`), the Amaranth
generators and the cocotb testbenches (which receive it as JSON next to the Verilog).
Nothing downstream restates a number that lives here.

Profiles are looked up by name in :data:`PROFILES`; users can add their own in a YAML file
(``load_profile("my_profile.yaml")``), optionally starting from a built-in one::

    base: sparse_pe_64
    name: sparse_pe_64_fast
    clock_hz: 400e6
    energy: {mac_pj: 0.6}
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import yaml

from mast.errors import reading

__all__ = [
    "EnergyTable",
    "HwProfile",
    "ProfileError",
    "check_buildable",
    "PROFILES",
    "ENERGY_TABLES",
    "get_profile",
    "load_profile",
    "profile_names",
]


class ProfileError(ValueError):
    """A profile name, file or field is invalid. The message names the bad value."""


@dataclass(frozen=True)
class EnergyTable:
    """Energy per action (Accelergy style: counts are kept apart from these numbers).

    All energies in picojoules. SRAM energies are per access of one ``operand_bits`` word
    and depend on the macro size, which the cost model picks from the buffer's capacity.
    """

    node: str
    """Technology node / source of the numbers."""
    mac_pj: float
    """One fixed-point multiply-accumulate (operand x operand -> accumulator add)."""
    add_pj: float
    """One accumulator-width addition (reductions, optimizer arithmetic)."""
    reg_pj: float
    """One pipeline / accumulator register access."""
    sram_small_pj: float
    """Word access in an SRAM of at most 8 KiB (PE-local buffers)."""
    sram_medium_pj: float
    """Word access in an SRAM of at most 32 KiB."""
    sram_large_pj: float
    """Word access in an SRAM above 32 KiB (global weight / activation SRAM)."""
    dram_pj_per_byte: float
    """Off-chip DRAM energy per byte moved."""
    index_pj: float
    """Reading and decoding one compressed index / pointer entry (metadata)."""
    static_mw_per_pe: float
    """Leakage + clock tree per PE (or per systolic cell), milliwatts."""
    static_mw_base: float
    """Leakage of controller, buffers and I/O, milliwatts."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if f.name == "node":
                continue
            v = getattr(self, f.name)
            if not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
                raise ProfileError(f"energy.{f.name} must be a finite number >= 0, got {v!r}")

    def sram_pj(self, capacity_bytes: int) -> float:
        """Energy of one word access in an SRAM of ``capacity_bytes``."""
        if capacity_bytes <= 8 * 1024:
            return self.sram_small_pj
        if capacity_bytes <= 32 * 1024:
            return self.sram_medium_pj
        return self.sram_large_pj


# Horowitz, ISSCC 2014 (45 nm): int32 add 0.1 pJ, int8 mult 0.2 pJ, int32 mult 3.1 pJ; a
# 16x16 multiply scales ~quadratically from int8 (0.8 pJ) and accumulates in 32 bits (+0.1).
# SRAM 64-bit reads of 10 / 20 / 100 pJ at 8 KB / 32 KB / 1 MB give 2.5 / 5 / 25 pJ per
# 16-bit word. DRAM 1.3-2.6 nJ per 64-bit word: ~20 pJ/bit = 160 pJ/byte.
ENERGY_TABLES: Mapping[str, EnergyTable] = {
    "45nm": EnergyTable(
        node="45nm (Horowitz ISSCC 2014)",
        mac_pj=0.9,
        add_pj=0.1,
        reg_pj=0.05,
        sram_small_pj=2.5,
        sram_medium_pj=5.0,
        sram_large_pj=25.0,
        dram_pj_per_byte=160.0,
        index_pj=0.6,
        static_mw_per_pe=0.05,
        static_mw_base=5.0,
    ),
}


NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
"""A profile name: a plain identifier (it names files, folders and Verilog modules)."""
MAX_NAME_LEN = 64

FIELD_MAX: Mapping[str, float] = {
    "n_pe": 1 << 16,
    "rows": 1 << 8,
    "cols": 1 << 8,
    "pipeline_depth": 64,
    "bcast_words": 1 << 16,
    "act_buf_words": 1 << 20,
    "out_buf_words": 1 << 20,
    "grad_buf_words": 1 << 20,
    "weight_sram_kib": 1 << 20,
    "act_sram_kib": 1 << 20,
    "index_bits": 24,
    "max_pieces": 1 << 24,
    "clock_hz": 1e11,
    "dram_bytes_per_cycle": 1e6,
}
"""Upper limit of every numeric profile field (a 1 GiB SRAM, a 100 GHz clock): beyond
them a number is a typo, and the cost model or the RTL generator would run for hours or
allocate without bound."""

MIN_BUILDABLE: Mapping[str, int] = {
    "act_buf_words": 16,
    "out_buf_words": 16,
    "grad_buf_words": 16,
    "index_bits": 4,
}
"""Smallest buffers and index width a profile loaded by name or file may have
(:func:`check_buildable`). Below them every layer is cut into blocks of a few inputs or
outputs (the cost model then runs for hours on one report); 4-bit indices are EIE's, the
narrowest in the sparse-accelerator literature."""


@dataclass(frozen=True)
class HwProfile:
    """One accelerator instance.

    ``kind="sparse"``: ``n_pe`` sparse processing elements that consume a compressed
    weight stream (see ``docs/microarchitecture.md``). ``kind="systolic"``: a dense
    weight-stationary ``rows x cols`` systolic array (``n_pe = rows * cols``).
    """

    name: str
    """Registry name."""
    kind: Literal["sparse", "systolic"]
    """Sparse PE array or dense weight-stationary systolic baseline."""
    n_pe: int
    """Number of MAC units (PEs or systolic cells)."""
    rows: int = 0
    """Systolic array rows (reduction dimension K per fold); 0 for sparse profiles."""
    cols: int = 0
    """Systolic array columns (output dimension N per fold); 0 for sparse profiles."""
    operand_bits: int = 16
    """Width of weights, activations and gradients (signed two's complement)."""
    frac_bits: int = 10
    """Fractional bits of operands (Q(operand_bits-1-frac_bits).frac_bits)."""
    acc_bits: int = 32
    """Accumulator width; products keep 2*frac_bits fractional bits."""
    clock_hz: float = 200e6
    """Core clock."""
    pipeline_depth: int = 2
    """Cycles from a weight entry entering a PE to its product being accumulated."""
    bcast_words: int = 16
    """Words per cycle on the activation broadcast bus (row-parallel dataflow)."""
    act_buf_words: int = 2048
    """Activation buffer depth per PE per bank (two banks, double buffered); row-parallel
    inference keeps all ``M`` samples' inputs here (``K * M`` words, e.g. 150 x 8 on 3s5z)."""
    out_buf_words: int = 512
    """Output buffer depth per PE per bank (two banks, double buffered)."""
    grad_buf_words: int = 4096
    """Accumulator-width weight-gradient SRAM entries (SDDMM accumulates one per non-zero)."""
    weight_sram_kib: int = 128
    """Global weight SRAM; row-parallel banks split it evenly across PEs."""
    act_sram_kib: int = 256
    """Global activation / output SRAM feeding the PE buffers."""
    dram_bytes_per_cycle: float = 64.0
    """Off-chip bandwidth in bytes per core cycle."""
    vector_lanes_per_pe: int = 2
    """Lanes of the elementwise vector unit per PE (``n_pe * vector_lanes_per_pe`` lanes,
    one operation each per cycle): GRU gates, mixing, loss, top-k, optimizer. The vector
    unit is modelled in ``cost_models`` only; the RTL has none."""
    index_bits: int = 10
    """Width of a column index in the compressed stream (``K <= 2**index_bits``; the
    2c_vs_64zg agent input is 404 wide)."""
    max_pieces: int = 0
    """Row pieces one row-parallel op may have (the reduction unit's schedule tables hold
    ``max_pieces + 1`` entries); 0: ``n_pe * out_buf_words``, every piece the output
    buffers could hold. Sized by workload, it is the largest layer's rows plus its splits
    (e.g. 192 + a few for the paper's agent GRU)."""
    drain_join: bool = False
    """Sparse arrays: each odd PE has an adder on its drain path, so a row-parallel op on one
    sample may split a row in two pieces on a pair of PEs ``(2i, 2i+1)``, each the last
    piece of its PE, and the drain writes their requantised sum (``docs/
    microarchitecture.md`` s.2.4) instead of the serial reduction adding them a phase later.
    The add and its requantisation sit in the drained word's path to the output SRAM, in
    the cycle the word takes already (before the drain's register with ``PD >= 4``)."""
    energy_table: str = "45nm"
    """Key into :data:`ENERGY_TABLES`."""
    energy_overrides: tuple[tuple[str, float], ...] = field(default=())
    """Per-action energies replacing the table's (from a YAML ``energy:`` mapping)."""
    part: str = ""
    """FPGA part the profile is built for (:data:`hw.parts.PARTS`); empty for the ASIC
    model. An FPGA profile's ``clock_hz`` must not exceed its routed Fmax there
    (:func:`hw.clocks.clock_origin`)."""
    clock_note: str = ""
    """Why ``clock_hz`` is what it is when no current routed record backs it."""
    holds_maps: tuple[str, ...] = ()
    """SMAC maps whose MAST QMIX network every op of must fit this profile's memories
    whole, only the samples tiled (``cost_models.holding.check_holds``; empty: no claim)."""
    holds_sparsity: float = 0.9
    """The lowest sparsity at which the profile holds ``holds_maps`` (denser masks have
    longer weight streams)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "holds_maps", tuple(str(m) for m in self.holds_maps))
        if not 0.0 <= self.holds_sparsity < 1.0:
            raise ProfileError(
                f"profile {self.name!r}: holds_sparsity must be in [0, 1), "
                f"got {self.holds_sparsity!r}"
            )
        # The name becomes file, folder and Verilog module names (report/, build/synth/,
        # mast_accel_<name>.v): a plain identifier can never leave its output folder.
        name_ok = isinstance(self.name, str) and len(self.name) <= MAX_NAME_LEN
        if not name_ok or not NAME_PATTERN.fullmatch(self.name):
            raise ProfileError(
                f"profile name must be a plain identifier ([A-Za-z_][A-Za-z0-9_]*, at most "
                f"{MAX_NAME_LEN} characters), got {self.name!r}"
            )
        if self.kind not in ("sparse", "systolic"):
            raise ProfileError(
                f"profile {self.name!r}: kind must be 'sparse' or 'systolic', got {self.kind!r}"
            )
        ints = [
            "n_pe",
            "operand_bits",
            "frac_bits",
            "acc_bits",
            "pipeline_depth",
            "bcast_words",
            "act_buf_words",
            "out_buf_words",
            "grad_buf_words",
            "weight_sram_kib",
            "act_sram_kib",
            "index_bits",
            "vector_lanes_per_pe",
            "rows",
            "cols",
            "max_pieces",
        ]
        for f in ints:
            v = getattr(self, f)
            if not isinstance(v, int) or isinstance(v, bool):
                raise ProfileError(f"profile {self.name!r}: {f} must be an integer, got {v!r}")
            if v < (0 if f in ("rows", "cols", "frac_bits", "max_pieces") else 1):
                raise ProfileError(f"profile {self.name!r}: {f} must be positive, got {v!r}")
            if v > FIELD_MAX.get(f, v):
                raise ProfileError(
                    f"profile {self.name!r}: {f} must be <= {FIELD_MAX[f]}, got {v!r}"
                )
        if not isinstance(self.drain_join, bool):
            raise ProfileError(
                f"profile {self.name!r}: drain_join must be true or false, got {self.drain_join!r}"
            )
        if self.drain_join and self.kind != "sparse":
            raise ProfileError(f"profile {self.name!r}: drain_join applies to sparse profiles only")
        if self.kind == "systolic":
            if self.rows < 1 or self.cols < 1:
                raise ProfileError(
                    f"profile {self.name!r}: a systolic profile needs rows and cols >= 1, "
                    f"got rows={self.rows!r} cols={self.cols!r}"
                )
            if self.rows * self.cols != self.n_pe:
                raise ProfileError(
                    f"profile {self.name!r}: n_pe={self.n_pe} must equal rows*cols="
                    f"{self.rows * self.cols}"
                )
        elif self.rows or self.cols:
            raise ProfileError(
                f"profile {self.name!r}: rows/cols apply to systolic profiles only, "
                f"got rows={self.rows!r} cols={self.cols!r}"
            )
        if not 2 <= self.operand_bits <= 32:
            raise ProfileError(
                f"profile {self.name!r}: operand_bits must be in [2, 32], got {self.operand_bits}"
            )
        if self.frac_bits >= self.operand_bits:
            raise ProfileError(
                f"profile {self.name!r}: frac_bits={self.frac_bits} must be < "
                f"operand_bits={self.operand_bits}"
            )
        if self.acc_bits < 2 * self.operand_bits:
            raise ProfileError(
                f"profile {self.name!r}: acc_bits={self.acc_bits} must be >= 2*operand_bits="
                f"{2 * self.operand_bits} to hold a full product"
            )
        if self.acc_bits > 64:
            raise ProfileError(
                f"profile {self.name!r}: acc_bits must be <= 64, got {self.acc_bits}"
            )
        for f in ("clock_hz", "dram_bytes_per_cycle"):
            v = getattr(self, f)
            if not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
                raise ProfileError(f"profile {self.name!r}: {f} must be > 0, got {v!r}")
            if v > FIELD_MAX[f]:
                raise ProfileError(
                    f"profile {self.name!r}: {f} must be <= {FIELD_MAX[f]:g}, got {v!r}"
                )
        if self.energy_table not in ENERGY_TABLES:
            raise ProfileError(
                f"profile {self.name!r}: unknown energy_table {self.energy_table!r}; "
                f"known: {', '.join(sorted(ENERGY_TABLES))}"
            )
        if self.part:
            from hw.parts import find_part, part_names

            if find_part(self.part) is None:
                raise ProfileError(
                    f"profile {self.name!r}: unknown part {self.part!r}; "
                    f"known: {', '.join(part_names())}"
                )
        known = {f.name for f in dataclasses.fields(EnergyTable)} - {"node"}
        for k, _ in self.energy_overrides:
            if k not in known:
                raise ProfileError(
                    f"profile {self.name!r}: unknown energy field {k!r}; "
                    f"known: {', '.join(sorted(known))}"
                )
        self.energy  # noqa: B018 - validates override values through EnergyTable

    # ---- derived values -------------------------------------------------------------
    @property
    def energy(self) -> EnergyTable:
        """The energy table with this profile's overrides applied."""
        return replace(ENERGY_TABLES[self.energy_table], **dict(self.energy_overrides))

    @property
    def is_sparse(self) -> bool:
        return self.kind == "sparse"

    @property
    def operand_bytes(self) -> int:
        return (self.operand_bits + 7) // 8

    @property
    def acc_bytes(self) -> int:
        return (self.acc_bits + 7) // 8

    @property
    def operand_min(self) -> int:
        return -(1 << (self.operand_bits - 1))

    @property
    def operand_max(self) -> int:
        return (1 << (self.operand_bits - 1)) - 1

    @property
    def acc_min(self) -> int:
        return -(1 << (self.acc_bits - 1))

    @property
    def acc_max(self) -> int:
        return (1 << (self.acc_bits - 1)) - 1

    @property
    def weight_sram_words(self) -> int:
        """Compressed-stream entries the global weight SRAM holds."""
        return self.weight_sram_kib * 1024 // self.operand_bytes

    @property
    def weight_bank_words(self) -> int:
        """Entries per PE bank when the weight SRAM is split for the row-parallel dataflow."""
        return self.weight_sram_words // self.n_pe

    @property
    def act_sram_words(self) -> int:
        return self.act_sram_kib * 1024 // self.operand_bytes

    @property
    def peak_macs_per_s(self) -> float:
        return self.n_pe * self.clock_hz

    @property
    def static_power_w(self) -> float:
        e = self.energy
        return (e.static_mw_per_pe * self.n_pe + e.static_mw_base) * 1e-3

    # ---- serialisation --------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["energy_overrides"] = dict(self.energy_overrides)
        d["holds_maps"] = list(self.holds_maps)  # JSON and YAML give lists back
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "profile") -> HwProfile:
        """Build a profile from a mapping (YAML / JSON); ``base`` names a built-in start."""
        data = dict(data)
        base_name = data.pop("base", None)
        energy = data.pop("energy", None)
        if "energy_overrides" in data:
            eo = data.pop("energy_overrides")
            energy = {**(eo or {}), **(energy or {})}
        if base_name is not None:
            base = get_profile(str(base_name)).to_dict()
            base.pop("energy_overrides")
            merged = {**base, **data}
            if "name" not in data:
                raise ProfileError(f"{source}: a profile with base {base_name!r} needs a name")
        else:
            merged = data
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(merged) - names)
        if unknown:
            raise ProfileError(
                f"{source}: unknown profile field {unknown[0]!r}; known: {', '.join(sorted(names))}"
            )
        missing = [n for n in ("name", "kind", "n_pe") if n not in merged]
        if missing:
            raise ProfileError(f"{source}: missing required profile field {missing[0]!r}")
        if energy is not None:
            if not isinstance(energy, Mapping):
                raise ProfileError(f"{source}: 'energy' must be a mapping, got {energy!r}")
            merged["energy_overrides"] = tuple(sorted((str(k), v) for k, v in energy.items()))
        for k in ("clock_hz", "dram_bytes_per_cycle"):
            if isinstance(merged.get(k), str):
                try:
                    merged[k] = float(merged[k])
                except ValueError:
                    raise ProfileError(
                        f"{source}: {k} must be a number, got {merged[k]!r}"
                    ) from None
        return cls(**merged)


ASIC_CLOCK_NOTE = "45 nm ASIC model: a typical target clock, not placed and routed"
"""Why the clock of a profile without an FPGA part is what it is."""


XILINX_CLOCK_NOTE = (
    "Xilinx parts have no place and route on PyPI: assumed at the 30 MHz of the sparse "
    "array's earlier ECP5 placement estimates (README, place and route)"
)
PAPER_MAPS = ("3m", "8m", "5m_vs_6m", "2s3z", "3s5z", "MMM", "2c_vs_64zg")
"""The SMAC maps of the paper's experiments (the networks an FPGA profile must hold)."""


FPGA_PE_SIZES: Mapping[str, Any] = {
    "bcast_words": 4,
    "act_buf_words": 1024,
    "out_buf_words": 512,
    "grad_buf_words": 2048,
    "index_bits": 9,
    "max_pieces": 511,
    "clock_hz": 30e6,
    "holds_maps": PAPER_MAPS,
    "holds_sparsity": 0.85,
    # the stream entry and the buffer addresses registered before the block RAMs are
    # read, their words as they leave them, the selected operands, multiplied the next
    # cycle, the operands and the product each registered twice, so the registers the
    # multiplier reads and feeds and the one the accumulator and the adder tree read can
    # each sit by them (hw/rtl/pe.py)
    "pipeline_depth": 7,
}
"""Per-PE memories of the FPGA profiles, sized to hold every op of the paper's networks at
85 % sparsity or more (``K`` <= 404, ``N`` <= 320, the longest stream 3,065 entries; see
``cost_models.holding``) within a mid-range part's block RAM; the clock here is an
assumption, for a profile without a route of its own."""


def _sparse(n_pe: int, **kw: Any) -> HwProfile:
    kw.setdefault("clock_note", ASIC_CLOCK_NOTE)
    kw.setdefault("name", f"sparse_pe_{n_pe}")
    # Column indices span the whole 2,048-word activation buffer, so a sample-unrolled
    # acting op (K M columns, docs/microarchitecture.md s.2.5) can use all of it.
    kw.setdefault("index_bits", 11)
    return HwProfile(kind="sparse", n_pe=n_pe, **kw)


def _systolic(r: int, c: int, **kw: Any) -> HwProfile:
    kw.setdefault("clock_note", ASIC_CLOCK_NOTE)
    return HwProfile(name=f"systolic_{r}x{c}", kind="systolic", n_pe=r * c, rows=r, cols=c, **kw)


PROFILES: Mapping[str, HwProfile] = {
    p.name: p
    for p in (
        # A small instance for fast RTL tests (tiny buffers keep Verilator builds quick),
        # placed and routed on an ECP5 (hw/routed_clocks.json): the clock is its routed
        # Fmax there, rounded down.
        HwProfile(
            name="sparse_pe_4",
            kind="sparse",
            n_pe=4,
            bcast_words=4,
            act_buf_words=64,
            out_buf_words=64,
            grad_buf_words=256,
            weight_sram_kib=4,
            act_sram_kib=8,
            index_bits=8,
            # the FPGA pipeline (FPGA_PE_SIZES)
            pipeline_depth=7,
            part="LFE5U-25F",
            clock_hz=100e6,
            clock_note="",
        ),
        _sparse(16, bcast_words=8, weight_sram_kib=64, act_sram_kib=128),
        # the drain joins a row's two pieces on a pair of PEs (drain_join): trained masks'
        # long rows split at no reduction phase
        _sparse(64, drain_join=True),
        _sparse(256, bcast_words=32, weight_sram_kib=512, act_sram_kib=1024),
        # Memories sized by workload for a named FPGA: every op of the paper's networks at
        # 85 % sparsity or more fits whole (cost_models.holding), within the part's block
        # RAM by synthesis counts (README, "FPGA fit").
        # 32 KiB of activation SRAM (16 before) hold twice the samples of a training op,
        # half the ops and their fixed cycles: 17x a training iteration at 95 % (README,
        # "The routed 16-PE array").
        _sparse(
            16,
            name="sparse_pe_16_ecp5",
            weight_sram_kib=8,
            act_sram_kib=32,
            part="LFE5U-85F",
            # placed and routed there (hw/routed_clocks.json): its routed Fmax, rounded down
            **{**FPGA_PE_SIZES, "clock_hz": 100e6, "clock_note": ""},
        ),
        # The same per-PE sizes with 64 PEs, except what an acting step and a training
        # op need on 64 PEs, within XC7A200T's 365 RAMB36 by synthesis: eight broadcast
        # lanes (four left the array waiting on the load; sixteen make each PE's buffer
        # 256 bits wide, four RAMB36 a PE, 527 in all), 2,048-word buffers and 11-bit
        # indices (a sample-unrolled input layer of K M up to 1,860; at 128 bits wide a
        # buffer takes two RAMB36 at 1,024 words or 2,048), 2,047 pieces (3 x 201 rows on
        # 3m, 8 x 206 on 3s5z) and 128 KiB of activation SRAM, so a training op takes
        # 1,024 samples of a 64-wide layer instead of 512 (half the ops, each with its
        # fixed pipeline and handshake cycles). 256-entry weight banks would unroll
        # 3s5z's and MMM's recurrent ops too, but their flags and columns leave LUT RAM
        # for block RAM (399 RAMB36): README, "The resized 64-PE array".
        _sparse(
            64,
            name="sparse_pe_64_xc7",
            weight_sram_kib=16,
            act_sram_kib=128,
            part="XC7A200T",
            clock_note=XILINX_CLOCK_NOTE,
            **{
                **FPGA_PE_SIZES,
                "bcast_words": 8,
                "act_buf_words": 2048,
                "index_bits": 11,
                "max_pieces": 2047,
            },
        ),
        # Placed and routed on an ECP5 (hw/routed_clocks.json): the clock is its routed
        # Fmax there, rounded down.
        _systolic(
            2, 2, weight_sram_kib=4, act_sram_kib=8, part="LFE5U-25F", clock_hz=52e6, clock_note=""
        ),
        _systolic(4, 4, weight_sram_kib=64, act_sram_kib=128),
        _systolic(8, 8),
        _systolic(16, 16, weight_sram_kib=512, act_sram_kib=1024),
    )
}
"""Built-in profiles. Dense baselines have the same MAC count as the sparse profiles."""


def profile_names() -> list[str]:
    return sorted(PROFILES)


def get_profile(name: str) -> HwProfile:
    """Return the built-in profile ``name``; unknown names list the known ones."""
    if isinstance(name, HwProfile):
        return name
    try:
        return PROFILES[name]
    except KeyError:
        raise ProfileError(
            f"unknown hardware profile {name!r}; known: {', '.join(profile_names())}"
        ) from None


def check_buildable(profile: HwProfile) -> HwProfile:
    """Return ``profile`` if the RTL generators can build it and reports can cost it.

    Beyond the field ranges every profile obeys, a profile a user loads must have the
    shapes the RTL needs (``hw.rtl``: one activation bank and one weight-bank entry per PE,
    a broadcast bus no wider than the PE count, activation buffers a whole number of
    broadcast rows deep; a systolic array's weight SRAM holds one tile) and at least
    :data:`MIN_BUILDABLE`. Raises :class:`ProfileError` naming the field.
    """
    p = profile
    for f, low in MIN_BUILDABLE.items():
        if getattr(p, f) < low:
            raise ProfileError(f"profile {p.name!r}: {f} must be >= {low}, got {getattr(p, f)}")
    if p.weight_sram_words < p.n_pe:
        raise ProfileError(
            f"profile {p.name!r}: weight_sram_kib={p.weight_sram_kib} holds "
            f"{p.weight_sram_words} words, fewer than n_pe={p.n_pe} (one per PE)"
        )
    if p.is_sparse:
        if p.act_sram_words < p.n_pe:
            raise ProfileError(
                f"profile {p.name!r}: act_sram_kib={p.act_sram_kib} holds {p.act_sram_words} "
                f"words, fewer than n_pe={p.n_pe} (one bank per PE)"
            )
        if p.bcast_words > p.n_pe:
            raise ProfileError(
                f"profile {p.name!r}: bcast_words={p.bcast_words} must be <= n_pe={p.n_pe} "
                f"(one activation bank per broadcast word)"
            )
        if p.act_buf_words % p.bcast_words:
            raise ProfileError(
                f"profile {p.name!r}: act_buf_words={p.act_buf_words} must be a multiple of "
                f"bcast_words={p.bcast_words}"
            )
    return p


def load_profile(name_or_path: str | Path | HwProfile) -> HwProfile:
    """A built-in profile by name, or a user profile from a ``.yaml``/``.yml``/``.json`` file.

    A profile read from a file must also pass :func:`check_buildable`; an
    :class:`HwProfile` object is returned as it is.
    """
    if isinstance(name_or_path, HwProfile):
        return name_or_path
    s = str(name_or_path)
    if s.endswith((".yaml", ".yml", ".json")):
        path = Path(s)
        if not path.is_file():
            raise ProfileError(f"profile file {s!r} does not exist")
        try:
            with reading(path, "profile file", (OSError, UnicodeDecodeError)):
                text = path.read_text()
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise ProfileError(f"profile file {s!r} is not valid YAML: {first}") from None
        if not isinstance(data, Mapping):
            raise ProfileError(f"profile file {s!r} must hold a mapping, got {type(data).__name__}")
        try:
            profile = HwProfile.from_dict(data, source=f"profile file {s!r}")
        except TypeError as e:
            raise ProfileError(f"profile file {s!r}: {e}") from None
        try:
            return check_buildable(profile)
        except ProfileError as e:
            raise ProfileError(f"profile file {s!r}: {e}") from None
    return get_profile(s)
