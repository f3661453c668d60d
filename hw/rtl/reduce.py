"""The serial reduction unit of the row-parallel dataflow (contract s.2.4, reduce phase).

For every split row ``rho`` (in schedule order) and sample ``m``, the unit adds the row's
partial sums in piece order, one add per cycle (``sat_acc`` per add), and writes
``requant`` of the sum over the first piece's word. The first add of a row and sample
reads two partials (output-SRAM read ports ``a`` and ``b``), each later add one.

Schedule tables (host memories, :meth:`hw.program.Op.memory_images` names): ``red_ptr``
(offsets into ``red_piece`` per split row), ``red_piece`` (piece indices in piece order),
``piece_pe`` (the PE of every piece). The partial of piece ``g`` for sample ``m`` is in
output bank ``piece_pe[g]`` at ``m * q + slot`` with ``slot = g - piece_ptr[pe]`` and
``q = piece_ptr[pe + 1] - piece_ptr[pe]``.
"""

from __future__ import annotations

from collections.abc import Mapping

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from hw.profiles import HwProfile

from .arith import acc_shape, requant, sat_add
from .controller import COUNT_BITS
from .host import HostSignature
from .pe import check_sparse

__all__ = ["TABLES", "ReductionUnit", "piece_capacity"]

TABLES: tuple[str, ...] = ("red_ptr", "red_piece", "piece_pe")
"""Host memories of the reduction schedule."""


def piece_capacity(profile: HwProfile) -> int:
    """Pieces a row-parallel op may have: ``n_pe * out_buf_words`` (``q_p <= out_buf_words``)."""
    return profile.n_pe * profile.out_buf_words


class ReductionUnit(wiring.Component):
    """Walks the reduction schedule while ``en``; ``clear`` restarts it.

    Ports
    -----
    m, piece_ptr:
        Samples of the op and the PE-major piece offsets (``n_pe + 1`` entries).
    a_bank, a_addr, a_data, b_bank, b_addr, b_data:
        Output-SRAM reads (data one cycle after the address).
    we, w_bank, w_addr, w_data:
        Output-SRAM write of a finished row and sample.
    """

    def __init__(self, profile: HwProfile, host_ids: Mapping[str, int], sel_bits: int,
                 data_bits: int):  # fmt: skip
        self._profile = check_sparse(profile, "ReductionUnit")
        missing = [t for t in TABLES if t not in host_ids]
        if missing:
            raise ValueError(f"ReductionUnit: host_ids lacks memory {missing[0]!r}")
        self._ids = dict(host_ids)
        p = profile
        bank = p.act_sram_words // p.n_pe
        cap = piece_capacity(p)
        super().__init__(
            {
                "host": In(HostSignature(sel_bits, data_bits)),
                "busy": In(1),
                "en": In(1),
                "clear": In(1),
                "m": In(COUNT_BITS),
                "piece_ptr": In(range(cap + 1)).array(p.n_pe + 1),
                "a_bank": Out(range(p.n_pe)),
                "a_addr": Out(range(bank)),
                "a_data": In(acc_shape(p)),
                "b_bank": Out(range(p.n_pe)),
                "b_addr": Out(range(bank)),
                "b_data": In(acc_shape(p)),
                "we": Out(1),
                "w_bank": Out(range(p.n_pe)),
                "w_addr": Out(range(bank)),
                "w_data": Out(acc_shape(p)),
            }
        )

    @property
    def profile(self) -> HwProfile:
        return self._profile

    def elaborate(self, platform):
        p = self._profile
        m = Module()
        cap = piece_capacity(p)
        host = self.host
        ports = {}
        for name in TABLES:
            mem = memory.Memory(shape=range(cap + 1), depth=cap + 1, init=[])
            m.submodules[name] = mem
            wr = mem.write_port()
            m.d.comb += [
                wr.en.eq(host.we & (host.sel == self._ids[name]) & ~self.busy),
                wr.addr.eq(host.addr),
                wr.data.eq(host.wdata),
            ]
            ports[name] = (mem.read_port(domain="comb"), mem.read_port(domain="comb"))

        rho, j, ms = Signal(range(cap + 1)), Signal(range(cap + 1)), Signal(COUNT_BITS)
        ptr0, ptr1 = ports["red_ptr"]
        m.d.comb += [ptr0.addr.eq(rho), ptr1.addr.eq(rho + 1)]
        length = ptr1.data - ptr0.data

        def locate(g_port, pe_port, index):
            m.d.comb += [g_port.addr.eq(index), pe_port.addr.eq(g_port.data)]
            pe = pe_port.data
            start = Signal(range(cap + 1))
            q = Signal(range(cap + 1))
            with m.Switch(pe):
                for i in range(p.n_pe):
                    with m.Case(i):
                        m.d.comb += [
                            start.eq(self.piece_ptr[i]),
                            q.eq(self.piece_ptr[i + 1] - self.piece_ptr[i]),
                        ]
            return pe, ms * q + g_port.data - start

        pe0, addr0 = locate(ports["red_piece"][0], ports["piece_pe"][0], ptr0.data)
        pej, addrj = locate(ports["red_piece"][1], ports["piece_pe"][1], ptr0.data + j)
        m.d.comb += [
            self.a_bank.eq(pej),
            self.a_addr.eq(addrj),
            self.b_bank.eq(pe0),
            self.b_addr.eq(addr0),
        ]
        last = j + 1 >= length
        with m.If(self.clear):
            m.d.sync += [rho.eq(0), j.eq(1), ms.eq(0)]
        with m.Elif(self.en):
            with m.If(last):
                m.d.sync += j.eq(1)
                with m.If(ms + 1 >= self.m):
                    m.d.sync += [ms.eq(0), rho.eq(rho + 1)]
                with m.Else():
                    m.d.sync += ms.eq(ms + 1)
            with m.Else():
                m.d.sync += j.eq(j + 1)

        # One cycle later: the partials arrive and the add happens.
        valid, first, done = Signal(), Signal(), Signal()
        m.d.sync += [valid.eq(self.en & ~self.clear), first.eq(j == 1), done.eq(last)]
        m.d.sync += [self.w_bank.eq(pe0), self.w_addr.eq(addr0)]
        acc, total = Signal(acc_shape(p)), Signal(acc_shape(p))
        m.d.comb += total.eq(sat_add(Mux(first, self.b_data, acc), self.a_data, p.acc_bits))
        with m.If(valid):
            m.d.sync += acc.eq(total)
        m.d.comb += [
            self.we.eq(valid & done),
            self.w_data.eq(requant(p, total)),
        ]
        return m
