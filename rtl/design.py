"""The one build key of the accelerator's simulations (cocotb and pyverilator back-ends).

A simulation build is reused while everything its Verilog is generated from is unchanged:
the profile, the block (or the top level), the sources of :data:`DESIGN_SOURCES` (their
syntax trees without docstrings, so edits to text do not rebuild) and the back-end's own
tool and flags. :func:`design_digest` is that key; :func:`build_lock` serialises builds of
one key across processes (several pytest workers may ask for the same build).
"""

from __future__ import annotations

import ast
import contextlib
import fcntl
import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path

from hw.profiles import HwProfile

__all__ = ["DESIGN_SOURCES", "ROOT", "build_lock", "design_digest"]

ROOT = Path(__file__).resolve().parents[1]
"""Repository root."""


def _design_sources() -> tuple[Path, ...]:
    rtl = sorted((ROOT / "hw" / "rtl").glob("*.py"))
    # hw/rtl/__init__.py re-exports and hw/rtl/fit.py checks programs; neither is in the
    # Verilog. hw/fit.py sizes the counters and memories the RTL is built with.
    kept = [p for p in rtl if p.name not in ("__init__.py", "fit.py")]
    return (*kept, ROOT / "hw" / "fit.py")


DESIGN_SOURCES: tuple[Path, ...] = _design_sources()
"""Python sources the generated Verilog depends on (besides the profile)."""


def _code(path: Path) -> bytes:
    """The syntax tree of a source file without its docstrings."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree).encode()


def design_digest(profile: HwProfile, *, block: str = "", tool: Sequence[str] = ()) -> str:
    """12 hex digits naming one build of ``profile``'s top level (or ``block``).

    ``tool`` lists what else the back-end's build depends on (its version, flags,
    tracing), each as a string.
    """
    h = hashlib.sha256(profile.to_json().encode())
    h.update(f"block:{block}".encode() if block else b"")
    for src in DESIGN_SOURCES:
        h.update(_code(src))
    for item in tool:
        h.update(f"\n{item}".encode())
    return h.hexdigest()[:12]


@contextlib.contextmanager
def build_lock(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``<directory>.lock`` (one process builds, others wait)."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    with open(directory.parent / f"{directory.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
