"""Encoders from an integer weight matrix to the arrays of a :class:`hw.program.Op`.

Layouts are documented in :mod:`hw.program`. All functions take ``mask`` (``N x K`` bool)
and ``w`` (``N x K`` operand integers, zero where the mask is ``False``).
"""

from __future__ import annotations

import numpy as np

from hw.compiler.balance import RowPlan
from hw.timing import bank_positions, sddmm_chunk_bounds

__all__ = ["broadcast_positions", "encode_stream", "encode_banks", "split_chunks"]


def encode_stream(mask: np.ndarray, w: np.ndarray) -> dict[str, np.ndarray]:
    """CSR stream with one token per empty row (s.2.1).

    Returns ``stream_val``, ``stream_col``, ``stream_last``, ``stream_token`` of length
    ``S = sum_r max(1, nnz_r)``; non-zeros in row-major order, columns ascending.
    """
    cnt = mask.sum(axis=1).astype(np.int64)
    length = np.maximum(cnt, 1)
    s = int(length.sum())
    start = np.cumsum(length) - length
    r, c = np.nonzero(mask)
    within = np.arange(len(r)) - (np.cumsum(cnt) - cnt)[r]
    pos = start[r] + within
    val = np.zeros(s, dtype=np.int64)
    col = np.zeros(s, dtype=np.int64)
    last = np.zeros(s, dtype=np.int64)
    token = np.zeros(s, dtype=np.int64)
    val[pos] = w[r, c]
    col[pos] = c
    last[start + length - 1] = 1
    token[start[cnt == 0]] = 1
    return {"stream_val": val, "stream_col": col, "stream_last": last, "stream_token": token}


def split_chunks(stream: dict[str, np.ndarray], limit: int) -> list[tuple[int, int, int, int]]:
    """SDDMM chunks of an encoded stream (:func:`hw.timing.sddmm_chunk_bounds`)."""
    last = stream["stream_last"].astype(bool)
    token = stream["stream_token"].astype(bool)
    row_of = np.concatenate(([0], np.cumsum(last)[:-1]))
    row_nnz = np.bincount(row_of[~token], minlength=int(last.sum()))
    return sddmm_chunk_bounds(row_nnz, limit)


def broadcast_positions(col: np.ndarray, bank_ptr: np.ndarray, k: int) -> np.ndarray:
    """The broadcast order of a row-parallel op's inputs: position of input column ``c``.

    Each bank entry ``i`` of a PE is presented ``i`` cycles into its sample's walk, so the
    word it reads is due then; ordering the columns by the first position at which any PE
    reads them (earliest deadline first; ties and unread columns by column) minimises the
    walk's start (``docs/microarchitecture.md`` s.2.4, the ``rp_delay`` op register).
    """
    col = np.asarray(col, dtype=np.int64)
    within = bank_positions(bank_ptr)[3]
    first = np.full(k, np.iinfo(np.int64).max)
    np.minimum.at(first, col, within)
    pos = np.empty(k, dtype=np.int64)
    pos[np.lexsort((np.arange(k), first))] = np.arange(k)
    return pos


def encode_banks(mask: np.ndarray, w: np.ndarray, plan: RowPlan) -> dict[str, np.ndarray]:
    """Per-PE weight banks, piece table and reduction schedule of a row-parallel op.

    ``bank_col`` holds each entry's broadcast position (``bcast_pos`` of its column, from
    :func:`broadcast_positions`); the entries of a piece stay in column order. A plan with
    rows joined at the drain adds ``piece_join`` (1 on each joined row's second piece);
    those rows have no reduction record.
    """
    row_cols = [np.flatnonzero(mask[r]) for r in range(mask.shape[0])]
    vals, cols, ends = [], [], []
    for r, b, e in zip(plan.row.tolist(), plan.begin.tolist(), plan.end.tolist(), strict=True):
        if e == b:
            vals.append(np.zeros(1, dtype=np.int64))
            cols.append(np.zeros(1, dtype=np.int64))
        else:
            cc = row_cols[r][b:e]
            vals.append(w[r, cc].astype(np.int64))
            cols.append(cc.astype(np.int64))
        flag = np.zeros(len(cols[-1]), dtype=np.int64)
        flag[-1] = 1
        ends.append(flag)
    pe_entries = plan.pe_entries
    pieces_per_row = plan.row_pieces
    split = pieces_per_row[plan.row] > 1
    reduced = plan.reduced_pieces > 1  # (not the rows joined at the drain)
    split_rows = np.flatnonzero(reduced)
    red_index = np.full(len(pieces_per_row), -1, dtype=np.int64)
    red_index[split_rows] = np.arange(len(split_rows))
    red_piece, red_ptr = [], [0]
    for r in split_rows.tolist():
        idx = np.flatnonzero(plan.row == r)
        red_piece.extend(idx[np.argsort(plan.part[idx], kind="stable")].tolist())
        red_ptr.append(len(red_piece))
    bank_ptr = np.concatenate(([0], np.cumsum(pe_entries)))
    bank_col = np.concatenate(cols)
    bcast_pos = broadcast_positions(bank_col, bank_ptr, mask.shape[1])
    return {
        "bank_val": np.concatenate(vals),
        "bank_col": bcast_pos[bank_col],
        "bank_end": np.concatenate(ends),
        "bank_ptr": bank_ptr,
        "bcast_pos": bcast_pos,
        "piece_pe": plan.pe,
        "piece_row": plan.row,
        "piece_split": split.astype(np.int64),
        "piece_red": np.where(reduced[plan.row], red_index[plan.row], -1),
        "piece_len": plan.end - plan.begin,
        "piece_ptr": np.concatenate(([0], np.cumsum(plan.pe_pieces))),
        "red_row": split_rows.astype(np.int64),
        "red_ptr": np.array(red_ptr, dtype=np.int64),
        "red_piece": np.array(red_piece, dtype=np.int64),
        **({"piece_join": plan.joined.astype(np.int64)} if plan.joined.any() else {}),
    }
