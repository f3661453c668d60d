"""Row-parallel work assignment: pieces of rows onto PEs (``docs/microarchitecture.md`` s.2.4).

A *piece* is a contiguous range of one row's non-zeros; every row has at least one piece
(an empty row has one piece of length 0 that still occupies one zero-valued entry).
:func:`plan_for_threshold` cuts rows longer than a threshold into near-equal pieces and
assigns the pieces greedily longest-first to the least-loaded PE;
:func:`hw.compiler.build.balance_rows` keeps the threshold (of
:func:`threshold_candidates`) whose compiled op has the fewest cycles.

Load bound (greedy list scheduling): with ``E`` entries in all and the longest piece
``l`` entries, every PE holds ``n_p <= floor((E - l) / P) + l`` entries, i.e. at most one
piece more than the ideal ``E / P``.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np

__all__ = ["RowPlan", "plan_for_threshold", "threshold_candidates"]

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
        """``sum_r (pieces_r - 1)``: reduction adds per sample."""
        return int(len(self.row) - len(np.unique(self.row)))


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
