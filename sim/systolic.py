"""Weight-stationary systolic executor (``docs/microarchitecture.md`` s.3).

Folds run ``n``-fold outer, ``k``-fold inner. Per fold the ``R x C`` weight tile shifts in
(``R`` cycles, one row of ``C`` words per cycle), then ``M`` skewed input columns stream
through and drain (``M + R + C - 2`` cycles). Partial sums of earlier ``k``-folds enter
the top of each column, so every output is the sequential saturating chain over
``k = 0..K-1``; the last ``k``-fold requantises.
"""

from __future__ import annotations

import numpy as np

from hw.numerics import dequantize, int_dtype, requant, sat_acc
from hw.profiles import HwProfile
from hw.program import Op, encode_tiles
from sim.result import MemoryAccesses, OpResult, PhaseCycles

__all__ = ["run_gemm"]


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
    macs = 0
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
            for i in range(r):
                psum = sat_acc(psum + tile[i][:, None] * padded[kf * r + i][None, :], profile)
            if kf < kf_count - 1:
                mem["pe_buf_writes"] += n_real * m
            busy[:k_real, :n_real] += m
            macs += k_real * n_real * m
        y[nf * c : (nf + 1) * c] = requant(psum, profile)
        mem["out_sram_writes"] += n_real * m
    y = y[:n]
    if "mask" in op.arrays:
        y = np.where(op.arrays["mask"].reshape(op.n, op.k).astype(bool), y, 0).astype(dt)
    folds = kf_count * nf_count
    phases = PhaseCycles(load=folds * r, compute=folds * (m + r + c - 2))
    return OpResult(
        name=op.name,
        output=y,
        output_float=dequantize(y, profile),
        cycles=phases.total,
        phases=phases,
        compute_cycles=phases.compute,
        steps=folds,
        pe_busy=busy.reshape(-1),
        mem=MemoryAccesses(**mem),
        macs=macs,
        useful_macs=op.m * op.nnz,
        out_image=y.reshape(-1),
    )
