"""``CostRow``: the cost record of one kernel execution and of a layer x phase of a workload.

:func:`cost_models.kernels.cost_kernel` returns one row per kernel (``kernels = 1``, no
energy yet); :func:`cost_models.report.evaluate` sums the rows of a layer x phase, each
weighted by its kernel's executions per iteration (:meth:`CostRow.scaled`, ``+``), and
prices their actions (:meth:`CostRow.with_energy`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from cost_models.energy import energy_pj
from hw.profiles import HwProfile

__all__ = ["CostRow"]


def _merged(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0.0) + v
    return out


@dataclass(frozen=True)
class CostRow:
    """Cost of one kernel execution, or of a layer x phase per iteration / step."""

    layer: str
    """Layer name, or the elementwise kernel's label (``cell``, ``mix``, ``loss``...)."""
    phase: str
    """``fwd``, ``target_fwd``, ``dx``, ``dw``, ``dense_dw``, ``topk``, ``opt``, ``infer``..."""
    resource: str
    """``pe``, ``vec`` or ``dma``."""
    dataflow: str
    """Dataflows of the row's ops (``sample``, ``row``, ``systolic``, ``vector``, ``dma``,
    several joined by ``+``)."""
    kernels: int
    """Graph nodes in the row (1 for one kernel)."""
    ops: float
    """Accelerator ops the kernel(s) were cut into (weighted per iteration in a report)."""
    cycles: float
    """Resource time: compute, or DRAM time where that is longer (kernels overlap their
    DRAM traffic with compute through double buffering)."""
    compute_cycles: float
    """Op cycle counts (the figure ``sim`` gives for the same ops)."""
    macs: float
    """Useful multiply-accumulates (non-zero weight x sample)."""
    ideal_cycles: float
    """``ceil(macs / P)`` summed over kernels (0 for elementwise and DMA kernels)."""
    actions: dict[str, float]
    """Action counts (``sim.MemoryAccesses`` fields, macs, adds, vector_ops)."""
    sram_bytes: dict[str, float]
    """On-chip bytes by operand."""
    dram_bytes: dict[str, float]
    """Off-chip bytes by operand."""
    energy_pj: dict[str, float] = field(default_factory=dict)
    """Energy by component (static: power x ``cycles``); empty until :meth:`with_energy`."""

    @property
    def utilisation(self) -> float:
        return self.ideal_cycles / self.compute_cycles if self.compute_cycles else 0.0

    def scaled(self, w: float) -> CostRow:
        """``w`` executions: every count times ``w`` (``kernels`` unchanged)."""
        return dataclasses.replace(
            self,
            ops=self.ops * w,
            cycles=self.cycles * w,
            compute_cycles=self.compute_cycles * w,
            macs=self.macs * w,
            ideal_cycles=self.ideal_cycles * w,
            actions={k: v * w for k, v in self.actions.items()},
            sram_bytes={k: v * w for k, v in self.sram_bytes.items()},
            dram_bytes={k: v * w for k, v in self.dram_bytes.items()},
            energy_pj={k: v * w for k, v in self.energy_pj.items()},
        )

    def __add__(self, other: CostRow) -> CostRow:
        """The sum of two rows of the same layer x phase."""
        flows = set(self.dataflow.split("+")) | set(other.dataflow.split("+"))
        return dataclasses.replace(
            self,
            dataflow="+".join(sorted(flows)),
            kernels=self.kernels + other.kernels,
            ops=self.ops + other.ops,
            cycles=self.cycles + other.cycles,
            compute_cycles=self.compute_cycles + other.compute_cycles,
            macs=self.macs + other.macs,
            ideal_cycles=self.ideal_cycles + other.ideal_cycles,
            actions=_merged(self.actions, other.actions),
            sram_bytes=_merged(self.sram_bytes, other.sram_bytes),
            dram_bytes=_merged(self.dram_bytes, other.dram_bytes),
            energy_pj=_merged(self.energy_pj, other.energy_pj),
        )

    def with_energy(self, p: HwProfile) -> CostRow:
        """The row with its actions, DRAM bytes and time priced on ``p``'s energy table."""
        dram = sum(self.dram_bytes.values())
        return dataclasses.replace(self, energy_pj=energy_pj(p, self.actions, dram, self.cycles))
