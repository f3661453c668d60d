"""``CostReport``: cycles, energy and traffic of training and acting on one profile.

:func:`evaluate` builds the training-iteration and acting graphs
(:mod:`cost_models.workload`), costs every kernel (:mod:`cost_models.kernels`),
schedules both graphs (:mod:`cost_models.schedule`) and sums the result:

- per iteration: the list-scheduled makespan (reported next to the critical path and the
  serial sum of kernel times); energy = dynamic energy of every kernel (weighted by its
  executions per iteration) + static power x makespan;
- per environment step: ``training iteration / env_steps_per_iteration`` (see
  :class:`~cost_models.workload.WorkloadConfig`) plus one acting step (inference);
- per run: ``iterations * iteration + t_max * inference``.

Utilisation: ``ideal / modelled`` with ``ideal = ceil(useful MACs / P)``, useful MACs
counting non-zero weights only; *compute* utilisation divides by the PE array's compute
cycles, *end-to-end* by the makespan.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cost_models.energy import COMPONENTS, static_pj
from cost_models.kernels import cost_kernel
from cost_models.rows import CostRow
from cost_models.schedule import list_schedule
from cost_models.workload import WorkloadConfig, inference_graph, training_graph
from hw.profiles import HwProfile
from mast.sparsity.layer import SparseLayer

__all__ = ["CostRow", "Totals", "CostReport", "evaluate"]


@dataclass(frozen=True)
class Totals:
    """Sums over a whole graph (one training iteration or one acting step)."""

    cycles: float
    """List-scheduled makespan."""
    critical_path: float
    """Dependency-chain lower bound of the makespan."""
    serial_cycles: float
    """Sum of all kernel times."""
    pe_compute_cycles: float
    """PE-array op cycles (what ``sim`` counts)."""
    busy: dict[str, float]
    """Busy cycles per resource."""
    macs: float
    ideal_cycles: float
    energy_pj: dict[str, float]
    sram_bytes: dict[str, float]
    dram_bytes: dict[str, float]
    clock_hz: float

    @property
    def time_s(self) -> float:
        return self.cycles / self.clock_hz

    @property
    def energy_j(self) -> float:
        return sum(self.energy_pj.values()) * 1e-12

    @property
    def utilisation_compute(self) -> float:
        return self.ideal_cycles / self.pe_compute_cycles if self.pe_compute_cycles else 0.0

    @property
    def utilisation(self) -> float:
        """End-to-end: ideal cycles over the makespan."""
        return self.ideal_cycles / self.cycles if self.cycles else 0.0

    @property
    def pj_per_mac(self) -> float:
        return sum(self.energy_pj.values()) / self.macs if self.macs else 0.0


@dataclass(frozen=True)
class CostReport:
    """Cost of training (one iteration, per env step, per run) and acting on a profile."""

    profile: str
    label: str
    """Workload description (map, sparsity, density or run directory)."""
    sparsity: float
    """Overall fraction of pruned weights of the layers."""
    run: WorkloadConfig
    training_rows: tuple[CostRow, ...]
    inference_rows: tuple[CostRow, ...]
    training: Totals
    """One training iteration."""
    inference: Totals
    """One environment step of acting (all agents)."""
    notes: tuple[str, ...] = field(default=())

    @property
    def train_cycles_per_env_step(self) -> float:
        return self.training.cycles / self.run.env_steps_per_iteration

    @property
    def train_energy_j_per_env_step(self) -> float:
        return self.training.energy_j / self.run.env_steps_per_iteration

    @property
    def run_time_s(self) -> float:
        return self.run.iterations * self.training.time_s + self.run.t_max * self.inference.time_s

    @property
    def run_energy_j(self) -> float:
        it, inf = self.training.energy_j, self.inference.energy_j
        return self.run.iterations * it + self.run.t_max * inf

    def summary(self) -> dict[str, Any]:
        """Flat figures for tables: one dict per report."""
        t, i = self.training, self.inference
        return {
            "profile": self.profile,
            "label": self.label,
            "sparsity": round(self.sparsity, 4),
            "train_cycles": t.cycles,
            "train_critical_path": t.critical_path,
            "train_serial_cycles": t.serial_cycles,
            "train_time_s": t.time_s,
            "train_energy_j": t.energy_j,
            "train_dram_bytes": sum(t.dram_bytes.values()),
            "train_sram_bytes": sum(t.sram_bytes.values()),
            "train_util_compute": t.utilisation_compute,
            "train_util": t.utilisation,
            "train_pj_per_mac": t.pj_per_mac,
            "train_macs": t.macs,
            "train_cycles_per_env_step": self.train_cycles_per_env_step,
            "train_energy_j_per_env_step": self.train_energy_j_per_env_step,
            "infer_cycles": i.cycles,
            "infer_time_s": i.time_s,
            "infer_energy_j": i.energy_j,
            "infer_dram_bytes": sum(i.dram_bytes.values()),
            "infer_util_compute": i.utilisation_compute,
            "infer_util": i.utilisation,
            "infer_pj_per_mac": i.pj_per_mac,
            "run_time_s": self.run_time_s,
            "run_energy_j": self.run_energy_j,
        }

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["summary"] = self.summary()
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def rows_csv(self) -> str:
        """Per layer x phase rows of training and inference as CSV."""
        buf = io.StringIO()
        head = [
            "workload",
            "layer",
            "phase",
            "resource",
            "dataflow",
            "kernels",
            "ops",
            "cycles",
            "compute_cycles",
            "macs",
            "ideal_cycles",
            "utilisation",
        ]
        head += [f"energy_{c}_pj" for c in COMPONENTS]
        head += ["sram_bytes", "dram_bytes"]
        w = csv.writer(buf)
        w.writerow(head)
        for wl, rows in (("training", self.training_rows), ("inference", self.inference_rows)):
            for r in rows:
                w.writerow(
                    [
                        wl,
                        r.layer,
                        r.phase,
                        r.resource,
                        r.dataflow,
                        r.kernels,
                        r.ops,
                        r.cycles,
                        r.compute_cycles,
                        r.macs,
                        r.ideal_cycles,
                        round(r.utilisation, 6),
                    ]
                    + [r.energy_pj[c] for c in COMPONENTS]
                    + [sum(r.sram_bytes.values()), sum(r.dram_bytes.values())]
                )
        return buf.getvalue()


def _add_into(acc: dict, src: dict, scale: float) -> None:
    for k, v in src.items():
        acc[k] = acc.get(k, 0.0) + v * scale


def _cost_graph(p: HwProfile, g) -> tuple[tuple[CostRow, ...], Totals]:
    groups: dict[tuple[str, str], CostRow] = {}
    duration, resource = {}, {}
    for n, data in g.nodes(data=True):
        k = data["kernel"]
        c = cost_kernel(p, k).scaled(k.weight)
        duration[n], resource[n] = c.cycles, k.resource
        key = (c.layer, c.phase)
        groups[key] = c if key not in groups else groups[key] + c
    rows = tuple(r.with_energy(p) for r in groups.values())
    sched = list_schedule(g, duration, resource)
    energy: dict[str, float] = dict.fromkeys(COMPONENTS, 0.0)
    sram: dict[str, float] = {}
    dram: dict[str, float] = {}
    for r in rows:
        _add_into(energy, r.energy_pj, 1.0)
        _add_into(sram, r.sram_bytes, 1.0)
        _add_into(dram, r.dram_bytes, 1.0)
    energy["static"] = static_pj(p, sched.makespan)
    totals = Totals(
        cycles=sched.makespan,
        critical_path=sched.critical_path,
        serial_cycles=sched.serial,
        pe_compute_cycles=sum(r.compute_cycles for r in rows if r.resource == "pe"),
        busy=sched.busy,
        macs=sum(r.macs for r in rows),
        ideal_cycles=sum(r.ideal_cycles for r in rows),
        energy_pj=energy,
        sram_bytes=sram,
        dram_bytes=dram,
        clock_hz=p.clock_hz,
    )
    return rows, totals


def evaluate(
    profile: HwProfile,
    layers: Sequence[SparseLayer],
    run: WorkloadConfig | None = None,
    *,
    label: str = "",
    notes: Sequence[str] = (),
) -> CostReport:
    """Cost one training iteration and one acting step of ``layers`` on ``profile``."""
    run = run or WorkloadConfig()
    train_rows, train = _cost_graph(profile, training_graph(profile, layers, run))
    inf_rows, inf = _cost_graph(profile, inference_graph(profile, layers))
    size = sum(lay.mask.size for lay in layers)
    sparsity = 1.0 - sum(lay.nnz for lay in layers) / size
    return CostReport(
        profile=profile.name,
        label=label,
        sparsity=sparsity,
        run=run,
        training_rows=train_rows,
        inference_rows=inf_rows,
        training=train,
        inference=inf,
        notes=tuple(notes),
    )
