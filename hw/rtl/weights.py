"""The global weight SRAM: ``n_pe`` banks of ``weight_bank_words`` stream entries.

Each entry has four fields kept in their own memories (``weight_val``, ``weight_col``,
``weight_last`` and ``weight_token``; the row-parallel names ``bank_val``, ``bank_col`` and
``bank_end`` address the same words; with :func:`hw.timing.control_lag` the column and the
row end share one block RAM, a lane each, and the token is forced into block RAM). Host
addresses are flat and bank-major (``address = bank * weight_bank_words + offset``), which
is at once the global stream address of the sample-parallel dataflow and PE ``p``'s bank
of the row-parallel one.
Every bank reads the same offset each cycle (with the control lag each group of banks from
its own copy of the controller's address registers) and its word is registered as it leaves the
SRAM (data two cycles after the address): the sample-parallel stream takes the word of
the bank that holds its address, the row-parallel PEs one bank each. With ``PD >= 4`` and
more than one group of banks the stream's word comes through a registered two-level tree
instead (:mod:`hw.rtl.banks`, same timing); with the control lag the trees take the
banks' registered words, a cycle later (:func:`stream_latency`). Host reads take the SRAM's
output directly (one cycle); with the control lag the banks' registered words through the
stream's first-level trees (two cycles, :func:`hw.rtl.top.host_read_latency`), so each
SRAM output feeds its word's register alone.
"""

from __future__ import annotations

from collections.abc import Mapping

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from hw.profiles import HwProfile
from hw.timing import control_lag

from .arith import op_shape
from .banks import BANK_GROUP, bank_groups, group_words, kept_copy, pick, two_level
from .host import HostSignature, bank_split, collision_ports, require_memories
from .pe import check_sparse

__all__ = ["FIELDS", "StreamFields", "WeightSRAM", "stream_latency"]

FIELDS: tuple[str, ...] = ("weight_val", "weight_col", "weight_last", "weight_token")
"""Host memory names of the entry fields."""


def stream_latency(profile: HwProfile) -> int:
    """Cycles from a sample-parallel stream address to its entry on ``sp_entry``: 2 (the
    SRAM's read and its registered output), 3 with :func:`hw.timing.control_lag`, where the
    stream's trees take each bank's registered word. The controller addresses entry ``e``
    that many cycles ahead; no op's cycle count depends on it."""
    return 3 if control_lag(profile) else 2


class StreamFields(data.StructLayout):
    """The stored fields of one stream entry."""

    def __init__(self, profile: HwProfile):
        super().__init__(
            {"value": op_shape(profile), "col": profile.index_bits, "last": 1, "token": 1}
        )


class WeightSRAM(wiring.Component):
    """Banked weight SRAM with its host port (ids of :data:`FIELDS` from ``host_ids``).

    Ports
    -----
    busy, rp:
        An op runs (the host port is served only when not); the row-parallel mode.
    sp_addr, sp_entry:
        Flat stream address and, two cycles later, its entry.
    rp_addr, banks:
        Offset read in every bank in row-parallel mode and, two cycles later, the entries.
    grp_busy, grp_rp, grp_sp_addr, grp_rp_addr:
        With the control lag, per group of banks its own copy of ``busy``, ``rp`` and both
        addresses (the same values, from registers the controller sets with the shared
        ones, kept apart in synthesis); each group's banks read these instead.
    """

    def __init__(
        self, profile: HwProfile, host_ids: Mapping[str, int], sel_bits: int, data_bits: int
    ):
        self._profile = check_sparse(profile, "WeightSRAM")
        require_memories("WeightSRAM", host_ids, FIELDS)
        self._ids = dict(host_ids)
        p = profile
        members = {
            "host": In(HostSignature(sel_bits, data_bits)),
            "busy": In(1),
            "rp": In(1),
            "sp_addr": In(range(p.weight_sram_words)),
            "sp_entry": Out(StreamFields(p)),
            "rp_addr": In(range(p.weight_bank_words)),
            "banks": Out(data.ArrayLayout(StreamFields(p), p.n_pe)),
        }
        if control_lag(p):
            n_g = len(bank_groups(p.n_pe))
            members |= {
                "grp_busy": In(n_g),
                "grp_rp": In(n_g),
                "grp_sp_addr": In(data.ArrayLayout(range(p.weight_sram_words), n_g)),
                "grp_rp_addr": In(data.ArrayLayout(range(p.weight_bank_words), n_g)),
            }
        super().__init__(members)

    @property
    def profile(self) -> HwProfile:
        return self._profile

    def elaborate(self, platform):
        p = self._profile
        m = Module()
        host, depth = self.host, p.weight_bank_words
        hbank, hoff = bank_split(m, host.addr, depth, p.n_pe, "host")
        sbank, soff = bank_split(m, self.sp_addr, depth, p.n_pe, "stream")
        offset = Mux(self.busy, Mux(self.rp, self.rp_addr, soff), hoff)
        rbank, rsel = Signal.like(sbank), Signal.like(host.sel)
        sbank2 = Signal.like(sbank)
        shared = control_lag(p) > 0
        # With the control lag the banks read the stream's address whenever the host is
        # not reading, idle too: the stream's first entry is addressed up to a cycle before
        # ``busy`` rises, in the cycle that samples ``start`` (stream_latency).
        stream = (self.busy | ~host.re) if shared else self.busy
        m.d.sync += [rbank.eq(Mux(stream, sbank, hbank)), rsel.eq(host.sel), sbank2.eq(rbank)]
        widths = {"weight_val": p.operand_bits, "weight_col": p.index_bits}
        attr = dict(zip(FIELDS, ("value", "col", "last", "token"), strict=True))
        data = {name: [] for name in FIELDS}
        # Each field in a memory of its own per bank. With the control lag no field takes
        # distributed RAM, whose read multiplexers and address fan-out would sit on the
        # stream's path: the column and the row end share a block RAM (a lane of
        # ``index_bits`` each, written lane by lane) and the token takes one of its own.
        # (A third lane for the token would map onto the pseudo-dual-port DP16KD mode with
        # byte enables, where Yosys 0.70's abc9 stops on an assertion.)
        lane = p.index_bits
        # With the control lag each group of banks reads at its own copy of the addresses
        # (registers the controller sets with the originals), so no address register
        # fans out to every bank across the die.
        # Each group also picks its stream word by a register of its own (the bank within
        # the group, set with ``rbank`` from the group's copies), so no select register
        # fans out to every group's first-level tree.
        # Each bank picks between the stream and the walk by its own register of the op
        # kind (a copy of its group's, which holds still from OP_SETUP_CYCLES edges before
        # ``start``).
        bank_offset, group_sel = [], []
        for g, banks in enumerate(bank_groups(p.n_pe)) if shared else ():
            g_sbank, g_soff = bank_split(m, self.grp_sp_addr[g], depth, p.n_pe, f"grp{g}_stream")
            g_read = self.grp_busy[g] | ~host.re
            for b in banks:
                b_rp = kept_copy(m, self.grp_rp[g], f"bank{b}_rp")
                bank_offset.append(Mux(g_read, Mux(b_rp, self.grp_rp_addr[g], g_soff), hoff))
            g_local = Mux(g_read, g_sbank, hbank) % BANK_GROUP
            group_sel.append(kept_copy(m, g_local[: (BANK_GROUP - 1).bit_length()], f"grp{g}_rsel"))
        mems = {name: (name,) for name in FIELDS}
        if shared:
            mems = {
                "weight_val": ("weight_val",),
                "weight_meta": FIELDS[1:3],
                "weight_token": ("weight_token",),
            }
        for mem_name, names in mems.items():
            for b in range(p.n_pe):
                meta = len(names) > 1
                width = len(names) * lane if meta else widths.get(mem_name, 1)
                attrs = {"ram_style": "block"} if shared and width == 1 else None
                mem = memory.Memory(shape=width, depth=depth, init=[], attrs=attrs)
                m.submodules[f"{mem_name}{b}"] = mem
                wr = mem.write_port(granularity=lane if meta else None)
                rd = mem.read_port(transparent_for=collision_ports(wr))
                m.d.comb += [
                    wr.en.eq(
                        Cat(
                            *(
                                host.we
                                & (host.sel == self._ids[x])
                                & (hbank == b)
                                & ~(self.grp_busy[b // BANK_GROUP] if shared else self.busy)
                                for x in names
                            )
                        )
                    ),
                    wr.addr.eq(hoff),
                    wr.data.eq(host.wdata[:lane].replicate(len(names)) if meta else host.wdata),
                    rd.addr.eq(bank_offset[b] if shared else offset),
                ]
                for j, x in enumerate(names):
                    field = rd.data[j * lane : j * lane + widths.get(x, 1)] if meta else rd.data
                    word = Signal.like(field, name=f"{x}{b}_q")
                    m.d.sync += word.eq(field)
                    m.d.comb += getattr(self.banks[b], attr[x]).eq(word)
                    data[x].append((field, word))
        # The stream entry and the host read pick a bank with one-hot multiplexers; with
        # PD >= 4 and several groups the stream's word is picked within each group as it
        # leaves the SRAMs (``rbank`` is its bank), registered, and its group picked the
        # next cycle, so the entry fans in from a register per group, not per bank.
        # With the control lag the trees take the banks' registered words instead (each
        # bank's word register is the only load on its SRAM's output in the stream's
        # path), with every select a cycle later: the entry comes three cycles after its
        # address (:func:`stream_latency`).
        group_picked = {}
        if shared:
            group_sel2 = [kept_copy(m, x, f"grp{g}_rsel2") for g, x in enumerate(group_sel)]
            sbank3 = Signal.like(sbank, name="sbank3")
            m.d.sync += sbank3.eq(sbank2)
            for n in FIELDS:
                group_picked[n], regs = group_words(
                    m, group_sel2, [w for _, w in data[n]], f"{n}_sp"
                )
                entry = pick(m, sbank3 // BANK_GROUP, regs, f"{n}_sp")
                m.d.comb += getattr(self.sp_entry, attr[n]).eq(entry)
        elif p.pipeline_depth >= 4 and two_level(p.n_pe):
            for n in FIELDS:
                words = [rd for rd, _ in data[n]]
                group_picked[n], regs = group_words(m, rbank % BANK_GROUP, words, f"{n}_sp")
                entry = pick(m, sbank2 // BANK_GROUP, regs, f"{n}_sp")
                m.d.comb += getattr(self.sp_entry, attr[n]).eq(entry)
        else:
            with m.Switch(sbank2):
                for b in range(p.n_pe):
                    with m.Case(b):
                        m.d.comb += [
                            getattr(self.sp_entry, attr[n]).eq(data[n][b][1]) for n in FIELDS
                        ]
        if shared:
            # (with the control lag the host's reads take the banks' registered words
            # through the stream's first-level trees, a cycle later (two in all,
            # hw.rtl.top.host_read_latency): while the host reads each group's select is
            # its bank within the group, so each group's candidate is the host's word,
            # and one of four groups is picked here instead of one of P banks; each SRAM's
            # output feeds its word's register alone)
            rsel2 = Signal.like(rsel, name="rsel2")
            m.d.sync += rsel2.eq(rsel)
            with m.Switch(sbank2 // BANK_GROUP):
                for g in range(len(bank_groups(p.n_pe))):
                    with m.Case(g):
                        with m.Switch(rsel2):
                            for name in FIELDS:
                                with m.Case(self._ids[name]):
                                    m.d.comb += host.rdata.eq(group_picked[name][g])
            return m
        with m.Switch(rbank):
            for b in range(p.n_pe):
                with m.Case(b):
                    with m.Switch(rsel):
                        for name in FIELDS:
                            with m.Case(self._ids[name]):
                                m.d.comb += host.rdata.eq(data[name][b][0])
        return m
