"""The sparse PE array: ``P`` PEs, their activation / output SRAM banks and the SDDMM path.

Activation SRAM and output SRAM have ``P`` banks of ``act_sram_words / P`` operands each;
bank ``p`` feeds PE ``p`` in the load stage (one word per cycle, written into the PE's
activation buffer the cycle after the read) and receives PE ``p``'s results in the drain
stage (likewise one cycle after the output-buffer read). PEs whose sample index is
``>= M`` still run in lockstep; their results are not written and their SDDMM products
are zero. On the host port both SRAMs are flat, bank-major word arrays
(``address = bank * (act_sram_words / P) + offset``).
"""

from __future__ import annotations

from collections.abc import Mapping

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In

from hw.profiles import HwProfile

from .arith import op_shape
from .controller import ArrayControl
from .gradient import GradientUnit
from .host import HostSignature, bank_split
from .pe import SparsePE, check_sparse

__all__ = ["PEArray"]


class PEArray(wiring.Component):
    """PEs + activation / output SRAM banks + :class:`GradientUnit` of a sparse profile.

    Ports
    -----
    ctl:
        Per-cycle control from :class:`~hw.rtl.controller.Controller`.
    busy:
        An op is running (the host port is served only when it is not).
    host:
        Host access to ``act``, ``out``, ``grad`` and ``dw`` (ids from ``host_ids``).
    """

    def __init__(self, profile: HwProfile, host_ids: Mapping[str, int], sel_bits: int,
                 data_bits: int):  # fmt: skip
        self._profile = check_sparse(profile, "PEArray")
        if profile.act_sram_words < profile.n_pe:
            raise ValueError(
                f"PEArray: act_sram_words={profile.act_sram_words} must be >= n_pe="
                f"{profile.n_pe} (one bank per PE)"
            )
        for name in ("act_sram", "out_sram", "grad", "grad_out"):
            if name not in host_ids:
                raise ValueError(f"PEArray: host_ids lacks memory {name!r}")
        self._ids = dict(host_ids)
        self._host_shape = (sel_bits, data_bits)
        super().__init__(
            {
                "ctl": In(ArrayControl(profile)),
                "busy": In(1),
                "host": In(HostSignature(sel_bits, data_bits)),
            }
        )

    @property
    def profile(self) -> HwProfile:
        return self._profile

    @property
    def bank_words(self) -> int:
        """Words per activation / output SRAM bank."""
        return self._profile.act_sram_words // self._profile.n_pe

    def elaborate(self, platform):
        p = self._profile
        m = Module()
        ctl, host = self.ctl, self.host
        depth = self.bank_words
        hbank, hoff = bank_split(m, host.addr, depth, p.n_pe, "host")
        h_act = host.sel == self._ids["act_sram"]
        h_out = host.sel == self._ids["out_sram"]
        idle = ~self.busy

        ld_en, ld_dst = Signal(), Signal.like(ctl.ld_dst)
        dr_en, dr_dst, dr_m0 = Signal(), Signal.like(ctl.dr_dst), Signal.like(ctl.dr_m0)
        m.d.sync += [
            ld_en.eq(ctl.ld_en),
            ld_dst.eq(ctl.ld_dst),
            dr_en.eq(ctl.dr_en),
            dr_dst.eq(ctl.dr_dst),
            dr_m0.eq(ctl.dr_m0),
        ]

        m.submodules.grad = gu = GradientUnit(p, self._ids, *self._host_shape)
        for name in ("sel", "addr", "wdata", "we", "re"):
            m.d.comb += getattr(gu.host, name).eq(getattr(host, name))
        e = ctl.entry
        m.d.comb += [
            gu.busy.eq(self.busy),
            gu.valid.eq(e.valid & e.real & ctl.sddmm),
            gu.eidx.eq(ctl.eidx),
            gu.first.eq(ctl.cp_first),
            gu.last.eq(ctl.cp_last),
        ]

        rsel, rbank = Signal.like(host.sel), Signal.like(hbank)
        m.d.sync += [rsel.eq(host.sel), rbank.eq(hbank)]
        act_rdata, out_rdata = Signal(p.operand_bits), Signal(p.operand_bits)

        for i in range(p.n_pe):
            pe = SparsePE(p)
            m.submodules[f"pe{i}"] = pe
            act = memory.Memory(shape=op_shape(p), depth=depth, init=[])
            out = memory.Memory(shape=op_shape(p), depth=depth, init=[])
            m.submodules[f"act{i}"], m.submodules[f"out{i}"] = act, out
            aw, ar = act.write_port(), act.read_port()
            ow, orr = out.write_port(), out.read_port()
            mine = hbank == i
            m.d.comb += [
                aw.en.eq(idle & host.we & h_act & mine),
                aw.addr.eq(hoff),
                aw.data.eq(host.wdata),
                ar.addr.eq(Mux(self.busy, ctl.ld_src, hoff)),
                orr.addr.eq(hoff),
                pe.ld_en.eq(ld_en),
                pe.ld_addr.eq(ld_dst),
                pe.ld_data.eq(ar.data),
                pe.entry.eq(e),
                pe.x_base.eq(ctl.x_base),
                pe.dy_addr.eq(ctl.dy_addr),
                pe.out_base.eq(ctl.out_base),
                pe.sddmm.eq(ctl.sddmm),
                pe.active.eq(ctl.cp_m0 + i < ctl.m),
                pe.clear.eq(ctl.clear),
                pe.dr_addr.eq(ctl.dr_addr),
                gu.prods[i].eq(pe.prod),
            ]
            with m.If(self.busy):
                m.d.comb += [
                    ow.en.eq(dr_en & (dr_m0 + i < ctl.m)),
                    ow.addr.eq(dr_dst),
                    ow.data.eq(pe.dr_data),
                ]
            with m.Else():
                m.d.comb += [
                    ow.en.eq(host.we & h_out & mine),
                    ow.addr.eq(hoff),
                    ow.data.eq(host.wdata),
                ]
            with m.If(rbank == i):
                m.d.comb += [act_rdata.eq(ar.data), out_rdata.eq(orr.data)]

        m.d.comb += host.rdata.eq(
            Mux(rsel == self._ids["act_sram"], act_rdata,
                Mux(rsel == self._ids["out_sram"], out_rdata, gu.host.rdata))
        )  # fmt: skip
        return m
