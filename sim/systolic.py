"""Weight-stationary systolic executor (``docs/microarchitecture.md`` s.3), register level.

Folds run ``n``-fold outer, ``k``-fold inner. Per fold the ``R x C`` weight tile shifts in,
one row of ``C`` words per cycle from the top, until every row holds its weights; then the
array is clocked cycle by cycle (:func:`_stream_fold`): row ``i`` receives input sample
``m`` at cycle ``m + i`` (skewed), activations move one cell right and partial sums one
cell down per cycle, and a column's result for sample ``m`` leaves the bottom row when its
last cell has added its product. The fold ends on the cycle the last result leaves.
Partial sums of earlier ``k``-folds enter the top of each column, so every output is the
sequential saturating chain over ``k = 0..K-1``; the last ``k``-fold requantises.

An op with resident weights (``Op.resident``, s.3.1) has every tile in the cells' banks:
no shift-in, and :func:`_stream_resident` clocks all folds as one stream, ``k``-fold
outer, each cell using the tile of the fold whose sample it holds. The controller starts
a fold ``M`` cycles after the previous one and at least ``R`` cycles after the fold whose
partial sums it reads; every partial-sum read is checked to find its value already
written.

The cycle counts come from clocking these registers, not from :mod:`hw.timing`; its
closed forms (``2R + C + M - 2`` per cold fold, the resident form) are checked against
them in the tests.
"""

from __future__ import annotations

import numpy as np

from hw.numerics import dequantize, int_dtype, requant, sat_acc
from hw.profiles import HwProfile
from hw.program import Op, encode_tiles
from sim.result import MemoryAccesses, OpResult, PhaseCycles

__all__ = ["run_gemm"]


def _shift_in(tile: np.ndarray) -> int:
    """Shift a tile in from the top, one row of ``C`` words per cycle (bottom row first);
    returns the cycles until every row holds its own weights."""
    regs = np.zeros_like(tile)
    cycles = 0
    for row in tile[::-1]:
        regs = np.concatenate([row[None, :], regs[:-1]])
        cycles += 1
    assert np.array_equal(regs, tile)
    return cycles


def _stream_fold(
    tile: np.ndarray, x: np.ndarray, psum_in: np.ndarray, profile: HwProfile
) -> tuple[np.ndarray, int]:
    """Clock the array through one fold.

    ``tile[i, j]`` is cell ``(i, j)``'s weight, ``x`` the ``R x M`` input rows, ``psum_in``
    the ``C x M`` partial sums entering the top. Returns the ``C x M`` sums leaving the
    bottom and the cycles from the first input to the last result.
    """
    r, c = tile.shape
    m = x.shape[1]
    dt = psum_in.dtype
    act = np.zeros((r, c), dtype=dt)  # activation register of each cell
    act_ok = np.zeros((r, c), dtype=bool)
    psum = np.zeros((r, c), dtype=dt)  # partial-sum register of each cell
    sample = np.full((r, c), -1)  # which sample each cell's registers hold
    out = np.zeros((c, m), dtype=dt)
    done = np.zeros((c, m), dtype=bool)
    rows = np.arange(r)
    cycle = 0
    while not done.all():
        # activations: the skewed input enters column 0, the rest move one cell right
        s_in = cycle - rows
        feed = (s_in >= 0) & (s_in < m)
        new_act = np.empty_like(act)
        new_act[:, 1:] = act[:, :-1]
        new_act[:, 0] = np.where(feed, x[rows, np.clip(s_in, 0, m - 1)], 0)
        new_ok = np.empty_like(act_ok)
        new_ok[:, 1:] = act_ok[:, :-1]
        new_ok[:, 0] = feed
        new_sample = np.empty_like(sample)
        new_sample[:, 1:] = sample[:, :-1]
        new_sample[:, 0] = np.where(feed, s_in, -1)
        # partial sums: from the cell above (row 0: the previous fold's sums)
        above = np.empty_like(psum)
        above[1:] = psum[:-1]
        top = new_sample[0]
        above[0] = np.where(top >= 0, psum_in[np.arange(c), np.clip(top, 0, m - 1)], 0)
        new_psum = np.where(new_ok, sat_acc(above + tile * new_act, profile), psum)
        act, act_ok, psum, sample = new_act, new_ok, new_psum, new_sample
        cycle += 1
        leaving = act_ok[r - 1]
        cols = np.flatnonzero(leaving)
        out[cols, sample[r - 1, cols]] = psum[r - 1, cols]
        done[cols, sample[r - 1, cols]] = True
    return out, cycle


def _stream_resident(
    tiles: np.ndarray, x: np.ndarray, kf_count: int, nf_count: int, profile: HwProfile
) -> tuple[np.ndarray, int]:
    """Clock the array through every fold of a resident-weight op as one stream.

    ``tiles[nf * kf_count + kf]`` is fold ``(kf, nf)``'s tile, ``x`` the ``kf_count * R x M``
    padded input. Returns the ``nf_count * C x M`` final sums and the cycles from the
    first input to the last result.
    """
    r, c = profile.rows, profile.cols
    m = x.shape[1]
    dt = tiles.dtype
    order = [(kf, nf) for kf in range(kf_count) for nf in range(nf_count)]
    starts: list[int] = []
    for i, (kf, _nf) in enumerate(order):
        s = starts[-1] + m if starts else 0
        if kf > 0:
            s = max(s, starts[i - nf_count] + r)
        starts.append(s)
    start_arr = np.asarray(starts)
    fold_kf = np.asarray([kf for kf, _ in order])
    fold_nf = np.asarray([nf for _, nf in order])
    psum_buf = np.zeros((nf_count, c, m), dtype=dt)
    written = np.zeros((nf_count, kf_count, c, m), dtype=bool)
    act = np.zeros((r, c), dtype=dt)
    ok = np.zeros((r, c), dtype=bool)
    psum = np.zeros((r, c), dtype=dt)
    sample = np.full((r, c), -1)
    fold = np.zeros((r, c), dtype=np.int64)
    rows, cols = np.arange(r), np.arange(c)
    remaining = nf_count * c * m
    cycle = 0
    while remaining:
        t_row = cycle - rows
        f_in = np.searchsorted(start_arr, t_row, side="right") - 1
        s_in = t_row - start_arr[np.maximum(f_in, 0)]
        feed = (f_in >= 0) & (s_in >= 0) & (s_in < m)
        f_in = np.where(feed, f_in, 0)
        s_in = np.where(feed, s_in, 0)
        new_act = np.empty_like(act)
        new_act[:, 1:] = act[:, :-1]
        new_act[:, 0] = np.where(feed, x[fold_kf[f_in] * r + rows, s_in], 0)
        new_ok = np.empty_like(ok)
        new_ok[:, 1:] = ok[:, :-1]
        new_ok[:, 0] = feed
        new_sample = np.empty_like(sample)
        new_sample[:, 1:] = sample[:, :-1]
        new_sample[:, 0] = np.where(feed, s_in, -1)
        new_fold = np.empty_like(fold)
        new_fold[:, 1:] = fold[:, :-1]
        new_fold[:, 0] = f_in
        above = np.empty_like(psum)
        above[1:] = psum[:-1]
        top_ok, top_f, top_s = new_ok[0], new_fold[0], np.maximum(new_sample[0], 0)
        kf_top, nf_top = fold_kf[top_f], fold_nf[top_f]
        chained = top_ok & (kf_top > 0)
        assert written[nf_top, kf_top - 1, cols, top_s][chained].all(), "psum read too early"
        above[0] = np.where(chained, psum_buf[nf_top, cols, top_s], 0)
        w = tiles[fold_nf[new_fold] * kf_count + fold_kf[new_fold], rows[:, None], cols[None, :]]
        new_psum = np.where(new_ok, sat_acc(above + w * new_act, profile), psum)
        act, ok, psum, sample, fold = new_act, new_ok, new_psum, new_sample, new_fold
        cycle += 1
        out_cols = np.flatnonzero(ok[r - 1])
        f_out, s_out = fold[r - 1, out_cols], sample[r - 1, out_cols]
        psum_buf[fold_nf[f_out], out_cols, s_out] = psum[r - 1, out_cols]
        written[fold_nf[f_out], fold_kf[f_out], out_cols, s_out] = True
        remaining -= int((fold_kf[f_out] == kf_count - 1).sum())
    return psum_buf.reshape(nf_count * c, m), cycle


def run_gemm(op: Op, x: np.ndarray, dy: np.ndarray | None, profile: HwProfile) -> OpResult:
    """Run a ``gemm`` op. Forward / input gradient: stationary tiles from the program,
    ``x`` streamed. Weight gradients: ``dy`` stationary (``N x M``), ``x^T`` streamed
    (``M x K``), result ``(N, K)`` masked by the op's mask."""
    r, c = profile.rows, profile.cols
    dt = int_dtype(profile)
    if "weight_tiles" in op.arrays:
        n, k, m = op.n, op.k, op.m
        tiles = op.arrays["weight_tiles"].astype(dt)
        stream = np.asarray(x).astype(dt)
    else:
        n, k, m = op.n, op.m, op.k
        tiles = encode_tiles(np.asarray(dy), profile).astype(dt)
        stream = np.asarray(x).T.astype(dt)
    kf_count, nf_count = -(-k // r), -(-n // c)
    padded = np.zeros((kf_count * r, m), dtype=dt)
    padded[:k] = stream
    y = np.zeros((nf_count * c, m), dtype=dt)
    busy = np.zeros((r, c), dtype=np.int64)
    mem = dict.fromkeys(MemoryAccesses.__dataclass_fields__, 0)
    mem["act_sram_writes"] = k * m  # the host's fill of the streamed operand
    macs = load_cycles = stream_cycles = 0
    if op.resident:
        sums, stream_cycles = _stream_resident(tiles, padded, kf_count, nf_count, profile)
        y = requant(sums, profile)
    for nf in range(nf_count):
        n_real = min(c, n - nf * c)
        psum = np.zeros((c, m), dtype=dt)
        for kf in range(kf_count):
            k_real = min(r, k - kf * r)
            tile = tiles[nf * kf_count + kf]
            mem["weight_sram_reads"] += r * c
            mem["act_sram_reads"] += k_real * m
            if kf > 0:
                mem["pe_buf_reads"] += n_real * m
            if not op.resident:
                load_cycles += _shift_in(tile)
                psum, cycles = _stream_fold(tile, padded[kf * r : (kf + 1) * r], psum, profile)
                stream_cycles += cycles
            if kf < kf_count - 1:
                mem["pe_buf_writes"] += n_real * m
            busy[:k_real, :n_real] += m
            macs += k_real * n_real * m
        if not op.resident:
            y[nf * c : (nf + 1) * c] = requant(psum, profile)
        mem["out_sram_writes"] += n_real * m
    y = y[:n]
    if "mask" in op.arrays:
        y = np.where(op.arrays["mask"].reshape(op.n, op.k).astype(bool), y, 0).astype(dt)
    phases = PhaseCycles(load=load_cycles, compute=stream_cycles)
    return OpResult(
        name=op.name,
        output=y,
        output_float=dequantize(y, profile),
        cycles=phases.total,
        phases=phases,
        compute_cycles=phases.compute,
        steps=kf_count * nf_count,
        pe_busy=busy.reshape(-1),
        mem=MemoryAccesses(**mem),
        macs=macs,
        useful_macs=op.m * op.nnz,
        out_image=y.reshape(-1),
    )
