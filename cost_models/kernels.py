"""Per-kernel cost on a profile: cycles, useful MACs and action counts.

A :class:`Kernel` is one node of the workload graph (:mod:`cost_models.workload`): a
matrix kernel on the PE array (``spmm`` forward, ``spmm_t`` input gradient through
``W^T``, ``sddmm`` masked weight gradient, ``sddmm_dense`` regrowth gradient), an
elementwise kernel on the vector unit (``vector``), or a DRAM transfer (``dma``).

Matrix kernels are cut into accelerator ops as the compiler's capacity rules require
(:mod:`hw.fit`, the rules the compiler checks) and each op is costed with the
contract's cycle formula (:mod:`cost_models.ops`), so a kernel's ``compute_cycles`` is the
sum of the cycles ``sim`` reports for its ops. A kernel the compiler would reject with
``ProgramFitError`` is tiled, never truncated:

- samples are cut into chunks that fit the activation SRAM
  (SpMM ``ceil(M_c / P) * max(K, N) <= act_sram_words / P``, SDDMM with ``K + N``;
  systolic ``K M_c, N M_c <= act_sram_words``);
- rows into blocks with ``N_b <= out_buf_words`` and stream ``S_b <= weight_sram_words``
  (an SDDMM's rows by the stream only where its ``grad_buf_words`` chunks still do not
  fit: the compiler takes a longer stream as long as every chunk fits);
  inputs into blocks with ``K_b <= min(act_buf_words, 2**index_bits)`` (SDDMM too: its
  ``dY`` rows are held in the output buffer, ``N_b <= out_buf_words``);
- partial results are summed on the vector unit: an SpMM split over ``K`` adds
  ``(k_blocks - 1) * N * M`` partial outputs, an SDDMM (or systolic weight gradient)
  split over samples adds ``(chunks - 1) * nnz`` partial gradients;
- a kernel that fits (:func:`hw.fit.fits` for each of its compiled ops) is costed as the
  compiler compiles it, dataflow included (the cheaper
  of sample- and row-parallel; cut ops run sample-parallel).

The vector unit has ``L = n_pe * vector_lanes_per_pe`` lanes (profile field, 2 per PE in
the built-in profiles), one elementwise operation per lane per cycle (``ceil(ops / L)``
cycles); it is a modelling assumption of the cost model (GRU gates,
mixing, loss, top-k and optimizer arithmetic), not part of the RTL contract. ReLU is
folded into the drain of the layer that feeds it (one ``add`` action per element, no
cycles).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from cost_models.ops import OpCost, gemm_op, sddmm_ops, spmm_op
from cost_models.rows import CostRow
from hw import timing
from hw.compiler import split_chunks
from hw.compiler.encode import encode_stream
from hw.fit import OpShape, ProgramFitError, fits
from hw.profiles import HwProfile

__all__ = ["Kernel", "OpKind", "cost_kernel", "vector_cycles"]

OpKind = Literal["spmm", "spmm_t", "sddmm", "sddmm_dense", "vector", "dma"]


@dataclass(frozen=True)
class Kernel:
    """One workload-graph node. ``mask`` is the layer's ``(out, in)`` mask for matrix ops."""

    name: str
    """Unique node id, ``phase:layer:t``."""
    phase: str
    """Phase (``fwd``, ``target_fwd``, ``dx``, ``dw``, ``dense_dw``, ``topk``, ``opt``, ...)."""
    op: OpKind
    """Operation kind (see module docstring)."""
    m: int
    """Samples (columns) the kernel processes; for ``vector`` the element count."""
    layer: str = ""
    """Layer name (empty for kernels not tied to one weight matrix)."""
    label: str = ""
    """Row label of a kernel not tied to a layer (``cell``, ``mix``, ``loss``, ...)."""
    t: int | None = None
    """Time step, ``None`` when all time steps are batched into this kernel."""
    mask: np.ndarray | None = field(default=None, repr=False, compare=False)
    """``(out, in)`` boolean mask for matrix kernels."""
    ops_per_elem: float = 1.0
    """Elementwise operations per element (``vector``)."""
    words_per_elem: float = 0.0
    """SRAM words read + written per element (``vector``)."""
    dram: tuple[tuple[str, float], ...] = ()
    """DRAM bytes by operand this kernel moves (replay samples, spilled data)."""
    relu: bool = False
    """The output passes a ReLU folded into the drain."""
    weight: float = 1.0
    """Executions per training iteration (``1 / Delta_T`` for topology-update kernels)."""
    resident: bool = False
    """Systolic ``spmm`` / ``spmm_t``: the layer's tiles stay in the cells' banks
    (``hw.program.Op.resident``)."""

    @property
    def resource(self) -> str:
        """``pe`` (PE array), ``vec`` (vector unit) or ``dma`` (DRAM channel)."""
        return {"vector": "vec", "dma": "dma"}.get(self.op, "pe")


_PE_PHASE_OPERAND = {"dx": "gradients", "dw": "gradients", "dense_dw": "gradients"}


def vector_cycles(p: HwProfile, ops: float) -> int:
    """Cycles of ``ops`` elementwise operations on the vector unit's
    ``n_pe * vector_lanes_per_pe`` lanes."""
    return math.ceil(ops / (p.n_pe * p.vector_lanes_per_pe))


def _blocks(n: int, limit: int) -> list[tuple[int, int]]:
    """``[a, b)`` ranges cutting ``n`` into ``ceil(n / limit)`` near-equal blocks."""
    k = -(-n // max(1, limit))
    edges = [round(i * n / k) for i in range(k + 1)]
    return list(zip(edges, edges[1:], strict=False))


def _chunks(m: int, size: int) -> Counter:
    """Sample chunk sizes -> multiplicity: full chunks of ``size`` and a remainder."""
    size = max(1, size)
    out = Counter({size: m // size}) if m >= size else Counter()
    if m % size:
        out[m % size] += 1
    return out


def _row_blocks(row_nnz: np.ndarray, n_max: int, s_max: int) -> list[tuple[int, int]]:
    """Consecutive row ranges with at most ``n_max`` rows and ``s_max`` stream entries."""
    entries = np.maximum(row_nnz, 1).tolist()
    blocks, start, acc = [], 0, 0
    for i, e in enumerate(entries):
        if i > start and (i - start >= n_max or acc + e > s_max):
            blocks.append((start, i))
            start, acc = i, 0
        acc += e
    blocks.append((start, len(entries)))
    return blocks


def _spmm(p: HwProfile, mat: np.ndarray, m: int) -> tuple[OpCost, int]:
    """SpMM ops of ``mat (N x K)`` on ``m`` samples, cut as the capacity rules require.

    Returns the ops' cost and the vector adds that combine partial outputs of a ``K``
    split.
    """
    n, k = mat.shape
    whole = OpShape("spmm", "sample", n, k, m, stream_length=timing.stream_length(mat.sum(axis=1)))
    if fits(p, whole) or k * m <= p.act_buf_words:
        try:
            return spmm_op(p, mat, m), 0
        except ProgramFitError:  # neither dataflow fits: cut below
            pass
    total: OpCost | None = None
    k_blocks = _blocks(k, min(p.act_buf_words, 1 << p.index_bits))
    for ka, kb in k_blocks:
        sub = mat[:, ka:kb]
        for ra, rb in _row_blocks(sub.sum(axis=1), p.out_buf_words, p.weight_sram_words):
            blk = sub[ra:rb]
            per_pe = (p.act_sram_words // p.n_pe) // max(blk.shape)
            for mc, times in _chunks(m, per_pe * p.n_pe).items():
                c = spmm_op(p, blk, mc).scaled(times)
                total = c if total is None else total + c
    assert total is not None
    return total, (len(k_blocks) - 1) * n * m


def _sddmm_compiles(p: HwProfile, mask: np.ndarray, m: int) -> bool:
    """Whether the compiler takes the SDDMM whole: every one of its chunks fits."""
    n, k = mask.shape
    stream = encode_stream(mask, np.zeros(mask.shape, dtype=np.int64))
    return all(
        fits(p, OpShape("sddmm", "sample", n, k, m, stream_length=b - a, chunk_nnz=zb - za))
        for a, b, za, zb in split_chunks(stream, p.grad_buf_words)
    )


def _sddmm(p: HwProfile, mask: np.ndarray, m: int) -> tuple[OpCost, int]:
    """SDDMM ops as the compiler cuts them into chunks of ``grad_buf_words`` non-zeros.

    An SDDMM the compiler rejects is first cut into blocks with ``K_b <= act_buf_words``
    and ``N_b <= out_buf_words`` (rows cut by the stream length only where a block's
    chunks still do not fit) and sample chunks; partial gradients of different sample
    chunks are summed on the vector unit.
    """
    if _sddmm_compiles(p, mask, m):
        return sddmm_ops(p, mask, m), 0
    n, k = mask.shape
    k_lim = min(1 << p.index_bits, p.act_buf_words)
    total: OpCost | None = None
    n_chunks = 0
    for ka, kb in _blocks(k, k_lim):
        sub = mask[:, ka:kb]
        width = kb - ka
        for ra, rb in _row_blocks(sub.sum(axis=1), p.out_buf_words, n * k + 1):
            blk = sub[ra:rb]
            per_pe = (p.act_sram_words // p.n_pe) // (width + rb - ra)
            chunks = _chunks(m, per_pe * p.n_pe)
            if not all(_sddmm_compiles(p, blk, mc) for mc in chunks):
                blocks = _row_blocks(blk.sum(axis=1), rb - ra, p.weight_sram_words)
                parts = [blk[a:b] for a, b in blocks]
            else:
                parts = [blk]
            n_chunks = max(n_chunks, sum(chunks.values()))
            for part in parts:
                for mc, times in chunks.items():
                    c = sddmm_ops(p, part, mc).scaled(times)
                    total = c if total is None else total + c
    assert total is not None
    return total, (n_chunks - 1) * int(mask.sum())


def _gemm(
    p: HwProfile, k: int, n: int, m: int, stationary_m: bool, resident: bool = False
) -> tuple[OpCost, int]:
    """Systolic GEMMs ``(N x K) (K x M)`` cut into sample chunks that fit the SRAMs.

    ``stationary_m``: a weight gradient, where ``K`` is the sample count kept stationary
    (``dY``) and chunks of it produce partial ``dW`` summed on the vector unit.
    ``resident``: forward / input-gradient ops with tiles resident in the cells' banks.
    """
    r, c = p.rows, p.cols
    tile_words = -(-n // c) * c
    if stationary_m:
        lim = min((p.weight_sram_words // tile_words) // r * r, p.act_sram_words // m)
        chunks = _chunks(k, max(1, lim))
        total = None
        for kc, times in chunks.items():
            cst = gemm_op(p, kc, n, m).scaled(times)
            total = cst if total is None else total + cst
        return total, (sum(chunks.values()) - 1) * n * m
    chunks = _chunks(m, p.act_sram_words // max(k, n))
    total = None
    for mc, times in chunks.items():
        cst = gemm_op(p, k, n, mc, resident).scaled(times)
        total = cst if total is None else total + cst
    return total, 0


_CACHE: dict[tuple, tuple[OpCost, int]] = {}


def _matrix_cost(p: HwProfile, kern: Kernel) -> tuple[OpCost, int]:
    mask = kern.mask
    key = (p, kern.op, kern.m, kern.resident, mask.shape, hash(np.packbits(mask).tobytes()))
    if key not in _CACHE:
        n, k = mask.shape
        if p.kind == "systolic":
            if kern.op in ("spmm", "spmm_t"):
                kk, nn = (k, n) if kern.op == "spmm" else (n, k)
                _CACHE[key] = _gemm(p, kk, nn, kern.m, False, kern.resident)
            else:
                _CACHE[key] = _gemm(p, kern.m, n, k, True)
        elif kern.op == "sddmm":
            _CACHE[key] = _sddmm(p, mask, kern.m)
        elif kern.op == "sddmm_dense":
            _CACHE[key] = _sddmm(p, np.ones_like(mask), kern.m)
        else:
            _CACHE[key] = _spmm(p, mask if kern.op == "spmm" else mask.T, kern.m)
        if len(_CACHE) > 4096:
            _CACHE.pop(next(iter(_CACHE)))
    return _CACHE[key]


def _bytes(p: HwProfile, kern: Kernel, act: Counter) -> Counter:
    """On-chip bytes by operand from the action counts."""
    ob = p.operand_bytes
    out = Counter()
    out["weights"] += act["weight_sram_reads"] * ob
    out["indices"] += act["index_reads"] * p.index_bits / 8
    if kern.op == "vector":
        out["optimizer" if kern.phase == "opt" else "activations"] += act["act_sram_reads"] * ob
        return out
    src = _PE_PHASE_OPERAND.get(kern.phase, "activations")
    dst = _PE_PHASE_OPERAND.get(kern.phase, "outputs")
    words_in = act["act_sram_reads"] + act["pe_buf_reads"] + act["pe_buf_writes"]
    out[src] += words_in * ob
    out[dst] += (act["out_sram_writes"] + act["out_sram_reads"]) * ob
    out["gradients"] += (act["grad_sram_reads"] + act["grad_sram_writes"]) * p.acc_bytes
    return +out


def cost_kernel(p: HwProfile, kern: Kernel) -> CostRow:
    """Cost of one execution of ``kern`` on profile ``p`` (a one-kernel :class:`CostRow`;
    multiply by ``Kernel.weight`` per iteration).

    ``kern.dram`` (replay samples, spilled activations, weights or optimizer state, as the
    workload decides) overlaps the kernel's compute through double buffering: the
    kernel's time is ``max(compute_cycles, dram_bytes / dram_bytes_per_cycle)``.
    """
    macs = ideal = 0
    if kern.op in ("vector", "dma"):
        ops = kern.m * kern.ops_per_elem if kern.op == "vector" else 0.0
        compute = vector_cycles(p, ops)
        act = Counter(vector_ops=ops, act_sram_reads=kern.m * kern.words_per_elem)
        n_ops, dataflow = (1 if ops else 0), kern.op
    else:
        oc, partial_adds = _matrix_cost(p, kern)
        act = Counter(oc.actions)
        compute, n_ops, dataflow = oc.cycles, oc.n_ops, oc.dataflow
        if partial_adds:
            act["vector_ops"] += partial_adds
            compute += vector_cycles(p, partial_adds)
        if kern.relu:
            act["vector_ops"] += kern.m * kern.mask.shape[0]
        nnz = int(kern.mask.sum()) if kern.op != "sddmm_dense" else kern.mask.size
        macs = kern.m * nnz
        ideal = timing.ideal_cycles(kern.m, nnz, p)
    dram = Counter()
    for operand, nbytes in kern.dram:
        dram[operand] += nbytes
    cycles = max(float(compute), sum(dram.values()) / p.dram_bytes_per_cycle)
    return CostRow(
        layer=kern.layer or kern.label or kern.name,
        phase=kern.phase,
        resource=kern.resource,
        dataflow=dataflow,
        kernels=1,
        ops=int(n_ops),
        cycles=cycles,
        compute_cycles=int(compute),
        macs=int(macs),
        ideal_cycles=int(ideal),
        actions={k: float(v) for k, v in act.items() if v},
        sram_bytes={k: float(v) for k, v in _bytes(p, kern, act).items()},
        dram_bytes={k: float(v) for k, v in dram.items()},
    )
