"""cocotb testbenches of single blocks (``docs/microarchitecture.md``), scored against ``sim``.

One test per block, each run on that block's own Verilator build (``harness.BLOCKS``):

- ``pe``: the sparse PE. Random activations (loaded word by word or a row at a time, into
  either bank), random streams with empty-row tokens, idle PEs; SpMM results drained from
  either output bank must equal ``requant(mac_chain(...))`` and the last result must be
  formed (counted) ``S + PD`` cycles after the first entry and written
  ``result_write_delay`` cycles after; in SDDMM mode no result is written. In
  both modes ``prod`` carries each entry's product (``dY[row] * X[col]`` for SDDMM, 0 for
  tokens and idle PEs) exactly ``PD`` cycles after the entry (with ``PD >= 7`` it is the
  adder tree's own copy, 0 outside SDDMM).
- ``gradient``: adder tree + gradient SRAM over several tiles of one chunk (tokens
  between the non-zeros, idle PEs in the last tile): the gradient output must equal
  ``requant`` of the per-tile ``sat_acc`` of ``adder_tree`` of the products, and the
  gradient SRAM the partial sums before the last tile. Products arrive ``PD`` cycles after
  their entry and the unit is released ``PD + TD + 1`` cycles after the last non-zero (its
  sum is formed ``PD + TD`` cycles after it and written the cycle after), so a unit with
  another latency fails.
- ``controller``: random op registers of every kernel (sample-parallel SpMM, SDDMM,
  row-parallel SpMM) within the profile's capacity: op cycles (start to done) equal
  ``hw.timing``'s formulas, ``busy`` covers them, ``done`` is high once, and the control
  outputs run each stage for the contract's duration (load words, stream entries,
  row-parallel walk, drain, reduce); op registers read back.
- ``systolic_array``: random weights shifted in, skewed samples and partial sums entering
  the top: each column's bottom must equal the sequential saturating chain over the rows,
  in stream cycle ``m + R - 1 + j`` (the fold of ``hw.timing.systolic_cycles``). Inputs
  outside their windows carry random values, which must not reach any output.

Environment: ``MAST_SEED`` (trial ``i`` draws from ``numpy.random.default_rng([seed, i])``
and a mismatch names it), ``MAST_TRIALS`` (trials per test) and ``MAST_REPORT`` (a JSON
file receiving the scoreboard's counts).
"""

from __future__ import annotations

import json
import os

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge, ReadOnly

from hw.numerics import adder_tree, mac_chain, requant, sat_acc
from hw.profiles import HwProfile
from hw.rtl import OP_KINDS, REGISTERS
from hw.rtl.controller import ArrayControl
from hw.rtl.pe import EntryLayout, tree_product_copy
from hw.timing import (
    adder_tree_depth,
    control_lag,
    result_write_delay,
    row_parallel_cycles,
    sddmm_cycles,
    spmm_sample_parallel_cycles,
    systolic_cycles,
    tile_count,
)

from .driver import Host, Scoreboard, load_profile_from_env, reset_dut

# ---- common -----------------------------------------------------------------------------


def _config() -> tuple[int, int]:
    return int(os.environ.get("MAST_SEED", "0")), int(os.environ.get("MAST_TRIALS", "20"))


def _put(sig, value: int) -> None:
    """Drive ``value`` two's complement at the signal's width."""
    sig.value = int(value) & ((1 << len(sig)) - 1)


def _signed(sig) -> int:
    return sig.value.to_signed()


def _operands(rng: np.random.Generator, size, profile: HwProfile) -> np.ndarray:
    """Operands: full range one draw in three (saturation), else a few units of ``2^f``."""
    if rng.random() < 1 / 3:
        return rng.integers(profile.operand_min, profile.operand_max + 1, size=size)
    hi = min(profile.operand_max, 1 << (profile.frac_bits + 2))
    return rng.integers(-hi, hi + 1, size=size)


def _finish(dut, name: str, board: Scoreboard, seed: int, trials: int, compares: int) -> None:
    dut._log.info(
        "%s: %d trials, %d checks, %d mismatches (seed=%s)",
        name,
        trials,
        board.checked,
        board.mismatches,
        seed,
    )
    report = os.environ.get("MAST_REPORT")
    if report:
        with open(report, "w") as fh:
            json.dump(
                {
                    "block": name,
                    "seed": seed,
                    "trials": trials,
                    "checked": board.checked,
                    "mismatches": board.mismatches,
                },
                fh,
            )
    assert board.checked == compares > 0
    assert board.mismatches == 0, (
        f"{name}: {board.mismatches} of {board.checked} checks mismatch (seed={seed}); "
        + "; ".join(board.failures[:3])
    )


# ---- sparse PE --------------------------------------------------------------------------


async def _run_trials(dut, name: str, trial) -> None:
    """Run ``trial(rng, label, board)`` (returns its comparisons) for every trial of the
    configured seed, then check the scoreboard (:func:`_finish`)."""
    seed, trials = _config()
    board = Scoreboard(dut._log)
    compares = 0
    for t in range(trials):
        rng = np.random.default_rng([seed, t])
        compares += await trial(rng, f"trial {t} (seed=[{seed}, {t}])", board)
    _finish(dut, name, board, seed, trials, compares)


def _entry_word(layout, valid: int, real: int, last: int, value: int, col: int) -> int:
    word = 0
    for name, v in (
        ("valid", valid),
        ("real", real),
        ("last", last),
        ("value", value),
        ("col", col),
    ):
        f = layout[name]
        word |= (int(v) & ((1 << f.width) - 1)) << f.offset
    return word


async def _pe_load_dy(dut, p: HwProfile, rng, words: dict[int, int]) -> None:
    """Write output-buffer words through ``dy_we`` / ``dy_waddr`` (lane 0 of ``ld_data``;
    the other lanes carry random values), in random order."""
    mask = (1 << p.operand_bits) - 1
    for a in rng.permutation(list(words)):
        data = int(rng.integers(0, 1 << 62)) | int(rng.integers(0, 1 << 62)) << 62
        data = (data & ~mask) | (int(words[int(a)]) & mask)
        dut.dy_we.value = 1
        dut.dy_waddr.value = int(a)
        _put(dut.ld_data, data)
        await FallingEdge(dut.clk)
    dut.dy_we.value = 0


async def _pe_load(dut, p: HwProfile, rng, words: dict[int, int]) -> None:
    """Write activation-buffer words through ``ld_*``: one per cycle or a row at a time.

    Disabled lanes of ``ld_data`` carry random values (the per-word enables must mask them).
    """
    b, ob = p.bcast_words, p.operand_bits
    mask = (1 << ob) - 1
    if rng.random() < 0.5:
        groups = [[a] for a in words]
    else:
        rows: dict[int, list[int]] = {}
        for a in words:
            rows.setdefault(a // b, []).append(a)
        groups = list(rows.values())
    for group in groups:
        data = int(rng.integers(0, 1 << 62)) | int(rng.integers(0, 1 << 62)) << 62
        en = 0
        for a in group:
            lane = a % b
            en |= 1 << lane
            data &= ~(mask << (ob * lane))
            data |= (int(words[a]) & mask) << (ob * lane)
        dut.ld_row.value = group[0] // b
        dut.ld_en.value = en
        _put(dut.ld_data, data)
        await FallingEdge(dut.clk)
    dut.ld_en.value = 0


async def _pe_trial(dut, p: HwProfile, rng, label: str, board: Scoreboard) -> int:
    layout = EntryLayout(p)
    a_words, pd = p.act_buf_words, p.pipeline_depth
    sddmm = rng.random() < 0.3
    small = rng.random() < 0.8
    k = int(rng.integers(1, (16 if small else a_words) + 1))
    n = int(rng.integers(1, (12 if small else p.out_buf_words) + 1))
    bank, obank = int(rng.integers(2)), int(rng.integers(2))
    xb, out_base = bank * a_words, obank * p.out_buf_words
    x = _operands(rng, k, p)
    dy = _operands(rng, n, p)
    active = rng.random() >= 0.15
    density = float(rng.choice([0.0, 0.2, 0.6, 1.0, rng.random()]))
    entries = []  # (value, col, last, token, row)
    for r in range(n):
        cols = np.flatnonzero(rng.random(k) < density)
        if len(cols) == 0:
            entries.append((0, 0, 1, 1, r))
        vals = _operands(rng, len(cols), p)
        vals = np.where(vals == 0, 1, vals)
        for j, (c, v) in enumerate(zip(cols, vals, strict=True)):
            entries.append((int(v), int(c), int(j == len(cols) - 1), 0, r))
    s = len(entries)

    # The other bank gets random words first (the PE must read the bank it is given).
    other = (1 - bank) * a_words
    noise = _operands(rng, min(k + n, a_words), p)
    await _pe_load(dut, p, rng, {other + i: int(v) for i, v in enumerate(noise)})
    await _pe_load(dut, p, rng, {xb + i: int(v) for i, v in enumerate(x)})
    # SDDMM: dY goes into the output buffer's bank ``obank`` (noise in the other bank).
    dy_base = obank * p.out_buf_words
    if sddmm:
        other_out = (1 - obank) * p.out_buf_words
        dy_words = {other_out + r: int(v) for r, v in enumerate(_operands(rng, n, p))}
        dy_words.update({dy_base + r: int(v) for r, v in enumerate(dy)})
        await _pe_load_dy(dut, p, rng, dy_words)

    dut.sddmm.value = int(sddmm)
    dut.active.value = int(active)
    dut.x_base.value = xb
    dut.out_base.value = out_base
    dut.dy_addr.value = dy_base
    dut.entry.value = 0
    dut.clear.value = 1
    await FallingEdge(dut.clk)
    dut.clear.value = 0
    counts, prods, prod_valid = [], [], []
    for i in range(s + pd):
        if i < s:
            v, c, last, token, r = entries[i]
            dut.entry.value = _entry_word(layout, 1, 1 - token, last, v, c)
            if sddmm:
                dut.dy_addr.value = dy_base + r
        else:
            dut.entry.value = 0
        await FallingEdge(dut.clk)
        counts.append(int(dut.count.value))
        prods.append(_signed(dut.prod))
        prod_valid.append(int(dut.prod_valid.value))

    # Products: entry e's product is on ``prod`` in cycle e + PD (sampled after edge e + PD - 1).
    lhs = [dy[r] if sddmm else v for v, _, _, _, r in entries]
    keep = [int(active and not e[3]) for e in entries]
    want_prod = np.array(
        [int(a) * int(x[e[1]]) * g for a, e, g in zip(lhs, entries, keep, strict=True)],
        dtype=np.int64,
    )
    flags = np.array(prod_valid)
    first = int(np.argmax(flags)) if flags.any() else -2
    contiguous = flags.sum() == s and flags[first : first + s].all()
    got_prod = np.array(prods[first : first + s] if first >= 0 else [], dtype=np.int64)
    # (the tree's own copy of the product, where there is one, is 0 outside SDDMM)
    tree_prod = want_prod if sddmm or not tree_product_copy(p) else np.zeros_like(want_prod)
    board.compare(
        f"pe {label} prod (sddmm={int(sddmm)}, S={s})",
        got_prod,
        tree_prod,
        first + 1 if contiguous else -1,
        pd,
    )

    if sddmm:  # the accumulator path is off: no result is written
        board.compare(f"pe {label} sddmm result count", np.array(counts[-1:]), np.array([0]))
        return 2
    for _ in range(result_write_delay(p)):  # the last result reaches the buffer
        await FallingEdge(dut.clk)
    last = np.array([e[2] for e in entries], dtype=bool)
    want = requant(mac_chain(want_prod[:, None], last, p), p)[:, 0]
    got = []
    for r in range(n):
        dut.dr_addr.value = out_base + r
        await FallingEdge(dut.clk)
        got.append(_signed(dut.dr_data))
    done = [i + 1 for i, c in enumerate(counts) if c == n]
    latency = done[0] if done and counts[done[0] - 1 :] == [n] * (len(counts) - done[0] + 1) else -1
    board.compare(
        f"pe {label} spmm K={k} N={n} S={s} active={int(active)} bank={bank}/{obank}",
        np.array(got, dtype=np.int64),
        want,
        latency,
        s + pd,
    )
    return 2


@cocotb.test()
async def pe(dut):
    """Sparse PE: MAC chain + requant vs ``hw.numerics``; results after ``S + PD``, prod at PD."""
    p = load_profile_from_env()
    inputs = (
        "ld_en",
        "ld_row",
        "ld_data",
        "dy_we",
        "dy_waddr",
        "entry",
        "x_base",
        "dy_addr",
        "out_base",
        "sddmm",
        "active",
        "clear",
        "rp",
        "q",
        "split_we",
        "split_addr",
        "split_data",
        "dr_addr",
    )
    await reset_dut(dut, inputs)
    await _run_trials(dut, "pe", lambda rng, label, board: _pe_trial(dut, p, rng, label, board))


# ---- adder tree + gradient SRAM ---------------------------------------------------------


async def _gradient_trial(dut, host: Host, p: HwProfile, rng, label: str, board: Scoreboard) -> int:
    n_pe, pd = p.n_pe, p.pipeline_depth
    lat = pd + adder_tree_depth(p)
    g_words = p.grad_buf_words
    nnz = int(rng.integers(1, min(g_words, 40) + 1)) if rng.random() < 0.85 else g_words
    real = [True] * nnz + [False] * int(rng.integers(0, max(2, nnz // 3)))
    rng.shuffle(real)
    s = len(real)
    tiles = int(rng.integers(1, 5))
    idle = int(rng.integers(0, n_pe))  # PEs without a sample in the last tile
    prods = np.zeros((tiles, s, n_pe), dtype=np.int64)
    full = rng.random() < 0.3  # full-range products: tree nodes and sums saturate
    for t in range(tiles):
        if full:
            a, b = (rng.integers(p.operand_min, p.operand_max + 1, size=(s, n_pe)) for _ in "ab")
        else:
            a, b = _operands(rng, (s, n_pe), p), _operands(rng, (s, n_pe), p)
        prods[t] = a * b * np.array(real)[:, None]
    if idle:
        prods[-1, :, n_pe - idle :] = 0
    eidx = np.cumsum([0, *real[:-1]])
    last_real = int(np.flatnonzero(real)[-1])

    dut.busy.value = 1
    for t in range(tiles):
        final = t == tiles - 1
        # A tile's compute stage lasts S + PD + TD cycles, then a handshake (and maybe a
        # longer load stage); the last tile ends the op PD + TD + 1 cycles after its last
        # non-zero (whose sum is written then), when the unit stops owning the memories.
        cycles = last_real + lat + 2 if final else s + lat + 1 + int(rng.integers(0, 3))
        for c in range(cycles):
            e = c - pd  # the entry whose products arrive in this cycle
            for i in range(n_pe):
                _put(getattr(dut, f"prods__{i}"), prods[t, e, i] if 0 <= e < s else 0)
            if c < s:
                dut.valid.value = int(real[c])
                dut.eidx.value = int(eidx[c])
                dut.first.value = int(t == 0)
                dut.last.value = int(final)
            else:
                dut.valid.value = 0
            await FallingEdge(dut.clk)
    dut.busy.value = 0
    dut.valid.value = 0
    for i in range(n_pe):
        getattr(dut, f"prods__{i}").value = 0

    keep = np.array(real)
    g = np.zeros(nnz, dtype=np.int64)
    partial = None
    for t in range(tiles):
        partial = g
        g = sat_acc(g + adder_tree(prods[t][keep], p), p)
    got = await host.read("grad_out", range(nnz), p.operand_bits)
    what = f"gradient {label} nnz={nnz} S={s} tiles={tiles} idle={idle}"
    board.compare(f"{what} grad_out", got, requant(g, p))
    if tiles == 1:
        return 1
    got = await host.read("grad", range(nnz), p.acc_bits)
    board.compare(f"{what} grad (partial sums)", got, partial)
    return 2


@cocotb.test()
async def gradient(dut):
    """Adder tree + gradient SRAM: ``requant(sat_acc(adder_tree))`` per entry, latency PD + TD."""
    p = load_profile_from_env()
    prods = [f"prods__{i}" for i in range(p.n_pe)]
    host_pins = ("host__sel", "host__addr", "host__wdata", "host__we", "host__re")
    await reset_dut(dut, (*prods, "valid", "eidx", "first", "last", "busy", *host_pins))
    # The unit's host pins are the top's: its memories are read through the host port.
    host = Host(dut, p)
    await _run_trials(
        dut, "gradient", lambda rng, label, board: _gradient_trial(dut, host, p, rng, label, board)
    )


# ---- controller -------------------------------------------------------------------------


def _ctl_bits(p: HwProfile) -> dict[str, int]:
    """Bit positions of the single-bit stage strobes in the flattened ``ctl`` port."""
    lay = ArrayControl(p)
    bits = {name: lay[name].offset for name in ("ld_en", "rp_walk", "dr_en", "red_en")}
    bits["entry_valid"] = lay["entry"].offset + lay["entry"].shape["valid"].offset
    return bits


STROBES = ("ld_en", "entry_valid", "rp_walk", "dr_en", "red_en")
"""Stage strobes counted over an op, in the order of :func:`_controller_op`'s vector."""


def _controller_op(p: HwProfile, rng) -> tuple[dict[str, int], int, list[int]]:
    """Random op registers, their cycle count and the cycles of each strobe in ``STROBES``."""
    kind = str(rng.choice(list(OP_KINDS)))
    small = rng.random() < 0.8
    a_words, o_words, b = p.act_buf_words, p.out_buf_words, p.bcast_words
    regs = dict.fromkeys(REGISTERS, 0)
    regs["kind"] = OP_KINDS[kind]
    if kind == "rp_spmm":
        m = int(rng.integers(1, 5))
        k = int(rng.integers(1, a_words // m + 1))
        nmax = int(rng.integers(1, (24 if small else p.weight_bank_words) + 1))
        qmax = int(rng.integers(1, o_words // m + 1))
        adds = int(rng.integers(0, 6)) if rng.random() < 0.6 else 0
        delay = int(rng.integers(0, 40))  # any start of the walk within or after the load
        drain = int(rng.integers(0, 60))  # and of the drain
        regs.update(
            k=k,
            n=int(rng.integers(1, p.n_pe * qmax + 1)),
            m=m,
            nmax=nmax,
            qmax=qmax,
            red_adds=adds,
            rp_delay=delay,
            rp_drain=drain,
        )
        cycles = row_parallel_cycles(k, m, nmax, qmax, adds, p, delay, drain)
        return regs, cycles, [-(-k * m // b), 0, m * nmax, m * qmax, m * adds]
    k = int(rng.integers(1, (16 if small else a_words) + 1))
    n = int(rng.integers(1, (16 if small else o_words) + 1))
    if kind == "sddmm":
        k = min(k, a_words - 1)
        n = min(n, a_words - k)
    cap = p.act_sram_words // p.n_pe // max(k, n)
    m = int(rng.integers(1, min(cap * p.n_pe, 14 if small else 40) + 1))
    s = int(rng.integers(1, (40 if small else 300) + 1))
    regs.update(k=k, n=n, m=m, s_len=s)
    t = tile_count(m, p)
    if kind == "sddmm":
        return regs, sddmm_cycles(k, n, m, s, p), [t * (k + n), t * s, 0, 0, 0]
    return regs, spmm_sample_parallel_cycles(k, n, m, s, p), [t * k, t * s, 0, t * n, 0]


async def _controller_trial(
    dut, host: Host, p: HwProfile, rng, label: str, board: Scoreboard
) -> int:
    regs, want_cycles, want_strobes = _controller_op(p, rng)
    # (the controller alone: the top adds the array's control lag to an op's cycles)
    want_cycles -= control_lag(p)
    await host.set_registers(regs)
    back = await host.read("op", [REGISTERS[name] for name in regs], 32)
    board.compare(f"controller {label} op registers", back, np.array(list(regs.values())))

    bits = _ctl_bits(p)
    strobes = [0] * len(STROBES)
    seen = {"busy": 0, "done": 0}

    def watch() -> None:  # every cycle of the op, up to and including done's
        ctl = int(dut.ctl.value)
        for i, name in enumerate(STROBES):
            strobes[i] += (ctl >> bits[name]) & 1
        for name in seen:
            seen[name] += int(getattr(dut, name).value)

    cycles = await host.run(4 * want_cycles + 100, watch=watch)
    busy = seen["busy"]
    done = seen["done"] + int(dut.done.value) + int(dut.busy.value)  # idle again after the op
    kind = next(k for k, v in OP_KINDS.items() if v == regs["kind"])
    dims = " ".join(f"{k}={regs[k]}" for k in ("k", "n", "m", "s_len", "nmax", "qmax", "red_adds"))
    got = np.array([*strobes, busy, done])
    want = np.array([*want_strobes, want_cycles, 1])
    board.compare(
        f"controller {label} {kind} {dims} (strobes {', '.join(STROBES)}, busy, done)",
        got,
        want,
        cycles,
        want_cycles,
    )
    return 2


@cocotb.test()
async def controller(dut):
    """Controller: op cycles equal ``hw.timing``, stage strobes last the contract's durations."""
    p = load_profile_from_env()
    host = Host(dut, p)
    await host.reset()
    await _run_trials(
        dut,
        "controller",
        lambda rng, label, board: _controller_trial(dut, host, p, rng, label, board),
    )


# ---- systolic array ---------------------------------------------------------------------


async def _systolic_trial(dut, p: HwProfile, rng, label: str, board: Scoreboard) -> int:
    r, c = p.rows, p.cols
    m = int(rng.integers(1, 9))
    w = _operands(rng, (r, c), p)
    x = _operands(rng, (m, r), p)
    # Partial sums of an earlier k-fold: anywhere in range, next to a rail, or small.
    draw = rng.random()
    if draw < 0.3:
        top = rng.integers(p.acc_min, p.acc_max + 1, size=(m, c))
    elif draw < 0.6:
        near = rng.integers(0, 1 << (2 * p.operand_bits - 2), size=(m, c))
        top = np.where(rng.random((m, c)) < 0.5, p.acc_max - near, p.acc_min + near)
    else:
        top = _operands(rng, (m, c), p) << p.frac_bits
    w_row = [getattr(dut, f"w_row__{j}") for j in range(c)]
    x_in = [getattr(dut, f"x__{i}") for i in range(r)]
    top_in = [getattr(dut, f"top__{j}") for j in range(c)]
    bottom = [getattr(dut, f"bottom__{j}") for j in range(c)]
    noise = rng.random() < 0.5

    def filler(shape_max: int) -> int:
        return int(rng.integers(-shape_max, shape_max)) if noise else 0

    dut.shift.value = 1
    for i in reversed(range(r)):  # after R shifts row i holds W[i]
        for j in range(c):
            _put(w_row[j], w[i, j])
        await FallingEdge(dut.clk)
    dut.shift.value = 0
    stream = m + r + c - 2
    assert r + stream == systolic_cycles(r, c, m, p), "fold schedule differs from hw.timing"
    got = np.full((m, c), -1, dtype=np.int64)
    for t in range(stream):
        for i in range(r):
            v = x[t - i, i] if 0 <= t - i < m else filler(1 << (p.operand_bits - 1))
            _put(x_in[i], v)
        for j in range(c):
            v = top[t - j, j] if 0 <= t - j < m else filler(1 << (p.acc_bits - 1))
            _put(top_in[j], v)
        await ReadOnly()
        for j in range(c):
            s = t - (r - 1) - j  # the sample leaving column j in this cycle
            if 0 <= s < m:
                got[s, j] = _signed(bottom[j])
        await FallingEdge(dut.clk)
    want = np.zeros((m, c), dtype=np.int64)
    for s in range(m):
        acc = top[s].astype(np.int64)
        for i in range(r):
            acc = sat_acc(acc + w[i].astype(np.int64) * int(x[s, i]), p)
        want[s] = acc
    board.compare(f"systolic_array {label} M={m} noise={int(noise)}", got, want)
    return 1


@cocotb.test()
async def systolic_array(dut):
    """Systolic cells: each column's bottom is the sequential saturating chain, on time."""
    p = load_profile_from_env()
    inputs = ["shift"]
    for j in range(p.cols):
        inputs += [f"w_row__{j}", f"top__{j}"]
    inputs += [f"x__{i}" for i in range(p.rows)]
    await reset_dut(dut, inputs)
    await _run_trials(
        dut, "systolic_array", lambda rng, label, board: _systolic_trial(dut, p, rng, label, board)
    )
