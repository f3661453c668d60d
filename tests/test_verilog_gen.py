"""Verilog generation (:func:`hw.rtl.verilog.convert`): the fast path that leaves all-zero
memory contents out of Amaranth's RTLIL writes the same Verilog as converting everything
and removing the zero ``initial`` blocks from the text; contents that are not all zero
are kept."""

from __future__ import annotations

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.profiles import get_profile
from hw.rtl.top import build_top, top_name
from hw.rtl.verilog import convert
from rtl.harness import BLOCKS, block_name


class _Rom(wiring.Component):
    """A memory with power-on contents ``init`` and one read port."""

    def __init__(self, init):
        self._init = init
        super().__init__({"addr": In(2), "data": Out(8)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = Memory(shape=8, depth=4, init=self._init)
        rd = mem.read_port(domain="comb")
        m.d.comb += [rd.addr.eq(self.addr), self.data.eq(rd.data)]
        return m


@pytest.mark.parametrize("name", ["sparse_pe_4", "systolic_2x2"])
def test_top_level_verilog_equals_the_reference_conversion(name):
    p = get_profile(name)
    fast = convert(build_top(p), top_name(p))
    assert fast == convert(build_top(p), top_name(p), fast=False)


@pytest.mark.parametrize(
    "block, profile", [("pe", "sparse_pe_4"), ("gradient", "sparse_pe_4"),
                       ("systolic_array", "systolic_2x2")],
)  # fmt: skip
def test_block_verilog_equals_the_reference_conversion(block, profile):
    p = get_profile(profile)
    name = block_name(block, p)
    assert convert(BLOCKS[block](p), name) == convert(BLOCKS[block](p), name, fast=False)


def test_memory_contents_that_are_not_all_zero_are_kept():
    text = convert(_Rom([1, 2, 3, 0]), "rom")
    assert text == convert(_Rom([1, 2, 3, 0]), "rom", fast=False)
    assert "8'h01" in text and "8'h02" in text and "8'h03" in text
    zero = convert(_Rom([0, 0, 0, 0]), "rom")
    assert zero == convert(_Rom([0, 0, 0, 0]), "rom", fast=False)
    assert "initial" not in zero
