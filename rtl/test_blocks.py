"""Block-level tests of the Amaranth components in Amaranth's simulator, against ``sim``.

Each test drives one block cycle by cycle and checks its numerics against
:mod:`sim.fixed` and its latency against ``docs/microarchitecture.md``; the cocotb tests
(``test_accel*.py``) check the assembled top levels on Verilator.
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.profiles import get_profile
from hw.rtl import MEMORY_IDS, OP_KINDS, REGISTERS
from hw.rtl.controller import Controller, tree_depth
from hw.rtl.gradient import GradientUnit
from hw.rtl.pe import SparsePE
from hw.rtl.systolic import SystolicArray
from hw.rtl.top import SEL_BITS, host_data_bits
from hw.timing import sddmm_cycles, spmm_sample_parallel_cycles
from sim.fixed import adder_tree, mac_chain, requant, sat_acc

SPARSE = get_profile("sparse_pe_4")
SYSTOLIC = get_profile("systolic_2x2")


def _run(dut, bench) -> None:
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("seed", range(3))
def test_pe_spmm_matches_mac_chain_and_finishes_in_s_plus_pd(seed):
    p = SPARSE
    rng = np.random.default_rng(seed)
    k, n = int(rng.integers(1, 12)), int(rng.integers(1, 8))
    x = rng.integers(p.operand_min, p.operand_max + 1, size=k)
    rows = [np.flatnonzero(rng.random(k) < 0.6) for _ in range(n)]
    entries = []  # (value, col, last, token)
    for cols in rows:
        if len(cols) == 0:
            entries.append((0, 0, 1, 1))
        for j, c in enumerate(cols):
            v = int(rng.integers(p.operand_min, p.operand_max + 1))
            entries.append((v, int(c), int(j == len(cols) - 1), 0))
    s = len(entries)
    prods = np.array([[v * x[c]] for v, c, _, _ in entries])
    want = requant(mac_chain(prods, np.array([e[2] for e in entries], bool), p), p)[:, 0]
    pe = SparsePE(p)
    counts, got = [], []

    async def bench(ctx):
        for i, v in enumerate(x):
            ctx.set(pe.ld_row, i // p.bcast_words)
            ctx.set(pe.ld_en, 1 << (i % p.bcast_words))
            ctx.set(pe.ld_data, (int(v) & 0xFFFF) << (p.operand_bits * (i % p.bcast_words)))
            await ctx.tick()
        ctx.set(pe.ld_en, 0)
        ctx.set(pe.active, 1)
        ctx.set(pe.clear, 1)
        await ctx.tick()
        ctx.set(pe.clear, 0)
        for v, c, last, token in entries:
            ctx.set(pe.entry, {"valid": 1, "real": 1 - token, "last": last, "value": v, "col": c})
            await ctx.tick()
            counts.append(ctx.get(pe.count))
        ctx.set(pe.entry, {"valid": 0, "real": 0, "last": 0, "value": 0, "col": 0})
        for _ in range(p.pipeline_depth):
            await ctx.tick()
            counts.append(ctx.get(pe.count))
        for r in range(n):
            ctx.set(pe.dr_addr, r)
            await ctx.tick()
            got.append(ctx.get(pe.dr_data))

    _run(pe, bench)
    assert got == want.tolist()
    assert counts[s + p.pipeline_depth - 1] == n
    assert counts[s + p.pipeline_depth - 2] < n


def test_gradient_unit_tree_matches_sim_adder_tree_with_latency_pd_plus_td():
    p = SPARSE
    rng = np.random.default_rng(5)
    gu = GradientUnit(p, MEMORY_IDS, SEL_BITS, host_data_bits(p))
    lat = p.pipeline_depth + tree_depth(p.n_pe)
    big = 1 << (2 * p.operand_bits - 2)
    prods = rng.integers(-big, big, size=(6, p.n_pe))
    want = requant(sat_acc(adder_tree(prods, p), p), p)
    got = {}

    async def bench(ctx):
        ctx.set(gu.busy, 1)
        for cycle in range(len(prods) + lat + 1):
            e = cycle - p.pipeline_depth  # the entry whose products arrive now
            if 0 <= e < len(prods):
                for i in range(p.n_pe):
                    ctx.set(gu.prods[i], int(prods[e, i]))
            if cycle < len(prods):
                ctx.set(gu.valid, 1)
                ctx.set(gu.eidx, cycle)
                ctx.set(gu.first, 1)
                ctx.set(gu.last, 1)
            else:
                ctx.set(gu.valid, 0)
            await ctx.tick()
        ctx.set(gu.busy, 0)
        ctx.set(gu.host.sel, MEMORY_IDS["grad_out"])
        for e in range(len(prods)):
            ctx.set(gu.host.addr, e)
            await ctx.tick()
            raw = ctx.get(gu.host.rdata) & 0xFFFF
            got[e] = raw - (1 << 16) if raw >= 1 << 15 else raw

    _run(gu, bench)
    assert [got[e] for e in range(len(prods))] == want.tolist()


def test_systolic_array_columns_form_the_sequential_saturating_chain():
    p = SYSTOLIC
    r, c = p.rows, p.cols
    rng = np.random.default_rng(2)
    w = rng.integers(p.operand_min, p.operand_max + 1, size=(r, c))
    x = rng.integers(p.operand_min, p.operand_max + 1, size=r)
    arr = SystolicArray(p)
    bottoms = {}

    async def bench(ctx):
        ctx.set(arr.shift, 1)
        for i in reversed(range(r)):
            for j in range(c):
                ctx.set(arr.w_row[j], int(w[i, j]))
            await ctx.tick()
        ctx.set(arr.shift, 0)
        for t in range(r + c):
            for i in range(r):
                ctx.set(arr.x[i], int(x[i]) if t == i else 0)
            for j in range(c):
                if t - (r - 1) == j:
                    bottoms[j] = ctx.get(arr.bottom[j])
            await ctx.tick()

    _run(arr, bench)
    for j in range(c):
        acc = 0
        for i in range(r):
            acc = int(sat_acc(np.int64(acc + w[i, j] * x[i]), p))
        assert bottoms[j] == acc


@pytest.mark.parametrize(
    ("kind", "k", "n", "m", "s"),
    [("sp_spmm", 5, 3, 9, 7), ("sp_spmm", 12, 2, 1, 30), ("sddmm", 4, 3, 6, 5),
     ("sddmm", 2, 2, 13, 11)],
)  # fmt: skip
def test_controller_step_timing_matches_the_contract_formulas(kind, k, n, m, s):
    p = SPARSE
    ctrl = Controller(p, MEMORY_IDS, SEL_BITS, host_data_bits(p))
    regs = {"kind": OP_KINDS[kind], "k": k, "n": n, "m": m, "s_len": s}
    cycles = []

    async def bench(ctx):
        ctx.set(ctrl.host.sel, MEMORY_IDS["op"])
        for name, value in regs.items():
            ctx.set(ctrl.host.addr, REGISTERS[name])
            ctx.set(ctrl.host.wdata, value)
            ctx.set(ctrl.host.we, 1)
            await ctx.tick()
        ctx.set(ctrl.host.we, 0)
        ctx.set(ctrl.start, 1)
        await ctx.tick()
        ctx.set(ctrl.start, 0)
        for count in range(1, 10_000):
            if ctx.get(ctrl.done):
                cycles.append(count)
                break
            await ctx.tick()

    _run(ctrl, bench)
    want = (sddmm_cycles(k, n, m, s, p) if kind == "sddmm"
            else spmm_sample_parallel_cycles(k, n, m, s, p))  # fmt: skip
    assert cycles == [want]
