"""Row-parallel work assignment: pieces of rows onto PEs (``docs/microarchitecture.md`` s.2.4).

A *piece* is a contiguous range of one row's non-zeros; every row has at least one piece
(an empty row has one piece of length 0 that still occupies one zero-valued entry).
:func:`plan_for_threshold` cuts rows longer than a threshold into near-equal pieces and
assigns the pieces greedily longest-first to the least-loaded PE;
:func:`hw.compiler.build.balance_rows` keeps the threshold (of
:func:`threshold_candidates`) whose compiled op has the fewest cycles. On a profile with
``drain_join`` :func:`plan_with_joins` offers, for each threshold, a plan whose long rows
are added at the drain by a pair of PEs instead of by the reduction unit.

Load bound (greedy list scheduling): with ``E`` entries in all and the longest piece
``l`` entries, every PE holds ``n_p <= floor((E - l) / P) + l`` entries, i.e. at most one
piece more than the ideal ``E / P``.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np

__all__ = ["RowPlan", "plan_for_threshold", "plan_with_joins", "threshold_candidates"]

_THRESHOLD_FRACTIONS = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0)


@dataclass(frozen=True, eq=False)
class RowPlan:
    """Pieces and their PEs for one matrix.

    Piece ``i`` covers non-zeros ``begin[i] .. end[i]-1`` (indices within its row's
    non-zeros, column order) of row ``row[i]``; ``part[i]`` is its index among its row's
    pieces; it runs on PE ``pe[i]``. Pieces are listed PE-major, in bank order (row, part).
    """

    row: np.ndarray
    part: np.ndarray
    begin: np.ndarray
    end: np.ndarray
    pe: np.ndarray
    n_pe: int
    threshold: int
    """Longest piece allowed when cutting rows (the chosen candidate)."""
    join: np.ndarray | None = None
    """Per piece: 1 for the second piece of a row joined at the drain (``drain_join``):
    the row has two pieces, the last of PEs ``2i`` and ``2i + 1``, this one on ``2i + 1``.
    ``None``: no joined row."""

    @property
    def joined(self) -> np.ndarray:
        """:attr:`join` as a bool array (all False without joined rows)."""
        if self.join is None:
            return np.zeros(len(self.row), dtype=bool)
        return np.asarray(self.join, dtype=bool)

    @property
    def entries(self) -> np.ndarray:
        """Bank entries per piece: ``max(1, length)``."""
        return np.maximum(self.end - self.begin, 1)

    @property
    def pe_entries(self) -> np.ndarray:
        """``n_p`` per PE."""
        return np.bincount(self.pe, weights=self.entries, minlength=self.n_pe).astype(np.int64)

    @property
    def pe_pieces(self) -> np.ndarray:
        """``q_p`` per PE."""
        return np.bincount(self.pe, minlength=self.n_pe).astype(np.int64)

    @property
    def row_pieces(self) -> np.ndarray:
        """Pieces per row."""
        return np.bincount(self.row, minlength=int(self.row.max()) + 1).astype(np.int64)

    @property
    def split_adds(self) -> int:
        """``sum_r (pieces_r - 1)`` over the rows the reduction unit adds (not the joined
        ones): its adds per sample."""
        return int(len(self.row) - len(np.unique(self.row)) - self.joined.sum())


def plan_for_threshold(row_nnz: np.ndarray, n_pe: int, threshold: int, blocks: int = 1) -> RowPlan:
    """Cut rows longer than ``threshold`` into near-equal pieces and assign them greedily.

    A row is cut into at most ``n_pe`` pieces. Pieces are taken longest first (ties: lower
    row, then lower part) and each goes to the PE with the fewest entries (ties: fewer
    pieces, then lower PE index) among the PEs that hold no other piece of its row: the
    reduction reads two partials of a row at once, one from each of two output-SRAM banks,
    so each bank needs a single read port. With ``blocks > 1`` the rows form that many
    equal consecutive blocks (the samples of a sample-unrolled op) and the pieces are taken
    block by block, longest first within a block, so each PE's bank (in row order) reads
    the early samples' words first and its walk can start early in the broadcast.
    """
    row_nnz = np.asarray(row_nnz, dtype=np.int64)
    rows, parts, begins, ends = [], [], [], []
    for r, c in enumerate(row_nnz.tolist()):
        k = min(n_pe, max(1, math.ceil(c / threshold)))
        base, extra = divmod(c, k)
        b = 0
        for j in range(k):
            e = b + base + (1 if j < extra else 0)
            rows.append(r)
            parts.append(j)
            begins.append(b)
            ends.append(e)
            b = e
    row = np.array(rows, dtype=np.int64)
    part = np.array(parts, dtype=np.int64)
    begin = np.array(begins, dtype=np.int64)
    end = np.array(ends, dtype=np.int64)
    size = np.maximum(end - begin, 1)
    block = row * blocks // max(1, len(row_nnz))
    order = np.lexsort((part, row, -size, block))
    heap = [(0, 0, p) for p in range(n_pe)]
    pe = np.empty(len(row), dtype=np.int64)
    holding: dict[int, set[int]] = {}  # row -> PEs with a piece of it
    for i in order.tolist():
        taken = holding.setdefault(int(row[i]), set())
        skipped = []
        while True:  # at most n_pe - 1 skips: a row has at most n_pe pieces
            load, count, p = heapq.heappop(heap)
            if p not in taken:
                break
            skipped.append((load, count, p))
        pe[i] = p
        taken.add(p)
        heapq.heappush(heap, (load + int(size[i]), count + 1, p))
        for entry in skipped:
            heapq.heappush(heap, entry)
    bank = np.lexsort((part, row, pe))
    return RowPlan(
        row=row[bank],
        part=part[bank],
        begin=begin[bank],
        end=end[bank],
        pe=pe[bank],
        n_pe=n_pe,
        threshold=threshold,
    )


def threshold_candidates(row_nnz: np.ndarray, n_pe: int) -> list[int]:
    """Piece-length limits tried by :func:`hw.compiler.build.balance_rows`, largest (no
    split) first."""
    row_nnz = np.asarray(row_nnz, dtype=np.int64)
    longest = max(1, int(row_nnz.max()))
    ideal = math.ceil(int(np.maximum(row_nnz, 1).sum()) / n_pe)
    cands = {longest}
    cands.update(max(1, math.ceil(ideal * f)) for f in _THRESHOLD_FRACTIONS)
    cands.update(max(1, math.ceil(longest / j)) for j in range(2, 9))
    return sorted((c for c in cands if c <= longest), reverse=True)


def plan_with_joins(row_nnz: np.ndarray, n_pe: int, threshold: int, blocks: int = 1) -> RowPlan:
    """Join the longest rows at the drain instead of reducing them (``drain_join``, s.2.4).

    Rows longer than ``threshold`` (at least two non-zeros), longest first (ties: lower
    row), at most one per pair of PEs, are cut in two near-equal pieces: pair ``i`` takes
    the ``i``-th, its first piece on PE ``2i`` and its second on PE ``2i + 1``, each the
    last piece of its PE's bank, so both are drained in the drain's last cycle of a
    sample. Every other row is one piece, placed greedily as :func:`plan_for_threshold`
    places its pieces (longest first, block by block with ``blocks > 1``). No row goes
    to the reduction unit.
    """
    row_nnz = np.asarray(row_nnz, dtype=np.int64)
    long_rows = [int(r) for r in np.lexsort((np.arange(len(row_nnz)), -row_nnz))]
    long_rows = [r for r in long_rows if row_nnz[r] > threshold and row_nnz[r] >= 2]
    joined = long_rows[: n_pe // 2]
    load = np.zeros(n_pe, dtype=np.int64)
    count = np.zeros(n_pe, dtype=np.int64)
    rows, parts, begins, ends, pes, joins = [], [], [], [], [], []
    for i, r in enumerate(joined):
        c = int(row_nnz[r])
        half = (c + 1) // 2
        for part, (b, e) in enumerate(((0, half), (half, c))):
            p = 2 * i + part
            rows.append(r)
            parts.append(part)
            begins.append(b)
            ends.append(e)
            pes.append(p)
            joins.append(part)
            load[p] += e - b
            count[p] += 1
    whole = np.setdiff1d(np.arange(len(row_nnz)), np.array(joined, dtype=np.int64))
    size = np.maximum(row_nnz[whole], 1)
    block = whole * blocks // max(1, len(row_nnz))
    heap = [(int(load[p]), int(count[p]), p) for p in range(n_pe)]
    heapq.heapify(heap)
    for i in np.lexsort((whole, -size, block)).tolist():
        ld, cnt, p = heapq.heappop(heap)
        rows.append(int(whole[i]))
        parts.append(0)
        begins.append(0)
        ends.append(int(row_nnz[whole[i]]))
        pes.append(p)
        joins.append(0)
        heapq.heappush(heap, (ld + int(size[i]), cnt + 1, p))
    row, part, pe = (np.array(v, dtype=np.int64) for v in (rows, parts, pes))
    join = np.array(joins, dtype=np.int64)
    last = np.isin(row, np.array(joined, dtype=np.int64))  # a joined row's pieces: bank last
    bank = np.lexsort((part, row, last, pe))
    return RowPlan(
        row=row[bank],
        part=part[bank],
        begin=np.array(begins, dtype=np.int64)[bank],
        end=np.array(ends, dtype=np.int64)[bank],
        pe=pe[bank],
        n_pe=n_pe,
        threshold=threshold,
        join=join[bank] if joined else None,
    )
