"""Closed-form cycle counts of one accelerator op (``docs/microarchitecture.md`` s.2-3).

Pure functions of a profile and an op's dimensions, defined once. The mask compiler uses
them to choose a dataflow, the analytical cost model to cost kernels without compiling,
and the tests check that the step-by-step cycle model in :mod:`sim` reproduces them.

A *step* lasts the longest of its active stages plus one handshake cycle; a stage of
duration 0 in a sequential phase list (row-parallel) is skipped with its handshake.
"""

from __future__ import annotations

import math

import numpy as np

from hw.profiles import HwProfile

__all__ = [
    "BANK_GROUP",
    "adder_tree_depth",
    "bank_groups",
    "control_lag",
    "ideal_cycles",
    "REDUCE_PIPELINE",
    "deep_reduce",
    "drain_lag",
    "drain_offsets",
    "bank_positions",
    "sp_drain_cycles",
    "reduce_pipeline",
    "RESULT_WRITE_DELAY",
    "result_write_delay",
    "sp_compute_cycles",
    "RP_LOAD_LATENCY",
    "rp_load_latency",
    "row_parallel_cycles",
    "row_parallel_drain_delay",
    "row_parallel_phase_cycles",
    "row_parallel_phases",
    "row_parallel_walk_delay",
    "sddmm_chunk_bounds",
    "sddmm_cycles",
    "spmm_sample_parallel_cycles",
    "stream_length",
    "systolic_cycles",
    "systolic_resident_cycles",
    "tile_count",
    "two_level",
]


def stream_length(row_nnz: np.ndarray) -> int:
    """Entries of the compressed stream: ``S = sum_r max(1, nnz_r)`` (empty rows: a token)."""
    return int(np.maximum(np.asarray(row_nnz, dtype=np.int64), 1).sum())


def sddmm_chunk_bounds(row_nnz: np.ndarray, limit: int) -> list[tuple[int, int, int, int]]:
    """SDDMM chunks of a mask's stream: ``(entry_begin, entry_end, nz_begin, nz_end)``.

    A cut follows every ``limit``-th non-zero that has a non-zero after it, so tokens
    between chunks open the next chunk, tokens after the last non-zero close the last
    one, and there are ``max(1, ceil(nnz / limit))`` chunks (an all-empty mask gives one
    chunk of tokens). ``entry_end - entry_begin`` is the chunk's ``S_chunk``.
    """
    cnt = np.asarray(row_nnz, dtype=np.int64)
    token = np.repeat(cnt == 0, np.maximum(cnt, 1))
    nz_before = np.concatenate(([0], np.cumsum(~token)))
    nz_pos = np.flatnonzero(~token)
    cuts = [int(nz_pos[j - 1]) + 1 for j in range(limit, len(nz_pos), limit)]
    bounds = [0, *cuts, len(token)]
    return [
        (a, b, int(nz_before[a]), int(nz_before[b]))
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]


BANK_GROUP = 4
"""PEs (and their SRAM banks) per group of a large array: a block of two bands in two
block-RAM rows of the LFE5U-85F floorplan (:func:`hw.floorplan.pe_site`). A fan-in from
the banks goes through a first-level multiplexer per group (``hw.rtl.banks``), and with
:func:`control_lag` each group takes the controller's per-cycle control through a
register of its own."""


def bank_groups(n_banks: int) -> list[range]:
    """The banks of each group of :data:`BANK_GROUP`, in order."""
    return [range(lo, min(lo + BANK_GROUP, n_banks)) for lo in range(0, n_banks, BANK_GROUP)]


def two_level(n_banks: int) -> bool:
    """Whether ``n_banks`` make more than one group, so that a fan-in from them goes
    through a two-level tree (with ``PD >= 4``; one group keeps a register per bank)."""
    return len(bank_groups(n_banks)) > 1


def control_lag(profile: HwProfile) -> int:
    """Cycles the PE array runs behind the controller (s.2): 1 with ``PD >= 4`` on an
    array of more than one :data:`BANK_GROUP`, else 0.

    Then every group of PEs, with its SRAM banks, takes the controller's per-cycle
    control (and ``busy``) through registers of its own, and the reduction and gradient
    units through one more copy, so no control path crosses the die combinationally
    (``hw.rtl.array``). The whole array acts a cycle after the controller, and the top
    raises ``done`` a cycle after the controller's last handshake: every op takes that
    many cycles more (a fixed overhead, counted as handshake).
    """
    return 1 if profile.pipeline_depth >= 4 and two_level(profile.n_pe) else 0


def adder_tree_depth(profile: HwProfile) -> int:
    """``TD = ceil(log2 P)`` (0 for one PE)."""
    return (profile.n_pe - 1).bit_length()


def tile_count(m: int, profile: HwProfile) -> int:
    """Sample tiles of the sample-parallel dataflow: ``T = ceil(M / P)``."""
    return -(-m // profile.n_pe)


def ideal_cycles(m: int, nnz: int, profile: HwProfile) -> int:
    """Ideal sparse-kernel cycles ``ceil(M * nnz / P)`` (all PEs busy, no overheads)."""
    return -(-m * nnz // profile.n_pe)


def _pipelined(t: int, stages: tuple[int, ...]) -> int:
    """Steps ``s = 0..T+len-2`` of a ``len``-stage pipeline over ``T`` tiles of equal stages.

    Step ``s`` runs stage ``j`` on tile ``s - j`` when that tile exists; each step costs
    the longest active stage plus one handshake cycle.
    """
    n = len(stages)
    total, s = 0, 0
    while s < t + n - 1:
        lo, hi = max(0, s - t + 1), min(n - 1, s)
        if lo == 0 and hi == n - 1:
            # Steps n-1 .. T-1 run every stage: identical, counted at once.
            reps = t - n + 1
            total += reps * (max(stages) + 1)
            s += reps
            continue
        total += max(stages[lo : hi + 1]) + 1
        s += 1
    return total


def drain_lag(profile: HwProfile) -> int:
    """Cycles a drain's output-SRAM writes trail their reads beyond the first (s.2.2, 2.4).

    A drained word is read from a PE's output buffer in cycle ``c`` and written to the
    output SRAM at the end of cycle ``c + 1``; with :func:`deep_reduce` (``PD >= 4``) it
    is registered as it leaves the buffer, before the output SRAM's write multiplexer
    (``hw.rtl.array``), and written at the end of cycle ``c + 2``: 1, else 0. The drain
    stage lasts that much longer, so its last write still falls in its last cycle.
    """
    return 1 if deep_reduce(profile) else 0


def sp_drain_cycles(n: int, profile: HwProfile) -> int:
    """The sample-parallel drain stage of ``N`` words (s.2.2): ``N + drain_lag``, 0 when
    ``N`` is 0 (nothing to drain)."""
    return n + drain_lag(profile) if n else 0


def spmm_sample_parallel_cycles(k: int, n: int, m: int, s: int, profile: HwProfile) -> int:
    """Sample-parallel SpMM (s.2.2): stages load ``K``, compute ``S + PD`` (one more with
    the FPGA pipeline, :func:`sp_compute_cycles`), drain ``N + drain_lag``
    (:func:`sp_drain_cycles`); plus :func:`control_lag`."""
    stages = (k, sp_compute_cycles(s, profile), sp_drain_cycles(n, profile))
    return _pipelined(tile_count(m, profile), stages) + control_lag(profile)


def sddmm_cycles(k: int, n: int, m: int, s_chunk: int, profile: HwProfile) -> int:
    """Sample-parallel SDDMM chunk (s.2.3): load ``K + N``, compute ``S_chunk + PD + TD``;
    plus :func:`control_lag`."""
    compute = s_chunk + profile.pipeline_depth + adder_tree_depth(profile)
    return _pipelined(tile_count(m, profile), (k + n, compute)) + control_lag(profile)


RP_LOAD_LATENCY = 2
"""A broadcast word sent in cycle ``c`` of a row-parallel op can be read by the bank walk
from cycle ``c + 2``: the activation SRAM returns it one cycle after the address, and the
PE's buffer takes it at the end of that cycle (its read port is not write-through).
:func:`rp_load_latency` adds the deeper FPGA pipeline's stage."""


def rp_load_latency(profile: HwProfile) -> int:
    """:data:`RP_LOAD_LATENCY` for ``profile``: one cycle more with ``PD >= 4``.

    Then the activation SRAM's words are registered as they leave it and every PE reads
    its buffer a cycle after the entry is presented (which cancel), and each broadcast
    lane's word is registered after its ``n_pe``-way bank multiplexer, before it fans out
    to every PE's buffer (``hw.rtl.array``): a word sent in cycle ``c`` is read by the
    walk from cycle ``c + 3``. With :func:`control_lag` each bank's word is registered by
    its bank before the lanes' trees as well, and each group of PEs takes a lane's word
    from the lane's register through a register of its own: two cycles more.
    """
    return RP_LOAD_LATENCY + (1 if profile.pipeline_depth >= 4 else 0) + 2 * control_lag(profile)


RESULT_WRITE_DELAY = 1
"""Cycles from the accumulate that forms a PE's result (cycle ``e + PD`` of its last entry
``e``) to the end of the cycle that writes it to the PE's output buffer: the result is
registered and written, requantised unless it is a split row's partial, the cycle after
(``hw.rtl.pe``), so a drain reads it from cycle ``e + PD + 2``."""


def result_write_delay(profile: HwProfile) -> int:
    """:data:`RESULT_WRITE_DELAY` for ``profile``: one cycle more with :func:`deep_reduce`,
    where the requantised result is registered before the PE's output buffer and written
    a cycle later (``hw.rtl.pe``), so a drain reads it from cycle ``e + PD + 3``."""
    return RESULT_WRITE_DELAY + (1 if deep_reduce(profile) else 0)


def sp_compute_cycles(s: int, profile: HwProfile) -> int:
    """The sample-parallel SpMM compute stage of ``S`` entries (s.2.2): ``S + PD``, and the
    cycles the last result's write trails :data:`RESULT_WRITE_DELAY` by, so it falls in
    the step's handshake cycle (``S + PD + 1`` with :func:`deep_reduce`)."""
    return s + profile.pipeline_depth + result_write_delay(profile) - RESULT_WRITE_DELAY


REDUCE_PIPELINE = 2
"""Cycles the reduction of split rows runs past its last partial read: the partials are
registered as they leave the output SRAM, added the next cycle, and the row's sum is
written the cycle after (``hw.rtl.reduce``). :func:`reduce_pipeline` adds the deeper
FPGA pipeline's stage."""


def deep_reduce(profile: HwProfile) -> bool:
    """Whether the reduction has the deeper FPGA pipeline (``pipeline_depth >= 4``).

    Then every output-SRAM bank's word is registered as it leaves the bank, before the
    ``n_pe``-way multiplexer that picks the reduction's partials (``hw.rtl.array``), and a
    finished row's requantised sum is registered before its write (``hw.rtl.reduce``).
    """
    return profile.pipeline_depth >= 4


def reduce_pipeline(profile: HwProfile) -> int:
    """:data:`REDUCE_PIPELINE` for ``profile``: two cycles more with :func:`deep_reduce`,
    and seven more with :func:`control_lag`, where the partials' read addresses reach
    each output-SRAM bank through a register by the unit, a copy per group of banks and a
    register per bank, each bank registers its word before the partials' trees, and a
    finished row's sum crosses to the banks through a register in the unit, a copy per
    group and a register per bank (``hw.rtl.array``, ``hw.rtl.reduce``)."""
    return REDUCE_PIPELINE + (2 if deep_reduce(profile) else 0) + 7 * control_lag(profile)


def bank_positions(bank_ptr: np.ndarray) -> tuple[np.ndarray, int, np.ndarray, np.ndarray]:
    """``(n_p, max_p n_p, PE of each bank entry, its index in its PE's bank)``."""
    ptr = np.asarray(bank_ptr, dtype=np.int64)
    n_p = np.diff(ptr)
    pe = np.repeat(np.arange(len(n_p)), n_p)
    return n_p, int(n_p.max()), pe, np.arange(int(ptr[-1] - ptr[0])) - (ptr[pe] - ptr[0])


def row_parallel_walk_delay(
    bank_col: np.ndarray, bank_ptr: np.ndarray, k: int, m: int, profile: HwProfile
) -> int:
    """First cycle of the bank walk of a row-parallel op (s.2.4).

    The walk presents PE ``p``'s entry ``i`` of sample ``s`` in cycle
    ``d + s * max_p n_p + i``; it reads broadcast word ``s * K + col``, sent in cycle
    ``(s * K + col) // bcast_words``. The smallest ``d >= 0`` at which no entry is read
    before :func:`rp_load_latency` cycles after its word was sent.
    """
    col = np.asarray(bank_col, dtype=np.int64)
    if len(col) == 0:
        return 0
    _, nmax, _, i = bank_positions(bank_ptr)
    s = np.arange(m, dtype=np.int64)[:, None]
    need = (s * k + col[None, :]) // profile.bcast_words + rp_load_latency(profile) - (s * nmax + i)
    return max(0, int(need.max()))


def row_parallel_drain_delay(
    bank_end: np.ndarray,
    bank_ptr: np.ndarray,
    m: int,
    walk_delay: int,
    profile: HwProfile,
) -> int:
    """First cycle of the drain of a row-parallel op (s.2.4), which overlaps the walk.

    PE ``p``'s ``j``-th result (``j = s q_p + slot``: sample ``s``, its piece ``slot``) is
    formed when the piece's last entry ``i`` of sample ``s``, presented in cycle
    ``walk_delay + s max_p n_p + i``, leaves the ``PD``-deep pipeline, and written
    :func:`result_write_delay` cycles later (the write ends cycle
    ``walk_delay + s max_p n_p + i + PD + result_write_delay``); the drain reads PE
    ``p``'s word ``j`` in cycle ``e + o_p + j``, right-aligned by
    :func:`drain_offsets` ``o_p = max_p q_p - q_p``, and a word can be read from the
    cycle after its write. The smallest ``e >= 0`` at which no result is read before it
    is written.
    """
    end = np.asarray(bank_end, dtype=bool)
    if not end.any():
        return 0
    n_p, nmax, pe, i = bank_positions(bank_ptr)
    q_p = np.bincount(pe[end], minlength=len(n_p))
    last_i, last_pe = i[end], pe[end]
    slot = np.arange(len(last_i)) - np.concatenate(([0], np.cumsum(q_p)))[last_pe]
    s = np.arange(m, dtype=np.int64)[:, None]
    # written at the clock edge that ends this cycle; readable from the next
    written = (
        walk_delay + s * nmax + last_i[None, :] + profile.pipeline_depth
    ) + result_write_delay(profile)
    off = drain_offsets(q_p)[last_pe]
    need = written + 1 - (off[None, :] + s * q_p[last_pe][None, :] + slot[None, :])
    return max(0, int(need.max()))


def drain_offsets(q_p: np.ndarray) -> np.ndarray:
    """Row-parallel drain: PE ``p`` drains its results ``max_p q_p - q_p`` cycles after the
    PE with the most pieces (s.2.4), so on one sample every PE's last result is drained in
    the drain's last cycle. A PE with one long piece then drains it at the end of the drain
    instead of holding the drain back until its walk ends."""
    q_p = np.asarray(q_p, dtype=np.int64)
    return int(q_p.max(initial=0)) - q_p


def row_parallel_phases(
    k: int,
    m: int,
    max_entries: int,
    max_pieces: int,
    split_adds: int,
    profile: HwProfile,
    walk_delay: int,
    drain_delay: int,
) -> dict[str, int]:
    """Durations of the row-parallel phases (s.2.4) before handshakes.

    ``max_entries = max_p n_p``, ``max_pieces = max_p q_p``,
    ``split_adds = sum_r (pieces_r - 1)``; ``walk_delay`` and ``drain_delay`` from
    :func:`row_parallel_walk_delay` and :func:`row_parallel_drain_delay`. The broadcast
    load ``L = ceil(K M / bcast_words)``, the walk ``W = M max_entries + PD`` started
    ``walk_delay`` cycles into the op and the drain ``D = M max_pieces`` started
    ``drain_delay`` cycles into it share one phase of ``max(L, walk_delay + W,
    drain_delay + D + drain_lag)`` cycles (:func:`drain_lag`: the last drained word's
    write trails its read): ``load`` is ``L``, ``compute`` the part of the walk that
    outlasts the load, ``drain`` the part of the drain that outlasts both. The reduction
    takes ``M split_adds`` cycles of adds plus :func:`reduce_pipeline`, or 0 without a
    split row. ``lag`` is :func:`control_lag`.
    """
    load = -(-k * m // profile.bcast_words)
    walk = walk_delay + m * max_entries + profile.pipeline_depth
    drain = drain_delay + m * max_pieces + drain_lag(profile)
    return {
        "load": load,
        "compute": max(0, walk - load),
        "drain": max(0, drain - max(load, walk)),
        "reduction": m * split_adds + reduce_pipeline(profile) if split_adds else 0,
        "lag": control_lag(profile),
    }


def row_parallel_cycles(
    k: int,
    m: int,
    max_entries: int,
    max_pieces: int,
    split_adds: int,
    profile: HwProfile,
    walk_delay: int,
    drain_delay: int,
) -> int:
    """Row-parallel SpMM (s.2.4): the load, walk and drain phase and (if any row is split)
    the reduction, each plus one handshake cycle."""
    return row_parallel_phase_cycles(
        row_parallel_phases(
            k, m, max_entries, max_pieces, split_adds, profile, walk_delay, drain_delay
        )
    )


def row_parallel_phase_cycles(phases: dict[str, int]) -> int:
    """Cycles of the phases of :func:`row_parallel_phases`: the load, walk and drain phase
    and (if it has any cycles) the reduction, each plus one handshake cycle, and the
    control lag."""
    reduce = phases["reduction"] + 1 if phases["reduction"] else 0
    return phases["load"] + phases["compute"] + phases["drain"] + 1 + reduce + phases["lag"]


def systolic_cycles(k: int, n: int, m: int, profile: HwProfile) -> int:
    """Weight-stationary GEMM (s.3): ``ceil(K/R) * ceil(N/C) * (2R + C + M - 2)``."""
    r, c = profile.rows, profile.cols
    return math.ceil(k / r) * math.ceil(n / c) * (2 * r + c + m - 2)


def systolic_resident_cycles(k: int, n: int, m: int, profile: HwProfile) -> int:
    """Weight-stationary GEMM with resident tiles (s.3.1).

    Every cell holds all of the op's tiles in its bank, so no fold shifts weights in, and
    folds stream back to back in ``k``-fold outer, ``n``-fold inner order: fold ``(kf, nf)``
    starts ``M`` cycles after the previous fold and at least ``R`` cycles after fold
    ``(kf - 1, nf)``, whose partial sums it reads. With ``KF = ceil(K/R)``,
    ``NF = ceil(N/C)``: ``(KF - 1) * max(NF * M, R) + NF * M + R + C - 2``.
    """
    r, c = profile.rows, profile.cols
    kf, nf = math.ceil(k / r), math.ceil(n / c)
    return (kf - 1) * max(nf * m, r) + nf * m + r + c - 2
