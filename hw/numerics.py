"""Fixed-point numerics of the accelerator, defined once (``docs/microarchitecture.md`` s.1).

Every integer here is a two's-complement value held in a numpy ``int64`` array (or a numpy
``object`` array of Python integers when a profile's accumulator is wider than 62 bits, so
that no intermediate can wrap). Operands carry ``f = frac_bits`` fractional bits, products
and accumulators ``2f``.

Building blocks, each vectorised over every axis but the one the hardware walks in order:

- :func:`quantize` / :func:`dequantize` between floats and operand integers;
- :func:`sat` (and the :func:`sat_op` / :func:`sat_acc` shorthands), :func:`requant`;
- :func:`mac_chain`: segmented sequential saturating accumulation (one PE accumulator
  walking a stream, clearing after every segment end);
- :func:`adder_tree`: the pairwise saturating ``P``-input tree of the SDDMM datapath.

The integer references (:func:`reference_spmm`, :func:`reference_sddmm`) perform the same
adds in the same order as the hardware from dense matrices; :func:`float_error_bound`
states how far the requantised result may be from the exact float product.

Quantisation error bound
------------------------
Let ``e = 2**-(f+1)`` (half an operand LSB). If no operand is clipped by
:func:`quantize` and no accumulator saturates, every output of an SpMM / GEMM
``Y[n, m] = sum_k W[n, k] X[k, m]`` over the kept ``k`` satisfies::

    |dequantize(Y_int[n, m]) - Y[n, m]| <= e * (1 + sum_k (|Wq[n, k]| + |X[k, m]|))

because ``|w x - wq xq| <= e |x| + e |wq|`` per product, the integer sum of the exact
products is exact, and the final :func:`requant` adds at most ``e``. The SDDMM bound is
the same with ``(W, X)`` replaced by ``(dY, X)`` summed over the samples.
"""

from __future__ import annotations

import numpy as np

from hw.profiles import HwProfile

__all__ = [
    "adder_tree",
    "dequantize",
    "exact_matmul",
    "float_error_bound",
    "float_reference_sddmm",
    "float_reference_spmm",
    "int_dtype",
    "mac_chain",
    "quantize",
    "reference_sddmm",
    "reference_spmm",
    "requant",
    "sat",
    "sat_acc",
    "sat_op",
]

_SAFE_BITS = 62


def int_dtype(profile: HwProfile) -> type:
    """``np.int64`` when every accumulator fits with headroom, else ``object`` (exact ints)."""
    return np.int64 if profile.acc_bits <= _SAFE_BITS else object


def _as_int(a: np.ndarray, profile: HwProfile) -> np.ndarray:
    return np.asarray(a).astype(int_dtype(profile))


def sat(a: np.ndarray, bits: int) -> np.ndarray:
    """Saturate to the signed ``bits``-bit range ``[-2**(bits-1), 2**(bits-1) - 1]``."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return np.minimum(np.maximum(a, lo), hi)


def sat_op(a: np.ndarray, profile: HwProfile) -> np.ndarray:
    """Saturate to the operand format (``operand_bits``)."""
    return sat(a, profile.operand_bits)


def sat_acc(a: np.ndarray, profile: HwProfile) -> np.ndarray:
    """Saturate to the accumulator format (``acc_bits``)."""
    return sat(a, profile.acc_bits)


def quantize(x: np.ndarray, profile: HwProfile) -> np.ndarray:
    """Float -> operand integer: ``clip(floor(x * 2**f + 0.5), operand_min, operand_max)``."""
    scaled = np.floor(np.asarray(x, dtype=np.float64) * float(1 << profile.frac_bits) + 0.5)
    clipped = np.clip(scaled, profile.operand_min, profile.operand_max)
    return _as_int(clipped.astype(np.int64), profile)


def dequantize(q: np.ndarray, profile: HwProfile, *, acc: bool = False) -> np.ndarray:
    """Integer -> float64; ``acc=True`` for accumulator values (``2f`` fractional bits)."""
    scale = 2.0 ** -(2 * profile.frac_bits if acc else profile.frac_bits)
    return np.asarray(q).astype(np.float64) * scale


def requant(a: np.ndarray, profile: HwProfile) -> np.ndarray:
    """Accumulator -> operand: ``sat_op((a + 2**(f-1)) >> f)`` (round half up)."""
    f = profile.frac_bits
    if f == 0:
        return sat_op(np.asarray(a), profile)
    return sat_op((np.asarray(a) + (1 << (f - 1))) >> f, profile)


def mac_chain(prods: np.ndarray, last: np.ndarray, profile: HwProfile) -> np.ndarray:
    """Sequential saturating accumulation of segments, one accumulator per lane.

    Parameters
    ----------
    prods:
        ``(S, L)`` exact products (``2f`` fractional bits), in the order the accumulator
        receives them; ``L`` independent lanes (PEs / samples / columns).
    last:
        ``(S,)`` booleans; ``True`` ends a segment (the accumulator's value is emitted and
        it restarts at 0). The final entry must be ``True``.

    Returns
    -------
    ``(n_segments, L)``: ``acc`` after each segment, where within a segment
    ``acc <- sat_acc(acc + p)`` starting from 0.

    Notes
    -----
    Exact fast path: when no prefix sum of a segment leaves the accumulator range, no add
    saturates and the result is the plain sum; otherwise the segments that do are replayed
    entry by entry.
    """
    prods = _as_int(prods, profile)
    last = np.asarray(last, dtype=bool)
    if prods.ndim != 2 or prods.shape[0] != last.shape[0] or (len(last) and not last[-1]):
        raise ValueError(f"mac_chain: bad shapes {prods.shape} / {last.shape} or open segment")
    ends = np.flatnonzero(last)
    starts = np.concatenate(([0], ends[:-1] + 1))
    if prods.shape[0] == 0:
        return prods.reshape(0, prods.shape[1])
    seg = np.repeat(np.arange(len(ends)), ends - starts + 1)
    peak = np.abs(prods).max() if prods.size else 0
    if prods.dtype == np.int64 and int(peak) * prods.shape[0] < (1 << _SAFE_BITS):
        cs = np.cumsum(prods, axis=0)
        before = np.where(starts[:, None] > 0, cs[np.maximum(starts - 1, 0)], 0)
        prefix = cs - before[seg]
        lo, hi = profile.acc_min, profile.acc_max
        out = prefix[ends]
        bad_rows = (prefix < lo) | (prefix > hi)
        if not bad_rows.any():
            return out
        bad_segs = np.unique(seg[bad_rows.any(axis=1)])
    else:
        out = np.zeros((len(ends), prods.shape[1]), dtype=prods.dtype)
        bad_segs = np.arange(len(ends))
    for s in bad_segs:
        acc = np.zeros(prods.shape[1], dtype=prods.dtype)
        for i in range(starts[s], ends[s] + 1):
            acc = sat_acc(acc + prods[i], profile)
        out[s] = acc
    return out


def exact_matmul(a: np.ndarray, b: np.ndarray, profile: HwProfile) -> np.ndarray | None:
    """``a @ b`` when no saturating add of any order could saturate, else ``None``.

    Every partial sum of ``sum_k a[n, k] b[k, m]`` (in any order and grouping, a chain or
    a tree) is bounded by ``sum_k |a[n, k]| max_m |b[k, m]|``; when that bound is within
    the accumulator range for every ``n``, no add saturates and the saturating computation
    equals the plain integer product (computed in ``int64``, exact). Callers fall back to
    the entry-by-entry arithmetic when ``None`` is returned.
    """
    if int_dtype(profile) is object or a.size == 0 or b.size == 0:
        return None
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    bound = np.abs(a).astype(np.float64) @ np.abs(b).max(axis=1).astype(np.float64)
    if bound.max() * (1 + 1e-9) > profile.acc_max:
        return None
    return a @ b


def adder_tree(x: np.ndarray, profile: HwProfile) -> np.ndarray:
    """Pairwise saturating sum over the last axis: ``(0+1), (2+3), ...`` per level.

    The last axis (``P`` inputs) is zero-padded to a power of two; every node saturates to
    ``acc_bits``. ``P = 1`` passes its input through (depth 0).
    """
    a = _as_int(x, profile)
    p = a.shape[-1]
    width = 1 << max(0, (p - 1).bit_length())
    if width != p:
        pad = np.zeros(a.shape[:-1] + (width - p,), dtype=a.dtype)
        a = np.concatenate([a, pad], axis=-1)
    while a.shape[-1] > 1:
        a = sat_acc(a[..., 0::2] + a[..., 1::2], profile)
    return a[..., 0]


def reference_spmm(
    w: np.ndarray,
    x: np.ndarray,
    profile: HwProfile,
    *,
    splits: dict[int, list[int]] | None = None,
    raw: bool = False,
) -> np.ndarray:
    """Integer reference of ``Y = W X`` with the hardware's add order.

    Each output is the saturating chain over ``k = 0..K-1`` of ``W[n, k] * X[k, m]``
    (zero products never change a saturating chain, so masked-out weights may be zero in
    ``w``), then :func:`requant`. ``splits[n] = [k1, k2, ...]`` cuts row ``n`` into pieces
    at those columns (row-parallel split rows): each piece accumulates from 0, then the
    raw piece sums are added in piece order with ``sat_acc``. ``raw=True`` returns the
    accumulator instead of the requantised operand.
    """
    w = _as_int(w, profile)
    x = _as_int(x, profile)
    n, k = w.shape
    prods = (w.T[:, :, None] * x[:, None, :]).reshape(k, -1)
    last = np.zeros(k, dtype=bool)
    last[-1] = True
    acc = mac_chain(prods, last, profile)[0].reshape(n, -1)
    for row, cuts in (splits or {}).items():
        bounds = [0, *sorted(cuts), k]
        parts = []
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            seg_last = np.zeros(b - a, dtype=bool)
            seg_last[-1] = True
            seg = w[row, a:b, None] * x[a:b, :]
            parts.append(mac_chain(seg, seg_last, profile)[0])
        total = parts[0]
        for part in parts[1:]:
            total = sat_acc(total + part, profile)
        acc[row] = total
    return acc if raw else requant(acc, profile)


def reference_sddmm(
    dy: np.ndarray, x: np.ndarray, rows: np.ndarray, cols: np.ndarray, profile: HwProfile
) -> np.ndarray:
    """Integer reference of ``dW[r, c] = sum_m dY[r, m] X[c, m]`` for the listed entries.

    Samples are grouped into tiles of ``n_pe``; each tile's ``n_pe`` products pass the
    :func:`adder_tree` and the tile sums are chained with ``sat_acc`` in tile order, then
    :func:`requant`. Returns one operand integer per ``(rows[i], cols[i])``.
    """
    dy = _as_int(dy, profile)
    x = _as_int(x, profile)
    p = profile.n_pe
    m = x.shape[1]
    tiles = -(-m // p)
    prods = np.zeros((len(rows), tiles * p), dtype=dy.dtype)
    prods[:, :m] = dy[rows] * x[cols]
    tree = adder_tree(prods.reshape(len(rows), tiles, p), profile)
    last = np.zeros(tiles, dtype=bool)
    last[-1] = True
    g = mac_chain(tree.T, last, profile)[0] if len(rows) else np.zeros(0, dtype=dy.dtype)
    return requant(g, profile)


def float_reference_spmm(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Exact-as-float64 ``W X`` of the float operands (what the fixed-point result
    approximates within :func:`float_error_bound`)."""
    return np.asarray(w, dtype=np.float64) @ np.asarray(x, dtype=np.float64)


def float_reference_sddmm(dy: np.ndarray, x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Float64 ``(dY X^T) .* mask`` (all-ones mask: the dense gradient)."""
    return float_reference_spmm(dy, np.asarray(x).T) * np.asarray(mask, dtype=bool)


def float_error_bound(
    wq: np.ndarray, x: np.ndarray, profile: HwProfile, mask: np.ndarray | None = None
) -> np.ndarray:
    """Per-output bound of ``|dequantize(Y_int) - W X|`` (module docstring) for ``W X``.

    ``wq`` is the dequantised (float) weight matrix, ``x`` the float activations and
    ``mask`` the kept entries (default: all), which alone contribute error terms.
    """
    e = 2.0 ** -(profile.frac_bits + 1)
    wq = np.asarray(wq, dtype=np.float64)
    kept = np.ones(wq.shape) if mask is None else np.asarray(mask, dtype=np.float64)
    return e * (1.0 + (kept * np.abs(wq)) @ np.ones_like(x) + kept @ np.abs(x))
