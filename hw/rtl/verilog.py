"""Verilog generation of a profile's top level."""

from __future__ import annotations

import re
from pathlib import Path

from amaranth.back import verilog

from hw.profiles import HwProfile, load_profile

from .top import build_top, top_name

__all__ = ["generate_verilog", "verilog_text"]


_ZERO_MEMORY_INIT = re.compile(
    r"^  initial begin\n(?:    \S.*\[\d+\] = \d+'[hbd]0+;\n)+  end\n", re.M
)
"""An ``initial`` block that only zeroes the words of a memory."""


def verilog_text(profile: HwProfile | str) -> str:
    """The Verilog source of ``profile``'s top level (module ``mast_accel_<name>``).

    Memories carry no power-on contents (SRAM macros have none, and no op reads a word
    before writing it or without masking it): the zero ``initial`` blocks Amaranth writes
    for every memory word are dropped, which keeps the full-size designs' Verilog and
    Verilator models an order of magnitude smaller.
    """
    profile = load_profile(profile)
    text = verilog.convert(build_top(profile), name=top_name(profile), emit_src=False)
    return _ZERO_MEMORY_INIT.sub("", text)


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
