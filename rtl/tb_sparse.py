"""cocotb testbench of a sparse top level: random programs per kernel, checked against sim.

Environment: ``MAST_KERNEL`` (``forward``, ``input_grad``, ``weight_grad``,
``dense_grad``), ``MAST_DATAFLOW`` (``sample`` or ``row``), ``MAST_COUNT`` (programs),
``MAST_MAX_DIM`` / ``MAST_MAX_M`` (shape bounds), ``MAST_SEED``.
"""

from __future__ import annotations

import os

import cocotb
import numpy as np

from sim import simulate_op

from .driver import Host, Scoreboard, load_profile_from_env
from .ops import execute, random_case


@cocotb.test()
async def random_programs(dut):
    """Every op of ``MAST_COUNT`` random programs: outputs and cycles equal ``sim``."""
    profile = load_profile_from_env()
    kernel = os.environ["MAST_KERNEL"]
    dataflow = os.environ.get("MAST_DATAFLOW", "sample")
    count = int(os.environ.get("MAST_COUNT", "20")) * int(os.environ.get("MAST_PROGRAMS", "1"))
    seed = int(os.environ.get("MAST_SEED", "1"))
    max_dim = int(os.environ.get("MAST_MAX_DIM", "16"))
    max_m = int(os.environ.get("MAST_MAX_M", "12"))
    dut._log.info("seed=%d kernel=%s dataflow=%s count=%d", seed, kernel, dataflow, count)
    host = Host(dut, profile)
    await host.reset()
    board = Scoreboard(dut._log)
    ops = 0
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        case = random_case(rng, profile, kernel, dataflow, max_dim, max_m)
        for op in case.program.ops:
            x, dy = case.operands(op)
            want = simulate_op(case.program, op, x, dy)
            got, cycles = await execute(host, op, x, dy)
            what = f"program {i} (seed=[{seed}, {i}]) op {op.name} K={op.k} N={op.n} M={op.m}"
            board.compare(what, got, want.output, cycles, want.cycles)
            ops += 1
    dut._log.info("checked %d ops of %d programs: %d mismatches", ops, count, board.mismatches)
    assert board.mismatches == 0, f"{board.mismatches} of {ops} ops mismatch (seed={seed})"
