"""Amaranth RTL of the accelerator (``docs/microarchitecture.md``).

Public API: :func:`build_top` (the top-level component of a profile), :func:`generate_verilog`
(Verilog + ``profile.json``), :data:`MEMORY_IDS` / :data:`REGISTERS` / :data:`OP_KINDS`
(the host interface, documented in :mod:`hw.rtl.top`).
"""

from .controller import OP_KINDS, OP_SETUP_CYCLES, REGISTERS
from .fit import check_fits, check_program
from .top import MEMORY_IDS, build_top, host_data_bits, host_read_latency, top_name
from .verilog import generate_verilog, verilog_text

__all__ = [
    "MEMORY_IDS",
    "OP_KINDS",
    "OP_SETUP_CYCLES",
    "REGISTERS",
    "build_top",
    "check_fits",
    "check_program",
    "generate_verilog",
    "host_data_bits",
    "host_read_latency",
    "top_name",
    "verilog_text",
]
