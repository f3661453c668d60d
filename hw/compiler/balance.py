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
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hw.profiles import HwProfile

__all__ = [
    "RowPlan",
    "plan_cuts",
    "plan_for_threshold",
    "plan_with_joins",
    "threshold_candidates",
]

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
    def reduced_pieces(self) -> np.ndarray:
        """Pieces per row that the reduction unit adds: :attr:`row_pieces`, with 1 for a row
        joined at the drain (its two pieces are added there)."""
        pieces = self.row_pieces
        pieces[self.row[self.joined]] = 1
        return pieces

    @property
    def split_adds(self) -> int:
        """``sum_r (pieces_r - 1)`` over the rows the reduction unit adds (not the joined
        ones): its adds per sample."""
        return int(np.maximum(self.reduced_pieces - 1, 0).sum())


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
    return _place(rows, parts, begins, ends, len(row_nnz), n_pe, threshold, blocks)


def _place(
    rows: list[int],
    parts: list[int],
    begins: list[int],
    ends: list[int],
    n_rows: int,
    n_pe: int,
    threshold: int,
    blocks: int,
    fixed: dict[int, int] | None = None,
) -> RowPlan:
    """The plan of these pieces: piece ``i`` on PE ``fixed[i]`` where given (the pieces of
    rows joined at the drain, :func:`plan_with_joins`), the others taken longest first
    (ties: lower row, then lower part; block by block with ``blocks > 1``), each to the PE
    with the fewest entries (ties: fewer pieces, then lower PE index) among those that hold
    no other piece of its row. Bank order is by row and part within a PE, a joined row's
    pieces last."""
    fixed = fixed or {}
    row, part, begin, end = (np.array(v, dtype=np.int64) for v in (rows, parts, begins, ends))
    size = np.maximum(end - begin, 1)
    block = row * blocks // max(1, n_rows)
    pe = np.empty(len(row), dtype=np.int64)
    load, count = np.zeros(n_pe, dtype=np.int64), np.zeros(n_pe, dtype=np.int64)
    holding: dict[int, set[int]] = {}  # row -> PEs with a piece of it
    for i, p in fixed.items():
        pe[i] = p
        load[p] += size[i]
        count[p] += 1
        holding.setdefault(int(row[i]), set()).add(p)
    heap = [(int(load[p]), int(count[p]), p) for p in range(n_pe)]
    heapq.heapify(heap)
    for i in np.lexsort((part, row, -size, block)).tolist():
        if i in fixed:
            continue
        taken = holding.setdefault(int(row[i]), set())
        skipped = []
        while True:  # at most n_pe - 1 skips: a row has at most n_pe pieces
            ld, cnt, p = heapq.heappop(heap)
            if p not in taken:
                break
            skipped.append((ld, cnt, p))
        pe[i] = p
        taken.add(p)
        heapq.heappush(heap, (ld + int(size[i]), cnt + 1, p))
        for entry in skipped:
            heapq.heappush(heap, entry)
    join = np.zeros(len(row), dtype=np.int64)
    joined_row = np.zeros(len(row), dtype=bool)
    for i in fixed:
        join[i] = part[i]
        joined_row[i] = True
    bank = np.lexsort((part, row, joined_row, pe))
    return RowPlan(
        row=row[bank],
        part=part[bank],
        begin=begin[bank],
        end=end[bank],
        pe=pe[bank],
        n_pe=n_pe,
        threshold=threshold,
        join=join[bank] if fixed else None,
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
    pair = {r: i for i, r in enumerate(long_rows[: n_pe // 2])}  # row -> its pair of PEs
    rows, parts, begins, ends, fixed = [], [], [], [], {}
    for r, c in enumerate(row_nnz.tolist()):
        cuts = (0, (c + 1) // 2, c) if r in pair else (0, c)
        for part in range(len(cuts) - 1):
            if r in pair:
                fixed[len(rows)] = 2 * pair[r] + part
            rows.append(r)
            parts.append(part)
            begins.append(cuts[part])
            ends.append(cuts[part + 1])
    return _place(rows, parts, begins, ends, len(row_nnz), n_pe, threshold, blocks, fixed)


def plan_cuts(profile: HwProfile, m: int) -> tuple[Callable[..., RowPlan], ...]:
    """The plan makers the balancer tries at each threshold for an op on ``m`` samples:
    :func:`plan_for_threshold`, and :func:`plan_with_joins` on a ``drain_join`` profile
    with one sample (the drain's adders join a row's last pieces of one sample)."""
    if profile.drain_join and m == 1 and profile.n_pe >= 2:
        return (plan_for_threshold, plan_with_joins)
    return (plan_for_threshold,)
