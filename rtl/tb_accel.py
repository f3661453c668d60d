"""cocotb testbench of a top level: runs prepared jobs and scores them against ``sim``.

Environment: ``MAST_JOBS`` (a file of :class:`rtl.ops.Job` written by the pytest side,
each an op's host load sequence and ``sim``'s output and cycle count, run through the
host-port protocol of :mod:`rtl.hostport`) and ``MAST_SEED`` (logged, so a failing run
names the seed that reproduces it).
"""

from __future__ import annotations

import os
import zlib

import cocotb
import numpy as np

from hw.export import host_word_bits

from .driver import Host, Scoreboard, load_profile_from_env
from .ops import read_jobs

READ_BACK = ("weight_val", "weight_col", "weight_last", "weight_token", "act_sram", "out_sram")
"""Memories whose host reads :func:`_read_back` checks on a sparse top (the banked ones:
their read paths pick a bank, on the FPGA profiles through the banks' trees)."""


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
    read_backs = len(READ_BACK) if profile.kind == "sparse" else 0
    if read_backs:
        await _read_back(host, profile, board, seed)
    dut._log.info("checked %d ops: %d mismatches (seed=%s)", board.checked, board.mismatches, seed)
    assert board.checked == len(jobs) + read_backs and jobs
    assert board.mismatches == 0, f"{board.mismatches} of {len(jobs)} ops mismatch (seed={seed})"


async def _read_back(host: Host, profile, board: Scoreboard, seed: str) -> None:
    """Random words written to random addresses of every bank of each :data:`READ_BACK`
    memory, read back through the host port: each read must return its word."""
    rng = np.random.default_rng(zlib.crc32(seed.encode()))
    for name in READ_BACK:
        depth = profile.weight_sram_words if name.startswith("weight") else profile.act_sram_words
        bank = depth // profile.n_pe  # (host addresses are bank-major)
        bits = host_word_bits(name, profile)
        offsets = [rng.permutation(bank)[: min(bank, 8)] for _ in range(profile.n_pe)]
        addresses = np.concatenate([b * bank + o for b, o in enumerate(offsets)])
        words = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), size=len(addresses))
        await host.write(name, addresses, words)
        board.compare(f"host read-back of {name}", await host.read(name, addresses, bits), words)
