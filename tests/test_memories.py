"""The physical memories the energy model prices are the ones the RTL builds."""

from __future__ import annotations

import re

import pytest
from amaranth.back import rtlil

from cost_models.energy import action_energy_pj
from hw.memories import access_macros
from hw.profiles import get_profile
from hw.rtl import build_top, top_name

_MEMORY = re.compile(r"^\s*memory width (\d+) size (\d+) \\(\w+?)\d*$", re.MULTILINE)


@pytest.mark.parametrize("name", ["sparse_pe_4", "systolic_2x2"])
def test_access_macros_are_netlist_memories(name):
    p = get_profile(name)
    text = rtlil.convert(build_top(p), name=top_name(p))
    built = {(mem, int(w), int(s)) for w, s, mem in _MEMORY.findall(text)}
    for action, macro in access_macros(p).items():
        assert (macro.name, macro.width, macro.depth) in built, (action, macro)


def test_sram_priced_by_bank_not_total_capacity():
    p = get_profile("sparse_pe_64")
    e, table = p.energy, action_energy_pj(p)
    # 256 KiB activation SRAM in 64 banks of 4 KiB; 128 KiB weight SRAM in 2 KiB banks.
    assert access_macros(p)["act_sram_reads"].bytes == 4096
    assert table["act_sram_reads"] == ("sram", e.sram_small_pj)
    assert table["weight_sram_reads"] == ("sram", e.sram_small_pj)
    # A systolic array's activation memory is one macro of the whole capacity.
    s = get_profile("systolic_8x8")
    assert action_energy_pj(s)["act_sram_reads"] == ("sram", s.energy.sram_large_pj)
