"""Result records of the cycle-level model: per op and per program."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

__all__ = ["MemoryAccesses", "OpResult", "PhaseCycles", "SimResult"]


@dataclass(frozen=True)
class PhaseCycles:
    """Cycles attributed to each phase; the fields sum to the op's total cycles.

    In a pipelined step the step's length beyond its handshake goes to the stage that
    sets it (the longest; ties: compute, then load, then drain); each step's handshake
    cycle goes to ``handshake``. Systolic folds have no handshake.
    """

    load: int = 0
    compute: int = 0
    drain: int = 0
    reduction: int = 0
    handshake: int = 0

    @property
    def total(self) -> int:
        return self.load + self.compute + self.drain + self.reduction + self.handshake

    def __add__(self, other: PhaseCycles) -> PhaseCycles:
        return PhaseCycles(
            **{
                f.name: getattr(self, f.name) + getattr(other, f.name)
                for f in dataclasses.fields(self)
            }
        )


@dataclass(frozen=True)
class MemoryAccesses:
    """Word accesses per buffer (each word of its buffer's width; see ``sim/README.md``)."""

    weight_sram_reads: int = 0
    """Global weight SRAM / PE weight bank / systolic tile words read (values)."""
    index_reads: int = 0
    """Metadata read with the values: column index, last / end / token flags."""
    act_sram_reads: int = 0
    act_sram_writes: int = 0
    """Input words the host writes into the activation SRAM before the op."""
    pe_buf_reads: int = 0
    """PE activation / output buffer (systolic: partial-sum buffer) reads."""
    pe_buf_writes: int = 0
    out_sram_reads: int = 0
    """Output SRAM reads (row-parallel reduction of split rows)."""
    out_sram_writes: int = 0
    grad_sram_reads: int = 0
    grad_sram_writes: int = 0

    def __add__(self, other: MemoryAccesses) -> MemoryAccesses:
        return MemoryAccesses(
            **{
                f.name: getattr(self, f.name) + getattr(other, f.name)
                for f in dataclasses.fields(self)
            }
        )


@dataclass(frozen=True, eq=False)
class OpResult:
    """What one op did: its output, cycles and counts."""

    name: str
    output: np.ndarray = field(repr=False)
    """Integer output: ``(N, M)`` for SpMM/GEMM, the chunk's ``requant(g)`` in stream order
    for SDDMM, ``(N, K)`` (masked) for a systolic weight gradient."""
    output_float: np.ndarray = field(repr=False)
    """``output`` dequantised (operand format)."""
    cycles: int
    phases: PhaseCycles
    compute_cycles: int
    """Sum of the compute stage's own durations (not the steps it shares)."""
    steps: int
    pe_busy: np.ndarray = field(repr=False)
    """Per PE (systolic: per cell ``i * cols + j``) cycles spent on a stream entry."""
    mem: MemoryAccesses
    macs: int
    """Multiply-accumulates performed (tokens and zero padding included)."""
    useful_macs: int
    """``M * nnz`` of the op's mask."""
    adds: int = 0
    """Adder-tree and reduction-unit additions."""
    out_image: np.ndarray | None = field(default=None, repr=False)
    """The output memory after the op, flat, in the layout of :mod:`hw.program`
    (``out_sram`` banks for SpMM, ``grad_out`` for SDDMM, ``Y`` row-major for GEMM)."""


@dataclass(frozen=True, eq=False)
class SimResult:
    """A whole program's run: per-op results and their sums (ops run back to back)."""

    ops: tuple[OpResult, ...]
    n_pe: int

    @property
    def outputs(self) -> Mapping[str, np.ndarray]:
        return {r.name: r.output for r in self.ops}

    @property
    def outputs_float(self) -> Mapping[str, np.ndarray]:
        return {r.name: r.output_float for r in self.ops}

    def op(self, name: str) -> OpResult:
        for r in self.ops:
            if r.name == name:
                return r
        raise KeyError(f"unknown op {name!r}; known: {', '.join(r.name for r in self.ops)}")

    @property
    def cycles(self) -> int:
        return sum(r.cycles for r in self.ops)

    @property
    def phases(self) -> PhaseCycles:
        return sum((r.phases for r in self.ops), PhaseCycles())

    @property
    def compute_cycles(self) -> int:
        return sum(r.compute_cycles for r in self.ops)

    @property
    def pe_busy(self) -> np.ndarray:
        return sum((r.pe_busy for r in self.ops), np.zeros(self.n_pe, dtype=np.int64))

    @property
    def mem(self) -> MemoryAccesses:
        return sum((r.mem for r in self.ops), MemoryAccesses())

    @property
    def macs(self) -> int:
        return sum(r.macs for r in self.ops)

    @property
    def useful_macs(self) -> int:
        return sum(r.useful_macs for r in self.ops)

    @property
    def utilisation(self) -> float:
        """Useful MACs / (P * compute cycles)."""
        return self.useful_macs / max(1, self.n_pe * self.compute_cycles)

    @property
    def overall_utilisation(self) -> float:
        """Useful MACs / (P * total cycles): ideal cycles over modelled cycles."""
        return self.useful_macs / max(1, self.n_pe * self.cycles)
