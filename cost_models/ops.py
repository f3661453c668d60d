"""Cost of one accelerator op without compiling or simulating it.

Cycle counts come from :mod:`hw.timing` (the contract's closed forms) and the dataflow
choice and row-parallel work assignment from :mod:`hw.compiler`, so an op costed here
has exactly the cycles ``sim`` reports for the compiled op. Action counts mirror the
counters of :class:`sim.MemoryAccesses` (word accesses per buffer) plus performed MACs
and adder-tree / reduction additions, derived from the op's sizes and its stream
(``act_sram_writes`` is the host's fill of the op's inputs).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from hw import timing
from hw.compiler import (
    balance_rows,
    choose_dataflow,
    row_plan_cycles,
    split_chunks,
    unroll_samples,
)
from hw.compiler.encode import encode_stream
from hw.profiles import HwProfile

__all__ = ["OpCost", "spmm_op", "sddmm_ops", "gemm_op"]


@dataclass(frozen=True)
class OpCost:
    """Cycles and action counts of one op (or the sum over several)."""

    cycles: int
    """Total op cycles (``sim``'s ``OpResult.cycles``)."""
    n_ops: int
    """Number of ops summed."""
    dataflow: str
    """``sample``, ``row`` or ``systolic``."""
    actions: Counter
    """Counts keyed by ``sim.MemoryAccesses`` field names plus ``macs`` and ``adds``."""

    def __add__(self, other: OpCost) -> OpCost:
        flows = "+".join(sorted(set(self.dataflow.split("+")) | set(other.dataflow.split("+"))))
        return OpCost(
            self.cycles + other.cycles,
            self.n_ops + other.n_ops,
            flows,
            self.actions + other.actions,
        )

    def scaled(self, k: int) -> OpCost:
        return OpCost(
            self.cycles * k,
            self.n_ops * k,
            self.dataflow,
            Counter({a: v * k for a, v in self.actions.items()}),
        )


def _sp_counts(k: int, n: int, m: int, s: int, tokens: int, tiles: int) -> Counter:
    return Counter(
        act_sram_writes=k * m,
        act_sram_reads=k * m,
        pe_buf_writes=(k + n) * m,
        weight_sram_reads=s * tiles,
        index_reads=s * tiles,
        pe_buf_reads=(s - tokens) * m + n * m,
        macs=s * m,
        out_sram_writes=n * m,
    )


def _rp_counts(k: int, m: int, p: HwProfile, plan) -> Counter:
    total = int(plan.pe_entries.sum())
    pieces = len(plan.row)
    joins = int(plan.joined.sum())  # rows added at the drain (drain_join), not reduced
    reduced = plan.reduced_pieces
    split_rows = reduced[reduced > 1]
    return Counter(
        act_sram_writes=k * m,
        act_sram_reads=k * m,
        pe_buf_writes=k * m * p.n_pe + m * pieces,
        weight_sram_reads=m * total,
        index_reads=m * total,
        pe_buf_reads=m * total + m * pieces,
        macs=m * total,
        out_sram_writes=m * pieces + m * len(split_rows),
        out_sram_reads=m * int(split_rows.sum()),
        adds=m * (plan.split_adds + joins),
    )


def _row_cost(
    p: HwProfile, mask: np.ndarray, m: int, flow: str, plan, cycles: int | None = None
) -> OpCost:
    """A row-parallel op of ``mask`` on ``m`` samples (``"unrolled"``: the row-parallel op
    of ``I_M (x) mask`` on one sample, ``hw.program``) compiled with ``plan``; ``cycles``
    where the compiler has counted them already (a sample tile's)."""
    k = mask.shape[1]
    if flow == "unrolled":
        mask, k_op, m_op = unroll_samples(mask, m), k * m, 1
    else:
        k_op, m_op = k, m
    if cycles is None:
        cycles = row_plan_cycles(mask, plan, m_op, p)
    return OpCost(cycles, 1, flow, _rp_counts(k_op, m_op, p, plan))


def spmm_op(p: HwProfile, mask: np.ndarray, m: int) -> OpCost:
    """One SpMM op ``Y = W X`` of ``mask`` (``N x K``) on ``m`` samples, dataflow as compiled
    (:func:`hw.compiler.choose_dataflow`; a sample-tiled SpMM: the sum of its tiles' ops).

    Raises :class:`hw.compiler.ProgramFitError` where the compiler does: no dataflow
    fits.
    """
    flow, plan = choose_dataflow(mask, m, p)
    if flow == "tiled":
        # tiles of one size share their op (hw.compiler.build._tiled_option)
        sizes = Counter(t.m for t in plan)
        first = {t.m: t for t in reversed(plan)}
        costs = [
            _row_cost(p, mask, size, t.flow, t.plan, t.cycles).scaled(sizes[size])
            for size, t in first.items()
        ]
        return sum(costs[1:], costs[0])
    if flow in ("row", "unrolled"):
        return _row_cost(p, mask, m, flow, plan)
    n, k = mask.shape
    row_nnz = mask.sum(axis=1)
    s = timing.stream_length(row_nnz)
    tokens = int((row_nnz == 0).sum())
    cyc = timing.spmm_sample_parallel_cycles(k, n, m, s, p)
    return OpCost(cyc, 1, "sample", _sp_counts(k, n, m, s, tokens, timing.tile_count(m, p)))


def sddmm_ops(p: HwProfile, mask: np.ndarray, m: int) -> OpCost:
    """All chunks of an SDDMM over ``mask`` (``N x K``) on ``m`` samples (one op per chunk)."""
    n, k = mask.shape
    stream = encode_stream(mask, np.zeros(mask.shape, dtype=np.int64))
    tiles = timing.tile_count(m, p)
    width = 1 << max(0, (p.n_pe - 1).bit_length())
    total = None
    for a, b, za, zb in split_chunks(stream, p.grad_buf_words):
        s, nnz = b - a, zb - za
        cnt = Counter(
            act_sram_writes=(k + n) * m,
            act_sram_reads=(k + n) * m,
            pe_buf_writes=(k + n) * m,
            out_sram_writes=nnz,
            grad_sram_writes=nnz * (tiles - 1),
            grad_sram_reads=nnz * (tiles - 1),
            index_reads=s * tiles,
            pe_buf_reads=2 * nnz * m,
            macs=nnz * m,
            adds=width * nnz * tiles,
        )
        c = OpCost(timing.sddmm_cycles(k, n, m, s, p), 1, "sample", cnt)
        total = c if total is None else total + c
    assert total is not None
    return total


def gemm_op(p: HwProfile, k: int, n: int, m: int, resident: bool = False) -> OpCost:
    """One weight-stationary GEMM ``(N x K) (K x M)`` on a systolic profile (``resident``:
    tiles held in the cells' banks, ``hw.program.Op.resident``; same action counts)."""
    r, c = p.rows, p.cols
    kf, nf = -(-k // r), -(-n // c)
    cnt = Counter(
        weight_sram_reads=kf * nf * r * c,
        act_sram_writes=k * m,
        act_sram_reads=nf * k * m,
        pe_buf_reads=(kf - 1) * n * m,
        pe_buf_writes=(kf - 1) * n * m,
        out_sram_writes=n * m,
        macs=k * n * m,
    )
    cycles = (timing.systolic_resident_cycles if resident else timing.systolic_cycles)(k, n, m, p)
    return OpCost(cycles, 1, "systolic", cnt)


def row_plan(p: HwProfile, mask: np.ndarray, m: int):
    """The compiler's row-parallel plan for ``mask`` on ``m`` samples (for reports/tests)."""
    return balance_rows(mask, m, p)
