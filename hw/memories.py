"""The physical memory each buffer access reaches, as the RTL builds it.

Energy per SRAM access depends on the size of the macro (bank) that is read, not on the
total capacity of the logical buffer: the RTL builds the global activation SRAM of a
sparse profile from ``n_pe`` banks, so an access reaches one ``act_sram_kib / n_pe`` KiB
bank. :func:`access_macros` gives, per counted access type of ``sim.MemoryAccesses``,
the :class:`Macro` it reaches; the energy model prices accesses by
:attr:`Macro.bytes` and a test checks every macro against the memories of the generated
netlist.

Sparse profiles (``hw/rtl``): the weight SRAM's value field is ``n_pe`` banks of
``weight_bank_words`` operands (``weights.py``); the activation and output SRAMs are
``n_pe`` banks of ``act_sram_words / n_pe`` operands and accumulators (``array.py``); a
PE's activation buffer holds ``2 * act_buf_words`` operands, its output buffer
``2 * out_buf_words`` accumulators (``pe.py``; a PE-buffer access is
priced at the larger of the two); the gradient SRAM is ``grad_buf_words`` accumulators
(``gradient.py``). Systolic profiles (``systolic_top.py``) have one weight, one
activation, one output and one partial-sum memory, each a single macro, and no gradient
SRAM.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from hw.fit import out_rows
from hw.profiles import HwProfile

__all__ = ["Macro", "access_macros"]


@dataclass(frozen=True)
class Macro:
    """One physical memory: ``depth`` words of ``width`` bits."""

    name: str
    """Name of the RTL memory (without its bank / PE number)."""
    depth: int
    width: int

    @property
    def bytes(self) -> int:
        """Capacity in bytes (rounded up to whole bytes per word)."""
        return self.depth * ((self.width + 7) // 8)


def access_macros(p: HwProfile) -> Mapping[str, Macro]:
    """``access type -> Macro`` for every SRAM access type a kernel counts."""
    ob, ab = p.operand_bits, p.acc_bits
    if p.is_sparse:
        bank = p.act_sram_words // p.n_pe
        weight = Macro("weight_val", p.weight_bank_words, ob)
        act = Macro("act", bank, ob)
        out = Macro("out", bank, ab)
        # A PE's activation buffer is bcast_words operands wide (one broadcast per write).
        pe_act = Macro("act", 2 * p.act_buf_words // p.bcast_words, p.bcast_words * ob)
        pe_out = Macro("out", 2 * p.out_buf_words, ab)
        pe_buf = max(pe_act, pe_out, key=lambda m: m.bytes)
    else:
        weight = Macro("wt", p.weight_sram_words // p.cols, p.cols * ob)
        act = Macro("act", p.act_sram_words, ob)
        out = Macro("out", out_rows(p), p.cols * ob)
        pe_buf = Macro("psum", out_rows(p), p.cols * ab)
    out_macros = {
        "weight_sram_reads": weight,
        "act_sram_reads": act,
        "act_sram_writes": act,
        "out_sram_reads": out,
        "out_sram_writes": out,
        "pe_buf_reads": pe_buf,
        "pe_buf_writes": pe_buf,
    }
    if p.is_sparse:
        # Only the sparse array has the SDDMM gradient SRAM (systolic gradients are GEMMs).
        grad = Macro("grad", p.grad_buf_words, ab)
        out_macros["grad_sram_reads"] = out_macros["grad_sram_writes"] = grad
    return out_macros
