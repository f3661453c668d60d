"""The sparse-array controller: op registers, the global weight SRAM and the step sequencer.

It executes one op (``docs/microarchitecture.md`` sections 2.2 and 2.3) per ``start``:
steps ``s = 0, 1, ...`` run the load stage of tile ``s``, the compute stage of tile
``s - 1`` and (SpMM only) the drain stage of tile ``s - 2``; a step lasts the longest of
its active stages plus one handshake cycle, in which ``done`` is raised on the last step.
The compressed stream is read from the weight SRAM one entry per cycle, one cycle ahead
(the address rests on the stream base outside the compute stage), so entry ``e`` reaches
the PEs in cycle ``e`` of the step.
"""

from __future__ import annotations

from collections.abc import Mapping

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from hw.profiles import HwProfile

from .host import HostSignature
from .pe import EntryLayout, check_sparse

__all__ = ["ArrayControl", "Controller", "OP_KINDS", "REGISTERS", "entry_bits", "tree_depth"]

OP_KINDS: Mapping[str, int] = {"sp_spmm": 0, "sddmm": 1}
"""Value of the ``kind`` op register per kernel."""

REGISTERS: Mapping[str, int] = {
    name: i
    for i, name in enumerate(
        (
            "kind", "k", "n", "m", "s_len", "w_base", "x_base", "x_stride",
            "dy_base", "dy_stride", "y_base", "y_stride", "row0",
        )
    )
}  # fmt: skip
"""Op registers (32 bits each) by name -> host address in the ``op`` memory."""

COUNT_BITS = 24
"""Width of the sample / address counters (op registers are truncated to it)."""


def tree_depth(n_pe: int) -> int:
    """Depth ``ceil(log2 P)`` of the SDDMM adder tree (0 for one PE)."""
    return (n_pe - 1).bit_length()


def entry_bits(profile: HwProfile) -> int:
    """Width of one stream entry's fields together (value, column, last, token)."""
    return profile.operand_bits + profile.index_bits + 2


class ArrayControl(data.StructLayout):
    """Per-cycle control from the controller to the PE array."""

    def __init__(self, profile: HwProfile):
        p = profile
        bank = p.act_sram_words // p.n_pe
        super().__init__(
            {
                "m": COUNT_BITS,
                "ld_en": 1,
                "ld_src": range(bank),
                "ld_dst": range(2 * p.act_buf_words),
                "entry": EntryLayout(p),
                "x_base": range(2 * p.act_buf_words),
                "dy_addr": range(2 * p.act_buf_words),
                "out_base": range(2 * p.out_buf_words),
                "sddmm": 1,
                "clear": 1,
                "cp_m0": COUNT_BITS,
                "cp_first": 1,
                "cp_last": 1,
                "eidx": range(p.grad_buf_words + 1),
                "dr_en": 1,
                "dr_addr": range(2 * p.out_buf_words),
                "dr_dst": range(bank),
                "dr_m0": COUNT_BITS,
            }
        )


class Controller(wiring.Component):
    """Op registers, weight SRAM and step sequencer of a sparse profile.

    Parameters
    ----------
    profile:
        A sparse :class:`HwProfile`.
    host_ids:
        Memory ids of ``op`` and ``weight`` on the host port.
    sel_bits, data_bits:
        Shape of the host port.
    """

    def __init__(self, profile: HwProfile, host_ids: Mapping[str, int], sel_bits: int,
                 data_bits: int):  # fmt: skip
        self._profile = check_sparse(profile, "Controller")
        for name in ("op", "weight_val", "weight_col", "weight_last", "weight_token"):
            if name not in host_ids:
                raise ValueError(f"Controller: host_ids lacks memory {name!r}")
        self._ids = dict(host_ids)
        super().__init__(
            {
                "host": In(HostSignature(sel_bits, data_bits)),
                "start": In(1),
                "busy": Out(1),
                "done": Out(1),
                "ctl": Out(ArrayControl(profile)),
            }
        )

    @property
    def profile(self) -> HwProfile:
        return self._profile

    def elaborate(self, platform):
        p = self._profile
        m = Module()
        host, ctl = self.host, self.ctl
        regs = {name: Signal(32, name=f"reg_{name}") for name in REGISTERS}
        with m.If(host.we & (host.sel == self._ids["op"]) & ~self.busy):
            with m.Switch(host.addr):
                for name, idx in REGISTERS.items():
                    with m.Case(idx):
                        m.d.sync += regs[name].eq(host.wdata[:32])

        fields = {
            "weight_val": p.operand_bits,
            "weight_col": p.index_bits,
            "weight_last": 1,
            "weight_token": 1,
        }
        rsel = Signal.like(host.sel)
        m.d.sync += rsel.eq(host.sel)
        w_addr = Signal(range(p.weight_sram_words))
        w_data, w_rdata = {}, Signal(32)
        for name, bits in fields.items():
            mem = memory.Memory(shape=bits, depth=p.weight_sram_words, init=[])
            m.submodules[name] = mem
            wr, rd = mem.write_port(), mem.read_port()
            m.d.comb += [
                wr.en.eq(host.we & (host.sel == self._ids[name]) & ~self.busy),
                wr.addr.eq(host.addr),
                wr.data.eq(host.wdata),
                rd.addr.eq(w_addr),
            ]
            w_data[name] = rd.data
            with m.If(rsel == self._ids[name]):
                m.d.comb += w_rdata.eq(rd.data)
        host_w = Signal()
        m.d.comb += host_w.eq(sum(host.sel == self._ids[name] for name in fields) != 0)
        reg_rdata = Signal(32)
        with m.Switch(host.addr):
            for name, idx in REGISTERS.items():
                with m.Case(idx):
                    m.d.sync += reg_rdata.eq(regs[name])
        m.d.comb += host.rdata.eq(Mux(rsel == self._ids["op"], reg_rdata, w_rdata))

        sddmm = regs["kind"] == OP_KINDS["sddmm"]
        k, n, mm, s_len = (regs[x][:COUNT_BITS] for x in ("k", "n", "m", "s_len"))
        pd, td = p.pipeline_depth, tree_depth(p.n_pe)

        running = Signal()
        par = Signal()
        c = Signal(COUNT_BITS)
        ld_m0, cp_m0, dr_m0 = (Signal(COUNT_BITS, name=x) for x in ("ld_m0", "cp_m0", "dr_m0"))
        cp_v, dr_v = Signal(), Signal()
        x_ptr, dy_ptr, y_ptr = (Signal(COUNT_BITS, name=x) for x in ("x_ptr", "dy_ptr", "y_ptr"))
        row = Signal(COUNT_BITS)
        eidx = Signal(range(p.grad_buf_words + 1))

        ld_v = Signal()
        ld_len, cp_len, dr_len, last_cycle = (Signal(COUNT_BITS + 1) for _ in range(4))
        m.d.comb += [
            ld_v.eq(running & (ld_m0 < mm)),
            ld_len.eq(Mux(ld_v, Mux(sddmm, k + n, k), 0)),
            cp_len.eq(Mux(cp_v, s_len + Mux(sddmm, pd + td, pd), 0)),
            dr_len.eq(Mux(dr_v, n, 0)),
        ]
        longest = Mux(ld_len > cp_len, ld_len, cp_len)
        m.d.comb += last_cycle.eq(Mux(longest > dr_len, longest, dr_len))
        handshake = running & (c == last_cycle)
        final = handshake & ~ld_v & (~cp_v | sddmm)
        m.d.comb += [self.busy.eq(running), self.done.eq(final)]

        with m.If(~running):
            with m.If(self.start):
                m.d.sync += [
                    running.eq(1), par.eq(0), c.eq(0), ld_m0.eq(0), cp_v.eq(0), dr_v.eq(0),
                    x_ptr.eq(regs["x_base"]), dy_ptr.eq(regs["dy_base"]),
                    y_ptr.eq(regs["y_base"]), row.eq(regs["row0"]), eidx.eq(0),
                ]  # fmt: skip
        with m.Elif(handshake):
            with m.If(final):
                m.d.sync += running.eq(0)
            with m.Else():
                m.d.sync += [
                    c.eq(0), par.eq(~par), cp_v.eq(ld_v), cp_m0.eq(ld_m0),
                    dr_v.eq(cp_v & ~sddmm), dr_m0.eq(cp_m0), ld_m0.eq(ld_m0 + p.n_pe),
                    x_ptr.eq(x_ptr + regs["x_stride"]), dy_ptr.eq(dy_ptr + regs["dy_stride"]),
                    row.eq(regs["row0"]), eidx.eq(0),
                ]  # fmt: skip
                with m.If(dr_v):
                    m.d.sync += y_ptr.eq(y_ptr + regs["y_stride"])
        with m.Else():
            m.d.sync += c.eq(c + 1)

        # Compressed stream: entry c is on the read port's data in cycle c.
        in_stream = running & cp_v & (c < s_len)
        prefetch = running & cp_v & (c + 1 < s_len) & ~handshake
        with m.If(running):
            m.d.comb += w_addr.eq(Mux(prefetch, regs["w_base"] + c + 1, regs["w_base"]))
        with m.Elif(host.re & host_w):
            m.d.comb += w_addr.eq(host.addr)
        with m.Else():
            m.d.comb += w_addr.eq(regs["w_base"])
        value, col = w_data["weight_val"], w_data["weight_col"]
        last, token = w_data["weight_last"], w_data["weight_token"]
        e = ctl.entry
        m.d.comb += [
            e.valid.eq(in_stream),
            e.real.eq(in_stream & ~token),
            e.last.eq(last),
            e.value.eq(value),
            e.col.eq(col),
        ]
        with m.If(in_stream & ~handshake):
            with m.If(last):
                m.d.sync += row.eq(row + 1)
            with m.If(e.real):
                m.d.sync += eidx.eq(eidx + 1)

        cp_bank = ~par
        m.d.comb += [
            ctl.m.eq(mm),
            ctl.ld_en.eq(ld_v & (c < ld_len)),
            ctl.ld_src.eq(Mux(c < k, x_ptr + c, dy_ptr + c - k)),
            ctl.ld_dst.eq(par * p.act_buf_words + c),
            ctl.x_base.eq(cp_bank * p.act_buf_words),
            ctl.dy_addr.eq(cp_bank * p.act_buf_words + k + row),
            ctl.out_base.eq(cp_bank * p.out_buf_words),
            ctl.sddmm.eq(sddmm),
            ctl.clear.eq(~running | handshake),
            ctl.cp_m0.eq(cp_m0),
            ctl.cp_first.eq(cp_m0 == 0),
            ctl.cp_last.eq(cp_m0 + p.n_pe >= mm),
            ctl.eidx.eq(eidx),
            ctl.dr_en.eq(dr_v & (c < dr_len)),
            ctl.dr_addr.eq(par * p.out_buf_words + c),
            ctl.dr_dst.eq(y_ptr + c),
            ctl.dr_m0.eq(dr_m0),
        ]
        return m
