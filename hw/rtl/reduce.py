"""The serial reduction unit of the row-parallel dataflow (contract s.2.4, reduce phase).

For every split row ``rho`` (in schedule order) and sample ``m``, the unit adds the row's
partial sums in piece order, one add per cycle (``sat_acc`` per add), and writes
``requant`` of the sum over the first piece's word. The first add of a row and sample
reads two partials (output-SRAM read ports ``a`` and ``b``), each later add one.

Schedule tables (host memories, :meth:`hw.program.Op.memory_images` names): ``red_ptr``
(offsets into ``red_piece`` per split row), ``red_piece`` (piece indices in piece order),
``piece_pe`` (per piece its PE ``pe``, its slot ``slot = g - piece_ptr[pe]`` in the PE
and the PE's piece count ``q = piece_ptr[pe + 1] - piece_ptr[pe]``, one word packed as
:func:`hw.fit.piece_word_fields`). The partial of piece ``g`` for sample ``m`` is in
output bank ``pe`` at ``m * q + slot``: the unit reads no ``piece_ptr`` register, so
nothing of it fans out from the PEs' piece pointers.

Every table read is synchronous, so the three tables (``piece_capacity + 1`` words each:
the profile's ``max_pieces``, by default ``n_pe * out_buf_words``) map onto block RAM.
An address generator walks the schedule from the start of the op, five pipeline stages
(red_ptr, red_piece, piece_pe, its word registered again, the word address; six with
``PD >= 4``, where the offsets' products are registered; with
:func:`hw.timing.control_lag` the piece indices are registered before ``piece_pe`` instead
of its word again, so no table's output addresses another) ahead of the adder, and queues
the walk steps in a :data:`FIFO_DEPTH`-entry FIFO; its first step is readable in cycle 6
of the op (7 with ``PD >= 4``), and by the reduce phase the FIFO is full and the adder takes
one step per cycle, as the contract's ``R = M * sum_r (pieces_r - 1) + reduce_pipeline``
counts (the adder and the write trail the reads by two register stages; four with
``PD >= 4``, :func:`hw.timing.deep_reduce`; eleven with :func:`hw.timing.control_lag`,
whose reads and writes cross to the banks through registers, ``hw.rtl.array``). The
reduce phase starts at least ``5 + PD`` cycles into a row-parallel op (7 on the ASIC-model
profiles, 12 on the FPGA profiles' ``PD = 7``): the walk starts in cycle 2 at the
earliest (a broadcast word is readable two cycles after it is sent), the drain after the
walk's first result, and a handshake cycle follows the load, walk and drain phase.
"""

from __future__ import annotations

from collections.abc import Mapping

from amaranth.hdl import Module, Mux, ResetInserter, Shape, Signal, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from hw.fit import piece_capacity, piece_word_fields
from hw.profiles import HwProfile
from hw.timing import control_lag, deep_reduce

from .arith import acc_shape, requant, sat_add
from .controller import COUNT_BITS
from .host import HostSignature, collision_ports, require_memories
from .pe import check_sparse

__all__ = ["TABLES", "ReductionUnit", "read_fields"]

TABLES: tuple[str, ...] = ("red_ptr", "red_piece", "piece_pe")
"""Host memories of the reduction schedule."""


FIFO_DEPTH = 8
"""Walk steps the reduction unit's address generator may run ahead of its adder. It
issues while fewer than this many steps are queued or in flight (a registered count, so
the adder's pops do not reach the generator in the same cycle); at least its latency from
issue to a readable FIFO entry (5 cycles, 6 with ``PD >= 4``) plus 2, so the adder never
waits once the FIFO has filled."""


def read_fields(profile: HwProfile) -> dict:
    """The fields of the unit's two partial reads: each partial's output bank and word."""
    bank = profile.act_sram_words // profile.n_pe
    return {
        "a_bank": range(profile.n_pe),
        "a_addr": range(bank),
        "b_bank": range(profile.n_pe),
        "b_addr": range(bank),
    }


class _Step(data.StructLayout):
    """One add of the walk: where its two partials are, and where in the row it is."""

    def __init__(self, profile: HwProfile):
        super().__init__({**read_fields(profile), "first": 1, "last": 1})


def piece_word(profile: HwProfile) -> data.StructLayout:
    """A word of the ``piece_pe`` table (:func:`hw.fit.piece_word_fields`)."""
    return data.StructLayout({name: unsigned(bits) for name, bits in piece_word_fields(profile)})


class ReductionUnit(wiring.Component):
    """Walks the reduction schedule while ``en``; ``clear`` restarts it.

    Ports
    -----
    m:
        Samples of the op.
    a_bank, a_addr, a_data, b_bank, b_addr, b_data:
        Output-SRAM reads (data one cycle after the address; two with ``PD >= 4``).
    we, w_bank, w_addr, w_data:
        Output-SRAM write of a finished row and sample (with ``PD >= 4`` presented a cycle
        before the write: the array registers it in front of the output SRAM).
    """

    def __init__(
        self, profile: HwProfile, host_ids: Mapping[str, int], sel_bits: int, data_bits: int
    ):
        self._profile = check_sparse(profile, "ReductionUnit")
        require_memories("ReductionUnit", host_ids, TABLES)
        self._ids = dict(host_ids)
        p = profile
        bank = p.act_sram_words // p.n_pe
        super().__init__(
            {
                "host": In(HostSignature(sel_bits, data_bits)),
                "busy": In(1),
                "en": In(1),
                "clear": In(1),
                "m": In(COUNT_BITS),
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
        reads = {"red_ptr": 2, "red_piece": 2, "piece_pe": 2}
        ports = {}
        shapes = {"red_ptr": range(cap + 1), "red_piece": range(cap + 1), "piece_pe": piece_word(p)}
        for name in TABLES:
            mem = memory.Memory(shape=shapes[name], depth=cap + 1, init=[])
            m.submodules[name] = mem
            wr = mem.write_port()
            m.d.comb += [
                wr.en.eq(host.we & (host.sel == self._ids[name]) & ~self.busy),
                wr.addr.eq(host.addr),
                wr.data.eq(host.wdata),
            ]
            ports[name] = [
                mem.read_port(transparent_for=collision_ports(wr)) for _ in range(reads[name])
            ]

        # The address generator walks the schedule ahead of the adder into a small FIFO
        # (every table read is synchronous, so the tables map onto block RAM). It starts
        # one cycle after ``clear`` falls, and ``issue`` keeps at most FIFO_DEPTH walk
        # steps between the generator and the adder.
        m.submodules.fifo = fifo = ResetInserter(self.clear)(
            SyncFIFO(width=Shape.cast(_Step(p)).width, depth=FIFO_DEPTH)
        )
        go = Signal()
        m.d.sync += go.eq(~self.clear)
        used, used_n = Signal(range(FIFO_DEPTH + 1)), Signal(range(FIFO_DEPTH + 1))
        pop = self.en & fifo.r_rdy
        # issue == go & (used < FIFO_DEPTH), a register set from the next cycle's values,
        # so the walk state's enables come from a register
        issue = Signal()
        m.d.comb += used_n.eq(Mux(self.clear, 0, used + issue - pop))
        m.d.sync += [used.eq(used_n), issue.eq(~self.clear & (used_n < FIFO_DEPTH))]

        # Stage 0: the walk state (row rho of the schedule, piece j of the row, sample ms).
        # No table output enters a decision of the walk in the cycle it arrives: the
        # ends of this row and the next (e1 = red_ptr[rho + 1], e2 = red_ptr[rho + 2]) are
        # registers, and port ``x`` reads red_ptr[rho + 3] ahead for the next row change.
        # Port ``y`` reads red_ptr[1] for the first row (red_ptr[0] is 0, CSR offsets) at
        # a fixed address, so its word is registered as it leaves the table (the host
        # writes the tables before ``start``); both ends are loaded in cycle 0 of the op,
        # before the first issue.
        rho, j, ms = Signal(range(cap + 1)), Signal(range(cap + 1)), Signal(COUNT_BITS)
        ptr0, ptr0j = Signal(range(cap + 1)), Signal(range(cap + 2))
        e1, e2, pieces = Signal(range(cap + 1)), Signal(range(cap + 1)), Signal(range(cap + 1))
        rho3, rho4 = Signal(range(cap + 5)), Signal(range(cap + 5))
        last_piece = Signal()  # j + 1 >= pieces
        last_sample = Signal()  # ms + 1 >= m
        px, py = ports["red_ptr"]
        row_done = issue & last_piece & last_sample
        m.d.comb += [
            px.addr.eq(Mux(self.clear, 2, Mux(row_done, rho4, rho3))),
            py.addr.eq(1),
        ]
        # (its comparison a stage later, from the register: the word holds still from the
        # host's table writes, OP_SETUP_CYCLES before ``start``)
        ptr1, ptr1_short = Signal(range(cap + 1)), Signal()
        m.d.sync += [ptr1.eq(py.data), ptr1_short.eq(ptr1 <= 2)]
        with m.If(self.clear):
            m.d.sync += [
                rho.eq(0),
                rho3.eq(3),
                rho4.eq(4),
                j.eq(1),
                ms.eq(0),
                ptr0.eq(0),
                ptr0j.eq(1),
                last_sample.eq(self.m <= 1),
            ]
        with m.Elif(~go):
            m.d.sync += [
                e1.eq(ptr1),
                e2.eq(px.data),
                pieces.eq(ptr1),
                last_piece.eq(ptr1_short),
            ]
        with m.Elif(issue):
            with m.If(last_piece):
                m.d.sync += j.eq(1)
                with m.If(last_sample):
                    m.d.sync += [
                        ms.eq(0),
                        last_sample.eq(self.m <= 1),
                        rho.eq(rho + 1),
                        rho3.eq(rho4),
                        rho4.eq(rho4 + 1),
                        ptr0.eq(e1),
                        ptr0j.eq(e1 + 1),
                        e1.eq(e2),
                        e2.eq(px.data),
                        pieces.eq(e2 - e1),
                        last_piece.eq(e2 - e1 <= 2),
                    ]
                with m.Else():
                    m.d.sync += [
                        ms.eq(ms + 1),
                        last_sample.eq(ms + 2 >= self.m),
                        ptr0j.eq(ptr0 + 1),
                        last_piece.eq(pieces <= 2),
                    ]
            with m.Else():
                m.d.sync += [
                    j.eq(j + 1),
                    ptr0j.eq(ptr0j + 1),
                    last_piece.eq(j + 2 >= pieces),
                ]
        last = last_piece
        g_first, g_j = ports["red_piece"]
        m.d.comb += [g_first.addr.eq(ptr0), g_j.addr.eq(ptr0j)]

        # Stage 1: the piece indices arrive; look up their PEs.
        v1, v2 = Signal(), Signal()
        ms1, ms2 = Signal(COUNT_BITS), Signal(COUNT_BITS)
        first1, first2, last1, last2 = Signal(), Signal(), Signal(), Signal()
        m.d.sync += [v1.eq(issue & ~self.clear), ms1.eq(ms), first1.eq(j == 1), last1.eq(last)]
        pe_first, pe_j = ports["piece_pe"]
        lag = control_lag(p)
        if lag:
            # (with the control lag the piece indices are registered as they leave
            # red_piece, so no table's output addresses another table in the cycle it
            # arrives; stage 3 below gives up its register for this one)
            idx_first = Signal.like(g_first.data, name="red_idx_first")
            idx_j = Signal.like(g_j.data, name="red_idx_j")
            m.d.sync += [idx_first.eq(g_first.data), idx_j.eq(g_j.data)]
            m.d.comb += [pe_first.addr.eq(idx_first), pe_j.addr.eq(idx_j)]
        else:
            m.d.comb += [pe_first.addr.eq(g_first.data), pe_j.addr.eq(g_j.data)]
        m.d.sync += [
            v2.eq(v1 & ~self.clear),
            ms2.eq(ms1),
            first2.eq(first1),
            last2.eq(last1),
        ]

        # Stage 2: the pieces' words (PE, slot, the PE's piece count) arrive and are
        # registered with the rest of the step.
        v3, ms3 = Signal(), Signal(COUNT_BITS)
        first3, last3 = Signal(), Signal()
        word_a, word_b = Signal(piece_word(p)), Signal(piece_word(p))
        m.d.sync += [
            v3.eq(v2 & ~self.clear),
            ms3.eq(ms2),
            first3.eq(first2),
            last3.eq(last2),
            word_a.eq(pe_j.data),
            word_b.eq(pe_first.data),
        ]

        # Stage 3: each partial's PE, slot and piece count, one more register (the
        # stage that computed them from the piece pointers; kept, so the walk's latency
        # and every cycle count stay as they were).
        v4, ms4 = Signal(), Signal(COUNT_BITS)
        first4, last4 = Signal(), Signal()
        pe_a4, pe_b4 = Signal(range(p.n_pe)), Signal(range(p.n_pe))
        off_a, off_b = Signal.like(word_a.slot), Signal.like(word_b.slot)
        q_a, q_b = Signal.like(word_a.q), Signal.like(word_b.q)
        m.d.sync += [
            v4.eq(v3 & ~self.clear),
            ms4.eq(ms3),
            first4.eq(first3),
            last4.eq(last3),
        ]
        fields = [
            (pe_a4, word_a.pe),
            (pe_b4, word_b.pe),
            (off_a, word_a.slot),
            (off_b, word_b.slot),
            (q_a, word_a.q),
            (q_b, word_b.q),
        ]
        # (with the control lag the words arrive a cycle later, with v4: no register here)
        if lag:
            m.d.comb += [r.eq(x) for r, x in fields]
        else:
            m.d.sync += [r.eq(x) for r, x in fields]

        # With deep_reduce, stage 4 registers the sample's offsets into both banks
        # (ms * q) as they leave the multipliers, and the words are formed in stage 5.
        v5, first5, last5 = v4, first4, last4
        pe_a5, pe_b5, off_a5, off_b5 = pe_a4, pe_b4, off_a, off_b
        base_a, base_b = ms4 * q_a, ms4 * q_b
        if deep_reduce(p):
            stage5 = [v4 & ~self.clear, first4, last4, pe_a4, pe_b4, off_a, off_b, base_a, base_b]
            regs5 = [Signal.like(x, name=f"red_s5_{i}") for i, x in enumerate(stage5)]
            m.d.sync += [r.eq(x) for r, x in zip(regs5, stage5, strict=True)]
            v5, first5, last5, pe_a5, pe_b5, off_a5, off_b5, base_a, base_b = regs5

        # Stage 4 (5 with deep_reduce): bank and word of both partials; the step enters
        # the FIFO.
        step = Signal(_Step(p))
        m.d.comb += [
            step.a_bank.eq(pe_a5),
            step.a_addr.eq(base_a + off_a5),
            step.b_bank.eq(pe_b5),
            step.b_addr.eq(base_b + off_b5),
            step.first.eq(first5),
            step.last.eq(last5),
            fifo.w_en.eq(v5),
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

        # Pipeline (hw.timing.reduce_pipeline cycles past the last read): the partials
        # are registered as they leave the SRAM (with PD >= 4 the array registers every
        # bank's word before its bank multiplexer, so ``a_data`` / ``b_data`` arrive a
        # cycle later), added into ``acc`` the next cycle, and a finished row is written
        # from ``acc`` the cycle after (with PD >= 4 its requantised sum is registered
        # and written a cycle later still), so no memory output reaches an adder and no
        # adder reaches a memory input in one cycle.
        def delayed(sig, name):
            out = Signal.like(sig, name=name)
            m.d.sync += out.eq(sig)
            return out

        v2, first2, done2 = self.en, head.first, head.last
        bank2, addr2 = head.b_bank, head.b_addr
        deep = deep_reduce(p)
        # address to registered partial (with the control lag the array registers the
        # read addresses three times and each bank's word once: four stages more)
        read_stages = (2 if deep else 1) + 4 * control_lag(p)
        for stage in range(1, read_stages + 2):
            v2 = delayed(v2 & ~self.clear, f"red_v{stage}")
            first2, done2 = delayed(first2, f"red_first{stage}"), delayed(done2, f"red_done{stage}")
            bank2, addr2 = delayed(bank2, f"red_bank{stage}"), delayed(addr2, f"red_addr{stage}")
        a2, b2 = delayed(self.a_data, "red_a2"), delayed(self.b_data, "red_b2")
        acc = Signal(acc_shape(p))
        with m.If(v2):
            m.d.sync += acc.eq(sat_add(Mux(first2, b2, acc), a2, p.acc_bits))
        wv = delayed(v2 & done2 & ~self.clear, "red_wv")
        w_bank, w_addr = delayed(bank2, "red_wbank"), delayed(addr2, "red_waddr")
        w_data = requant(p, acc)
        if control_lag(p):
            # (with the control lag the requantised sum and its write are registered by
            # the unit before they cross to the banks: a cycle more)
            wv = delayed(wv & ~self.clear, "red_wv2")
            w_bank, w_addr = delayed(w_bank, "red_wbank2"), delayed(w_addr, "red_waddr2")
            w_data = delayed(w_data, "red_wdata")
        # (with deep_reduce the array registers these with the drain's writes, before the
        # output SRAMs' write ports, so the sum is written a cycle later: hw.rtl.array)
        m.d.comb += [
            self.we.eq(wv),
            self.w_bank.eq(w_bank),
            self.w_addr.eq(w_addr),
            self.w_data.eq(w_data),
        ]
        return m
