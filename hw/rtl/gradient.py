"""The SDDMM reduction path: a pipelined saturating adder tree and the gradient SRAM.

For every stream entry ``e`` (cycle ``e`` of the compute stage) the ``P`` products arrive
in cycle ``e + PD``; the tree sums them pairwise, ``(0+1), (2+3), ...`` padded with zeros
to a power of two and saturating at every node, one registered level per cycle, so the
root is ready in cycle ``e + PD + TD``. In that cycle ``sat_acc(g[e] + root)`` is formed
(``g`` read as zero in the first tile) and in the next it is written back to ``g[e]``,
or, in the last tile, its ``requant`` to the weight-gradient output memory ``dw``.
"""

from __future__ import annotations

from collections.abc import Mapping

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In

from hw.profiles import HwProfile

from .arith import acc_shape, op_shape, prod_shape, requant, sat_add
from .controller import tree_depth
from .host import HostSignature, collision_ports, require_memories
from .pe import check_sparse

__all__ = ["GradientUnit"]


class GradientUnit(wiring.Component):
    """Adder tree, gradient SRAM (``grad``, accumulators) and output memory (``dw``).

    Ports
    -----
    prods:
        The ``P`` PE products at pipeline stage ``PD``.
    valid, eidx, first, last:
        Entry meta data in the entry's cycle ``e``: a non-zero of an SDDMM stream, its
        index in the chunk, and whether the tile is the first / last one.
    busy:
        Whether an op runs (the host port is served only when it does not).
    host:
        Host access to ``grad`` and ``dw`` (ids from ``host_ids``).
    """

    def __init__(
        self, profile: HwProfile, host_ids: Mapping[str, int], sel_bits: int, data_bits: int
    ):
        self._profile = check_sparse(profile, "GradientUnit")
        require_memories("GradientUnit", host_ids, ("grad", "grad_out"))
        self._ids = dict(host_ids)
        p = profile
        super().__init__(
            {
                "prods": In(prod_shape(p)).array(p.n_pe),
                "valid": In(1),
                "eidx": In(range(p.grad_buf_words + 1)),
                "first": In(1),
                "last": In(1),
                "busy": In(1),
                "host": In(HostSignature(sel_bits, data_bits)),
            }
        )

    @property
    def profile(self) -> HwProfile:
        return self._profile

    def elaborate(self, platform):
        p = self._profile
        m = Module()
        pd, td = p.pipeline_depth, tree_depth(p.n_pe)

        def delay(sig, n, name):
            for i in range(n):
                nxt = Signal.like(sig, name=f"{name}_d{i + 1}")
                m.d.sync += nxt.eq(sig)
                sig = nxt
            return sig

        nodes = [Signal(acc_shape(p), name=f"leaf{i}") for i in range(1 << td)]
        for i, leaf in enumerate(nodes):
            m.d.comb += leaf.eq(self.prods[i] if i < p.n_pe else Const(0, acc_shape(p)))
        for level in range(td):
            nxt = [Signal(acc_shape(p), name=f"t{level + 1}_{i}") for i in range(len(nodes) // 2)]
            for i, node in enumerate(nxt):
                m.d.sync += node.eq(sat_add(nodes[2 * i], nodes[2 * i + 1], p.acc_bits))
            nodes = nxt
        root = nodes[0]

        # The sum of entry e is formed in cycle e + PD + TD and written in the cycle after
        # (the last tile's last write falls in the compute stage's handshake cycle). g[e]
        # is read two cycles ahead and registered as it leaves the SRAM (one cycle ahead
        # when PD + TD = 1), so neither SRAM output nor SRAM input meets an adder in the
        # same cycle. Entries of a chunk have distinct addresses, and one tile's write of
        # g[e] precedes the next tile's read of it by a whole step.
        lat = pd + td
        ahead = 2 if lat >= 2 else 1
        valid = delay(self.valid, lat + 1, "valid")
        eidx = delay(self.eidx, lat + 1, "eidx")
        first = delay(self.first, lat, "first")
        last = delay(self.last, lat + 1, "last")
        eidx_early = delay(self.eidx, lat - ahead, "eidx_rd")

        m.submodules.grad = grad = memory.Memory(
            shape=acc_shape(p), depth=p.grad_buf_words, init=[]
        )
        m.submodules.dw = dw = memory.Memory(shape=op_shape(p), depth=p.grad_buf_words, init=[])
        gw, dww = grad.write_port(), dw.write_port()
        gr = grad.read_port(transparent_for=collision_ports(gw))
        dwr = dw.read_port(transparent_for=collision_ports(dww))
        host = self.host
        hg = host.sel == self._ids["grad"]
        hd = host.sel == self._ids["grad_out"]
        m.d.comb += gr.addr.eq(Mux(self.busy, eidx_early, host.addr))
        m.d.comb += dwr.addr.eq(host.addr)

        g_old = gr.data
        if ahead == 2:
            g_old = Signal(acc_shape(p), name="g_old")
            m.d.sync += g_old.eq(gr.data)
        total = Signal(acc_shape(p))
        m.d.sync += total.eq(sat_add(Mux(first, 0, g_old), root, p.acc_bits))
        with m.If(self.busy):
            m.d.comb += [
                gw.en.eq(valid & ~last),
                gw.addr.eq(eidx),
                gw.data.eq(total),
                dww.en.eq(valid & last),
                dww.addr.eq(eidx),
                dww.data.eq(requant(p, total)),
            ]
        with m.Else():
            m.d.comb += [
                gw.en.eq(host.we & hg),
                gw.addr.eq(host.addr),
                gw.data.eq(host.wdata),
                dww.en.eq(host.we & hd),
                dww.addr.eq(host.addr),
                dww.data.eq(host.wdata),
            ]
        rsel = Signal.like(host.sel)
        m.d.sync += rsel.eq(host.sel)
        m.d.comb += host.rdata.eq(
            Mux(
                rsel == self._ids["grad"],
                gr.data.as_unsigned(),
                Mux(rsel == self._ids["grad_out"], dwr.data.as_unsigned(), 0),
            )
        )
        return m
