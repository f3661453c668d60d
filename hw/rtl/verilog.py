"""Verilog generation of a profile's top level."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

from amaranth.back import rtlil, verilog
from amaranth.lib import wiring

from hw.profiles import HwProfile, load_profile

from .host import read_collisions
from .top import build_top, top_name

__all__ = ["convert", "generate_verilog", "verilog_text"]


_ZERO_MEMORY_INIT = re.compile(
    r"^  initial begin\n(?:    \S.*\[\d+\] = \d+'[hbd]0+;\n)+  end\n", re.M
)
"""An ``initial`` block that only zeroes the words of a memory."""


@contextlib.contextmanager
def _no_zero_meminit() -> Iterator[None]:
    """Amaranth's RTLIL back-end without the ``$meminit`` cells of all-zero memories.

    Amaranth 0.5 writes every memory's contents into the RTLIL one constant bit at a time
    (about 9.4 million bits for ``systolic_8x8``), and Yosys then reads them back;
    :func:`convert` drops those contents from the Verilog anyway. Left out of the RTLIL,
    the Verilog comes out the same, and generating it took 1.4 s instead of 26 s for
    ``systolic_8x8`` and 10 s instead of 54 s for ``sparse_pe_64`` (idle 2-core machine).
    Used for the simulation and export Verilog only; synthesis (:func:`hw.synth.write_rtlil`)
    keeps the contents. If Amaranth's emitter no longer has the method, nothing is changed.
    """
    emitter = getattr(rtlil, "ModuleEmitter", None)
    original = getattr(emitter, "emit_memory", None)
    if original is None:
        yield
        return

    def emit_memory(self, cell_idx, cell):
        if any(cell.init):
            original(self, cell_idx, cell)

    emitter.emit_memory = emit_memory
    try:
        yield
    finally:
        emitter.emit_memory = original


def convert(component: wiring.Component, name: str, *, fast: bool = True) -> str:
    """Verilog of ``component`` as module ``name``, with no power-on memory contents.

    Memories carry no power-on contents (SRAM macros have none, and no op reads a word
    before writing it or without masking it): the zero ``initial`` blocks Amaranth writes
    for every memory word are dropped, which keeps the full-size designs' Verilog and
    Verilator models an order of magnitude smaller. ``fast=False`` writes them into the RTLIL and
    removes them from the text (the reference the fast path, :func:`_no_zero_meminit`, is
    tested against).
    """
    with _no_zero_meminit() if fast else contextlib.nullcontext():
        text = verilog.convert(component, name=name, emit_src=False)
    return _ZERO_MEMORY_INIT.sub("", text)


def verilog_text(profile: HwProfile | str, *, collisions: str = "old") -> str:
    """The Verilog source of ``profile``'s top level (module ``mast_accel_<name>``), as
    :func:`convert` writes it; ``collisions="new"`` elaborates it with every synchronous
    read returning the new word on a same-cycle write (:func:`hw.rtl.host.read_collisions`,
    for the test that the design never uses such a read)."""
    profile = load_profile(profile)
    with read_collisions(collisions):
        return convert(build_top(profile), top_name(profile))


def generate_verilog(profile: HwProfile | str, out_dir: str | Path) -> Path:
    """Write ``<out_dir>/mast_accel_<name>.v`` and ``<out_dir>/profile.json``.

    Parameters
    ----------
    profile:
        A :class:`HwProfile` or the name / YAML path of one (unknown names raise
        :class:`~hw.profiles.ProfileError`).
    out_dir:
        Created if missing.

    Returns
    -------
    Path
        The Verilog file.
    """
    profile = load_profile(profile)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{top_name(profile)}.v"
    path.write_text(verilog_text(profile))
    (out / "profile.json").write_text(profile.to_json())
    return path
