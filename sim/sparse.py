"""Sparse PE array executors (``docs/microarchitecture.md`` s.2.2-2.4).

Each executor keeps the buffers the hardware has (activation SRAM banks, per-PE double
buffers, output SRAM banks, gradient SRAM), runs the microarchitecture's steps in order
through :func:`sim.pipeline.run_steps` (or its sequential phases for row-parallel ops), and
counts cycles and accesses per stage. Arithmetic within a stage is vectorised over PEs.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from hw.numerics import (
    adder_tree,
    dequantize,
    exact_matmul,
    int_dtype,
    mac_chain,
    requant,
    sat_acc,
)
from hw.profiles import HwProfile
from hw.program import Op
from hw.timing import (
    adder_tree_depth,
    control_lag,
    drain_lag,
    drain_offsets,
    reduce_pipeline,
    result_write_delay,
    rp_load_latency,
    sp_compute_cycles,
    sp_drain_cycles,
    tile_count,
)
from sim.pipeline import Stage, run_steps
from sim.result import MemoryAccesses, OpResult, PhaseCycles

__all__ = ["run_rp_spmm", "run_sddmm", "run_sp_spmm"]


def _result(
    op, out, profile, cycles, phases, compute, steps, busy, cnt: Counter, image
) -> OpResult:
    mem_fields = MemoryAccesses.__dataclass_fields__
    # The array acts control_lag cycles behind the controller, which raises done that
    # much later (s.2): a fixed overhead, counted as handshake.
    lag = control_lag(profile)
    cycles, phases = cycles + lag, phases + PhaseCycles(handshake=lag)
    return OpResult(
        name=op.name,
        output=out,
        output_float=dequantize(out, profile),
        cycles=cycles,
        phases=phases,
        compute_cycles=compute,
        steps=steps,
        pe_busy=busy,
        mem=MemoryAccesses(**{k: int(v) for k, v in cnt.items() if k in mem_fields}),
        macs=int(cnt["macs"]),
        useful_macs=op.m * op.nnz,
        adds=int(cnt["adds"]),
        out_image=image.reshape(-1),
    )


def run_sp_spmm(op: Op, x: np.ndarray, profile: HwProfile) -> OpResult:
    """Sample-parallel SpMM: load ``K`` / compute ``S + PD`` / drain ``N + drain_lag`` per
    tile (the drain's last write trails its last read by ``drain_lag`` cycles)."""
    p, k, n, m = profile.n_pe, op.k, op.n, op.m
    a = op.arrays
    val, col, last = a["stream_val"], a["stream_col"], a["stream_last"].astype(bool)
    s = len(val)
    n_tokens = int(a["stream_token"].sum())
    dt = int_dtype(profile)
    act_sram = op.act_sram_image(profile, x).reshape(p, -1).astype(dt)
    depth = profile.act_sram_words // p
    out_sram = np.zeros((p, depth), dtype=dt)
    act_buf = np.zeros((2, p, k), dtype=dt)
    out_buf = np.zeros((2, p, n), dtype=dt)
    lanes = np.arange(p)
    busy = np.zeros(p, dtype=np.int64)
    cnt: Counter = Counter(act_sram_writes=k * m)  # the host's fill of the inputs
    dense_w = np.zeros((n, k), dtype=np.int64)
    dense_w[op.stream_rows(), col] += val  # tokens add 0 at column 0

    def live(t: int) -> np.ndarray:
        return t * p + lanes < m

    def load(t: int) -> None:
        on = live(t)
        act_buf[t % 2] = act_sram[:, t * k : (t + 1) * k] * on[:, None]
        cnt["act_sram_reads"] += k * on.sum()
        cnt["pe_buf_writes"] += k * on.sum()

    def compute(t: int) -> None:
        on = live(t)
        acc = exact_matmul(dense_w, act_buf[t % 2].T, profile)
        if acc is None:  # saturation possible: walk the stream entry by entry
            prods = val[:, None] * act_buf[t % 2][:, col].T
            acc = mac_chain(prods, last, profile)
        out_buf[t % 2] = (requant(acc, profile) * on).T
        cnt["weight_sram_reads"] += s
        cnt["index_reads"] += s
        cnt["pe_buf_reads"] += (s - n_tokens) * on.sum()
        cnt["macs"] += s * on.sum()
        cnt["pe_buf_writes"] += n * on.sum()
        busy[on] += s

    def drain(t: int) -> None:
        on = live(t)
        out_sram[on, t * n : (t + 1) * n] = out_buf[t % 2][on]
        cnt["pe_buf_reads"] += n * on.sum()
        cnt["out_sram_writes"] += n * on.sum()

    stages = [
        Stage("load", k, load),
        Stage("compute", sp_compute_cycles(s, profile), compute),
        Stage("drain", sp_drain_cycles(n, profile), drain),
    ]
    cycles, phases, comp, steps = run_steps(tile_count(m, profile), stages)
    ms = np.arange(m)
    y = out_sram[(ms % p)[None, :], ((ms // p) * n)[None, :] + np.arange(n)[:, None]]
    return _result(op, y, profile, cycles, phases, comp, steps, busy, cnt, out_sram)


def run_sddmm(op: Op, x: np.ndarray, dy: np.ndarray, profile: HwProfile) -> OpResult:
    """SDDMM chunk: load ``K + N`` / compute ``S_chunk + PD + TD`` per tile (s.2.3)."""
    p, k, n, m = profile.n_pe, op.k, op.n, op.m
    a = op.arrays
    col = a["stream_col"]
    real = ~a["stream_token"].astype(bool)
    rows = op.stream_rows()
    s, nnz = len(col), int(real.sum())
    t_count = tile_count(m, profile)
    dt = int_dtype(profile)
    act_sram = op.act_sram_image(profile, x, dy).reshape(p, -1).astype(dt)
    act_buf = np.zeros((2, p, k + n), dtype=dt)
    g = np.zeros(nnz, dtype=dt)
    out = np.zeros(nnz, dtype=dt)
    lanes = np.arange(p)
    busy = np.zeros(p, dtype=np.int64)
    width = 1 << max(0, (p - 1).bit_length())
    cnt: Counter = Counter(act_sram_writes=(k + n) * m)  # the host's fill of the inputs

    def load(t: int) -> None:
        on = t * p + lanes < m
        act_buf[t % 2] = act_sram[:, t * (k + n) : (t + 1) * (k + n)] * on[:, None]
        cnt["act_sram_reads"] += (k + n) * on.sum()
        cnt["pe_buf_writes"] += (k + n) * on.sum()

    def compute(t: int) -> None:
        nonlocal g, out
        on = t * p + lanes < m
        buf = act_buf[t % 2]
        full = exact_matmul(buf[:, k:].T, buf[:, :k], profile)
        if full is not None:  # no tree node can saturate: the tree is the plain sum
            tree = full[rows[real], col[real]]
        else:
            prods = (buf[:, k + rows[real]] * buf[:, col[real]]).T
            tree = adder_tree(prods, profile)
        if t == t_count - 1:
            out = requant(sat_acc(g + tree, profile), profile)
            cnt["out_sram_writes"] += nnz
        else:
            g = sat_acc(g + tree, profile)
            cnt["grad_sram_writes"] += nnz
        if t > 0:
            cnt["grad_sram_reads"] += nnz
        cnt["index_reads"] += s
        cnt["pe_buf_reads"] += 2 * nnz * on.sum()
        cnt["macs"] += nnz * on.sum()
        cnt["adds"] += (width - 1) * nnz + nnz
        busy[on] += nnz

    compute_len = s + profile.pipeline_depth + adder_tree_depth(profile)
    stages = [Stage("load", k + n, load), Stage("compute", compute_len, compute)]
    cycles, phases, comp, steps = run_steps(t_count, stages)
    return _result(op, out, profile, cycles, phases, comp, steps, busy, cnt, out)


def run_rp_spmm(op: Op, x: np.ndarray, profile: HwProfile) -> OpResult:
    """Row-parallel SpMM (s.2.4): load, walk and drain overlapped in one phase, then the
    reduction of split rows."""
    p, k, m = profile.n_pe, op.k, op.m
    a = op.arrays
    dt = int_dtype(profile)
    n_p = np.diff(a["bank_ptr"])
    q_p = np.diff(a["piece_ptr"])
    slot = np.arange(len(a["piece_pe"])) - a["piece_ptr"][a["piece_pe"]]
    cnt: Counter = Counter(act_sram_writes=k * m)  # the host's fill of the inputs
    phase: dict[str, int] = {}

    # load: the broadcast bus delivers K*M words, bcast_words per cycle, to every PE;
    # word i is sent in cycle i // bcast_words and readable rp_load_latency cycles later.
    words = op.act_sram_image(profile, x).reshape(p, -1).astype(dt)
    i = np.arange(k * m)
    stream = words[i % p, i // p]
    act_buf = stream.reshape(m, k)  # identical copy in every PE (sample-major)
    load = -(-k * m // profile.bcast_words)
    ready = (i // profile.bcast_words + rp_load_latency(profile)).reshape(m, k)
    phase["load"] = load
    cnt["act_sram_reads"] += k * m
    cnt["pe_buf_writes"] += k * m * p

    # compute: from cycle `delay` of the load, every PE walks its bank once per sample;
    # pieces restart the accumulator. Load and walk share one phase.
    delay = op.walk_delay(profile)
    acc, walk, written = _walk_banks(a, act_buf.astype(dt), m, profile, ready, delay, op.name)
    phase["compute"] = max(0, delay + walk - load)
    split = a["piece_split"].astype(bool)
    out_buf = np.where(split[:, None], acc, requant(acc, profile))
    total = int(n_p.sum())
    cnt["weight_sram_reads"] += m * total
    cnt["index_reads"] += m * total
    cnt["pe_buf_reads"] += m * total
    cnt["macs"] += m * total
    cnt["pe_buf_writes"] += m * len(split)

    # drain: from cycle `drain` of the op (during the walk), PE p's output-buffer word j
    # goes to output-SRAM bank p at j = m * q_p + slot, one word a cycle, read in cycle
    # drain + o_p + j (right-aligned: o_p = max q - q_p); a result can be read from the
    # cycle after the walk wrote it.
    out_sram = np.zeros((p, max(profile.act_sram_words // p, int(q_p.max()) * m)), dtype=dt)
    pe = a["piece_pe"]
    ms = np.arange(m)
    addr = ms[None, :] * q_p[pe][:, None] + slot[:, None]
    drain = op.drain_delay(profile)
    read = drain + drain_offsets(q_p)[pe][:, None] + addr
    early = read <= written
    if early.any():
        g, smp = (int(v[0]) for v in np.nonzero(early))
        raise ValueError(
            f"op {op.name!r}: PE {int(pe[g])} drains result {int(addr[g, smp])} in cycle "
            f"{int(read[g, smp])}, before the walk writes it (end of cycle "
            f"{int(written[g, smp])})"
        )
    out_sram[pe[:, None], addr] = out_buf
    # rows joined at the drain (drain_join): PE 2i+1's last word and PE 2i's, read in the
    # same cycle (the drain's last, one sample), are added and requantised on their way
    # to bank 2i+1; bank 2i keeps the raw partial
    pairs = op.joined_pairs()
    if pairs and not profile.drain_join:
        raise ValueError(
            f"op {op.name!r}: joins rows at the drain, which profile {profile.name!r} has "
            "no adders for (drain_join)"
        )
    for first, second in pairs:
        total_acc = sat_acc(out_buf[first] + out_buf[second], profile)
        out_sram[pe[second], addr[second]] = requant(total_acc, profile)
        cnt["adds"] += m
    # (the last word is written drain_lag cycles after its read, within the phase)
    drain_end = drain + m * int(q_p.max()) + drain_lag(profile)
    phase["drain"] = max(0, drain_end - max(load, delay + walk))
    cnt["pe_buf_reads"] += m * len(split)
    cnt["out_sram_writes"] += m * len(split)

    # reduce: partials of each split row in piece order, sat_acc per add, requant.
    red_ptr, red_piece = a["red_ptr"], a["red_piece"]
    for j in range(len(a["red_row"])):
        idx = red_piece[red_ptr[j] : red_ptr[j + 1]]
        total_acc = out_sram[pe[idx[0]], addr[idx[0]]]
        for piece in idx[1:]:
            total_acc = sat_acc(total_acc + out_sram[pe[piece], addr[piece]], profile)
        out_sram[pe[idx[0]], addr[idx[0]]] = requant(total_acc, profile)
        cnt["out_sram_reads"] += m * len(idx)
        cnt["out_sram_writes"] += m
        cnt["adds"] += m * (len(idx) - 1)
    adds = m * int((red_ptr[1:] - red_ptr[:-1] - 1).sum())
    # one add a cycle; the last sum is written reduce_pipeline cycles after its read
    phase["reduction"] = adds + reduce_pipeline(profile) if adds else 0

    opens = (a["piece_red"] < 0) | _first_of_row(a)
    opens[[f for f, _ in pairs]] = False  # a joined row's result is at its second piece
    first = np.flatnonzero(opens)
    y = np.zeros((op.n, m), dtype=dt)
    y[a["piece_row"][first]] = out_sram[pe[first][:, None], addr[first]]
    steps = 2 if phase["reduction"] else 1  # load, walk and drain; reduction
    phases = PhaseCycles(handshake=steps, **phase)
    busy = (m * n_p).astype(np.int64)
    return _result(op, y, profile, phases.total, phases, walk, steps, busy, cnt, out_sram)


def _walk_banks(
    a,
    act_buf: np.ndarray,
    m: int,
    profile: HwProfile,
    ready: np.ndarray,
    delay: int,
    name: str,
) -> tuple[np.ndarray, int, np.ndarray]:
    """Clock the row-parallel bank walk; returns ``(pieces, M)`` sums and its cycles.

    Every cycle each PE with work left issues its next bank entry (samples in order, the
    whole bank per sample, in step with the PE that has the most entries); the product
    reaches the accumulator ``pipeline_depth`` cycles later, which saturates after every
    add and, at a piece's last entry, writes the piece's sum for that sample and restarts
    at 0. The walk ends on the cycle the last product is accumulated. It starts in cycle
    ``delay`` of the op; an entry that would read its activation word before cycle
    ``ready[sample, col]`` (the broadcast has not delivered it) is refused. Also returns
    the op cycle at whose end each ``(piece, sample)`` result is written.
    """
    ptr, val, col = a["bank_ptr"], a["bank_val"], a["bank_col"]
    end = a["bank_end"].astype(bool)
    piece_of = np.cumsum(end) - end  # global (PE-major) piece index of every entry
    n_p = np.diff(ptr)
    p = len(n_p)
    work = m * n_p
    dt = act_buf.dtype
    out = np.zeros((int(end.sum()), m), dtype=dt)
    written = np.zeros((int(end.sum()), m), dtype=np.int64)
    acc = np.zeros(p, dtype=dt)
    in_flight: list[tuple[np.ndarray, ...]] = []
    pes = np.arange(p)
    cycle = 0
    nmax = max(int(n_p.max(initial=0)), 1)
    while cycle < int(work.max(initial=0)) or in_flight:
        # every PE walks index cycle % nmax of sample cycle // nmax; past its n_p it idles
        idx, smp_all = cycle % nmax, cycle // nmax
        issuing = pes[(idx < n_p) & (smp_all < m)]
        step = np.full(len(issuing), idx)
        entry = ptr[issuing] + step
        sample = np.full(len(issuing), smp_all)
        late = ready[sample, col[entry]] > delay + cycle
        if late.any():
            j = int(np.flatnonzero(late)[0])
            raise ValueError(
                f"op {name!r}: PE {int(issuing[j])} reads activation word "
                f"{int(sample[j]) * act_buf.shape[1] + int(col[entry[j]])} in cycle "
                f"{delay + cycle}, before the broadcast delivers it (cycle "
                f"{int(ready[sample[j], col[entry[j]]])})"
            )
        prod = val[entry].astype(dt) * act_buf[sample, col[entry]]
        in_flight.append((issuing, entry, sample, prod))
        if len(in_flight) > profile.pipeline_depth:
            pe, e, smp, pr = in_flight.pop(0)
            acc[pe] = sat_acc(acc[pe] + pr, profile)
            ends = end[e]
            out[piece_of[e[ends]], smp[ends]] = acc[pe[ends]]
            written[piece_of[e[ends]], smp[ends]] = delay + cycle + result_write_delay(profile)
            acc[pe[ends]] = 0
        cycle += 1
        if cycle >= int(work.max(initial=0)) and all(len(f[0]) == 0 for f in in_flight):
            break
    return out, cycle, written


def _first_of_row(a) -> np.ndarray:
    """Pieces that open their (split) row in the reduction schedule."""
    first = np.zeros(len(a["piece_pe"]), dtype=bool)
    first[a["red_piece"][a["red_ptr"][:-1]]] = True
    return first
