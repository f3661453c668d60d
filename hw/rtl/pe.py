"""The sparse processing element (``docs/microarchitecture.md`` section 2).

One PE holds a double-buffered activation buffer (``2 x act_buf_words`` operands), a
double-buffered output buffer (``2 x out_buf_words`` operands), one accumulator and a
saturating multiply-accumulate pipeline of depth ``pipeline_depth`` (``PD``).

Timing (cycle ``e`` is the cycle in which a stream entry is presented on ``entry``):

- cycle ``e``: the activation buffer is addressed with ``x_base + entry.col`` (and, for the
  masked weight gradient, ``dy_addr``);
- cycle ``e + 1``: the operands arrive; their exact product enters a chain of ``PD - 1``
  registers;
- cycle ``e + PD``: the product is on ``prod`` (for the SDDMM adder tree) and, for SpMM, is
  added to the accumulator with saturation at the clock edge that ends the cycle; on a
  ``last`` entry ``requant(acc + product)`` is written to the output buffer at
  ``out_base + row count`` instead and the accumulator restarts from zero.

A stream of ``S`` entries thus finishes its last write in cycle ``S + PD - 1``, inside the
compute stage of ``S + PD`` cycles of the contract.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from hw.profiles import HwProfile

from .arith import acc_shape, op_shape, prod_shape, requant, sat_add

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
    ld_en, ld_addr, ld_data:
        Activation-buffer write port (the load stage); ``ld_addr`` includes the bank.
    entry, x_base, dy_addr, out_base, sddmm, active, clear:
        The compute stage: the broadcast stream entry, the base of the activation bank it
        reads, the address of ``dY[row]`` (SDDMM), the output bank base, the kernel
        (``sddmm`` forms ``dY[row] * X[col]`` and feeds ``prod`` only), whether this PE
        owns a sample in the tile (an idle PE contributes a zero product), and ``clear``
        (restart the accumulator and the output row count, asserted before a tile).
    dr_addr, dr_data:
        Output-buffer read port (the drain stage), data one cycle after the address.
    prod, prod_valid:
        The product at pipeline stage ``PD`` (for the adder tree).
    """

    def __init__(self, profile: HwProfile):
        self._profile = check_sparse(profile, "SparsePE")
        p = profile
        super().__init__(
            {
                "ld_en": In(1),
                "ld_addr": In(range(2 * p.act_buf_words)),
                "ld_data": In(op_shape(p)),
                "entry": In(EntryLayout(p)),
                "x_base": In(range(2 * p.act_buf_words)),
                "dy_addr": In(range(2 * p.act_buf_words)),
                "out_base": In(range(2 * p.out_buf_words)),
                "sddmm": In(1),
                "active": In(1),
                "clear": In(1),
                "dr_addr": In(range(2 * p.out_buf_words)),
                "dr_data": Out(op_shape(p)),
                "prod": Out(prod_shape(p)),
                "prod_valid": Out(1),
            }
        )

    @property
    def profile(self) -> HwProfile:
        """The hardware profile this PE is built for."""
        return self._profile

    def elaborate(self, platform):
        p = self._profile
        m = Module()
        m.submodules.act = act = memory.Memory(
            shape=op_shape(p), depth=2 * p.act_buf_words, init=[]
        )
        m.submodules.out = out = memory.Memory(
            shape=op_shape(p), depth=2 * p.out_buf_words, init=[]
        )
        ld = act.write_port()
        rx = act.read_port()
        rdy = act.read_port()
        wr = out.write_port()
        dr = out.read_port()
        m.d.comb += [
            ld.en.eq(self.ld_en),
            ld.addr.eq(self.ld_addr),
            ld.data.eq(self.ld_data),
            rx.addr.eq(self.x_base + self.entry.col),
            rdy.addr.eq(self.dy_addr),
            dr.addr.eq(self.dr_addr),
            self.dr_data.eq(dr.data),
        ]

        # Stage 1: operands arrive from the activation buffer.
        s1 = Signal(EntryLayout(p))
        s1_active = Signal()
        m.d.sync += [s1.eq(self.entry), s1_active.eq(self.active)]
        lhs = Signal(op_shape(p))
        m.d.comb += lhs.eq(Mux(self.sddmm, rdy.data, s1.value))
        prod1 = Signal(prod_shape(p))
        keep = s1.real & s1_active
        m.d.comb += prod1.eq((lhs * rx.data) * keep)

        # PD - 1 pipeline registers between the multiplier and the accumulator.
        stage_prod, stage_valid, stage_last = prod1, s1.valid, s1.last
        for i in range(p.pipeline_depth - 1):
            nxt_prod = Signal(prod_shape(p), name=f"prod_p{i + 2}")
            nxt_valid = Signal(name=f"valid_p{i + 2}")
            nxt_last = Signal(name=f"last_p{i + 2}")
            m.d.sync += [
                nxt_prod.eq(stage_prod),
                nxt_valid.eq(stage_valid),
                nxt_last.eq(stage_last),
            ]
            stage_prod, stage_valid, stage_last = nxt_prod, nxt_valid, nxt_last
        m.d.comb += [self.prod.eq(stage_prod), self.prod_valid.eq(stage_valid)]

        acc = Signal(acc_shape(p))
        row = Signal(range(p.out_buf_words + 1))
        total = Signal(acc_shape(p))
        m.d.comb += [
            total.eq(sat_add(acc, stage_prod, p.acc_bits)),
            wr.addr.eq(self.out_base + row),
            wr.data.eq(requant(p, total)),
        ]
        with m.If(self.clear):
            m.d.sync += [acc.eq(0), row.eq(0)]
        with m.Elif(stage_valid & ~self.sddmm):
            with m.If(stage_last):
                m.d.comb += wr.en.eq(1)
                m.d.sync += [acc.eq(0), row.eq(row + 1)]
            with m.Else():
                m.d.sync += acc.eq(total)
        return m
