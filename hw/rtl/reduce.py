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

Every table read is synchronous, so the three tables (``piece_capacity + 1`` words each:
the profile's ``max_pieces``, by default ``n_pe * out_buf_words``) map onto block RAM.
An address generator walks the schedule from the start of the op, three pipeline stages
(red_ptr, red_piece, piece_pe) ahead of the adder, and queues the walk steps in a
:data:`FIFO_DEPTH`-entry FIFO; by the reduce phase the FIFO is full and the adder takes
one step per cycle, as the contract's ``R = M * sum_r (pieces_r - 1)`` counts. The reduce
phase starts at least ``5 + PD`` cycles into a row-parallel op (7 on every built-in
profile): the walk starts in cycle 2 at the earliest (a broadcast word is readable two
cycles after it is sent), the drain after the walk's first result, and a handshake cycle
follows the load, walk and drain phase.
"""

from __future__ import annotations

from collections.abc import Mapping

from amaranth.hdl import Module, Mux, ResetInserter, Shape, Signal
from amaranth.lib import data, memory, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from hw.fit import piece_capacity
from hw.profiles import HwProfile

from .arith import acc_shape, requant, sat_add
from .controller import COUNT_BITS
from .host import HostSignature, require_memories
from .pe import check_sparse

__all__ = ["TABLES", "ReductionUnit"]

TABLES: tuple[str, ...] = ("red_ptr", "red_piece", "piece_pe")
"""Host memories of the reduction schedule."""


FIFO_DEPTH = 4
"""Walk steps the reduction unit's address generator may run ahead of its adder."""


class _Step(data.StructLayout):
    """One add of the walk: where its two partials are, and where in the row it is."""

    def __init__(self, profile: HwProfile):
        bank = profile.act_sram_words // profile.n_pe
        super().__init__(
            {
                "a_bank": range(profile.n_pe),
                "a_addr": range(bank),
                "b_bank": range(profile.n_pe),
                "b_addr": range(bank),
                "first": 1,
                "last": 1,
            }
        )


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

    def __init__(
        self, profile: HwProfile, host_ids: Mapping[str, int], sel_bits: int, data_bits: int
    ):
        self._profile = check_sparse(profile, "ReductionUnit")
        require_memories("ReductionUnit", host_ids, TABLES)
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
        reads = {"red_ptr": 1, "red_piece": 2, "piece_pe": 2}
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
            ports[name] = [mem.read_port() for _ in range(reads[name])]

        # The address generator walks the schedule ahead of the adder into a small FIFO
        # (every table read is synchronous, so the tables map onto block RAM). It starts
        # one cycle after ``clear`` falls, and ``issue`` keeps at most FIFO_DEPTH walk
        # steps between the generator and the adder.
        m.submodules.fifo = fifo = ResetInserter(self.clear)(
            SyncFIFO(width=Shape.cast(_Step(p)).width, depth=FIFO_DEPTH)
        )
        go = Signal()
        m.d.sync += go.eq(~self.clear)
        used = Signal(range(FIFO_DEPTH + 1))
        pop = self.en & fifo.r_rdy
        issue = go & (used < FIFO_DEPTH + pop)
        with m.If(self.clear):
            m.d.sync += used.eq(0)
        with m.Else():
            m.d.sync += used.eq(used + issue - pop)

        # Stage 0: the walk state (row rho of the schedule, piece j of the row, sample ms).
        # red_ptr[rho + 1] arrives from an address presented one cycle earlier; red_ptr[0]
        # is 0 (the offsets of a CSR).
        rho, j, ms = Signal(range(cap + 1)), Signal(range(cap + 1)), Signal(COUNT_BITS)
        ptr0 = Signal(range(cap + 1))
        (ptr1,) = ports["red_ptr"]
        last = j + 1 >= ptr1.data - ptr0
        row_done = issue & last & (ms + 1 >= self.m)
        m.d.comb += ptr1.addr.eq(Mux(self.clear, 0, rho + row_done) + 1)
        with m.If(self.clear):
            m.d.sync += [rho.eq(0), j.eq(1), ms.eq(0), ptr0.eq(0)]
        with m.Elif(issue):
            with m.If(last):
                m.d.sync += j.eq(1)
                with m.If(row_done):
                    m.d.sync += [ms.eq(0), rho.eq(rho + 1), ptr0.eq(ptr1.data)]
                with m.Else():
                    m.d.sync += ms.eq(ms + 1)
            with m.Else():
                m.d.sync += j.eq(j + 1)
        g_first, g_j = ports["red_piece"]
        m.d.comb += [g_first.addr.eq(ptr0), g_j.addr.eq(ptr0 + j)]

        # Stage 1: the piece indices arrive; look up their PEs.
        v1, v2 = Signal(), Signal()
        ms1, ms2 = Signal(COUNT_BITS), Signal(COUNT_BITS)
        first1, first2, last1, last2 = Signal(), Signal(), Signal(), Signal()
        m.d.sync += [v1.eq(issue & ~self.clear), ms1.eq(ms), first1.eq(j == 1), last1.eq(last)]
        pe_first, pe_j = ports["piece_pe"]
        m.d.comb += [pe_first.addr.eq(g_first.data), pe_j.addr.eq(g_j.data)]
        g0, gj = Signal(range(cap + 1)), Signal(range(cap + 1))
        m.d.sync += [
            v2.eq(v1 & ~self.clear),
            ms2.eq(ms1),
            first2.eq(first1),
            last2.eq(last1),
            g0.eq(g_first.data),
            gj.eq(g_j.data),
        ]

        # Stage 2: bank and word of both partials; the step enters the FIFO.
        def locate(pe, g):
            start = Signal(range(cap + 1))
            q = Signal(range(cap + 1))
            with m.Switch(pe):
                for i in range(p.n_pe):
                    with m.Case(i):
                        m.d.comb += [
                            start.eq(self.piece_ptr[i]),
                            q.eq(self.piece_ptr[i + 1] - self.piece_ptr[i]),
                        ]
            return ms2 * q + g - start

        step = Signal(_Step(p))
        m.d.comb += [
            step.a_bank.eq(pe_j.data),
            step.a_addr.eq(locate(pe_j.data, gj)),
            step.b_bank.eq(pe_first.data),
            step.b_addr.eq(locate(pe_first.data, g0)),
            step.first.eq(first2),
            step.last.eq(last2),
            fifo.w_en.eq(v2),
            fifo.w_data.eq(step),
            fifo.r_en.eq(self.en),
        ]

        # The adder: the FIFO head addresses the partials while ``en``; one cycle later
        # they arrive and the add happens.
        head = _Step(p)(fifo.r_data)
        m.d.comb += [
            self.a_bank.eq(head.a_bank),
            self.a_addr.eq(head.a_addr),
            self.b_bank.eq(head.b_bank),
            self.b_addr.eq(head.b_addr),
        ]
        valid, first, done = Signal(), Signal(), Signal()
        m.d.sync += [valid.eq(self.en & ~self.clear), first.eq(head.first), done.eq(head.last)]
        m.d.sync += [self.w_bank.eq(head.b_bank), self.w_addr.eq(head.b_addr)]
        acc, total = Signal(acc_shape(p)), Signal(acc_shape(p))
        m.d.comb += total.eq(sat_add(Mux(first, self.b_data, acc), self.a_data, p.acc_bits))
        with m.If(valid):
            m.d.sync += acc.eq(total)
        m.d.comb += [
            self.we.eq(valid & done),
            self.w_data.eq(requant(p, total)),
        ]
        return m
