"""The sparse PE array: ``P`` PEs, activation / output SRAM banks and the reduction paths.

Activation SRAM and output SRAM have ``P`` banks of ``act_sram_words / P`` words each
(host addresses flat and bank-major, ``address = bank * (act_sram_words / P) + offset``;
output words are accumulators so split-row partials fit). Sample-parallel: bank ``p``
feeds PE ``p`` in the load stage (one word per cycle, written into the PE's activation
buffer the cycle after the read) and receives PE ``p``'s results in the drain stage.
Row-parallel: the load stage reads ``bcast_words`` consecutive words of the broadcast
order (word ``i`` in bank ``i mod P`` at ``i div P``) per cycle and writes them into
every PE's buffer; the drain writes PE ``p``'s results to bank ``p``; the
:class:`~hw.rtl.reduce.ReductionUnit` then combines split rows. The register files
``bank_ptr`` and ``piece_ptr`` (``P + 1`` entries) give each PE its entries and pieces
per sample (each entry reaches the two PEs it bounds; the PE registers its piece count
and drain offset from them, and the reduction unit reads its own table instead);
``piece_split`` (indexed by global piece) is stored in the owning PE's table, so
``piece_ptr`` must be written before ``piece_split``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, memory, wiring
from amaranth.lib.data import View
from amaranth.lib.wiring import In

from hw.fit import piece_capacity
from hw.profiles import HwProfile
from hw.timing import RP_LOAD_LATENCY, control_lag, deep_reduce, drain_lag, rp_load_latency

from .arith import acc_shape, op_shape, requant, sat_add
from .banks import BANK_GROUP, KEPT, bank_groups, group_words, kept_copy, pick, two_level
from .controller import ArrayControl
from .gradient import GradientUnit
from .host import HostSignature, bank_split, collision_ports, forward_host, require_memories
from .pe import SparsePE, check_sparse, split_bits
from .reduce import ReductionUnit, read_fields

__all__ = ["PEArray"]

_GROUP_CONTROL = (
    "rp",
    "ld_src",
    "ld_lo",
    "ld_hi",
    "entry",
    "rp_walk",
    "rp_i",
    "cp_m0",
    "m",
    "qmax",
    "x_base",
    "dy_addr",
    "out_base",
    "sddmm",
    "clear",
    "dr_addr",
    "dr_m0",
)
"""The fields of :class:`~hw.rtl.controller.ArrayControl` a group's PEs and banks read."""

_LOAD_DRAIN = ("ld_en", "ld_dst", "ld_dy", "ld_dy_dst", "ld_lo", "ld_words", "dr_en", "dr_dst")
"""The load and drain fields of the control that the array registers once more (``d``)."""

_SHARED_CONTROL = (
    "rp",
    "sddmm",
    "m",
    "entry",
    "eidx",
    "cp_first",
    "cp_last",
    "red_en",
    "red_clear",
    *_LOAD_DRAIN,
)
"""The fields of :class:`~hw.rtl.controller.ArrayControl` read outside the groups (the
gradient and reduction units, the load and drain registers, the lanes' selects)."""

_HOST = ("act_sram", "out_sram", "grad", "grad_out", "bank_ptr", "piece_ptr", "piece_split")


class PEArray(wiring.Component):
    """PEs + SRAM banks + :class:`GradientUnit` + :class:`ReductionUnit` of a sparse profile.

    Ports
    -----
    ctl:
        Per-cycle control from :class:`~hw.rtl.controller.Controller`.
    busy:
        An op is running (the host port is served only when it is not).
    host:
        Host access to the memories named in ``host_ids``.
    """

    def __init__(
        self, profile: HwProfile, host_ids: Mapping[str, int], sel_bits: int, data_bits: int
    ):
        self._profile = check_sparse(profile, "PEArray")
        if profile.act_sram_words < profile.n_pe:
            raise ValueError(
                f"PEArray: act_sram_words={profile.act_sram_words} must be >= n_pe="
                f"{profile.n_pe} (one bank per PE)"
            )
        require_memories("PEArray", host_ids, _HOST)
        self._ids = dict(host_ids)
        self._host_shape = (sel_bits, data_bits)
        members = {
            "ctl": In(ArrayControl(profile)),
            "busy": In(1),
            "host": In(HostSignature(sel_bits, data_bits)),
        }
        if control_lag(profile):
            # ``busy`` per group of PEs, the same value (the controller's copies by each
            # group's weight banks): each PE's copy of ``busy`` is set from its group's
            members["grp_busy"] = In(len(bank_groups(profile.n_pe)))
            # and ``ctl.clear`` per group, the same value (copies of the controller's
            # register): each PE's copy of ``clear`` is set from its group's
            members["grp_clear"] = In(len(bank_groups(profile.n_pe)))
        super().__init__(members)

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
        host, ids = self.host, self._ids
        n_pe, bw, ob = p.n_pe, p.bcast_words, p.operand_bits
        depth = self.bank_words
        hbank, hoff = bank_split(m, host.addr, depth, n_pe, "host")
        # With a control lag (hw.timing.control_lag) the array acts a cycle behind the
        # controller: every group of PEs takes the control its PEs and banks read, and
        # ``busy``, through registers of its own (kept apart in synthesis), the rest of the
        # array through one more copy; the top delays ``done`` to match.
        lag = control_lag(p)
        if lag:
            # (kept too: Yosys would merge them into a group's copy, or merge the
            # controller's own registers of the same values into them; only the fields
            # read outside the groups, and each PE's row-parallel entry by the PE)
            ctl = SimpleNamespace(
                **{x: kept_copy(m, getattr(self.ctl, x), f"ctl_q_{x}") for x in _SHARED_CONTROL}
            )
            ctl.rp_entries = []
            for i in range(n_pe):
                entry = Signal.like(self.ctl.rp_entries[i], name=f"pe{i}_rp_entry")
                m.d.sync += entry.eq(self.ctl.rp_entries[i])
                ctl.rp_entries.append(entry)
            busy_q = kept_copy(m, self.busy, "busy_q")
        else:
            ctl, busy_q = self.ctl, self.busy
        groups = []
        for g in range(len(bank_groups(n_pe))):
            gc = {"busy": kept_copy(m, self.busy, f"g{g}_busy") if lag else busy_q}
            for name in _GROUP_CONTROL:
                field = getattr(self.ctl, name)
                gc[name] = kept_copy(m, field, f"g{g}_{name}") if lag else getattr(ctl, name)
            groups.append(SimpleNamespace(**gc))
        idle, busy = ~busy_q, busy_q
        hw_en = idle & host.we
        # the host's writes into a group's registers and banks, from the group's busy
        group_hw_en = [hw_en if not lag else ~gc.busy & host.we for gc in groups]

        cap = piece_capacity(p)
        bank_ptr = [
            Signal(range(n_pe * p.weight_bank_words + 1), name=f"bank_ptr{i}")
            for i in range(n_pe + 1)
        ]
        piece_ptr = [Signal(range(cap + 1), name=f"piece_ptr{i}") for i in range(n_pe + 1)]
        for name, regs in (("bank_ptr", bank_ptr), ("piece_ptr", piece_ptr)):
            for i, reg in enumerate(regs):
                g_en = group_hw_en[min(i, n_pe - 1) // BANK_GROUP]
                with m.If(g_en & (host.sel == ids[name]) & (host.addr == i)):
                    m.d.sync += reg.eq(host.wdata)

        d = {name: Signal.like(getattr(ctl, name), name=f"{name}_d") for name in _LOAD_DRAIN}
        m.d.sync += [sig.eq(getattr(ctl, name)) for name, sig in d.items()]
        # Whether PE i writes the drained word, registered with the other drain controls
        # (so no comparison sits in front of an output SRAM's write enable): the
        # row-parallel drain's slot is one of the PE's results (a slot is counted at least
        # two cycles before it is read, so the count one cycle earlier decides the same),
        # the sample-parallel drain's tile has PE i's sample (M holds still in an op).
        dr_on = [Signal(name=f"dr_on{i}") for i in range(n_pe)]
        # With PD >= 4 the drained words are registered before the output SRAMs' write
        # ports, with the reduction's writes (hw.timing.drain_lag): the shared address here.
        late_drain = drain_lag(p) > 0
        # With PD >= 4 the activation SRAM's words are registered as they leave it, and the
        # buffer load a cycle later still: the PEs read their buffers a cycle later too
        # (hw/rtl/pe.py), so every read still follows its word's write.
        late_load = p.pipeline_depth >= 4
        # With it each broadcast lane's word is registered after its bank multiplexer,
        # before it fans out to every PE's buffer, and the row-parallel buffer writes come
        # a cycle later than the sample-parallel ones (hw.timing.rp_load_latency).
        late_bcast = rp_load_latency(p) > RP_LOAD_LATENCY
        assert late_bcast == late_load

        def lane_enables(ld):
            """The buffer lanes a load writes (none for SDDMM's dY), from its controls."""
            sp_lane = (1 << (ld["ld_dst"] % bw)) if bw > 1 else 1
            rp_lanes = Cat(*(b < ld["ld_words"] for b in range(bw)))
            return Mux(ld["ld_en"] & ~ld["ld_dy"], Mux(ctl.rp, rp_lanes, sp_lane), 0)

        # The PEs' buffer write lanes and row: a sample-parallel word is written in the
        # cycle after ``d``'s (two with PD >= 4), a broadcast word a cycle later still with
        # PD >= 4 (one register each, the op kind holding still in an op).
        ld_lanes = Signal(bw)
        ld_row = Signal.like(d["ld_dst"], name="ld_row")
        # the bank each broadcast lane b reads, (ld_lo + b) mod P
        bus_bank = [Signal(range(n_pe), name=f"bus_bank{b}") for b in range(bw)]
        if late_load:
            # (decoded a stage early and registered)
            lanes, lanes_next, dst_next = Signal(bw), lane_enables(d), d["ld_dst"]
            m.d.sync += lanes.eq(lanes_next)
            if not lag:
                m.d.sync += [x.eq((d["ld_lo"] + b) % n_pe) for b, x in enumerate(bus_bank)]
            first = dict(d)
            for name in ("ld_en", "ld_dst", "ld_dy", "ld_dy_dst", "ld_lo", "ld_words"):
                later = Signal.like(d[name], name=f"{name}_d2")
                m.d.sync += later.eq(d[name])
                d[name] = later
            # (with the control lag each bank's word is registered by its bank before the
            # lanes' trees, hw.timing.rp_load_latency: the lanes' second-level selects and
            # the broadcast buffer writes a cycle later)
            rp_lanes, rp_dst = lanes, d["ld_dst"]
            if lag:
                m.d.sync += [x.eq((d["ld_lo"] + b) % n_pe) for b, x in enumerate(bus_bank)]
                for stage in (3, 4):  # (the bank's register and the lanes' second register)
                    lanes_q = Signal(bw, name=f"lanes_d{stage}")
                    dst_q = Signal.like(rp_dst, name=f"dst_d{stage}")
                    m.d.sync += [lanes_q.eq(rp_lanes), dst_q.eq(rp_dst)]
                    rp_lanes, rp_dst = lanes_q, dst_q
            lanes_in = Mux(ctl.rp, rp_lanes, lanes_next)
            row_in = Mux(ctl.rp, rp_dst, dst_next) // bw
            m.d.sync += [ld_lanes.eq(lanes_in), ld_row.eq(row_in)]
        else:
            m.d.comb += [ld_lanes.eq(lane_enables(d)), ld_row.eq(d["ld_dst"] // bw)]
            m.d.comb += [x.eq((d["ld_lo"] + b) % n_pe) for b, x in enumerate(bus_bank)]
        # The load and drain controls each group's PEs and banks read: the ones above, or
        # with the control lag (which implies PD >= 4) a kept copy per group of each
        # register (same inputs, same cycle), so none fans out across the die from one place.
        loads, drains = ("ld_en", "ld_dy", "ld_dy_dst"), ("dr_en", "dr_dst")
        per_group = []
        for g in range(len(groups)):
            if lag:
                gl = SimpleNamespace(
                    ld_lanes=kept_copy(m, lanes_in, f"g{g}_ld_lanes"),
                    ld_row=kept_copy(m, row_in, f"g{g}_ld_row"),
                    **{x: kept_copy(m, first[x], f"g{g}_{x}_d2") for x in loads},
                    **{x: kept_copy(m, getattr(ctl, x), f"g{g}_{x}_d") for x in drains},
                )
            else:
                shared = {x: d[x] for x in loads + drains}
                gl = SimpleNamespace(ld_lanes=ld_lanes, ld_row=ld_row, **shared)
            per_group.append(gl)

        m.submodules.grad = gu = GradientUnit(p, ids, *self._host_shape)
        m.submodules.reduce = ru = ReductionUnit(p, ids, *self._host_shape)
        forward_host(m, host, gu.host, ru.host)
        e = ctl.entry
        m.d.comb += [
            gu.busy.eq(busy),
            gu.valid.eq(e.valid & e.real & ctl.sddmm),
            gu.eidx.eq(ctl.eidx),
            gu.first.eq(ctl.cp_first),
            gu.last.eq(ctl.cp_last),
            ru.busy.eq(busy),
            ru.en.eq(ctl.red_en),
            ru.clear.eq(ctl.red_clear),
            ru.m.eq(ctl.m),
        ]

        rsel, rbank = Signal.like(host.sel), Signal.like(hbank)
        m.d.sync += [rsel.eq(host.sel), rbank.eq(hbank)]
        # With the control lag a host read takes two cycles (hw.rtl.top.host_read_latency):
        # the banks' words come from their registers by the banks, through the trees'
        # first level with selects a cycle later, so each SRAM's output feeds one
        # register; the host's bank and memory select a cycle later still pick them.
        rsel2, rbank2, hbank2 = rsel, rbank, hbank
        if lag:
            rsel2, rbank2 = Signal.like(rsel, name="rsel2"), Signal.like(rbank, name="rbank2")
            m.d.sync += [rsel2.eq(rsel), rbank2.eq(rbank)]
            hbank2 = rbank
        # The reduction's partials: with PD >= 4 every output-SRAM bank's word is
        # registered as it leaves the bank, before the bank multiplexer, and the bank
        # selects are delayed a cycle more (hw.timing.deep_reduce).
        late_partials = deep_reduce(p)  # with it, the partials come a cycle later
        a_bank, b_bank = ru.a_bank, ru.b_bank
        # (with the control lag the partials' read addresses reach each bank through three
        # registers, and each bank's word is registered by the bank before the partials'
        # trees: four cycles more, hw.timing.reduce_pipeline)
        for _ in range((2 if late_partials else 1) + 4 * lag):
            a_q, b_q = Signal.like(ru.a_bank), Signal.like(ru.b_bank)
            m.d.sync += [a_q.eq(a_bank), b_q.eq(b_bank)]
            a_bank, b_bank = a_q, b_q

        # Row-parallel load: bank q holds broadcast word (q - lo) mod P of this cycle
        # (the lanes' words are selected after the banks are built, below).
        act_data = [Signal(op_shape(p), name=f"act_data{i}") for i in range(n_pe)]
        bus = [Signal(op_shape(p), name=f"bus{b}" + "_q" * late_bcast) for b in range(bw)]
        for g, gl in enumerate(per_group):
            # (with the control lag each group's lanes are registers of its own, kept)
            gl.bus = bus
            if lag:
                gl.bus = [Signal.like(x, name=f"g{g}_{x.name}", attrs={KEPT: 1}) for x in bus]

        # With the control lag the reduction's partial reads and sum writes cross the die
        # register to register: the read addresses leave the unit through a register
        # and a kept copy per group of banks, the writes through a kept copy per group,
        # and each bank takes both through a register of its own (below); a cycle more
        # each (hw.timing.reduce_pipeline).
        red_rd = red_wr = None
        if lag:
            head = Cat(ru.a_bank, ru.a_addr, ru.b_bank, ru.b_addr)
            head_q = Signal.like(head, name="red_head")
            m.d.sync += head_q.eq(head)
            red_rd = [
                View(data.StructLayout(read_fields(p)), kept_copy(m, head_q, f"g{g}_red_head"))
                for g in range(len(groups))
            ]
            write = Cat(ru.we, ru.w_bank, ru.w_addr, ru.w_data)
            red_wr = [
                View(_WriteHead(p), kept_copy(m, write, f"g{g}_red_write"))
                for g in range(len(groups))
            ]

        bank_reads = []
        pe_busy = []  # ``busy`` as each PE and its banks see it
        pes: list[SparsePE] = []
        for i in range(n_pe):
            gc = groups[i // BANK_GROUP]  # the control of PE i's group
            # (with the control lag the op kind, ``busy`` and ``clear``, whose one bit
            # steers every word of a PE's buffer and bank ports or accumulators, come from
            # a kept copy per PE)
            pe_rp, pe_busy_i, pe_sddmm, pe_clear = gc.rp, gc.busy, gc.sddmm, gc.clear
            pe_rp_own = pe_rp
            if lag:
                # (the op kind and SDDMM flag hold still from OP_SETUP_CYCLES edges before
                # ``start``, so the PE's copies take them from the group's, a cycle later)
                pe_rp = kept_copy(m, gc.rp, f"pe{i}_rp")
                # (and one for the PE's own logic, apart from the one its banks read)
                pe_rp_own = kept_copy(m, gc.rp, f"pe{i}_rp_own")
                pe_busy_i = kept_copy(m, self.grp_busy[i // BANK_GROUP], f"pe{i}_busy")
                pe_sddmm = kept_copy(m, gc.sddmm, f"pe{i}_sddmm")
                pe_clear = kept_copy(m, self.grp_clear[i // BANK_GROUP], f"pe{i}_clear")
            pe_busy.append(pe_busy_i)
            gl = per_group[i // BANK_GROUP]
            g_en = group_hw_en[i // BANK_GROUP]
            pe = SparsePE(p)
            m.submodules[f"pe{i}"] = pe
            pes.append(pe)
            act = memory.Memory(shape=op_shape(p), depth=depth, init=[])
            out = memory.Memory(shape=acc_shape(p), depth=depth, init=[])
            m.submodules[f"act{i}"], m.submodules[f"out{i}"] = act, out
            aw = act.write_port()
            ar = act.read_port(transparent_for=collision_ports(aw))
            # One read port: the reduction's two partials of a row are in two banks (the
            # compiler puts a row's pieces on distinct PEs); the later adds read one.
            ow = out.write_port()
            orp = out.read_port(transparent_for=collision_ports(ow))
            mine = hbank == i
            wrapped = Const(i, range(n_pe + 1)) < gc.ld_lo
            rp_off = gc.ld_hi + wrapped
            if lag:
                # (the bank's own register of its broadcast row, set from the controller's
                # load window with the group's copies of it: no compare or add in front
                # of the bank's read address)
                raw = self.ctl
                rp_off = kept_copy(
                    m, raw.ld_hi + (Const(i, range(n_pe + 1)) < raw.ld_lo), f"act{i}_rp_off"
                )
            # the partial this bank reads for the reduction (with the control lag from its
            # group's copy of the unit's registered reads, through a register by the bank;
            # the bank compare makes each bank's register its own, so synthesis does not
            # merge them)
            rh = red_rd[i // BANK_GROUP] if lag else ru
            red_addr = Mux(rh.a_bank == i, rh.a_addr, rh.b_addr)
            if lag:
                red_addr_q = Signal.like(ru.a_addr, name=f"out{i}_raddr")
                m.d.sync += red_addr_q.eq(red_addr)
                red_addr = red_addr_q
            m.d.comb += [
                aw.en.eq(g_en & (host.sel == ids["act_sram"]) & mine),
                aw.addr.eq(hoff),
                aw.data.eq(host.wdata),
                ar.addr.eq(Mux(pe_busy_i, Mux(pe_rp, rp_off, gc.ld_src), hoff)),
                *([] if late_load else [act_data[i].eq(ar.data)]),
                orp.addr.eq(Mux(pe_busy_i, red_addr, hoff)),
            ]
            if late_load:
                m.d.sync += act_data[i].eq(ar.data)
            # Activation buffer load (one cycle after the SRAM read; two with PD >= 4,
            # three for a broadcast word).
            dy_word = gl.ld_en & gl.ld_dy
            if lag:
                # (the PE's own register of it, set with the group's two: it steers every
                # bit of the PE's output-buffer write port)
                dy_word = kept_copy(m, first["ld_en"] & first["ld_dy"], f"pe{i}_dy_we")
            m.d.comb += [
                pe.ld_row.eq(gl.ld_row),
                pe.ld_en.eq(gl.ld_lanes),
                pe.ld_data.eq(Mux(pe_rp, Cat(*gl.bus), act_data[i].as_unsigned().replicate(bw))),
                # SDDMM's dY goes to the PE's output buffer (lane 0 of ``ld_data``).
                pe.dy_we.eq(dy_word),
                pe.dy_waddr.eq(gl.ld_dy_dst),
            ]
            # Compute: the broadcast stream, or this PE's own bank.
            own = ctl.rp_entries[i]
            # (the bank's entry count, a register: the host writes bank_ptr before start)
            bank_n = Signal(range(n_pe * p.weight_bank_words + 1), name=f"bank_n{i}")
            m.d.sync += bank_n.eq(bank_ptr[i + 1] - bank_ptr[i])
            rp_valid = gc.rp_walk & (gc.rp_i < bank_n)

            # whether the tile's sample m0 + i exists, m0 + i < M: with the control lag as
            # m0 < M - i, against a register of M - i (0 when M <= i; M holds still from
            # OP_SETUP_CYCLES edges before ``start``), one comparison and no adder
            def has_sample(m0, gc=gc, i=i):
                return m0 + i < gc.m

            if lag:
                m_left = Signal.like(gc.m, name=f"pe{i}_m_left")
                m.d.sync += m_left.eq(Mux(gc.m > i, gc.m - i, 0))

                def has_sample(m0, m_left=m_left):
                    return m0 < m_left

            with m.If(pe_rp):
                m.d.comb += [
                    pe.entry.valid.eq(rp_valid),
                    pe.entry.real.eq(rp_valid),
                    pe.entry.last.eq(own.last),
                    pe.entry.value.eq(own.value),
                    pe.entry.col.eq(own.col),
                    pe.active.eq(1),
                ]
            with m.Else():
                m.d.comb += [pe.entry.eq(gc.entry), pe.active.eq(has_sample(gc.cp_m0))]
            lo, hi = piece_ptr[i], piece_ptr[i + 1]
            # The row-parallel drain is right-aligned (hw.timing.drain_offsets): the PE
            # writes its results from word qmax - q of its output buffer, the drain reads
            # word j of every PE in cycle rp_drain + j, and PE i's word j goes to output
            # SRAM word j - off (a register: qmax and the piece pointers hold still from
            # the host's writes, all before ``start``).
            # The PE's piece count, a register of its own beside its two piece pointers.
            q = Signal(range(p.out_buf_words + 1), name=f"rp_q{i}")
            off = Signal(range(p.out_buf_words + 1), name=f"rp_off{i}")
            m.d.sync += [q.eq(hi - lo), off.eq(Mux(pe_rp, gc.qmax - q, 0))]
            m.d.comb += [
                pe.x_base.eq(gc.x_base),
                pe.dy_addr.eq(gc.dy_addr),
                pe.out_base.eq(gc.out_base),
                pe.sddmm.eq(pe_sddmm),
                pe.clear.eq(pe_clear),
                pe.rp.eq(pe_rp_own),
                pe.q.eq(q),
                pe.rp_off.eq(off),
                # The host's writes of the PE's split flags (with the control lag registered
                # first: the table is written a cycle after the host's edge, long before any
                # op reads it, and the host does not read it back)
                *(
                    r.eq(x)
                    for r, x in zip(
                        (pe.split_we, pe.split_addr, pe.split_data),
                        _split_write(
                            m, lag, pe, g_en & (host.sel == ids["piece_split"]), host, lo, hi, i
                        ),
                        strict=True,
                    )
                ),
                pe.dr_addr.eq(gc.dr_addr),
                gu.prods[i].eq(pe.prod),
            ]
            # Output SRAM writes: drain, reduction or host.
            m.d.sync += dr_on[i].eq(
                Mux(
                    pe_rp,
                    (gc.dr_addr >= off) & (gc.dr_addr < off + pe.count),
                    has_sample(gc.dr_m0),
                )
            )
            # The drained word: with drain_join, an odd PE whose last result is joined
            # (its slot's join flag) writes, in the drain's last cycle (word qmax - 1, one
            # sample: every PE's last result), requant of its raw partial plus PE i - 1's,
            # read in the same cycle (hw.program.Op.joined_pairs, s.2.4).
            dr_word = pe.dr_data
            if p.drain_join and i % 2:
                join = Signal(name=f"dr_join{i}")
                m.d.sync += join.eq(pe.joined & (gc.dr_addr == gc.qmax - 1))
                joined = requant(p, sat_add(pes[i - 1].dr_data, pe.dr_data, p.acc_bits))
                dr_word = Mux(join, joined, pe.dr_data)
            if late_drain:
                # The drain's and the reduction's writes go through one register per bank
                # (enable, address, data): the drained word as it leaves the PE's output
                # buffer, written a cycle later (hw.timing.drain_lag), and the
                # reduction's requantised sum (hw.timing.deep_reduce). Behind the
                # register only the host's write is multiplexed in.
                # (with the control lag the reduction's write reaches the bank through its
                # group's copy and a register of the bank's own: its address and word hold
                # unless the write is the bank's, so the banks' registers differ and
                # synthesis keeps them apart)
                wh = red_wr[i // BANK_GROUP] if lag else ru
                red_we, red_waddr, red_wdata = wh.we & (wh.w_bank == i), wh.w_addr, wh.w_data
                if lag:
                    red_q = [
                        Signal(name=f"out{i}_red_we"),
                        Signal.like(ru.w_addr, name=f"out{i}_red_waddr"),
                        Signal.like(ru.w_data, name=f"out{i}_red_wdata"),
                    ]
                    m.d.sync += red_q[0].eq(red_we)
                    with m.If(red_we):
                        m.d.sync += [red_q[1].eq(red_waddr), red_q[2].eq(red_wdata)]
                    red_we, red_waddr, red_wdata = red_q
                b_we, b_data = Signal(name=f"out{i}_we"), Signal.like(pe.dr_data)
                b_addr = Signal.like(gl.dr_dst, name=f"out{i}_waddr")
                # (with the control lag the bank's own copy of the drain's enable, set
                # with the group's, steers its word's multiplexer)
                dr_en = kept_copy(m, ctl.dr_en, f"out{i}_dr_en") if lag else gl.dr_en
                m.d.sync += [
                    b_we.eq(Mux(dr_en, dr_on[i], red_we)),
                    b_addr.eq(Mux(dr_en, gl.dr_dst - off, red_waddr)),
                    b_data.eq(Mux(dr_en, dr_word, red_wdata)),
                ]
                # (the host writes only while idle, the drain and the reduction only while
                # busy, and b_we is low while idle: the registered enable selects the
                # port's address and data, so ``busy`` reaches only its enable)
                m.d.comb += [
                    ow.en.eq(b_we | (g_en & (host.sel == ids["out_sram"]) & mine)),
                    ow.addr.eq(Mux(b_we, b_addr, hoff)),
                    ow.data.eq(Mux(b_we, b_data, host.wdata)),
                ]
            else:
                with m.If(busy & gl.dr_en):
                    m.d.comb += [
                        ow.en.eq(dr_on[i]),
                        ow.addr.eq(gl.dr_dst - off),
                        ow.data.eq(dr_word),
                    ]
                with m.Elif(busy):
                    m.d.comb += [
                        ow.en.eq(ru.we & (ru.w_bank == i)),
                        ow.addr.eq(ru.w_addr),
                        ow.data.eq(ru.w_data),
                    ]
                with m.Else():
                    m.d.comb += [
                        ow.en.eq(host.we & (host.sel == ids["out_sram"]) & mine),
                        ow.addr.eq(hoff),
                        ow.data.eq(host.wdata),
                    ]
            bank_reads.append((ar.data, orp.data))

        act_words = [r[0] for r in bank_reads]
        out_words = [r[1] for r in bank_reads]
        # (with the control lag the host's reads use broadcast lane 0's first-level
        # selects, below)
        act_rdata = None if lag else pick(m, rbank, act_words, "act_rdata", ob)
        g_n = BANK_GROUP

        # With PD >= 4 and more than one group of BANK_GROUP banks, the broadcast lanes'
        # words and the reduction's partials leave the banks through registered two-level
        # trees (hw.rtl.banks); with one group a bank's word goes straight into its
        # register before the P-way multiplexer.
        tree = two_level(n_pe)
        if not (late_bcast and tree):
            words = [pick(m, bus_bank[b], act_data, f"bus{b}_word") for b in range(bw)]
            domain = m.d.sync if late_bcast else m.d.comb
            domain += [lane.eq(word) for lane, word in zip(bus, words, strict=True)]
        else:
            # (the lane's bank within its group is registered from the load's ``ld_lo``
            # a cycle ahead; ``act_data`` still feeds its own PE's sample-parallel loads)
            for b, lane in enumerate(bus):
                local = Signal(range(g_n), name=f"bus{b}_grp_sel")
                bank_words = act_words
                if lag:
                    # (with the control lag the trees take each bank's word from its
                    # register by the bank, ``act_data``, a cycle later: the selects are a
                    # kept copy per group, from the load's controls a cycle later, and
                    # each group of PEs has its own lane registers)
                    sel_in = ((first["ld_lo"] + b) % n_pe) % g_n
                    local = [kept_copy(m, sel_in, f"g{g}_bus{b}_sel") for g in range(len(groups))]
                    bank_words = act_data
                    if b == 0:
                        # (while idle lane 0's first-level selects take the host's bank a
                        # cycle late, and each group's pick of its banks' registered words
                        # is the host's candidate)
                        local = [
                            kept_copy(m, Mux(gc.busy, sel_in, hbank2 % g_n), f"g{g}_bus0_sel")
                            for g, gc in enumerate(groups)
                        ]
                else:
                    m.d.sync += local.eq(((ctl.ld_lo + b) % n_pe) % g_n)
                picked, regs = group_words(m, local, bank_words, f"bus{b}")
                if lag and b == 0:
                    act_rdata = pick(m, rbank2 // g_n, picked, "act_rdata_tree", ob)
                word = pick(m, bus_bank[b] // g_n, regs, f"bus{b}_word")
                m.d.sync += lane.eq(word)
                # (with the control lag each group's lane registers take the lane's
                # register, a cycle later: the word crosses from the groups' trees to the
                # middle and back to the groups in two cycles)
                m.d.sync += [gl.bus[b].eq(lane) for gl in (per_group if lag else [])]

        if not (late_partials and tree):
            out_rdata = pick(m, rbank, out_words, "out_rdata", p.acc_bits)
            # (with PD >= 4 and one group, a register per bank before the multiplexers)
            partials = out_words
            if late_partials:
                partials = [Signal.like(w, name=f"out{i}_q") for i, w in enumerate(out_words)]
                m.d.sync += [q.eq(w) for q, w in zip(partials, out_words, strict=True)]
            m.d.comb += [
                ru.a_data.eq(pick(m, a_bank, partials, "red_a_word")),
                ru.b_data.eq(pick(m, b_bank, partials, "red_b_word")),
            ]
        else:
            # (the group-local selects are registered from the reduction's banks in the
            # address cycle; while idle side ``a``'s takes the host's bank, and the host's
            # output-SRAM reads share the groups' first level)
            a_local = Signal(range(g_n), name="red_grp_a_sel")
            b_local = Signal(range(g_n), name="red_grp_b_sel")
            bank_words = out_words
            if lag:
                # (with the control lag the partials' addresses reach the banks through
                # three registers and each bank's word is registered by the bank before
                # the trees: the selects are a kept copy per group, from the banks four
                # cycles later; while idle side ``a``'s first level takes the bank's word
                # as it leaves the SRAM, for the host's reads)
                a_bank2, b_bank2 = ru.a_bank, ru.b_bank
                for _ in range(4):
                    a_q, b_q = Signal.like(ru.a_bank), Signal.like(ru.b_bank)
                    m.d.sync += [a_q.eq(a_bank2), b_q.eq(b_bank2)]
                    a_bank2, b_bank2 = a_q, b_q
                a_local = [
                    kept_copy(m, Mux(gc.busy, a_bank2 % g_n, hbank2 % g_n), f"g{g}_red_grp_a_sel")
                    for g, gc in enumerate(groups)
                ]
                b_local = [
                    kept_copy(m, b_bank2 % g_n, f"g{g}_red_grp_b_sel") for g in range(len(groups))
                ]
                bank_words = [Signal.like(w, name=f"out{i}_q") for i, w in enumerate(out_words)]
                m.d.sync += [q.eq(w) for q, w in zip(bank_words, out_words, strict=True)]
            else:
                a_in, b_in = Mux(busy, ru.a_bank % g_n, hbank % g_n), ru.b_bank % g_n
                m.d.sync += [a_local.eq(a_in), b_local.eq(b_in)]
            a_words, a_regs = group_words(m, a_local, bank_words, "red_a")
            _, b_regs = group_words(m, b_local, bank_words, "red_b")
            m.d.comb += [
                ru.a_data.eq(pick(m, a_bank // g_n, a_regs, "red_a_word")),
                ru.b_data.eq(pick(m, b_bank // g_n, b_regs, "red_b_word")),
            ]
            out_rdata = pick(m, rbank2 // g_n, a_words, "out_rdata_tree", p.acc_bits)

        units = gu.host.rdata | ru.host.rdata
        if lag:
            units_q = Signal.like(host.rdata, name="units_rdata")
            m.d.sync += units_q.eq(units)
            units = units_q
        with m.Switch(rsel2):
            with m.Case(ids["act_sram"]):
                m.d.comb += host.rdata.eq(act_rdata)
            with m.Case(ids["out_sram"]):
                m.d.comb += host.rdata.eq(out_rdata)
            with m.Default():
                m.d.comb += host.rdata.eq(units)
        return m


def _split_write(m: Module, lag: int, pe, sel, host, lo, hi, i: int) -> list:
    """The enable, address and bit of the host's write of PE ``i``'s (``pe``) split table
    (pieces ``lo`` to ``hi - 1``; ``sel``: the host writes ``piece_split`` while idle);
    with the control lag from registers set by the write, a cycle later."""
    bits = split_bits(pe.profile)  # (the raw flag; the join flag with drain_join)
    flags = host.wdata[0] if bits == 1 else host.wdata[:bits]
    write = [sel & (host.addr >= lo) & (host.addr < hi), host.addr - lo, flags]
    if not lag:
        return write
    regs = [
        Signal(name=f"pe{i}_split_we"),
        Signal.like(pe.split_addr, name=f"pe{i}_split_addr"),
        # (kept: the same bit for every PE, which synthesis would merge into one register)
        Signal.like(pe.split_data, name=f"pe{i}_split_data", attrs={KEPT: 1}),
    ]
    m.d.sync += [r.eq(x) for r, x in zip(regs, write, strict=True)]
    return regs


class _WriteHead(data.StructLayout):
    """The reduction's sum write, as a group of banks' copy."""

    def __init__(self, profile: HwProfile):
        bank = profile.act_sram_words // profile.n_pe
        super().__init__(
            {
                "we": 1,
                "w_bank": range(profile.n_pe),
                "w_addr": range(bank),
                "w_data": acc_shape(profile),
            }
        )
