"""Jobs for the testbench and their execution through the host port (inside cocotb).

A :class:`Job` holds one op's host-port load sequence, as :func:`hw.export.op_load`
defines it (memory writes, op registers, where the result lies), together with ``sim``'s
output and cycle count. :func:`execute` performs the writes, runs the op, and reads the
result back shaped like ``sim``'s :class:`~sim.result.OpResult` ``output``. Jobs are plain
numpy records, so the simulation process needs neither the compiler nor the exporter.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .driver import Host

__all__ = ["Job", "execute", "job_from_load", "read_jobs", "write_jobs"]


@dataclass(frozen=True, eq=False)
class Job:
    """One op to run on the RTL, with ``sim``'s answer."""

    label: str
    """Names the program, its seed and the op (printed on a mismatch)."""
    writes: Mapping[str, tuple[np.ndarray, np.ndarray]]
    """Memory name -> (addresses, signed words), written in this order."""
    registers: Mapping[str, int]
    """Op registers by name."""
    out_memory: str
    out_addresses: np.ndarray
    """Address of every result word, shaped like ``sim``'s output."""
    out_bits: int
    out_valid: np.ndarray | None
    """Where given, only these words are read; the others are 0 (masked GEMM)."""
    cycle_limit: int
    want: np.ndarray
    """``sim``'s integer output."""
    want_cycles: int
    """``sim``'s cycle count."""


def job_from_load(label: str, load, want: np.ndarray, want_cycles: int) -> Job:
    """A :class:`Job` from a :class:`hw.export.OpLoad` and ``sim``'s result."""
    return Job(
        label=label,
        writes={k: (np.asarray(a), np.asarray(w)) for k, (a, w) in load.writes.items()},
        registers=dict(load.registers),
        out_memory=load.output_memory,
        out_addresses=np.asarray(load.output_addresses),
        out_bits=load.output_bits,
        out_valid=None if load.output_valid is None else np.asarray(load.output_valid),
        cycle_limit=int(load.cycle_limit),
        want=np.asarray(want),
        want_cycles=int(want_cycles),
    )


async def execute(host: Host, job: Job) -> tuple[np.ndarray, int]:
    """Load, run and read back one job; returns ``(output, cycles)`` (``-1``: no ``done``)."""
    for name, (addrs, words) in job.writes.items():
        await host.write(name, dict(zip(addrs.tolist(), words.tolist(), strict=True)))
    await host.set_registers(job.registers)
    cycles = await host.run(limit=job.cycle_limit)
    keep = np.ones(job.out_addresses.shape, dtype=bool)
    if job.out_valid is not None:
        keep = job.out_valid.reshape(keep.shape)
    out = np.zeros(job.out_addresses.shape, dtype=np.int64)
    out[keep] = await host.read(job.out_memory, job.out_addresses[keep].tolist(), job.out_bits)
    return out, cycles


def write_jobs(path: str | Path, jobs: list[Job]) -> Path:
    """Store jobs for the testbench (a generated file in the build folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        pickle.dump(jobs, fh)
    return path


def read_jobs(path: str | Path) -> list[Job]:
    """Jobs written by :func:`write_jobs` in this session."""
    with open(path, "rb") as fh:
        return pickle.load(fh)
