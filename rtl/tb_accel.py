"""cocotb testbench of a top level: runs prepared jobs and scores them against ``sim``.

Environment: ``MAST_JOBS`` (a file of :class:`rtl.ops.Job` written by the pytest side,
each an op's host load sequence and ``sim``'s output and cycle count, run through the
host-port protocol of :mod:`rtl.hostport`) and ``MAST_SEED`` (logged, so a failing run
names the seed that reproduces it).
"""

from __future__ import annotations

import os

import cocotb

from .driver import Host, Scoreboard, load_profile_from_env
from .ops import read_jobs


@cocotb.test()
async def random_programs(dut):
    """Every job: RTL output equals ``sim``'s bit for bit, cycles equal exactly."""
    profile = load_profile_from_env()
    jobs = read_jobs(os.environ["MAST_JOBS"])
    seed = os.environ.get("MAST_SEED", "?")
    dut._log.info("profile=%s seed=%s jobs=%d", profile.name, seed, len(jobs))
    host = Host(dut, profile)
    await host.reset()
    board = Scoreboard(dut._log)
    for job in jobs:
        run = await host.run_op(job.load)
        board.compare(job.label, run.output, job.want, run.cycles, job.want_cycles)
    dut._log.info("checked %d ops: %d mismatches (seed=%s)", board.checked, board.mismatches, seed)
    assert board.checked == len(jobs) > 0
    assert board.mismatches == 0, f"{board.mismatches} of {len(jobs)} ops mismatch (seed={seed})"
