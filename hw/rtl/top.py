"""Top levels of the accelerator and their host interface.

``build_top(profile)`` returns the top :class:`amaranth.lib.wiring.Component` of a profile:
:class:`SparseTop` for ``kind="sparse"``, :class:`~hw.rtl.systolic_top.SystolicTop` for
``kind="systolic"``. The generated Verilog module is named ``mast_accel_<profile.name>``.

Host interface (identical for both kinds)
-----------------------------------------
=================  =====  ===============================================================
port               dir    meaning
=================  =====  ===============================================================
``clk``            in     core clock; everything is sampled on its rising edge
``rst``            in     synchronous reset, active high
``host__sel``      in     memory select, :data:`MEMORY_IDS` (``op`` = op registers)
``host__addr``     in     32-bit word address inside the selected memory
``host__wdata``    in     write data, :func:`host_data_bits` wide (low bits used)
``host__we``       in     write ``host__wdata`` to ``sel``/``addr`` at this edge
``host__re``       in     read ``sel``/``addr``: ``host__rdata`` holds the word
                          :func:`host_read_latency` cycles later (1; 2 on the profiles
                          with a control lag); raw bits, zero-extended (signed formats
                          sign-extend from the memory's width); reads may follow each
                          other every cycle
``host__rdata``    out    read data
``start``          in     sampled at a rising edge while idle: run the loaded op (at
                          least ``OP_SETUP_CYCLES`` = 8 edges after the last
                          op-register write, and after every other write; with
                          ``host__re`` low at that edge and the one before it)
``busy``           out    high from the edge after ``start`` until ``done``
``done``           out    one-cycle pulse; the op's cycle count is the number of rising
                          edges after the one that sampled ``start`` up to and including
                          the first one that samples ``done`` high
=================  =====  ===============================================================

The host port may be used only while ``busy`` is low. One op runs per ``start``: the
host writes the op registers (and the memories the op reads), pulses ``start``, waits for
``done``, and reads the results.

Memories (sparse profiles; names as :meth:`hw.program.Op.memory_images`; flat word
addresses; "bank-major" means ``address = bank * words_per_bank + offset``):

- ``op``: the op registers :data:`~hw.rtl.controller.REGISTERS` (32 bits each):
  ``kind`` (:data:`~hw.rtl.controller.OP_KINDS`), ``k``, ``n``, ``m`` (the op's K, N, M),
  ``s_len`` (stream entries of the op), ``w_base`` (first entry in the weight SRAM),
  ``x_base``/``x_stride`` (word of ``X[:, tP+p]`` in activation bank ``p`` for tile ``t``:
  ``x_base + t * x_stride``), ``dy_base``/``dy_stride`` (same for ``dY``, SDDMM),
  ``y_base``/``y_stride`` (same for ``Y[:, tP+p]`` in output bank ``p``), ``row0`` (first
  row of an SDDMM chunk); row-parallel: ``nmax`` / ``qmax`` (largest entries / pieces of
  a PE) and ``red_adds`` (``len(red_piece) - len(red_row)``, adds per sample).
- ``weight_val`` / ``weight_col`` / ``weight_last`` / ``weight_token``: the fields of the
  ``weight_sram_words`` stream entries, ``n_pe`` banks of ``weight_bank_words``,
  bank-major; ``bank_val`` / ``bank_col`` / ``bank_end`` are the same memories seen as the
  row-parallel PE banks.
- ``act_sram`` / ``out_sram``: ``n_pe`` banks of ``act_sram_words / n_pe`` words,
  bank-major; ``out_sram`` words are accumulators (``acc_bits``), holding sign-extended
  operands except for the raw partial sums of split rows.
- ``grad``: ``grad_buf_words`` accumulators ``g`` of an SDDMM chunk (before its last tile).
- ``grad_out``: ``grad_buf_words`` operands, ``requant(g[e])`` of the chunk's ``e``-th
  non-zero after the last tile.
- ``bank_ptr`` / ``piece_ptr``: ``n_pe + 1`` entries each (row-parallel entries and pieces
  per PE); ``piece_split``: one bit per piece, stored in the owning PE, so ``piece_ptr``
  must be written first; ``piece_pe`` / ``red_ptr`` / ``red_piece``: the reduction
  schedule (:mod:`hw.rtl.reduce`; a ``piece_pe`` word packs the piece's PE, slot and
  its PE's piece count, :func:`hw.program.piece_words`).

Memories (systolic profiles): see :mod:`hw.rtl.systolic_top`.
"""

from __future__ import annotations

from collections.abc import Mapping

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.fit import piece_word_fields
from hw.profiles import HwProfile
from hw.timing import control_lag

from .array import PEArray
from .controller import Controller, entry_bits
from .host import HostSignature, forward_host
from .pe import check_sparse

__all__ = [
    "MEMORY_IDS",
    "SparseTop",
    "build_top",
    "host_data_bits",
    "host_read_latency",
    "top_name",
]

MEMORY_IDS: Mapping[str, int] = {
    "op": 0,
    "weight_val": 1,
    "weight_col": 2,
    "weight_last": 3,
    "weight_token": 4,
    "act_sram": 5,
    "out_sram": 6,
    "grad_out": 7,
    "grad": 8,
    "weight_tiles": 9,
    "psum": 10,
    "bank_val": 1,
    "bank_col": 2,
    "bank_end": 3,
    "bank_ptr": 11,
    "piece_ptr": 12,
    "piece_split": 13,
    "piece_pe": 14,
    "red_ptr": 15,
    "red_piece": 16,
}
"""Host memory select value per memory name (one table for both kinds of top)."""

SEL_BITS = 5
"""Width of ``host__sel``."""


def top_name(profile: HwProfile) -> str:
    """Verilog module name of a profile's top level."""
    return f"mast_accel_{profile.name}"


def host_read_latency(profile: HwProfile) -> int:
    """Periods from the edge that samples a host read's address to the edge before which
    ``host__rdata`` holds its word: 1, or 2 with :func:`hw.timing.control_lag`, where
    every banked memory's word is registered by its bank before any multiplexer (the
    host's reads take the registered words through the bank trees' first level, so a
    block RAM's output feeds one register) and the other memories' words are registered
    once more to match."""
    return 1 + control_lag(profile)


def host_data_bits(profile: HwProfile) -> int:
    """Width of ``host__wdata`` / ``host__rdata``: the widest memory word, at least 32."""
    widths = [32, profile.acc_bits, profile.operand_bits]
    if profile.is_sparse:
        widths += [entry_bits(profile), sum(bits for _, bits in piece_word_fields(profile))]
    return max(widths)


def host_port(profile: HwProfile) -> dict:
    """The members shared by every top's signature."""
    return {
        "host": In(HostSignature(SEL_BITS, host_data_bits(profile))),
        "start": In(1),
        "busy": Out(1),
        "done": Out(1),
    }


class SparseTop(wiring.Component):
    """Top level of a sparse profile: :class:`Controller` + :class:`PEArray`."""

    def __init__(self, profile: HwProfile):
        self._profile = check_sparse(profile, "SparseTop")
        super().__init__(host_port(profile))

    @property
    def profile(self) -> HwProfile:
        return self._profile

    def elaborate(self, platform):
        p = self._profile
        m = Module()
        shape = (SEL_BITS, host_data_bits(p))
        m.submodules.ctrl = ctrl = Controller(p, MEMORY_IDS, *shape)
        m.submodules.array = array = PEArray(p, MEMORY_IDS, *shape)
        forward_host(m, self.host, ctrl.host, array.host)
        busy, done = ctrl.busy, ctrl.done
        if control_lag(p):
            # The array acts a cycle behind the controller (hw.timing.control_lag): done
            # comes a cycle after the controller's, and busy holds until then.
            done = Signal(name="done_q")
            m.d.sync += done.eq(ctrl.done)
            busy = ctrl.busy | done
            m.d.comb += [array.grp_busy.eq(ctrl.grp_busy), array.grp_clear.eq(ctrl.grp_clear)]
        m.d.comb += [
            self.host.rdata.eq(ctrl.host.rdata | array.host.rdata),
            ctrl.start.eq(self.start),
            self.busy.eq(busy),
            self.done.eq(done),
            array.busy.eq(ctrl.busy),
            array.ctl.eq(ctrl.ctl),
        ]
        return m


def build_top(profile: HwProfile | str) -> wiring.Component:
    """The top-level component of ``profile`` (a profile or a built-in profile name)."""
    from hw.profiles import load_profile

    profile = load_profile(profile)
    if profile.is_sparse:
        return SparseTop(profile)
    from .systolic_top import SystolicTop

    return SystolicTop(profile)
