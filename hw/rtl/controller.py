"""The sparse-array controller: op registers, the weight SRAM and the op sequencers.

Sample-parallel ops (``docs/microarchitecture.md`` s.2.2, 2.3): steps ``s = 0, 1, ...``
run the load stage of tile ``s``, the compute stage of tile ``s - 1`` and (SpMM only) the
drain stage of tile ``s - 2``; a step lasts its longest active stage plus one handshake
cycle. The stream is read one entry per cycle, one cycle ahead (the address rests on the
stream base outside the compute stage), so entry ``e`` reaches the PEs in cycle ``e``.

Row-parallel ops (s.2.4): the broadcast load, the bank walk and the drain share the first
phase (the walk starts in its cycle ``rp_delay``, the drain in ``rp_drain``, both set by
the compiler so that every word is read after it was written), then the reduction runs;
each phase is followed by a handshake cycle, and an empty reduce phase is skipped.
``done`` is high in the handshake cycle of the last step or phase.
"""

from __future__ import annotations

from collections.abc import Mapping

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.fit import COUNT_BITS, piece_capacity
from hw.profiles import HwProfile
from hw.timing import control_lag, drain_lag, reduce_pipeline, sp_compute_cycles

from .banks import KEPT, bank_groups, kept_copy
from .host import HostSignature, forward_host, require_memories
from .pe import EntryLayout, check_sparse
from .weights import StreamFields, WeightSRAM, stream_latency

__all__ = [
    "ArrayControl",
    "COUNT_BITS",
    "Controller",
    "OP_KINDS",
    "OP_SETUP_CYCLES",
    "REGISTERS",
    "entry_bits",
    "tree_depth",
]

OP_SETUP_CYCLES = 8
"""Clock edges from the host's last op-register write to the edge that samples ``start``
(at least): the controller derives the op's lengths from its registers through register
stages, the last of which (the first step's length and flags) is taken at that edge."""

OP_KINDS: Mapping[str, int] = {"sp_spmm": 0, "sddmm": 1, "rp_spmm": 2}
"""Value of the ``kind`` op register per kernel."""

REGISTERS: Mapping[str, int] = {
    name: i
    for i, name in enumerate(
        (
            "kind",
            "k",
            "n",
            "m",
            "s_len",
            "w_base",
            "x_base",
            "x_stride",
            "dy_base",
            "dy_stride",
            "y_base",
            "y_stride",
            "row0",
            "nmax",
            "qmax",
            "red_adds",
            "rp_delay",
            "rp_drain",
        )
    )
}
"""Op registers (32 bits each) by name -> host address in the ``op`` memory."""


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
                "rp": 1,
                "ld_en": 1,
                "ld_src": range(bank),
                "ld_dst": range(2 * p.act_buf_words),
                "ld_lo": range(p.n_pe),
                "ld_hi": range(bank + 1),
                "ld_words": range(p.bcast_words + 1),
                "entry": EntryLayout(p),
                "rp_entries": data.ArrayLayout(StreamFields(p), p.n_pe),
                "rp_walk": 1,
                "rp_i": range(p.weight_bank_words + 1),
                "ld_dy": 1,
                "ld_dy_dst": range(2 * p.out_buf_words),
                "x_base": range(2 * p.act_buf_words),
                "dy_addr": range(2 * p.out_buf_words),
                "out_base": range(2 * p.out_buf_words),
                "sddmm": 1,
                "clear": 1,
                "cp_m0": COUNT_BITS,
                "cp_first": 1,
                "cp_last": 1,
                "eidx": range(p.grad_buf_words + 1),
                "dr_en": 1,
                "qmax": range(p.out_buf_words + 1),
                "dr_addr": range(2 * p.out_buf_words),
                "dr_dst": range(bank),
                "dr_m0": COUNT_BITS,
                "red_en": 1,
                "red_clear": 1,
            }
        )


class Controller(wiring.Component):
    """Op registers, weight SRAM and sequencers of a sparse profile.

    Parameters
    ----------
    profile:
        A sparse :class:`HwProfile` with ``bcast_words <= n_pe``.
    host_ids:
        Memory ids of ``op`` and the weight fields on the host port.
    sel_bits, data_bits:
        Shape of the host port.
    """

    def __init__(
        self, profile: HwProfile, host_ids: Mapping[str, int], sel_bits: int, data_bits: int
    ):
        self._profile = check_sparse(profile, "Controller")
        if profile.bcast_words > profile.n_pe:
            raise ValueError(
                f"Controller: bcast_words={profile.bcast_words} must be <= n_pe="
                f"{profile.n_pe} (one activation bank per broadcast word)"
            )
        require_memories("Controller", host_ids, ("op",))
        self._ids = dict(host_ids)
        self._host_shape = (sel_bits, data_bits)
        members = {
            "host": In(HostSignature(sel_bits, data_bits)),
            "start": In(1),
            "busy": Out(1),
            "done": Out(1),
            "ctl": Out(ArrayControl(profile)),
        }
        if control_lag(profile):
            # ``busy`` again, per group of PEs: the copy of the running state kept by the
            # group's weight banks (the same value, placed by the group)
            members["grp_busy"] = Out(len(bank_groups(profile.n_pe)))
            # and ``ctl.clear`` per group of PEs: copies of its register, set with it
            members["grp_clear"] = Out(len(bank_groups(profile.n_pe)))
        super().__init__(members)

    @property
    def profile(self) -> HwProfile:
        return self._profile

    def elaborate(self, platform):
        p = self._profile
        m = Module()
        host, ctl = self.host, self.ctl
        regs = {name: Signal(32, name=f"reg_{name}") for name in REGISTERS}
        # With the control lag, ``running`` twice again, registers of their own (kept
        # apart in synthesis): one only gates the host's writes to the op registers, the
        # other is ``busy``, which the array takes through copies of its own, so the
        # running state's fan-out into the controller reaches neither.
        lag = control_lag(p)
        host_busy = Signal(name="host_busy", attrs={KEPT: 1}) if lag else self.busy
        busy_out = Signal(name="busy_out", attrs={KEPT: 1}) if lag else None
        copies = [host_busy, busy_out] if lag else []
        with m.If(host.we & (host.sel == self._ids["op"]) & ~host_busy):
            with m.Switch(host.addr):
                for name, idx in REGISTERS.items():
                    with m.Case(idx):
                        m.d.sync += regs[name].eq(host.wdata[:32])
        m.submodules.weights = ws = WeightSRAM(p, self._ids, *self._host_shape)
        forward_host(m, host, ws.host)
        rsel, reg_rdata = Signal.like(host.sel), Signal(32)
        m.d.sync += rsel.eq(host.sel)
        with m.Switch(host.addr):
            for name, idx in REGISTERS.items():
                with m.Case(idx):
                    m.d.sync += reg_rdata.eq(regs[name])
        if lag:
            # (with the control lag a host read takes two cycles, hw.rtl.top.host_read_latency:
            # the op registers' word and its select are registered once more)
            rsel2, reg_rdata2 = Signal.like(rsel, name="rsel2"), Signal.like(reg_rdata)
            m.d.sync += [rsel2.eq(rsel), reg_rdata2.eq(reg_rdata)]
            rsel, reg_rdata = rsel2, reg_rdata2
        m.d.comb += host.rdata.eq(Mux(rsel == self._ids["op"], reg_rdata, ws.host.rdata))

        # the op's kind, decoded into registers (the op registers hold still from
        # OP_SETUP_CYCLES edges before start)
        # (with the control lag the op kind and the running state are kept too: Yosys
        # would otherwise merge them into one of their kept copies, placed by a group of
        # banks far from the controller's own logic)
        # (``sddmm`` and ``run_d`` below are named explicitly, as ``hs1`` is: see there)
        rp, sddmm = Signal(), Signal(name="sddmm")
        if lag:
            rp = Signal(name="op_rp", attrs={KEPT: 1})
        m.d.sync += [
            rp.eq(regs["kind"] == OP_KINDS["rp_spmm"]),
            sddmm.eq(regs["kind"] == OP_KINDS["sddmm"]),
        ]
        # (with the control lag, more kept copies of the static op kind: one for the
        # array's control outputs, one for the weight stream's addressing and one of the
        # SDDMM flag for the step lengths, each placed by the logic it steers)
        rp_ctl, rp_ws, sddmm_ctl, sddmm_len = rp, rp, sddmm, sddmm
        if lag:
            is_rp, is_sddmm = (regs["kind"] == OP_KINDS[x] for x in ("rp_spmm", "sddmm"))
            rp_ctl, rp_ws = (kept_copy(m, is_rp, f"op_rp_{x}") for x in ("ctl", "ws"))
            sddmm_ctl, sddmm_len = (kept_copy(m, is_sddmm, f"op_sddmm_{x}") for x in ("ctl", "len"))
        k, n, mm, s_len = (regs[x][:COUNT_BITS] for x in ("k", "n", "m", "s_len"))
        nmax, qmax, red_adds = (regs[x][:COUNT_BITS] for x in ("nmax", "qmax", "red_adds"))
        pd, td = p.pipeline_depth, tree_depth(p.n_pe)

        running = Signal()
        # (with the control lag three more kept copies of it, set with it: one gates the
        # op's start (the registers it sets), one the weight stream's idle address, one
        # the array's per-cycle control outputs)
        running_st = running_sa = running_ctl = running
        if lag:
            running = Signal(name="running", attrs={KEPT: 1})
            running_st, running_sa, running_ctl = (
                Signal(name=f"running_{x}", attrs={KEPT: 1}) for x in ("st", "sa", "ctl")
            )
            copies += [running_st, running_sa, running_ctl]
        c = Signal(COUNT_BITS)
        m.d.comb += [self.busy.eq(busy_out if lag else running), ws.busy.eq(running)]
        m.d.comb += [ws.rp.eq(rp), ctl.rp.eq(rp_ctl)]
        # (and one for each group of weight banks, with a copy of the op kind)
        if lag:
            ws_busy = _weight_group_state(m, ws, regs["kind"] == OP_KINDS["rp_spmm"])
            m.d.comb += self.grp_busy.eq(Cat(*ws_busy))
            copies += ws_busy

        # ---- sample-parallel steps --------------------------------------------------
        par = Signal()
        ld_m0, cp_m0, dr_m0 = (Signal(COUNT_BITS, name=x) for x in ("ld_m0", "cp_m0", "dr_m0"))
        cp_v, dr_v = Signal(), Signal()
        x_ptr, dy_ptr, y_ptr = (Signal(COUNT_BITS, name=x) for x in ("x_ptr", "dy_ptr", "y_ptr"))
        # the load's activation-SRAM address in this cycle (x_ptr + c below K, then
        # dy_ptr + c - K), a register stepped with c
        ld_src = Signal(COUNT_BITS)
        # the compute bank's dY address, cp_bank * out_buf_words + the row, a register
        # set with the bank and stepped at each row's last entry
        dy_a = Signal(range(2 * p.out_buf_words))
        eidx = Signal(range(p.grad_buf_words + 1))
        ld_v, ld_vr = Signal(), Signal()
        # Per-op lengths and products are registered from the op registers, which hold
        # still from the last host write (at least one cycle before ``start``) to ``done``:
        # they are valid from the op's first cycle and take no cycle of their own.
        ld_full, cp_full = Signal(COUNT_BITS + 1), Signal(COUNT_BITS + 1)
        # the drain stage, N + drain_lag (0 without rows): its last write trails its last
        # read by hw.timing.drain_lag cycles (hw/rtl/array.py)
        dr_full = Signal(COUNT_BITS + 1)
        m.d.sync += [
            ld_full.eq(Mux(sddmm, k + n, k)),
            # (SpMM: S + PD and the extra cycle of a registered result write,
            # hw.timing.sp_compute_cycles, of which only S varies)
            cp_full.eq(s_len + Mux(sddmm, pd + td, sp_compute_cycles(0, p))),
            dr_full.eq(Mux(n != 0, n + drain_lag(p), 0)),
        ]
        m.d.comb += [
            ld_v.eq(running & ld_vr),
        ]

        # The length of every set of active stages (the third register stage from the op
        # registers, OP_SETUP_CYCLES): the longest of the load (bit 2), compute (bit 1)
        # and drain (bit 0) lengths in the set, its comparisons registered a stage
        # earlier, and whether it is 0.
        stage_max = [Signal(COUNT_BITS + 1, name=f"stage_max{i}") for i in range(8)]
        stage_zero = [Signal(name=f"stage_zero{i}") for i in range(8)]
        ld_gt_cp, ld_gt_n, cp_gt_n = Signal(), Signal(), Signal()
        m.d.sync += [
            ld_gt_cp.eq(ld_full > cp_full),
            ld_gt_n.eq(ld_full > dr_full),
            cp_gt_n.eq(cp_full > dr_full),
        ]
        gt = {(0, 1): ld_gt_cp, (0, 2): ld_gt_n, (1, 2): cp_gt_n}
        lengths = (ld_full, cp_full, dr_full)
        for i in range(8):
            picked = [j for j, bit in enumerate((4, 2, 1)) if i & bit]
            if len(picked) == 3:
                top = Mux(ld_gt_cp & ld_gt_n, ld_full, Mux(cp_gt_n, cp_full, dr_full))
            elif len(picked) == 2:
                a, b = picked
                top = Mux(gt[a, b], lengths[a], lengths[b])
            else:
                top = lengths[picked[0]] if picked else 0
            m.d.sync += [
                stage_max[i].eq(top),
                stage_zero[i].eq(Cat(*(lengths[j] == 0 for j in picked)).all() if picked else 1),
            ]
        # whether each set's length is 1 or 2 (a stage later)
        stage_one = [Signal(name=f"stage_one{i}") for i in range(8)]
        stage_two = [Signal(name=f"stage_two{i}") for i in range(8)]
        m.d.sync += [x.eq(stage_max[i] == 1) for i, x in enumerate(stage_one)]
        m.d.sync += [x.eq(stage_max[i] == 2) for i, x in enumerate(stage_two)]
        # whether the loads of the next tile and of the one after it exist (ld_m0 + P < M,
        # ld_m0 + 2P < M), registers set with ld_m0
        more_ld, more_ld2 = Signal(), Signal()

        # ---- row-parallel phases: 0 load, walk and drain, 1 reduce -------------------
        phase = Signal(2)
        # A row-parallel op has K*M <= act_buf_words (so K, M <= act_buf_words),
        # nmax <= weight_bank_words, qmax <= out_buf_words and red_adds below the piece
        # capacity (hw.rtl.fit): the products use operands of those widths, one DSP each.
        w_km = range(p.act_buf_words + 1)
        k_rp, m_rp = Signal(w_km), Signal(w_km)
        if lag:  # (kept: Yosys would merge it into the array's kept copies of M)
            m_rp = Signal(w_km, name="m_rp", attrs={KEPT: 1})
        nmax_rp, qmax_rp = (
            Signal(range(p.weight_bank_words + 1)),
            Signal(range(p.out_buf_words + 1)),
        )
        adds_rp = Signal(range(piece_capacity(p) + 1))
        # (registered by the multipliers: the first register stage of OP_SETUP_CYCLES)
        m.d.sync += [
            k_rp.eq(k),
            m_rp.eq(mm),
            nmax_rp.eq(nmax),
            qmax_rp.eq(qmax),
            adds_rp.eq(red_adds),
        ]
        delay, drain = regs["rp_delay"][:COUNT_BITS], regs["rp_drain"][:COUNT_BITS]
        # Register stages from the op registers (OP_SETUP_CYCLES): the operands, the
        # products, then the phase ends, then their comparisons, then the first phase's
        # length (the longest of the three).
        w = 2 * COUNT_BITS
        km1, mn1, mq1, ma1 = (Signal(w, name=f"rp_{x}1") for x in ("km", "mn", "mq", "ma"))
        m.d.sync += [
            km1.eq(k_rp * m_rp),
            mn1.eq(m_rp * nmax_rp),
            mq1.eq(m_rp * qmax_rp),
            ma1.eq(m_rp * adds_rp),
        ]
        km2, ld_c, walk_end, dr_c, red2 = (
            Signal(w, name=f"rp_{x}2") for x in ("km", "load", "walk", "drain", "red")
        )
        # the drain's reads end at dr_c, its writes drain_lag cycles later (dr_w)
        dr_w = Signal(w, name="rp_drain_w2")
        m.d.sync += [
            km2.eq(km1),
            ld_c.eq((km1 + (p.bcast_words - 1)) // p.bcast_words),
            walk_end.eq(delay + mn1 + pd),
            dr_c.eq(drain + mq1),
            dr_w.eq(drain + mq1 + drain_lag(p)),
            red2.eq(ma1),
        ]
        km, ld_rp, drain_end, drain_w, red_len = (Signal(w) for _ in range(5))
        lens = [Signal(w, name=f"rp_len{i}") for i in range(2)]
        m.d.sync += [
            km.eq(km2),
            ld_rp.eq(ld_c),
            drain_end.eq(dr_c),
            drain_w.eq(dr_w),
            red_len.eq(red2),
            lens[1].eq(red2 + reduce_pipeline(p)),
        ]
        # the first phase lasts until the load, the walk and the drain are done: the
        # longest of the three, its comparisons registered in the third stage, the
        # length in the fourth
        ld_gt_w, ld_gt_d, w_gt_d = Signal(), Signal(), Signal()
        m.d.sync += [
            ld_gt_w.eq(ld_c > walk_end),
            ld_gt_d.eq(ld_c > dr_w),
            w_gt_d.eq(walk_end > dr_w),
            lens[0].eq(Mux(ld_gt_w & ld_gt_d, ld_rp, Mux(w_gt_d, walk_end, drain_w))),
        ]
        lo, hi, lbase = Signal(range(p.n_pe)), Signal(COUNT_BITS), Signal(2 * COUNT_BITS)
        # the broadcast words still to load, K*M - lbase, a register stepped with lbase
        left = Signal(signed(2 * COUNT_BITS + 1))
        ri, ms, xoff = Signal(COUNT_BITS), Signal(COUNT_BITS), Signal(COUNT_BITS)
        # the bank entries one and two walk steps ahead (the weight SRAM answers an
        # address two cycles later)
        ri1, ri2 = Signal(COUNT_BITS), Signal(COUNT_BITS)
        # the entry three steps ahead, a register too: the walk wraps at nmax, so
        # ri1 == (ri + 1) mod nmax and ri + 1 >= nmax exactly when ri1 == 0
        ri3 = Signal(COUNT_BITS)
        # ri3 + 1 >= nmax (ri3's next step wraps), a register set with ri3, and nmax <= 1
        # (OP_SETUP_CYCLES)
        ri3_wrap, nmax_le1 = Signal(), Signal()
        # and their values at the op's start (OP_SETUP_CYCLES)
        ri3_0, ri3_wrap0 = Signal(COUNT_BITS), Signal()
        m.d.sync += nmax_le1.eq(nmax <= 1)
        ri1_zero = Signal()  # ri1 == 0, a register set with ri1
        # registered forms of c >= rp_delay, c + 1 == rp_delay and ms < M, and of
        # c + 2 == rp_delay and ms + 1 < M (one step ahead of the last two)
        past_delay, at_delay, ms_ok = Signal(), Signal(), Signal()
        at_delay2, ms_ok2 = Signal(), Signal()
        # the bank walk runs this cycle (running, row-parallel, phase 0, past rp_delay and
        # ms < M): a register, set from the next cycle's state
        walk = Signal()

        # The step (or phase) length and the handshake flag are registered: the length
        # when the step starts (from the state the step runs with), the flag one cycle
        # ahead (``c + 1 == length``), so no comparison of the state reaches the
        # handshake's fan-out in the cycle it is used. What the next cycle's state (and
        # the weight SRAM's next address) depends on is a register too, set with the step
        # it describes, so it is valid from the step's first cycle:
        #   fin     this step is the op's last (``done`` in its handshake);
        #   nlen    the next step's length, nempty whether it is empty;
        #   hs1     c + 1 == step_len, i.e. the next cycle is this step's handshake.
        step_len = Signal(2 * COUNT_BITS)
        # (hs1 and at_k1 below are named explicitly: a name Amaranth traces from a tuple
        # assignment depends on the function's bytecode, which other edits shift)
        fin, nempty, hs1 = Signal(), Signal(), Signal(name="hs1")
        # c + 2 == step_len (hs1 a cycle ahead), and whether the next step's length is 1, 2
        hs2, nlen_is1, nlen_is2 = Signal(), Signal(), Signal()
        # ~fin & ~rp: this step's handshake moves a sample-parallel op to its next step
        sp_go = Signal()
        nlen = Signal(2 * COUNT_BITS)
        red_on = Signal()  # the reduce phase reads partials this cycle (c < M*red_adds)
        # running and this cycle the step's handshake (c + 1 == step_len), a register
        # (set from run_d and hs_d, the next cycle's state, below)
        handshake = Signal()
        # M != 0, M > P and M > 2P, registers (OP_SETUP_CYCLES)
        first_ld, m_gt_p, m_gt_2p = Signal(), Signal(), Signal()
        m.d.sync += [first_ld.eq(mm != 0), m_gt_p.eq(p.n_pe < mm), m_gt_2p.eq(2 * p.n_pe < mm)]
        # K == 0 (an SDDMM loads dY only), a register too: the load's first address
        k_zero = Signal()
        m.d.sync += k_zero.eq(k == 0)
        # whether the first step is empty, a register too (its inputs hold still from two
        # edges after the op registers' write, OP_SETUP_CYCLES)
        first_empty = Signal()
        m.d.sync += first_empty.eq(~rp & ~(first_ld & ((k != 0) | (sddmm & (n != 0)))))
        # the first step's length and whether it is 1, registers of the fifth and sixth
        # stages (taken at ``start``, OP_SETUP_CYCLES)
        first_len, first_is1, first_is2 = Signal(2 * COUNT_BITS), Signal(), Signal()
        m.d.sync += [
            first_len.eq(Mux(rp, lens[0], Mux(first_ld, ld_full, 0))),
            first_is1.eq(first_len == 1),
            first_is2.eq(first_len == 2),
        ]
        # the reduce phase's length is 1 or 2 (fourth stage)
        red_is1, red_is2 = Signal(), Signal()
        m.d.sync += [red_is1.eq(lens[1] == 1), red_is2.eq(lens[1] == 2)]

        def stage_set(stages, name, sets=range(8)):
            """The length of the step running ``sets[stages]`` (a set of stages: drain in
            bit 0, compute in bit 1, load in bit 2), whether it is 0, 1 and 2."""
            length = Signal(2 * COUNT_BITS, name=f"{name}_len")
            flags = [Signal(name=f"{name}_{v}") for v in range(3)]
            with m.Switch(stages):
                for j, i in enumerate(sets):
                    with m.Case(j):
                        m.d.comb += length.eq(stage_max[i])
                        m.d.comb += [
                            f.eq(t[i])
                            for f, t in zip(flags, (stage_zero, stage_one, stage_two), strict=True)
                        ]
            return length, *flags

        # the second step (at start: the first tile's compute, the second tile's load)
        # and the step after the next one (at a handshake: the next step computes the
        # tile loading now and loads the next tile, whose successor loads after it)
        # (no drain in the second step: sets 0, 2, 4, 6)
        step1 = stage_set(Cat(first_ld, m_gt_p), "step1", sets=(0, 2, 4, 6))
        len1, empty1, one1, two1 = (Signal.like(x) for x in step1)  # (fifth stage)
        m.d.sync += [r.eq(x) for r, x in zip((len1, empty1, one1, two1), step1, strict=True)]
        # (in a handshake the op is running: ld_v is ld_vr)
        step2_sel = Cat(ld_vr & ~sddmm_len, more_ld, more_ld2)
        first_step = Signal(name="first_step")  # the op's first step (lag only, below)
        if not lag:
            len2, empty2, one2, two2 = stage_set(step2_sel, "step2")
        else:
            # (with the control lag these are registers, two stages from the step's state:
            # its select is registered, then the lengths it picks. The state holds from a
            # step's first cycle and every step after the first lasts at least three
            # cycles (a compute stage, or a drain of N + drain_lag >= 2); in the first
            # step, whose state is what ``start`` sets, they are registers of the op
            # registers. Only an empty last step finds them a step old, and its handshake
            # ends the op.)
            sel_q = Signal.like(step2_sel, name="step2_sel_q")
            m.d.sync += sel_q.eq(step2_sel)
            now2 = stage_set(sel_q, "step2")
            idle_sel = kept_copy(m, Cat(first_ld & ~sddmm_len, m_gt_p, m_gt_2p), "step2_idle_sel")
            idle2 = stage_set(idle_sel, "step2_idle")
            idle2 = [kept_copy(m, x, f"step2_idle_{i}_q") for i, x in enumerate(idle2)]
            regs2 = [Signal.like(x, name=f"step2_{i}_q") for i, x in enumerate(idle2)]
            m.d.sync += [
                r.eq(Mux(first_step, y, x)) for r, x, y in zip(regs2, now2, idle2, strict=True)
            ]
            len2, empty2, one2, two2 = regs2
        final = handshake & fin
        m.d.comb += self.done.eq(final)

        # state derived from c for the next cycle: c' = 0 after start or a handshake
        restart = ~running | handshake
        w_base = regs["w_base"][:COUNT_BITS]
        # the stream address after the next (one past the next cycle's), c + lead + 1 <
        # s_len (``lead``: the weight SRAM's stream latency, 2 or 3 cycles), c + 1 == K
        # (the load's switch from X to dY), and op-register sums and flags
        lead = stream_latency(p)
        sp_a3, more3, at_k1 = Signal(COUNT_BITS), Signal(), Signal(name="at_k1")
        if lead == 3:
            sp_a3, more3 = Signal(COUNT_BITS, name="sp_a4"), Signal(name="more4")
        # c < s_len, c < n, c < the load's length and, row-parallel, c in the drain window
        in_s, in_n, in_ld, in_dr = Signal(), Signal(), Signal(), Signal()
        in_red = Signal()  # c + 1 < red_len
        # c + 1 ... c + 4 as counters beside c (valid while running: set at every start
        # and handshake), so the comparisons above take no adder; and rp_delay == 0, 1, 2
        c_ahead = [Signal(COUNT_BITS + 3, name=f"c_plus{i}") for i in range(1, 3 + lead)]
        c1, c2, c3, c4 = c_ahead[:4]
        d_is = [Signal(name=f"rp_delay_is{i}") for i in range(3)]
        m.d.sync += [x.eq(delay == i) for i, x in enumerate(d_is)]
        # the row-parallel drain's slot c - rp_drain, a register stepped with c
        dr_rel = Signal(range(2 * p.out_buf_words))
        ld_end = Mux(rp, ld_rp, ld_full)
        w_base1, w_base2, w_base3 = (Signal(COUNT_BITS, name=f"w_base{i}") for i in (1, 2, 3))
        s_len2, s_len3, k_is1 = Signal(), Signal(), Signal()
        if lead == 3:
            w_base4, s_len4 = Signal(COUNT_BITS, name="w_base4"), Signal(name="s_len4")
            m.d.sync += [w_base4.eq(w_base + 4), s_len4.eq(s_len > 4)]
        m.d.sync += [
            w_base1.eq(w_base + 1),
            w_base2.eq(w_base + 2),
            w_base3.eq(w_base + 3),
            s_len2.eq(s_len > 2),
            s_len3.eq(s_len > 3),
            k_is1.eq(k == 1),
        ]
        # The state the weight SRAM's read address depends on is updated through "next"
        # signals, so that the address of the next cycle is known in this one and the
        # address reaches the SRAM from a register.
        ahead = {
            name: (x, Signal.like(x, name=f"{name}_n"))
            for name, x in (
                ("past_delay", past_delay),
                ("at_delay", at_delay),
                ("cp_v", cp_v),
                ("phase", phase),
                ("ms_ok", ms_ok),
                ("ri1", ri1),
                ("ri2", ri2),
            )
        }
        nx = {name: n for name, (_, n) in ahead.items()}
        m.d.comb += [n.eq(x) for x, n in ahead.values()]
        m.d.sync += [x.eq(n) for x, n in ahead.values()]
        m.d.comb += [
            nx["past_delay"].eq(Mux(restart, d_is[0], past_delay | at_delay)),
            nx["at_delay"].eq(Mux(restart, d_is[1], at_delay2)),
        ]
        with m.If(restart):
            m.d.sync += [
                in_s.eq(s_len != 0),
                in_n.eq(n != 0),
                in_ld.eq(ld_end != 0),
                in_dr.eq((drain == 0) & (drain_end != 0)),
                in_red.eq(red_len > 1),
                *(x.eq(i + 1) for i, x in enumerate(c_ahead)),
                dr_rel.eq(-drain),
                sp_a3.eq(w_base3 if lead == 2 else w_base4),
                more3.eq(s_len3 if lead == 2 else s_len4),
                at_k1.eq(k_is1),
                at_delay2.eq(d_is[2]),
            ]
        with m.Else():
            m.d.sync += [
                in_s.eq(c1 < s_len),
                in_n.eq(c1 < n),
                in_ld.eq(c1 < ld_end),
                in_dr.eq((c1 >= drain) & (c1 < drain_end)),
                in_red.eq(c2 < red_len),
                *(x.eq(x + 1) for x in c_ahead),
                dr_rel.eq(dr_rel + 1),
                sp_a3.eq(sp_a3 + 1),
                more3.eq(c_ahead[lead + 1] < s_len),
                at_k1.eq(c2 == k),
                at_delay2.eq(c3 == delay),
            ]

        # ``clear`` (to every PE) is a register too: the next cycle's running and handshake
        # flags are known a cycle ahead.
        clear_r, hs_d, run_d = Signal(init=1), Signal(), Signal(name="run_d")
        # (a handshake implies running: it is tested first, so its fan-out does not wait
        # on ``running``)
        with m.If(handshake):
            m.d.comb += [hs_d.eq(nempty), run_d.eq(~fin)]
        with m.Elif(~running):
            m.d.comb += [hs_d.eq(first_empty), run_d.eq(self.start)]
        with m.Else():
            m.d.comb += [hs_d.eq(hs1), run_d.eq(1)]
        clear_n = ~run_d | (hs_d & ~rp)
        m.d.sync += [clear_r.eq(clear_n), handshake.eq(run_d & hs_d)]
        if lag:
            grp_clear = [
                Signal(init=1, name=f"clear_g{g}", attrs={KEPT: 1})
                for g in range(len(bank_groups(p.n_pe)))
            ]
            m.d.sync += [x.eq(clear_n) for x in grp_clear]
            m.d.comb += self.grp_clear.eq(Cat(*grp_clear))
        # handshake & sp_go, a register (from the next cycle's handshake and sp_go), so
        # the enable of the registers a sample-parallel handshake steps is one
        sp_hs = Signal()
        sp_more = ~(~more_ld & (~ld_vr | sddmm))  # sp_go after this step's handshake
        sp_go_n = Mux(handshake & sp_go, sp_more, Mux(~running & self.start, ~rp & first_ld, sp_go))
        m.d.sync += sp_hs.eq(run_d & hs_d & sp_go_n)
        if lag:
            # (set while idle, cleared by the first sample-parallel handshake)
            m.d.sync += first_step.eq(Mux(running, first_step & ~sp_hs, 1))
        # (with the control lag a kept copy steps the tile pointers, apart from the one
        # that steps the step state)
        sp_hs_tile = kept_copy(m, run_d & hs_d & sp_go_n, "sp_hs_tile") if lag else sp_hs

        # The walk's state at the op's start, from flags of the op registers registered a
        # stage earlier (OP_SETUP_CYCLES): its second and third entries ri1 = 1 if
        # nmax > 1, ri2 = 2 if nmax > 2 (else 0), the fourth ri3 = (ri2 + 1) mod nmax and
        # whether ri3 + 1 wraps; whether M > 1 and whether no row is split.
        nmax_gt2, nmax_eq3, nmax_eq4, mm_gt1, red_none = (
            Signal(name=x) for x in ("nmax_gt2", "nmax_eq3", "nmax_eq4", "mm_gt1", "red_none")
        )
        m.d.sync += [
            nmax_gt2.eq(nmax > 2),
            nmax_eq3.eq(nmax == 3),
            nmax_eq4.eq(nmax == 4),
            mm_gt1.eq(mm > 1),
            red_none.eq(red_adds == 0),
        ]
        ri2s = Mux(nmax_gt2, 2, 0)
        m.d.sync += [
            ri3_0.eq(Mux(nmax_gt2, Mux(nmax_eq3, 0, 3), Mux(nmax_le1, 0, 1))),
            ri3_wrap0.eq(Mux(nmax_gt2, nmax_eq4, 1)),
        ]
        with m.If(handshake):
            m.d.sync += [
                c.eq(0),
                step_len.eq(nlen),
                hs1.eq(nlen_is1),
                hs2.eq(nlen_is2),
            ]
            # (a sample-parallel op's next step: on sp_hs, below)
            with m.If(~sp_go & fin):
                m.d.sync += [running.eq(0), *(x.eq(0) for x in copies)]
            with m.Elif(~sp_go):  # a row-parallel op's first phase ends
                m.d.sync += [red_on.eq(red_len != 0), fin.eq(1), nempty.eq(0)]
                m.d.comb += nx["phase"].eq(phase + 1)
        with m.Elif(~running_st):
            with m.If(self.start):
                m.d.sync += [
                    running.eq(1),
                    *(x.eq(1) for x in copies),
                    par.eq(0),
                    c.eq(0),
                    ld_m0.eq(0),
                    dr_v.eq(0),
                    x_ptr.eq(regs["x_base"]),
                    dy_ptr.eq(regs["dy_base"]),
                    y_ptr.eq(regs["y_base"]),
                    ld_src.eq(Mux(k_zero, regs["dy_base"], regs["x_base"])),
                    dy_a.eq(p.out_buf_words + regs["row0"]),
                    eidx.eq(0),
                    lo.eq(0),
                    hi.eq(0),
                    lbase.eq(0),
                    left.eq(km),
                    ri.eq(0),
                    ms.eq(0),
                    xoff.eq(0),
                    ld_vr.eq(first_ld),
                    step_len.eq(first_len),
                    hs1.eq(first_is1),
                    hs2.eq(first_is2),
                    nlen_is1.eq(Mux(rp, red_is1, one1)),
                    nlen_is2.eq(Mux(rp, red_is2, two1)),
                    fin.eq(Mux(rp, red_none, ~first_ld)),
                    sp_go.eq(~rp & first_ld),
                    nlen.eq(Mux(rp, lens[1], len1)),
                    nempty.eq(~rp & empty1),
                    more_ld.eq(m_gt_p),
                    more_ld2.eq(m_gt_2p),
                    ri3.eq(ri3_0),
                    ri3_wrap.eq(ri3_wrap0),
                    ri1_zero.eq(nmax_le1),
                    ms_ok2.eq(mm_gt1),
                    red_on.eq(0),
                ]
                m.d.comb += [
                    nx["cp_v"].eq(0),
                    nx["phase"].eq(0),
                    nx["ri1"].eq(Mux(nmax_le1, 0, 1)),
                    nx["ri2"].eq(ri2s),
                    nx["ms_ok"].eq(first_ld),
                ]
        with m.Else():
            m.d.sync += [
                c.eq(c + 1),
                ld_src.eq(Mux(at_k1, dy_ptr, ld_src + 1)),
                hs1.eq(hs2),
                hs2.eq(c3 == step_len),
                red_on.eq(rp & (phase == 1) & in_red),
            ]
            with m.If(rp & (phase == 0)):
                wrap = lo + p.bcast_words >= p.n_pe
                m.d.sync += [
                    lbase.eq(lbase + p.bcast_words),
                    left.eq(left - p.bcast_words),
                    lo.eq(Mux(wrap, lo + p.bcast_words - p.n_pe, lo + p.bcast_words)),
                    hi.eq(hi + wrap),
                ]
            with m.If(walk):
                m.d.sync += [
                    ri.eq(ri1),
                    ri3.eq(Mux(ri3_wrap, 0, ri3 + 1)),
                    ri3_wrap.eq(Mux(ri3_wrap, nmax_le1, ri3 + 2 >= nmax)),
                    ri1_zero.eq(ri2 == 0),
                ]
                m.d.comb += [nx["ri1"].eq(ri2), nx["ri2"].eq(ri3)]
                with m.If(ri1_zero):  # ri + 1 >= nmax
                    m.d.sync += [ms.eq(ms + 1), xoff.eq(xoff + k), ms_ok2.eq(ms + 2 < mm)]
                    m.d.comb += nx["ms_ok"].eq(ms_ok2)

        # A sample-parallel handshake steps the op to its next step (exclusive with every
        # branch above that sets these registers).
        step_state = [
            fin.eq(~sp_more),
            sp_go.eq(sp_more),
            nlen.eq(len2),
            nempty.eq(empty2),
            nlen_is1.eq(one2),
            nlen_is2.eq(two2),
            more_ld.eq(more_ld2),
            more_ld2.eq(ld_m0 + 3 * p.n_pe < mm),
            ld_vr.eq(more_ld),
        ]
        tile_state = [
            par.eq(~par),
            cp_m0.eq(ld_m0),
            dr_v.eq(cp_v & ~sddmm),
            dr_m0.eq(cp_m0),
            ld_m0.eq(ld_m0 + p.n_pe),
            x_ptr.eq(x_ptr + regs["x_stride"]),
            dy_ptr.eq(dy_ptr + regs["dy_stride"]),
            ld_src.eq(Mux(k_zero, dy_ptr + regs["dy_stride"], x_ptr + regs["x_stride"])),
            dy_a.eq(Mux(par, p.out_buf_words, 0) + regs["row0"]),
            eidx.eq(0),
        ]
        with m.If(sp_hs):
            m.d.sync += step_state if lag else step_state + tile_state
            m.d.comb += nx["cp_v"].eq(ld_v)
            if not lag:
                with m.If(dr_v):
                    m.d.sync += y_ptr.eq(y_ptr + regs["y_stride"])
        if lag:
            with m.If(sp_hs_tile):
                m.d.sync += tile_state
                with m.If(dr_v):
                    m.d.sync += y_ptr.eq(y_ptr + regs["y_stride"])

        # ---- weight stream ----------------------------------------------------------
        # The weight SRAM returns an entry two cycles after its address (its outputs are
        # registered; three for the stream with the control lag, whose trees take the
        # banks' registered words: ``stream_latency``), so entry e of the stream is
        # addressed in cycle e - 2: outside the stream the address rests on its base, and
        # in a handshake cycle it is base + 1, so a compute stage finds entries 0 and 1 on
        # time (with three cycles, below, entries 0, 1 and 2). The bank walk likewise
        # addresses two steps ahead; its entries 0 and 1 are addressed in the two cycles
        # before it starts (rp_delay >= 2 whenever a bank holds an entry). Both addresses
        # are registers, each set a cycle early from the next cycle's state.
        in_stream = running_ctl & ~rp_ws & cp_v & in_s
        # (the next cycle's state: the ``_n`` signals, ``run_d`` and ``hs_d``)
        # (the stream's next address by the three cases of the state above, each from
        # registers: idle, handshake, within a step)
        # (with the control lag every group of weight banks has its own copy of both
        # addresses, set with them, WeightSRAM)
        sp_addrs, rp_addrs = _weight_group_addresses(m, ws) if lag else ([ws.sp_addr], [ws.rp_addr])
        # (with a stream latency of 3 entry e is addressed in cycle e - 3: the address is
        # base + 1 two cycles before a handshake and base + 2 in it, and a step's first
        # cycle addresses entry 3; an op whose first step is 1 or 2 cycles long takes the
        # same from ``start``. An SpMM with K = 0, whose first step is its handshake
        # alone, has a stream of tokens only, identical entries, so its entry 1 may come
        # from address base.)
        wb = (w_base, w_base1, w_base2, w_base3)
        with m.If(handshake):
            prefetch_hs = ~rp_ws & ld_vr & (s_len2 if lead == 2 else s_len3) & ~nempty
            sp_next = Mux(
                fin, w_base, Mux(nempty, wb[lead - 1], Mux(prefetch_hs, wb[lead], w_base))
            )
            m.d.sync += [a.eq(sp_next) for a in sp_addrs]
        with m.Elif(~running_sa):
            idle_next = Mux(self.start & first_empty, wb[lead - 1], w_base)
            if lead == 3:
                idle_next = Mux(self.start & ~first_empty & first_is1, w_base1, idle_next)
            m.d.sync += [a.eq(idle_next) for a in sp_addrs]
        with m.Else():
            prefetch = ~rp_ws & cp_v & more3
            within = Mux(prefetch, sp_a3, w_base)
            if lead == 3:
                within = Mux(hs2, w_base1, within)
            m.d.sync += [a.eq(Mux(hs1, wb[lead - 1], within)) for a in sp_addrs]
        walk_n = run_d & rp & (nx["phase"] == 0) & nx["past_delay"] & nx["ms_ok"]
        m.d.sync += walk.eq(walk_n)
        # (the walk's address matters in its cycles and the two before them, where it is
        # entry 0, then 1; past the delay outside the walk, and outside row-parallel
        # phase 0, no entry is used, so the walk's own condition stays out of it)
        rp_next = Mux(nx["past_delay"], nx["ri2"], Mux(nx["at_delay"], nx["ri1"], 0))
        m.d.sync += [a.eq(rp_next) for a in rp_addrs]
        f = ws.sp_entry
        e = ctl.entry
        m.d.comb += [
            e.valid.eq(in_stream),
            e.real.eq(in_stream & ~f.token),
            e.last.eq(f.last),
            e.value.eq(f.value),
            e.col.eq(f.col),
        ]
        with m.If(in_stream & ~handshake):
            with m.If(f.last):
                m.d.sync += dy_a.eq(dy_a + 1)
            with m.If(e.real):
                m.d.sync += eidx.eq(eidx + 1)

        cp_bank = ~par
        rp_load = running_ctl & rp & (phase == 0) & in_ld
        rp_drain = running_ctl & rp & (phase == 0) & in_dr
        m.d.comb += [
            ctl.m.eq(mm),
            ctl.ld_en.eq(Mux(rp_ctl, rp_load, (running_ctl & ld_vr if lag else ld_v) & in_ld)),
            ctl.ld_src.eq(ld_src),
            ctl.ld_dst.eq(Mux(rp_ctl, lbase, par * p.act_buf_words + c)),
            # SDDMM: the N words of dY after X's K go to the PEs' output buffers.
            ctl.ld_dy.eq(sddmm_ctl & (c >= k)),
            ctl.ld_dy_dst.eq(par * p.out_buf_words + c - k),
            ctl.ld_lo.eq(lo),
            ctl.ld_hi.eq(hi),
            ctl.ld_words.eq(Mux(left > p.bcast_words, p.bcast_words, left)),
            ctl.rp_entries.eq(ws.banks),
            ctl.rp_walk.eq(walk),
            ctl.rp_i.eq(ri),
            ctl.x_base.eq(Mux(rp_ctl, xoff, cp_bank * p.act_buf_words)),
            ctl.dy_addr.eq(dy_a),
            ctl.out_base.eq(Mux(rp_ctl, 0, cp_bank * p.out_buf_words)),
            ctl.sddmm.eq(sddmm_ctl),
            # A row-parallel op clears nothing between phases: the drain writes out only
            # the results each PE counted since the op started.
            ctl.clear.eq(clear_r),
            ctl.cp_m0.eq(cp_m0),
            ctl.cp_first.eq(cp_m0 == 0),
            ctl.cp_last.eq(cp_m0 + p.n_pe >= mm),
            ctl.eidx.eq(eidx),
            # (gated by ``running``: dr_v and in_n keep their last values between ops)
            ctl.dr_en.eq(Mux(rp_ctl, rp_drain, running_ctl & dr_v & in_n)),
            ctl.qmax.eq(qmax_rp),
            ctl.dr_addr.eq(Mux(rp_ctl, dr_rel, par * p.out_buf_words + c)),
            ctl.dr_dst.eq(Mux(rp_ctl, c - drain, y_ptr + c)),
            ctl.dr_m0.eq(dr_m0),
            ctl.red_en.eq(running_ctl & red_on),
            ctl.red_clear.eq(~running_ctl),
        ]
        return m


def _weight_group_state(m: Module, ws: WeightSRAM, rp_next) -> list[Signal]:
    """With the control lag, a kept register of the op kind (from ``rp_next``, the value
    ``rp`` takes) per group of weight banks, connected, and one of ``running`` per group,
    connected and returned for the caller to set with ``running``."""
    busy = []
    for g in range(len(bank_groups(ws.profile.n_pe))):
        busy.append(Signal(name=f"ws_g{g}_busy", attrs={KEPT: 1}))
        rp = kept_copy(m, rp_next, f"ws_g{g}_rp")
        m.d.comb += [ws.grp_busy[g].eq(busy[-1]), ws.grp_rp[g].eq(rp)]
    return busy


def _weight_group_addresses(m: Module, ws: WeightSRAM) -> tuple[list[Signal], list[Signal]]:
    """The stream and walk address registers and, with the control lag, a kept copy of
    each per group of weight banks (connected), for the caller to set all alike."""
    sp_addrs, rp_addrs = [ws.sp_addr], [ws.rp_addr]
    for g in range(len(bank_groups(ws.profile.n_pe))):
        sp_addrs.append(Signal.like(ws.sp_addr, name=f"ws_g{g}_sp_addr", attrs={KEPT: 1}))
        rp_addrs.append(Signal.like(ws.rp_addr, name=f"ws_g{g}_rp_addr", attrs={KEPT: 1}))
        m.d.comb += [ws.grp_sp_addr[g].eq(sp_addrs[-1]), ws.grp_rp_addr[g].eq(rp_addrs[-1])]
    return sp_addrs, rp_addrs
