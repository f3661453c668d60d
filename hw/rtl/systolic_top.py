"""Top level of a systolic profile: memories, fold sequencer and the host interface.

Host interface: as :mod:`hw.rtl.top`. Memories (flat word addresses):

- ``op``: op registers ``k``, ``n``, ``m`` of :data:`~hw.rtl.controller.REGISTERS` (the
  GEMM ``Y (N x M) = W (N x K) X (K x M)``);
- ``weight_tiles``: :meth:`hw.program.Op.memory_images` layout, fold ``f`` cell ``(i, j)``
  at ``(f R + i) C + j``; stored as rows of ``C`` operands (row ``f R + i``);
- ``act_sram``: ``X[k, m]`` at ``k M + m`` (one bank with ``R`` read ports);
- ``out_sram``: ``Y[nf C + j, m]`` at ``(nf M + m) C + j`` (rows of ``C`` operands written
  once per sample by the deskewed bottom row);
- ``psum``: partial sums between ``k``-folds, same layout as ``out_sram``, accumulators.

Folds run ``n``-fold outer, ``k``-fold inner; ``cycles = ceil(K/R) ceil(N/C) (2R + C + M - 2)``.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import memory, wiring

from hw.fit import out_rows
from hw.profiles import HwProfile

from .arith import acc_shape, op_shape, requant, word_select
from .controller import COUNT_BITS, REGISTERS
from .host import collision_ports
from .systolic import SystolicArray, check_systolic
from .top import MEMORY_IDS, SEL_BITS, host_data_bits, host_port

__all__ = ["SystolicTop"]


class SystolicTop(wiring.Component):
    """Top level of a systolic profile (module ``mast_accel_<name>``)."""

    def __init__(self, profile: HwProfile):
        self._profile = check_systolic(profile, "SystolicTop")
        if profile.weight_sram_words < profile.n_pe:
            raise ValueError(
                f"SystolicTop: weight_sram_words={profile.weight_sram_words} must hold one "
                f"tile of {profile.n_pe} words"
            )
        self._shape = (SEL_BITS, host_data_bits(profile))
        super().__init__(host_port(profile))

    @property
    def profile(self) -> HwProfile:
        return self._profile

    def elaborate(self, platform):
        p = self._profile
        m = Module()
        r, c, ob, ab = p.rows, p.cols, p.operand_bits, p.acc_bits
        host = self.host
        ids = MEMORY_IDS
        busy = Signal()
        m.d.comb += self.busy.eq(busy)
        can_write = host.we & ~busy

        regs = {name: Signal(32, name=f"reg_{name}") for name in ("k", "n", "m")}
        with m.If(can_write & (host.sel == ids["op"])):
            for name, sig in regs.items():
                with m.If(host.addr == REGISTERS[name]):
                    m.d.sync += sig.eq(host.wdata[:32])
        k, n, mm = (regs[x][:COUNT_BITS] for x in ("k", "n", "m"))

        m.submodules.array = arr = SystolicArray(p)
        m.submodules.wt = wt = memory.Memory(
            shape=unsigned(c * ob), depth=p.weight_sram_words // c, init=[]
        )
        m.submodules.act = act = memory.Memory(shape=op_shape(p), depth=p.act_sram_words, init=[])
        rows = out_rows(p)
        m.submodules.out = out = memory.Memory(shape=unsigned(c * ob), depth=rows, init=[])
        m.submodules.psum = psum = memory.Memory(shape=unsigned(c * ab), depth=rows, init=[])
        wt_w, act_w = wt.write_port(granularity=ob), act.write_port()
        out_w, ps_w = out.write_port(), psum.write_port()
        wt_r = wt.read_port(transparent_for=collision_ports(wt_w))
        act_r = [act.read_port(transparent_for=collision_ports(act_w)) for _ in range(r)]
        out_r = out.read_port(transparent_for=collision_ports(out_w))
        ps_r, ps_h = (psum.read_port(transparent_for=collision_ports(ps_w)) for _ in range(2))

        hrow, hword = Signal(32), Signal(range(max(2, c)))
        m.d.comb += [hrow.eq(host.addr // c), hword.eq(host.addr % c)]
        m.d.comb += [
            wt_w.addr.eq(hrow),
            wt_w.data.eq(host.wdata[:ob].replicate(c)),
            wt_w.en.eq(Mux(can_write & (host.sel == ids["weight_tiles"]), 1 << hword, 0)),
            act_w.en.eq(can_write & (host.sel == ids["act_sram"])),
            act_w.addr.eq(host.addr),
            act_w.data.eq(host.wdata),
            out_r.addr.eq(hrow),
            ps_h.addr.eq(hrow),
        ]
        rsel, rword = Signal.like(host.sel), Signal.like(hword)
        m.d.sync += [rsel.eq(host.sel), rword.eq(hword)]
        with m.Switch(rsel):
            with m.Case(ids["out_sram"]):
                m.d.comb += host.rdata.eq(word_select(out_r.data, rword, c, ob).as_unsigned())
            with m.Case(ids["psum"]):
                m.d.comb += host.rdata.eq(word_select(ps_h.data, rword, c, ab).as_unsigned())
            with m.Case(ids["act_sram"]):
                m.d.comb += host.rdata.eq(act_r[0].data.as_unsigned())

        # Fold sequencer: phase 0 shifts the tile in (R cycles), phase 1 streams.
        phase, t = Signal(), Signal(COUNT_BITS)
        wrow, k0, n0 = (Signal(COUNT_BITS, name=x) for x in ("wrow", "k0", "n0"))
        xbase, prow = Signal(COUNT_BITS), Signal(COUNT_BITS)
        stream_last = mm + (r + c - 3)
        last_t = Mux(phase, t == stream_last, t == r - 1)
        last_k, last_n = k0 + r >= k, n0 + c >= n
        final = busy & phase & last_t & last_k & last_n
        m.d.comb += self.done.eq(final)
        with m.If(~busy):
            with m.If(self.start):
                m.d.sync += [
                    busy.eq(1),
                    phase.eq(0),
                    t.eq(0),
                    wrow.eq(0),
                    k0.eq(0),
                    n0.eq(0),
                    xbase.eq(0),
                    prow.eq(0),
                ]
        with m.Elif(last_t):
            m.d.sync += [t.eq(0), phase.eq(~phase)]
            with m.If(final):
                m.d.sync += busy.eq(0)
            with m.Elif(phase):
                m.d.sync += wrow.eq(wrow + r)
                with m.If(last_k):
                    m.d.sync += [k0.eq(0), xbase.eq(0), n0.eq(n0 + c), prow.eq(prow + mm)]
                with m.Else():
                    m.d.sync += [k0.eq(k0 + r), xbase.eq(xbase + mm * r)]
        with m.Else():
            m.d.sync += t.eq(t + 1)

        # Reads one cycle ahead: the tile row for the next shift, sample u of each row.
        m.d.comb += wt_r.addr.eq(
            Mux(~busy, r - 1, Mux(phase, wrow + (2 * r - 1), wrow + (r - 2) - t))
        )
        u = Mux(busy & phase, t + 1, 0)
        for i, port in enumerate(act_r):
            addr = xbase + mm * i + u - i
            m.d.comb += port.addr.eq(Mux(busy | (i != 0), addr, host.addr))
        m.d.comb += ps_r.addr.eq(prow + u)

        m.d.comb += arr.shift.eq(busy & ~phase)
        for j in range(c):
            m.d.comb += arr.w_row[j].eq(word_select(wt_r.data, j, c, ob))
        for i in range(r):
            m.d.comb += arr.x[i].eq(act_r[i].data)
        first_k = k0 == 0
        for j in range(c):
            top = word_select(ps_r.data, j, c, ab)
            for d in range(j):
                nxt = Signal(acc_shape(p), name=f"top{j}_d{d + 1}")
                m.d.sync += nxt.eq(top)
                top = nxt
            m.d.comb += arr.top[j].eq(Mux(first_k, 0, top))

        # Deskew the bottom row and write sample t - (R + C - 2) of every column.
        aligned = []
        for j in range(c):
            b = arr.bottom[j]
            for d in range(c - 1 - j):
                nxt = Signal(acc_shape(p), name=f"bot{j}_d{d + 1}")
                m.d.sync += nxt.eq(b)
                b = nxt
            aligned.append(b)
        write = busy & phase & (t >= r + c - 2)
        row = prow + t - (r + c - 2)
        m.d.comb += [
            out_w.addr.eq(row),
            out_w.data.eq(Cat([requant(p, v).as_unsigned()[:ob] for v in aligned])),
            out_w.en.eq(write & last_k),
            ps_w.addr.eq(row),
            ps_w.data.eq(Cat([v.as_unsigned() for v in aligned])),
            ps_w.en.eq(write & ~last_k),
        ]
        return m
