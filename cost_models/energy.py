"""Energy = action counts x energy per action (Accelergy style).

Kernels report action counts (:attr:`~cost_models.rows.CostRow.actions`); this
module prices them with the profile's :class:`~hw.profiles.EnergyTable`. An SRAM access is
priced by the capacity of the physical bank or macro it reaches
(:func:`hw.memories.access_macros`, ``EnergyTable.sram_pj``): one bank of the weight,
activation or output SRAM of a sparse profile, one PE's buffer, the gradient SRAM, or a
systolic profile's single weight / activation / partial-sum memory. Static energy is
static power times time. The figures are 45 nm ASIC ones (``EnergyTable.node``); they are
not an FPGA power estimate.
"""

from __future__ import annotations

from collections.abc import Mapping

from hw.memories import access_macros
from hw.profiles import HwProfile

__all__ = ["COMPONENTS", "action_energy_pj", "energy_pj", "static_pj"]

COMPONENTS: tuple[str, ...] = ("mac", "vector", "sram", "index", "dram", "static")
"""Energy components reported per row and in totals."""


def action_energy_pj(p: HwProfile) -> dict[str, tuple[str, float]]:
    """``action -> (component, pJ per action)`` for every action a kernel counts.

    Actions are ``sim.MemoryAccesses`` fields (word accesses per buffer), ``macs``
    (performed multiply-accumulates), ``adds`` (adder tree, reduction unit) and
    ``vector_ops`` (elementwise operations on the vector unit, priced as additions).
    """
    e = p.energy
    table = {
        "macs": ("mac", e.mac_pj),
        "adds": ("vector", e.add_pj),
        "vector_ops": ("vector", e.add_pj),
        "index_reads": ("index", e.index_pj),
    }
    for action, macro in access_macros(p).items():
        table[action] = ("sram", e.sram_pj(macro.bytes))
    return table


def static_pj(p: HwProfile, cycles: float) -> float:
    """Static energy over ``cycles`` core cycles."""
    return p.static_power_w * cycles / p.clock_hz * 1e12


def energy_pj(
    p: HwProfile, actions: Mapping[str, float], dram_bytes: float, cycles: float
) -> dict[str, float]:
    """Energy by component for ``actions``, ``dram_bytes`` and ``cycles`` of static power."""
    out = dict.fromkeys(COMPONENTS, 0.0)
    table = action_energy_pj(p)
    for action, count in actions.items():
        if not count:
            continue  # e.g. gradient-SRAM fields of a systolic profile, which has none
        comp, pj = table[action]
        out[comp] += count * pj
    out["dram"] += dram_bytes * p.energy.dram_pj_per_byte
    out["static"] += static_pj(p, cycles)
    return out
