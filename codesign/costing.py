"""Hardware cost of one mask snapshot: the figures a trace row records.

:func:`snapshot_costs` costs a list of
:class:`~mast.sparsity.layer.SparseLayer` records on a profile with
:func:`cost_models.report.evaluate` and keeps a :class:`SnapshotCost`:

- a *steady* training iteration: ``evaluate`` with ``topology_updates=False`` (forward,
  backward, masked weight gradient, optimizer; no regrowth work);
- the *extra* cost of one topology update: an iteration that carries a whole update
  (``update_interval_iters = 1``: dense weight gradient + top-k) minus the steady iteration;
- one acting step (every agent's forward pass).

A run's hardware time is then exact in the number of updates that really happened
(``iterations x steady + updates x update + env steps x acting``) instead of amortising
updates over an assumed number of iterations. :func:`dense_layers` gives the dense
network of the same shapes that the references are costed on; a dense network has no
topology updates, so its update cost is 0.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from cost_models.report import CostReport, evaluate
from cost_models.sweep import dense_layers
from cost_models.workload import WorkloadConfig
from hw.profiles import HwProfile
from mast.sparsity.layer import SparseLayer

__all__ = [
    "SnapshotCost",
    "dense_layers",
    "snapshot_costs",
]


@dataclass(frozen=True)
class SnapshotCost:
    """Cost of one training iteration and one acting step of a mask snapshot on a profile."""

    profile: str
    """Profile name."""
    train_cycles: float
    """List-scheduled cycles of one training iteration."""
    train_time_s: float
    """``train_cycles / clock_hz``."""
    train_energy_j: float
    """Energy of one training iteration (dynamic + static)."""
    train_dram_bytes: float
    """Off-chip bytes moved by one training iteration."""
    train_sram_bytes: float
    """On-chip SRAM bytes moved by one training iteration."""
    train_util: float
    """PE utilisation of the iteration's matrix kernels (ideal / PE compute cycles)."""
    infer_cycles: float
    """Cycles of one environment step of acting (every agent's forward pass)."""
    infer_time_s: float
    """``infer_cycles / clock_hz``."""
    infer_energy_j: float
    """Energy of one acting step."""
    infer_util: float
    """PE utilisation of the acting step's matrix kernels."""
    update_cycles: float = 0.0
    """Extra cycles of one topology update (dense weight gradient + top-k)."""
    update_time_s: float = 0.0
    """``update_cycles / clock_hz``."""
    update_energy_j: float = 0.0
    """Extra energy of one topology update."""

    @classmethod
    def from_report(cls, rep: CostReport, with_update: CostReport | None = None) -> SnapshotCost:
        """Figures of ``rep`` (steady iteration); ``with_update``: one whole update added."""
        t, i = rep.training, rep.inference
        u = with_update.training if with_update is not None else t
        return cls(
            profile=rep.profile,
            train_cycles=float(t.cycles),
            train_time_s=float(t.time_s),
            train_energy_j=float(t.energy_j),
            train_dram_bytes=float(sum(t.dram_bytes.values())),
            train_sram_bytes=float(sum(t.sram_bytes.values())),
            train_util=float(t.utilisation_compute),
            infer_cycles=float(i.cycles),
            infer_time_s=float(i.time_s),
            infer_energy_j=float(i.energy_j),
            infer_util=float(i.utilisation_compute),
            update_cycles=max(0.0, float(u.cycles - t.cycles)),
            update_time_s=max(0.0, float(u.time_s - t.time_s)),
            update_energy_j=max(0.0, float(u.energy_j - t.energy_j)),
        )

    def as_dict(self, prefix: str = "") -> dict[str, float | str]:
        """The figures keyed ``prefix + field`` (``profile`` left out)."""
        return {
            prefix + f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name != "profile"
        }


def snapshot_costs(
    profile: HwProfile, layers: Sequence[SparseLayer], run: WorkloadConfig, *, dense: bool = False
) -> SnapshotCost:
    """Cost ``layers`` on ``profile`` (module docstring); ``dense=True``: the dense network.

    The update cost is 0 for the dense network and when ``run.topology_updates`` is off.
    """
    if dense:
        layers = dense_layers(layers)
    stripped = [dataclasses.replace(lay, values=None) for lay in layers]
    steady = evaluate(profile, stripped, dataclasses.replace(run, topology_updates=False))
    with_update = None
    if run.topology_updates and not dense:
        one = dataclasses.replace(run, topology_updates=True, update_interval_iters=1)
        with_update = evaluate(profile, stripped, one)
    return SnapshotCost.from_report(steady, with_update)
