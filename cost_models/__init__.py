"""Analytical cost model of the sparse-PE accelerator (Accelergy / Timeloop style).

``(profile, SparseLayer list, WorkloadConfig) -> CostReport``: the MAST/QMIX training
iteration and the acting step become kernel graphs (:mod:`cost_models.workload`), every
kernel is cut into accelerator ops and costed with the cycle contract's closed forms and
the compiler's dataflow choice (:mod:`cost_models.kernels`, :mod:`cost_models.ops`),
action counts are priced with the profile's energy table (:mod:`cost_models.energy`), and
the graph is list-scheduled on the PE array, vector unit and DRAM channel
(:mod:`cost_models.schedule`). ``mast-hw report`` (:mod:`cost_models.report_cli`) sweeps
sparsity levels or costs a training run's masks. See ``cost_models/README.md``.
"""

from cost_models.networks import SMAC_MAPS, MapDims, get_map, mast_network_layers
from cost_models.report import CostReport, CostRow, Totals, evaluate
from cost_models.sweep import Comparison, SweepResult, sparsity_sweep
from cost_models.workload import WorkloadConfig, inference_graph, training_graph

__all__ = [
    "Comparison",
    "CostReport",
    "CostRow",
    "MapDims",
    "WorkloadConfig",
    "SMAC_MAPS",
    "SweepResult",
    "Totals",
    "evaluate",
    "get_map",
    "inference_graph",
    "mast_network_layers",
    "sparsity_sweep",
    "training_graph",
]
