"""Hardware cost of one mask snapshot: the figures a trace row records.

:func:`cost_run_config` turns a training configuration into the cost model's
:class:`cost_models.workload.RunConfig`; :func:`snapshot_costs` costs a list of
:class:`~mast.sparsity.layer.SparseLayer` records on a profile with
:func:`cost_models.report.evaluate` and keeps the figures of one training iteration and
one acting step as a :class:`SnapshotCost`. :func:`dense_layers` gives the dense network
of the same shapes, the reference "same run on dense hardware" is costed on.

Dense references are costed with ``RunConfig.topology_updates = False``: a dense network
has no topology updates, so the amortised dense gradient and top-k of a regrowth step are
not part of its iteration. The run configuration follows ``cost_models.rundir``'s reading
of a run folder's settings (the same conversion of ``sparsity.delta_t`` to iterations).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cost_models.report import CostReport, evaluate
from cost_models.workload import RunConfig
from hw.profiles import PROFILES, HwProfile
from mast.config import TrainConfig
from mast.errors import UserError
from mast.sparsity.layer import SparseLayer

__all__ = [
    "SnapshotCost",
    "cost_run_config",
    "default_baseline",
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

    @classmethod
    def from_report(cls, rep: CostReport) -> SnapshotCost:
        t, i = rep.training, rep.inference
        return cls(
            profile=rep.profile, train_cycles=float(t.cycles), train_time_s=float(t.time_s),
            train_energy_j=float(t.energy_j), train_dram_bytes=float(sum(t.dram_bytes.values())),
            train_sram_bytes=float(sum(t.sram_bytes.values())),
            train_util=float(t.utilisation_compute), infer_cycles=float(i.cycles),
            infer_time_s=float(i.time_s), infer_energy_j=float(i.energy_j),
            infer_util=float(i.utilisation_compute),
        )  # fmt: skip

    def as_dict(self, prefix: str = "") -> dict[str, float | str]:
        """The figures keyed ``prefix + field`` (``profile`` left out)."""
        return {
            prefix + f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name != "profile"
        }


def cost_run_config(cfg: TrainConfig, episode_limit: int) -> RunConfig:
    """The cost model's view of a training configuration.

    One training iteration is one learner update on ``learner.batch_size`` episodes of
    ``episode_limit + 1`` steps. An iteration follows ``env.n_envs / updates_per_rollout``
    collected episodes; topology updates every ``sparsity.delta_t`` environment steps are
    converted to iterations assuming full-length episodes (``episode_limit`` steps), so the
    amortised dense gradient is an upper bound when episodes end early. Methods without
    topology evolution (dense, static, tiny) have no dense-gradient work.
    """
    from mast.sparsity.updaters import get_method

    eps_per_iter = max(1, round(cfg.env.n_envs / max(1, cfg.learner.updates_per_rollout)))
    steps_per_iter = eps_per_iter * episode_limit
    return RunConfig(
        batch_size=cfg.learner.batch_size, episode_limit=int(episode_limit),
        episodes_per_iteration=eps_per_iter,
        delta_t=max(1, round(cfg.sparsity.delta_t / steps_per_iter)), t_max=cfg.run.t_max,
        topology_updates=bool(get_method(cfg.sparsity.method).dynamic),
    )  # fmt: skip


def dense_layers(layers: Sequence[SparseLayer]) -> list[SparseLayer]:
    """The same records with all-ones masks (values dropped)."""
    return [
        dataclasses.replace(lay, mask=np.ones(lay.shape, dtype=bool), values=None)
        for lay in layers
    ]


def snapshot_costs(
    profile: HwProfile, layers: Sequence[SparseLayer], run: RunConfig, *, dense: bool = False
) -> SnapshotCost:
    """Cost ``layers`` on ``profile``; ``dense=True`` costs the dense network, no updates."""
    if dense:
        layers = dense_layers(layers)
        run = dataclasses.replace(run, topology_updates=False)
    stripped = [dataclasses.replace(lay, values=None) for lay in layers]
    return SnapshotCost.from_report(evaluate(profile, stripped, run))


def default_baseline(profile: HwProfile) -> HwProfile:
    """The built-in dense systolic profile with ``profile``'s MAC count.

    A systolic ``profile`` is its own baseline.

    Raises
    ------
    UserError
        No built-in systolic profile has ``profile.n_pe`` cells.
    """
    if profile.kind == "systolic":
        return profile
    same = [p for p in PROFILES.values() if p.kind == "systolic" and p.n_pe == profile.n_pe]
    if not same:
        systolic = ", ".join(f"{p.name} ({p.n_pe})" for p in PROFILES.values()
                             if p.kind == "systolic")  # fmt: skip
        raise UserError(
            f"no built-in systolic profile has n_pe={profile.n_pe} like {profile.name!r}; "
            f"pass --hw-baseline (systolic profiles: {systolic})"
        )
    return min(same, key=lambda p: abs(p.rows - p.cols))
