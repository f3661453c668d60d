"""Jobs for the accelerator testbench: one op's host-port load with ``sim``'s answer.

A :class:`Job` pairs an op's :class:`hw.export.OpLoad` (its memory writes, op registers and
where the result lies, as :func:`hw.export.op_load` defines them for ``mast-hw export`` and
the pyverilator co-simulation too) with ``sim``'s output and cycle count. The pytest side
prepares jobs and stores them in the build folder (:func:`write_jobs`); the testbench
(``rtl/tb_accel.py``) reads them and runs each through :meth:`rtl.driver.Host.run_op`, so
the simulation process needs neither the compiler nor ``sim``.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hw.export import OpLoad

__all__ = ["Job", "read_jobs", "write_jobs"]


@dataclass(frozen=True, eq=False)
class Job:
    """One op to run on the RTL, with ``sim``'s answer."""

    label: str
    """Names the program, its seed and the op (printed on a mismatch)."""
    load: OpLoad
    """The op's host-port load sequence and where its result is read."""
    want: np.ndarray
    """``sim``'s integer output."""
    want_cycles: int
    """``sim``'s cycle count."""


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
