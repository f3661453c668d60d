"""Energy = action counts x energy per action (Accelergy style).

Kernels report action counts (:attr:`~cost_models.rows.CostRow.actions`); this
module prices them with the profile's :class:`~hw.profiles.EnergyTable`. SRAM accesses
are priced by the capacity of the buffer they hit (``EnergyTable.sram_pj``): the global
weight SRAM, the global activation/output SRAM, one PE's double-buffered buffers and the
gradient SRAM. Static energy is static power times time.
"""

from __future__ import annotations

from collections.abc import Mapping

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
    act = e.sram_pj(p.act_sram_kib * 1024)
    buf = e.sram_pj(2 * max(p.act_buf_words, p.out_buf_words) * p.operand_bytes)
    grad = e.sram_pj(p.grad_buf_words * p.acc_bytes)
    return {
        "macs": ("mac", e.mac_pj),
        "adds": ("vector", e.add_pj),
        "vector_ops": ("vector", e.add_pj),
        "index_reads": ("index", e.index_pj),
        "weight_sram_reads": ("sram", e.sram_pj(p.weight_sram_kib * 1024)),
        "act_sram_reads": ("sram", act),
        "act_sram_writes": ("sram", act),
        "out_sram_reads": ("sram", act),
        "out_sram_writes": ("sram", act),
        "pe_buf_reads": ("sram", buf),
        "pe_buf_writes": ("sram", buf),
        "grad_sram_reads": ("sram", grad),
        "grad_sram_writes": ("sram", grad),
    }


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
        comp, pj = table[action]
        out[comp] += count * pj
    out["dram"] += dram_bytes * p.energy.dram_pj_per_byte
    out["static"] += static_pj(p, cycles)
    return out
