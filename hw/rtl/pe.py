"""The sparse processing element (``docs/microarchitecture.md`` section 2).

One PE holds a double-buffered activation buffer (``2 x act_buf_words`` operands, stored
as rows of ``bcast_words`` operands so the row-parallel broadcast bus fills a row per
cycle), a double-buffered output buffer (``2 x out_buf_words`` accumulators, each with a
flag that keeps it raw instead of requantising it on the way out), one accumulator and a
saturating multiply-accumulate pipeline of depth ``pipeline_depth`` (``PD``).

Timing (cycle ``e`` is the cycle in which a stream entry is presented on ``entry``):

- cycle ``e``: the activation buffer is addressed with ``x_base + entry.col`` (and, for the
  masked weight gradient, the output buffer with ``dy_addr``: SDDMM loads ``dY`` there
  through ``dy_we`` / ``dy_waddr``, since it writes no results, so the activation buffer
  needs one read port and maps onto simple dual-port block RAM); with ``PD >= 4`` the
  entry and both addresses are registered first and the buffers are addressed in cycle
  ``e + 1``, so every later step below happens a cycle later;
- cycle ``e + 1``: the operands arrive; with ``PD = 2`` their exact product enters the one
  register before the accumulator; with ``PD >= 3`` they are registered as they leave the
  buffers and multiplied in cycle ``e + 2``, the product passing ``PD - 2`` registers
  (``PD - 3`` with ``PD >= 4``); with ``PD >= 5`` the buffers' words are registered
  first, before the operand's word select, so the operand registers, the multiply and
  everything after come a cycle later still (``PD - 4`` product registers);
- cycle ``e + PD``: the product is on ``prod`` (for the SDDMM adder tree) and, for SpMM, is
  added to the accumulator with saturation at the clock edge that ends the cycle; on a
  ``last`` entry the sum is formed instead (the accumulator restarts from zero) and
  written the cycle after (``hw.timing.RESULT_WRITE_DELAY``; two cycles after with
  ``PD >= 4``, registered in its final form first, ``hw.timing.result_write_delay``) to
  the output buffer at
  ``out_base + result count``, in its final form: the raw sum when the row-parallel slot
  (result count modulo ``q``) holds a piece of a split row (the PE's ``split`` table),
  else ``requant`` of it. The drain port returns the stored word.

A stream of ``S`` entries thus finishes its last write in cycle ``S + PD`` (``S + PD + 1``
with ``PD >= 4``), the handshake cycle of the contract's compute stage
(``hw.timing.sp_compute_cycles``).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from hw.profiles import HwProfile
from hw.timing import result_write_delay

from .arith import acc_shape, op_shape, prod_shape, requant, sat_add, word_select
from .host import collision_ports

__all__ = ["EntryLayout", "SparsePE", "check_sparse"]


def check_sparse(profile: HwProfile, what: str) -> HwProfile:
    """Return ``profile`` if it describes a sparse PE array, else raise ``ValueError``."""
    if not isinstance(profile, HwProfile):
        raise TypeError(f"{what} needs an HwProfile, got {profile!r}")
    if not profile.is_sparse:
        raise ValueError(
            f"{what} needs a sparse profile, got {profile.name!r} of kind {profile.kind!r}"
        )
    return profile


def tree_product_copy(profile: HwProfile) -> bool:
    """Whether the adder tree reads its own copy of a PE's last product register, zero
    outside SDDMM (``PD >= 7``), instead of that register itself."""
    return profile.pipeline_depth >= 7


def split_bits(profile: HwProfile) -> int:
    """Bits per slot of a PE's split table: the raw flag, and with ``drain_join`` the
    join flag (``hw.program``: the ``piece_split`` image)."""
    return 2 if profile.drain_join else 1


class EntryLayout(data.StructLayout):
    """One compressed-stream entry as broadcast to the PEs.

    ``valid`` marks a cycle that carries an entry; ``real`` marks a non-zero (as opposed
    to the token of an empty row); ``row`` is the output row the entry belongs to.
    """

    def __init__(self, profile: HwProfile):
        super().__init__(
            {
                "valid": 1,
                "real": 1,
                "last": 1,
                "value": op_shape(profile),
                "col": profile.index_bits,
            }
        )


class SparsePE(wiring.Component):
    """One sparse PE of ``profile`` (a sparse :class:`HwProfile`).

    Ports
    -----
    ld_en, ld_row, ld_data:
        Activation-buffer write port (the load stage): a row of ``bcast_words`` operands
        with one enable per operand; the row index includes the bank.
    dy_we, dy_waddr:
        SDDMM load of one ``dY`` word (lane 0 of ``ld_data``) into the output buffer.
    entry, x_base, dy_addr, out_base, sddmm, active, clear:
        The compute stage: the stream entry, the activation-buffer word that column 0
        maps to, the output-buffer word of ``dY[row]`` (SDDMM), the output bank base, the kernel
        (``sddmm`` forms ``dY[row] * X[col]`` and feeds ``prod`` only), whether this PE
        owns a sample in the tile (an idle PE contributes a zero product), and ``clear``
        (restart the accumulator and the result count, asserted between stages).
    rp, q, rp_off, split_we, split_addr, split_data:
        Row-parallel mode, the PE's pieces per sample, the output-buffer word its first
        result goes to (the drain's right alignment, ``hw.timing.drain_offsets``; 0 outside
        row-parallel ops), and the write port of its table of split-row slots
        (:func:`split_bits` per slot).
    joined:
        With ``drain_join``: a result whose slot has the join flag was written since
        ``clear`` (the array then adds the previous PE's last word to this PE's at the
        drain).
    dr_addr, dr_data, count:
        Output-buffer read port (the drain stage, data one cycle after the address) and
        the number of results written since ``clear``.
    prod, prod_valid:
        The product at pipeline stage ``PD`` (for the adder tree; with ``PD >= 7`` from
        its own copy of the last product register, 0 outside SDDMM).
    """

    def __init__(self, profile: HwProfile):
        self._profile = check_sparse(profile, "SparsePE")
        p = profile
        if p.act_buf_words % p.bcast_words:
            raise ValueError(
                f"SparsePE: act_buf_words={p.act_buf_words} must be a multiple of "
                f"bcast_words={p.bcast_words}"
            )
        super().__init__(
            {
                "ld_en": In(p.bcast_words),
                "ld_row": In(range(2 * p.act_buf_words // p.bcast_words)),
                "ld_data": In(unsigned(p.bcast_words * p.operand_bits)),
                "entry": In(EntryLayout(p)),
                "dy_we": In(1),
                "dy_waddr": In(range(2 * p.out_buf_words)),
                "x_base": In(range(2 * p.act_buf_words)),
                "dy_addr": In(range(2 * p.out_buf_words)),
                "out_base": In(range(2 * p.out_buf_words)),
                "sddmm": In(1),
                "active": In(1),
                "clear": In(1),
                "rp": In(1),
                "q": In(range(p.out_buf_words + 1)),
                "rp_off": In(range(p.out_buf_words + 1)),
                "split_we": In(1),
                "split_addr": In(range(p.out_buf_words)),
                "split_data": In(split_bits(p)),
                "dr_addr": In(range(2 * p.out_buf_words)),
                "dr_data": Out(acc_shape(p)),
                "count": Out(range(2 * p.out_buf_words + 1)),
                "prod": Out(prod_shape(p)),
                "prod_valid": Out(1),
                **({"joined": Out(1)} if p.drain_join else {}),
            }
        )

    @property
    def profile(self) -> HwProfile:
        """The hardware profile this PE is built for."""
        return self._profile

    def elaborate(self, platform):
        p = self._profile
        m = Module()
        b, ob = p.bcast_words, p.operand_bits
        m.submodules.act = act = memory.Memory(
            shape=unsigned(b * ob), depth=2 * p.act_buf_words // b, init=[]
        )
        m.submodules.out = out = memory.Memory(
            shape=unsigned(p.acc_bits), depth=2 * p.out_buf_words, init=[]
        )
        m.submodules.split = split = memory.Memory(
            shape=split_bits(p), depth=p.out_buf_words, init=[]
        )
        ld = act.write_port(granularity=ob)
        rx = act.read_port(transparent_for=collision_ports(ld))
        wr = out.write_port()
        dr = out.read_port(transparent_for=collision_ports(wr))
        sw = split.write_port()
        sr = split.read_port(transparent_for=collision_ports(sw))
        x_addr = Signal(range(2 * p.act_buf_words))
        entry, active, dy_addr = self.entry, self.active, self.dy_addr
        if p.pipeline_depth >= 4:
            # Stage 0: the entry, its activation-buffer address (x_base + col) and the
            # SDDMM's dY address are registered before the buffers are read (one of the
            # PD stages), so no adder or entry multiplexer sits in front of a buffer.
            entry = Signal(EntryLayout(p), name="entry_r")
            active, dy_addr = Signal(name="active_r"), Signal.like(self.dy_addr, name="dy_addr_r")
            m.d.sync += [
                entry.eq(self.entry),
                active.eq(self.active),
                dy_addr.eq(self.dy_addr),
                x_addr.eq(self.x_base + self.entry.col),
            ]
        m.d.comb += [
            ld.en.eq(self.ld_en),
            ld.addr.eq(self.ld_row),
            ld.data.eq(self.ld_data),
            *([] if p.pipeline_depth >= 4 else [x_addr.eq(self.x_base + self.entry.col)]),
            rx.addr.eq(x_addr // b),
            sw.en.eq(self.split_we),
            sw.addr.eq(self.split_addr),
            sw.data.eq(self.split_data),
            # SDDMM reads dY[row] through the drain port (there is no drain in SDDMM).
            dr.addr.eq(Mux(self.sddmm, dy_addr, self.dr_addr)),
        ]
        m.d.comb += self.dr_data.eq(dr.data.as_signed())

        # Stage 1: operands arrive from the activation buffer.
        s1 = Signal(EntryLayout(p))
        s1_active = Signal()
        x_word = Signal(range(b))
        m.d.sync += [
            s1.eq(entry),
            s1_active.eq(active),
            x_word.eq(x_addr % b),
        ]
        x_row, dy_word = rx.data, dr.data[:ob]
        if p.pipeline_depth >= 5:
            # The buffers' words are registered as they leave the block RAMs, before the
            # operand's word select (one of the PD stages): the selects and operand
            # registers below act a cycle later.
            x_row, dy_word = Signal.like(rx.data, name="x_row"), Signal(ob, name="dy_word")
            s1q, s1q_active = Signal(EntryLayout(p), name="s1q"), Signal(name="s1q_active")
            x_word_q = Signal(range(b), name="x_word_q")
            m.d.sync += [
                x_row.eq(rx.data),
                dy_word.eq(dr.data[:ob]),
                s1q.eq(s1),
                s1q_active.eq(s1_active),
                x_word_q.eq(x_word),
            ]
            s1, s1_active, x_word = s1q, s1q_active, x_word_q
        lhs = Signal(op_shape(p))
        xv = word_select(x_row, x_word, b, ob)
        m.d.comb += lhs.eq(Mux(self.sddmm, dy_word.as_signed(), s1.value))
        keep = s1.real & s1_active
        mul_valid, mul_last = s1.valid, s1.last
        if p.pipeline_depth >= 3:
            # The operands are registered as they leave the buffers; the multiply runs in
            # cycle e + 2 (one of the PD stages).
            op_a, op_b = Signal(op_shape(p)), Signal(op_shape(p))
            mul_valid, mul_last = Signal(name="valid_op"), Signal(name="last_op")
            # (a product that is not kept is 0: one operand is zeroed as it is registered,
            # so nothing sits behind the multiplier)
            m.d.sync += [
                op_a.eq(Mux(keep, lhs, 0)),
                op_b.eq(xv),
                mul_valid.eq(s1.valid),
                mul_last.eq(s1.last),
            ]
            if p.pipeline_depth >= 7:
                # the operands registered once more, by the multiplier (one of the PD
                # stages), so neither hop into it crosses the PE
                op_a2, op_b2 = Signal(op_shape(p), name="op_a2"), Signal(op_shape(p), name="op_b2")
                valid2, last2 = Signal(name="valid_op2"), Signal(name="last_op2")
                m.d.sync += [
                    op_a2.eq(op_a),
                    op_b2.eq(op_b),
                    valid2.eq(mul_valid),
                    last2.eq(mul_last),
                ]
                op_a, op_b, mul_valid, mul_last = op_a2, op_b2, valid2, last2
            product = op_a * op_b
        else:
            product = Mux(keep, lhs * xv, 0)
        prod1 = Signal(prod_shape(p))
        m.d.comb += prod1.eq(product)

        # Pipeline registers between the multiplier and the accumulator (PD in all).
        stage_prod, stage_valid, stage_last = prod1, mul_valid, mul_last
        # whether the stage's product ends a result (a row's last entry, not SDDMM), carried
        # beside it so the accumulator's decision comes from a register
        stage_adv = mul_valid & mul_last & ~self.sddmm
        # (PD 3 registers the operands, PD 4 the entry too, PD 5 the buffers' words too,
        # PD 6 the product twice, PD 7 the operands twice)
        extra = min(max(p.pipeline_depth - 2, 0), 3) + (1 if p.pipeline_depth >= 7 else 0)
        n_regs = p.pipeline_depth - 1 - extra
        tree_copy = tree_product_copy(p)  # (then n_regs >= 2)
        for i in range(n_regs):
            if i == n_regs - 1 and tree_copy:
                # the adder tree's copy of the last product register, its own register so
                # that the accumulator's and the tree's adds each have theirs beside them
                # (zero outside SDDMM, the only op that uses the tree, so synthesis does
                # not merge the two)
                tree_prod = Signal(prod_shape(p), name="prod_tree")
                m.d.sync += tree_prod.eq(Mux(self.sddmm, stage_prod, 0))
                m.d.comb += self.prod.eq(tree_prod)
            nxt_prod = Signal(prod_shape(p), name=f"prod_p{i + 2}")
            nxt_valid = Signal(name=f"valid_p{i + 2}")
            nxt_last = Signal(name=f"last_p{i + 2}")
            nxt_adv = Signal(name=f"adv_p{i + 2}")
            m.d.sync += [
                nxt_prod.eq(stage_prod),
                nxt_valid.eq(stage_valid),
                nxt_last.eq(stage_last),
                nxt_adv.eq(stage_adv),
            ]
            stage_prod, stage_valid, stage_last = nxt_prod, nxt_valid, nxt_last
            stage_adv = nxt_adv
        if not tree_copy:
            m.d.comb += self.prod.eq(stage_prod)
        m.d.comb += self.prod_valid.eq(stage_valid)

        acc = Signal(acc_shape(p))
        count = Signal.like(self.count)
        # The split table is read synchronously at the slot's next value, so its flag is
        # on ``sr.data`` in the cycle the slot holds that value.
        slot, slot_next = Signal(range(p.out_buf_words + 1)), Signal(range(p.out_buf_words + 1))
        # the slot after ``slot``, (slot + 1) mod q, a register: no comparison with q sits
        # in front of the table's address (q holds still from the host's writes, all
        # before ``start``, while ``clear`` is high between ops)
        slot1 = Signal(range(p.out_buf_words + 1))
        adv = stage_adv
        total = Signal(acc_shape(p))
        res_we = Signal()
        # A result is formed in cycle e + PD and written the cycle after, in its final
        # form: the raw sum for a piece of a split row, else requant of it.
        res_v, res_raw = Signal(), Signal()
        res_addr, res_sum = Signal(range(2 * p.out_buf_words)), Signal(acc_shape(p))
        m.d.sync += [
            res_v.eq(res_we),
            res_raw.eq(self.rp & sr.data),
            res_addr.eq(self.out_base + self.rp_off + count),
            res_sum.eq(total),
        ]
        if p.drain_join:
            # (bit 0 of the table: raw; bit 1: the slot's result is joined at the drain
            # with the previous PE's last word, hw.rtl.array; ``joined`` holds it from the
            # result's write to the next clear; ``res_raw`` above takes bit 0)
            res_join = Signal(name="res_join")
            m.d.sync += res_join.eq(self.rp & sr.data[1])
            joined = Signal(name="joined")
            m.d.sync += joined.eq(Mux(self.clear, 0, joined | (res_v & res_join)))
            m.d.comb += self.joined.eq(joined)
        res_word = Mux(res_raw, res_sum, requant(p, res_sum)).as_unsigned()
        if result_write_delay(p) > 1:
            # the result is registered in its final form before the buffer and written a
            # cycle later (hw.timing.result_write_delay)
            res_v2, res_addr2 = Signal(name="res_v2"), Signal.like(res_addr, name="res_addr2")
            res_word2 = Signal.like(res_word, name="res_word2")
            m.d.sync += [res_v2.eq(res_v), res_addr2.eq(res_addr), res_word2.eq(res_word)]
            res_v, res_addr, res_word = res_v2, res_addr2, res_word2
        m.d.comb += [
            total.eq(sat_add(acc, stage_prod, p.acc_bits)),
            sr.addr.eq(slot_next),
            slot_next.eq(Mux(self.clear, 0, Mux(adv, slot1, slot))),
            # SDDMM's load writes dY[r] here (it writes no results).
            wr.addr.eq(Mux(self.dy_we, self.dy_waddr, res_addr)),
            wr.data.eq(Mux(self.dy_we, self.ld_data[:ob], res_word)),
            wr.en.eq(res_v | self.dy_we),
            self.count.eq(count),
        ]
        m.d.sync += slot.eq(slot_next)
        with m.If(self.clear):
            m.d.sync += [acc.eq(0), count.eq(0), slot1.eq(Mux(self.q > 1, 1, 0))]
        with m.Elif(adv):  # (valid, last, not SDDMM)
            m.d.comb += res_we.eq(1)
            m.d.sync += [
                acc.eq(0),
                count.eq(count + 1),
                slot1.eq(Mux(slot1 + 1 >= self.q, 0, slot1 + 1)),
            ]
        with m.Elif(stage_valid & ~self.sddmm):
            m.d.sync += acc.eq(total)
        return m
