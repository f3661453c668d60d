"""Compile masked layers to a :class:`hw.program.Program` (``docs/microarchitecture.md``).

Kernels of a layer ``W`` (``out x in``) and the ops they become:

==============  =====================================  =================================
kernel          computes                               sparse profile / systolic profile
==============  =====================================  =================================
``forward``     ``Y = W X``                            ``spmm`` (sample or row) / ``gemm``
``input_grad``  ``dX = W^T dY`` (CSR of W^T = CSC W)   ``spmm`` (sample or row) / ``gemm``
``weight_grad`` ``dW = (dY X^T) .* mask``              ``sddmm`` chunks / ``gemm``
``dense_grad``  ``dW = dY X^T`` (all-ones mask)        ``sddmm`` chunks / ``gemm``
==============  =====================================  =================================

A systolic weight-gradient ``gemm`` keeps ``dY`` stationary and streams ``X^T``: it is the
GEMM ``(N x M) (M x K)`` with ``M`` as the reduction dimension, masked afterwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hw.compiler.balance import RowPlan, plan_cuts, threshold_candidates
from hw.compiler.encode import encode_banks, encode_stream, split_chunks
from hw.fit import OpShape, ProgramFitError, check_fit
from hw.numerics import quantize
from hw.profiles import HwProfile, load_profile
from hw.program import Op, Program, encode_tiles
from hw.timing import (
    row_parallel_cycles,
    row_parallel_drain_delay,
    row_parallel_phases,
    row_parallel_walk_delay,
    spmm_sample_parallel_cycles,
)
from mast.sparsity.layer import SparseLayer

__all__ = [
    "KERNEL_NAMES",
    "ProgramFitError",
    "SampleTile",
    "choose_dataflow",
    "compile_layer",
    "balance_rows",
    "compile_network",
    "row_plan_cycles",
    "row_plan_phases",
    "row_shape",
    "sample_tiles",
    "unroll_samples",
]

LayerLike = SparseLayer | np.ndarray | tuple[np.ndarray, np.ndarray]
"""A layer to compile: a record, an ``N x K`` array, or a ``(mask, values)`` pair."""

KERNEL_NAMES: tuple[str, ...] = ("forward", "input_grad", "weight_grad", "dense_grad")
_DATAFLOW_CHOICES = ("auto", "sample", "row", "unrolled", "tiled", "resident")


def _where(name: str, purpose: str) -> str:
    return f"layer {name!r} ({purpose})"


def _sample_shape(k: int, n: int, m: int, s: int, *, sddmm: bool, chunk_nnz: int = 0) -> OpShape:
    kernel = "sddmm" if sddmm else "spmm"
    return OpShape(kernel, "sample", n, k, m, stream_length=s, chunk_nnz=chunk_nnz)


def row_shape(n: int, k: int, m: int, plan: RowPlan) -> OpShape:
    return OpShape(
        "spmm",
        "row",
        n,
        k,
        m,
        bank_entries=int(plan.pe_entries.max()),
        pe_pieces=int(plan.pe_pieces.max()),
        pieces=len(plan.row),
    )


def unroll_samples(a: np.ndarray, u: int) -> np.ndarray:
    """The block-diagonal ``I_u (x) a`` of a sample-unrolled op (``hw.program`` docstring)."""
    return np.kron(np.eye(u, dtype=a.dtype), a)


def _row_plan_args(mask: np.ndarray, plan: RowPlan, m: int, profile: HwProfile) -> tuple:
    """The arguments of :func:`hw.timing.row_parallel_cycles` (and ``_phases``) for the
    row-parallel op of ``mask`` compiled with ``plan`` on ``m`` samples."""
    banks = encode_banks(mask, np.zeros(mask.shape, dtype=np.int64), plan)
    walk = row_parallel_walk_delay(banks["bank_col"], banks["bank_ptr"], mask.shape[1], m, profile)
    drain = row_parallel_drain_delay(banks["bank_end"], banks["bank_ptr"], m, walk, profile)
    nmax, qmax = int(plan.pe_entries.max()), int(plan.pe_pieces.max())
    return (mask.shape[1], m, nmax, qmax, plan.split_adds, profile, walk, drain)


def row_plan_cycles(mask: np.ndarray, plan: RowPlan, m: int, profile: HwProfile) -> int:
    """Cycles of the row-parallel op of ``mask`` (``N x K``) compiled with ``plan`` on ``m``
    samples, its walk and drain starting as early as its banks allow (s.2.4)."""
    return row_parallel_cycles(*_row_plan_args(mask, plan, m, profile))


def row_plan_phases(mask: np.ndarray, plan: RowPlan, m: int, profile: HwProfile) -> dict[str, int]:
    """:func:`hw.timing.row_parallel_phases` of the op :func:`row_plan_cycles` counts."""
    return row_parallel_phases(*_row_plan_args(mask, plan, m, profile))


def _balance(mask: np.ndarray, m: int, profile: HwProfile, blocks: int) -> tuple[int, RowPlan]:
    row_nnz = mask.sum(axis=1)
    best: tuple[int, RowPlan] | None = None
    for t in threshold_candidates(row_nnz, profile.n_pe):
        for b in sorted({1, blocks}):
            for cut in plan_cuts(profile, m):
                plan = cut(row_nnz, profile.n_pe, t, b)
                c = row_plan_cycles(mask, plan, m, profile)
                if best is None or c < best[0]:
                    best = (c, plan)
    assert best is not None
    return best


def balance_rows(mask: np.ndarray, m: int, profile: HwProfile, blocks: int = 1) -> RowPlan:
    """The row-parallel plan of ``mask`` on ``m`` samples with the fewest cycles, its walk
    and drain starting as early as its banks allow (:func:`row_plan_cycles`), over the
    balancer's threshold candidates (:func:`hw.compiler.balance.threshold_candidates`)
    and, for a sample-unrolled matrix of ``blocks`` samples, both piece orders of
    :func:`hw.compiler.balance.plan_for_threshold` (global, then block by block), and on
    a ``drain_join`` profile with ``m = 1`` the same thresholds' plans whose long rows are
    joined at the drain (:func:`hw.compiler.balance.plan_with_joins`). Ties keep the
    larger threshold (fewer splits), the global order and the reduced plan.
    Deterministic."""
    return _balance(mask, m, profile, blocks)[1]


@dataclass(frozen=True, eq=False)
class SampleTile:
    """One op of a sample-tiled SpMM (``docs/microarchitecture.md`` s.2.6): the layer's
    samples ``begin .. end-1`` as a row-parallel (``"row"``) or sample-unrolled
    (``"unrolled"``) op with its row plan (of the unrolled matrix for ``"unrolled"``)."""

    begin: int
    end: int
    flow: str
    plan: RowPlan
    cycles: int

    @property
    def m(self) -> int:
        return self.end - self.begin


def sample_tiles(k: int, m: int, profile: HwProfile) -> list[tuple[int, int]]:
    """``[begin, end)`` sample ranges of a sample-tiled SpMM with ``K = k`` on ``m``
    samples: the fewest near-equal ranges whose row-parallel input (``K`` words a sample)
    fits the PE's activation buffer, larger ranges first. Empty when one sample does not
    fit, when the whole op does (no tiling needed), and when there are at least as many
    samples as PEs: the sample-parallel op then keeps every PE busy (but in a last partial
    tile), and tiles exist for ops on few samples, such as an acting step's agents."""
    per = profile.act_buf_words // k if k else 0
    if per < 1 or per >= m or m >= profile.n_pe:
        return []
    return _fitting_ranges(k, m, profile)


def _fitting_ranges(k: int, m: int, profile: HwProfile) -> list[tuple[int, int]]:
    """The fewest consecutive ``[begin, end)`` ranges over ``0 .. m-1`` whose inputs (``k``
    words a sample) fit the PE's activation buffer, sizes differing by at most one, larger
    first (one range when all ``m`` fit; ``1 <= k <= act_buf_words``)."""
    count = -(-m // (profile.act_buf_words // k))
    size, extra = divmod(m, count)
    edges = np.cumsum([0] + [size + (i < extra) for i in range(count)]).tolist()
    return list(zip(edges, edges[1:], strict=False))


def _row_options(
    mask: np.ndarray, m: int, profile: HwProfile, where: str, rows: tuple[int, RowPlan] | None
) -> list[tuple[int, str, RowPlan]]:
    """The row-parallel options of an SpMM of ``mask`` on ``m`` samples that fit:
    ``(cycles, "row" | "unrolled", plan)``; ``rows`` is the balanced ``m``-sample plan."""
    n, k = mask.shape
    options: list[tuple[int, str, RowPlan]] = []
    if rows is None:
        return options
    with contextlib.suppress(ProgramFitError):
        check_fit(profile, row_shape(n, k, m, rows[1]), where)
        options.append((rows[0], "row", rows[1]))
    if m > 1:
        cyc, uplan = _balance(unroll_samples(mask, m), 1, profile, m)
        with contextlib.suppress(ProgramFitError):
            check_fit(profile, row_shape(n * m, k * m, 1, uplan), where)
            options.append((cyc, "unrolled", uplan))
    return options


def _tiled_option(
    mask: np.ndarray,
    m: int,
    profile: HwProfile,
    where: str,
    tiles: list[tuple[int, int]] | None = None,
) -> tuple[int, str, tuple[SampleTile, ...]] | None:
    """The sample-tiled option: every tile (of :func:`sample_tiles` unless given) as its
    cheapest row-parallel op (one choice per tile size), or ``None`` if some tile fits
    none."""
    tiles = sample_tiles(mask.shape[1], m, profile) if tiles is None else tiles
    if not tiles:
        return None
    best: dict[int, tuple[int, str, RowPlan]] = {}
    for size in sorted({b - a for a, b in tiles}, reverse=True):
        rows = _balance(mask, size, profile, 1)
        opts = _row_options(mask, size, profile, where, rows)
        if not opts:
            return None
        best[size] = min(opts, key=lambda o: o[0])
    out = tuple(SampleTile(a, b, best[b - a][1], best[b - a][2], best[b - a][0]) for a, b in tiles)
    return sum(t.cycles for t in out), "tiled", out


def choose_dataflow(
    mask: np.ndarray, m: int, profile: HwProfile, *, name: str = "layer", purpose: str = "forward"
) -> tuple[str, Any]:
    """Pick ``"sample"``, ``"row"``, ``"unrolled"`` or ``"tiled"`` for an SpMM of ``mask``
    (``N x K``).

    The cheapest of :func:`hw.timing.spmm_sample_parallel_cycles`, the balanced plan's
    :func:`hw.timing.row_parallel_cycles` on ``M`` samples, for ``M > 1`` the
    row-parallel plan of the sample-unrolled matrix ``I_M (x) mask`` on one sample, and,
    when the ``M``-sample input exceeds the PE's activation buffer but the
    sample-parallel op fits on fewer samples than PEs, the sample-tiled ops
    (:func:`sample_tiles`, each tile its cheapest row-parallel op) wins (ties: that
    order), among the dataflows whose
    memories the op fits; if none fits, the
    sample-parallel :class:`ProgramFitError` is raised. Returns the choice and its row
    plan (of the unrolled matrix for ``"unrolled"``; ``None`` for a sample-parallel op whose
    ``K M`` exceeds the activation buffer; the tuple of :class:`SampleTile` for
    ``"tiled"``). Row plans are :func:`balance_rows`'s.
    """
    n, k = mask.shape
    row_nnz = mask.sum(axis=1)
    s = int(np.maximum(row_nnz, 1).sum())
    where = _where(name, purpose)
    options: list[tuple[int, str, Any]] = []
    sp_error: ProgramFitError | None = None
    try:
        check_fit(profile, _sample_shape(k, n, m, s, sddmm=False), where)
    except ProgramFitError as e:
        sp_error = e
    rows = _balance(mask, m, profile, 1) if k * m <= profile.act_buf_words else None
    plan = rows[1] if rows else None
    if sp_error is None:
        options.append((spmm_sample_parallel_cycles(k, n, m, s, profile), "sample", plan))
    options += _row_options(mask, m, profile, where, rows)
    if rows is None and sp_error is None:
        tiled = _tiled_option(mask, m, profile, where)
        if tiled is not None:
            options.append(tiled)
    if not options:
        assert sp_error is not None
        raise sp_error
    best = min(options, key=lambda o: o[0])  # min keeps the first of equal ones
    return best[1], best[2]


def _int_weights(values: np.ndarray | None, mask: np.ndarray, profile: HwProfile, name: str):
    if values is None:
        return np.zeros(mask.shape, dtype=np.int64)
    values = np.asarray(values)
    if values.dtype.kind in "iu":
        lo, hi = int(values.min(initial=0)), int(values.max(initial=0))
        if lo < profile.operand_min or hi > profile.operand_max:
            bad = lo if lo < profile.operand_min else hi
            raise ProgramFitError(
                f"layer {name!r}: integer weight {bad} outside the operand range "
                f"[{profile.operand_min}, {profile.operand_max}] of profile {profile.name!r}"
            )
        w = values.astype(np.int64)
    else:
        w = np.asarray(quantize(values, profile), dtype=np.int64)
    return np.where(mask, w, 0)


def _as_layer(layer: LayerLike, name: str | None) -> tuple[str, dict, Any, Any]:
    if isinstance(layer, tuple):
        mask, values = (np.asarray(a) for a in layer)
        if mask.ndim != 2 or 0 in mask.shape or values.shape != mask.shape:
            raise ValueError(
                f"layer (mask, values) must be two non-empty 2-D arrays of one shape, "
                f"got {mask.shape} and {values.shape}"
            )
        name = name or "layer"
        mask = mask.astype(bool)
        return name, {"name": name, "shape": list(mask.shape), "nnz": int(mask.sum())}, mask, values
    if isinstance(layer, SparseLayer):
        meta = layer.meta()
        if name is not None:
            meta["name"] = name
        meta["nnz"] = layer.nnz
        return meta["name"], meta, layer.mask, layer.values
    a = np.asarray(layer)
    if a.ndim != 2 or 0 in a.shape:
        raise ValueError(f"layer must be a SparseLayer or a non-empty 2-D array, got {a.shape}")
    mask = a.astype(bool) if a.dtype == bool else a != 0
    values = None if a.dtype == bool else a
    name = name or "layer"
    return name, {"name": name, "shape": list(a.shape), "nnz": int(mask.sum())}, mask, values


def _layer_ops(
    lname: str,
    mask: np.ndarray,
    w: np.ndarray,
    kernel: str,
    profile: HwProfile,
    m: int,
    dataflow: str,
) -> list[Op]:
    transpose = kernel == "input_grad"
    base = f"{lname}:{kernel}"
    if kernel in ("forward", "input_grad"):
        mk, wk = (mask.T, w.T) if transpose else (mask, w)
        n, k = mk.shape
        common = dict(
            name=base,
            layer=lname,
            purpose=kernel,
            transpose=transpose,
            n=n,
            k=k,
            m=m,
            nnz=int(mk.sum()),
        )
        if not profile.is_sparse:
            check_fit(profile, OpShape("gemm", "systolic", n, k, m), _where(lname, kernel))
            tiles = encode_tiles(wk, profile)
            arrays = {"weight_tiles": tiles}
            resident = dataflow == "resident"
            return [
                Op(kernel="gemm", dataflow="systolic", arrays=arrays, resident=resident, **common)
            ]
        if dataflow == "auto":
            dataflow, plan = choose_dataflow(mk, m, profile, name=lname, purpose=kernel)
            if dataflow == "tiled":
                return _tile_ops(mk, wk, plan, profile, common)
        elif dataflow == "row":
            plan = balance_rows(mk, m, profile)
        elif dataflow == "unrolled":
            plan = balance_rows(unroll_samples(mk, m), 1, profile, blocks=m)
        elif dataflow == "tiled":
            return _tile_ops(mk, wk, _forced_tiles(mk, m, profile, lname, kernel), profile, common)
        if dataflow == "unrolled":
            u = m
            common.update(n=n * u, k=k * u, m=1, nnz=u * common["nnz"], unroll=u)
            check_fit(profile, row_shape(n * u, k * u, 1, plan), _where(lname, kernel))
            arrays = encode_banks(unroll_samples(mk, u), unroll_samples(wk, u), plan)
            return [Op(kernel="spmm", dataflow="row", arrays=arrays, **common)]
        if dataflow == "row":
            check_fit(profile, row_shape(n, k, m, plan), _where(lname, kernel))
            arrays = encode_banks(mk, wk, plan)
        else:
            arrays = encode_stream(mk, wk)
            s = len(arrays["stream_last"])
            check_fit(profile, _sample_shape(k, n, m, s, sddmm=False), _where(lname, kernel))
        return [Op(kernel="spmm", dataflow=dataflow, arrays=arrays, **common)]
    gmask = np.ones_like(mask) if kernel == "dense_grad" else mask
    n, k = gmask.shape
    if not profile.is_sparse:
        # dY (n x m) stays, X^T (m x k) streams: the GEMM (n x m) (m x k)
        check_fit(profile, OpShape("gemm", "systolic", n, m, k), _where(lname, kernel))
        return [
            Op(
                name=base,
                layer=lname,
                purpose=kernel,
                kernel="gemm",
                dataflow="systolic",
                transpose=False,
                n=n,
                k=k,
                m=m,
                nnz=int(gmask.sum()),
                arrays={"mask": gmask.reshape(-1)},
            )
        ]
    stream = encode_stream(gmask, np.zeros(gmask.shape, dtype=np.int64))
    chunks = split_chunks(stream, profile.grad_buf_words)
    rows = np.concatenate(([0], np.cumsum(stream["stream_last"])))
    ops = []
    for i, (a, b, za, zb) in enumerate(chunks):
        arrays = {key: v[a:b] for key, v in stream.items()}
        shape = _sample_shape(k, n, m, b - a, sddmm=True, chunk_nnz=zb - za)
        check_fit(profile, shape, _where(lname, kernel))
        ops.append(
            Op(
                name=f"{base}[{i}]",
                layer=lname,
                purpose=kernel,
                kernel="sddmm",
                dataflow="sample",
                transpose=False,
                n=n,
                k=k,
                m=m,
                arrays=arrays,
                row0=int(rows[a]),
                nz_begin=za,
                nz_end=zb,
                nnz=zb - za,
            )
        )
    return ops


def _forced_tiles(
    mk: np.ndarray, m: int, profile: HwProfile, lname: str, kernel: str
) -> tuple[SampleTile, ...]:
    """``dataflow="tiled"``: the fewest near-equal sample ranges whose inputs fit the PE
    buffer (as :func:`sample_tiles`, for any ``M``; one tile when the whole op's input
    fits), each its cheapest row-parallel op."""
    where = _where(lname, kernel)
    k = mk.shape[1]
    if k > profile.act_buf_words:
        raise ProgramFitError(
            f"{where}: one sample's K={k} words exceed act_buf_words="
            f"{profile.act_buf_words} of profile {profile.name!r}; no sample tile fits"
        )
    tiles = _fitting_ranges(k, m, profile)
    found = _tiled_option(mk, m, profile, where, tiles)
    if found is None:
        raise ProgramFitError(
            f"{where}: no row-parallel op of a sample tile fits profile {profile.name!r}"
        )
    return found[2]


def _tile_ops(
    mk: np.ndarray, wk: np.ndarray, tiles: Sequence[SampleTile], profile: HwProfile, common: dict
) -> list[Op]:
    """The ops of a sample-tiled SpMM: one per tile, on the layer's samples
    ``tile.begin .. tile.end-1`` (``Op.sample0``, ``Op.layer_m``), row-parallel or
    sample-unrolled; tiles of one size share their encoded banks."""
    n, k, m = common["n"], common["k"], common["m"]
    where = _where(common["layer"], common["purpose"])
    encoded: dict[int, tuple[dict, dict]] = {}
    ops = []
    for t in tiles:
        if t.m not in encoded:
            u = t.m if t.flow == "unrolled" else 1
            shape = dict(n=n * u, k=k * u, m=t.m // u, nnz=u * common["nnz"], unroll=u)
            mt, wt = (unroll_samples(mk, u), unroll_samples(wk, u)) if u > 1 else (mk, wk)
            check_fit(profile, row_shape(n * u, k * u, t.m // u, t.plan), where)
            encoded[t.m] = (shape, encode_banks(mt, wt, t.plan))
        shape, arrays = encoded[t.m]
        fields = {**common, **shape, "name": f"{common['name']}[samples {t.begin}:{t.end}]"}
        ops.append(
            Op(kernel="spmm", dataflow="row", arrays=arrays, sample0=t.begin, layer_m=m, **fields)
        )
    return ops


def compile_layer(
    layer: LayerLike,
    kernel: str,
    profile: HwProfile | str,
    m: int,
    dataflow: str = "auto",
    *,
    name: str | None = None,
) -> Program:
    """Compile one kernel of one layer to a :class:`Program`.

    Parameters
    ----------
    layer:
        A :class:`SparseLayer`; an ``N x K`` array, boolean (a mask; weights encode as 0)
        or numeric (its non-zeros are the mask); or a ``(mask, values)`` pair (kept
        weights may be zero). Float values are quantised with :func:`hw.numerics.quantize`,
        integer values are taken as operand integers.
        A ``SparseLayer`` without values also encodes zero weights (cycles are unaffected).
    kernel:
        One of :data:`KERNEL_NAMES`.
    profile:
        A profile or its name / YAML path.
    m:
        Samples per op (columns of ``X``).
    dataflow:
        SpMM ops: ``"auto"`` (cheapest by :mod:`hw.timing`, :func:`choose_dataflow`; a
        sample-tiled choice compiles to one op per tile), ``"sample"``, ``"row"``,
        ``"unrolled"`` (row-parallel on ``I_M (x) W``, one sample: ``Op.unroll = M``) or
        ``"tiled"`` (the tiles of :func:`sample_tiles`, one tile when the whole input fits
        the PE's buffer, each tile its cheapest row-parallel op).
        SDDMM ops are always sample-parallel. Systolic profiles: ``"resident"`` keeps the
        forward / input-gradient tiles in the cells' banks (``Op.resident``; all of the
        program's resident tiles must fit ``weight_sram_words`` together), anything else
        compiles cold ops.

    Raises
    ------
    ProgramFitError
        An op exceeds a memory of the profile (the message names field and values).
    ValueError
        Unknown kernel or dataflow, ``m < 1``.
    """
    return compile_network([layer], [kernel], profile, m, dataflow, names=[name])


def compile_network(
    layers: Sequence[LayerLike],
    kernels: Sequence[str] | str,
    profile: HwProfile | str,
    m: int,
    dataflow: str = "auto",
    *,
    names: Sequence[str | None] | None = None,
) -> Program:
    """Compile every kernel in ``kernels`` of every layer, layer-major, into one program."""
    prof = load_profile(profile)
    kernels = [kernels] if isinstance(kernels, str) else list(kernels)
    for k in kernels:
        if k not in KERNEL_NAMES:
            raise ValueError(f"unknown kernel {k!r}; known: {', '.join(KERNEL_NAMES)}")
    if dataflow not in _DATAFLOW_CHOICES:
        raise ValueError(f"unknown dataflow {dataflow!r}; known: {', '.join(_DATAFLOW_CHOICES)}")
    if dataflow == "resident" and prof.is_sparse:
        raise ValueError(
            f"dataflow 'resident' needs a systolic profile, got {prof.name!r} of kind "
            f"{prof.kind!r}; sparse profiles take auto, sample, row, unrolled, tiled"
        )
    if not isinstance(m, int | np.integer) or isinstance(m, bool) or m < 1:
        raise ValueError(f"M (samples) must be an integer >= 1, got {m!r}")
    m = int(m)
    names = list(names) if names is not None else [None] * len(layers)
    ops: list[Op] = []
    metas: list[Mapping[str, Any]] = []
    for layer, nm in zip(layers, names, strict=True):
        lname, meta, mask, values = _as_layer(layer, nm)
        if any(meta_["name"] == lname for meta_ in metas):
            raise ValueError(f"duplicate layer name {lname!r}")
        metas.append(meta)
        w = _int_weights(values, mask, prof, lname)
        for kern in kernels:
            ops += _layer_ops(lname, mask, w, kern, prof, m, dataflow)
    resident = sum(op.arrays["weight_tiles"].size for op in ops if op.resident)
    if resident > prof.weight_sram_words:
        raise ProgramFitError(
            f"resident weight tiles: {resident} words exceed weight_sram_words="
            f"{prof.weight_sram_words} of profile {prof.name!r} (the cells' banks together)"
        )
    return Program(profile=prof, ops=tuple(ops), layers=tuple(metas))
