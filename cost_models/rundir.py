"""A training run as the cost model sees it: its newest masks and its workload settings.

The run folder is read by :mod:`mast.run_folder` (torch-free): ``config.yaml`` as the
training's :class:`~mast.config.TrainConfig`, the newest ``masks/masks_<t>.npz``.
:func:`workload_config` is the one conversion of a training configuration into
:class:`~cost_models.workload.WorkloadConfig`; ``mast-train --hw-profile`` uses it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cost_models.networks import SMAC_MAPS
from cost_models.workload import WorkloadConfig
from mast.config import TrainConfig
from mast.run_folder import load_latest_masks, read_config
from mast.sparsity.layer import SparseLayer
from mast.sparsity.methods import get_method

__all__ = ["RunMasks", "load_run", "workload_config"]


@dataclass(frozen=True)
class RunMasks:
    """The masks and workload settings of one training run."""

    layers: tuple[SparseLayer, ...]
    """The newest snapshot's records."""
    run: WorkloadConfig
    """The run's workload (:func:`workload_config`), or the defaults without ``config.yaml``."""
    snapshot: Path
    """The snapshot read."""
    map_name: str | None
    """The run's map (``None`` without ``config.yaml``)."""
    notes: tuple[str, ...]
    """Assumptions the report states (missing config, unknown map)."""


def workload_config(cfg: TrainConfig, episode_limit: int) -> WorkloadConfig:
    """The cost model's view of a training configuration.

    One training iteration is one learner update on ``learner.batch_size`` episodes of
    ``episode_limit + 1`` steps. An iteration follows ``env.n_envs / updates_per_rollout``
    collected episodes; topology updates every ``sparsity.delta_t`` environment steps are
    converted to iterations assuming full-length episodes (``episode_limit`` steps), so the
    amortised dense gradient is an upper bound when episodes end early. Methods without
    topology evolution (dense, static, tiny) have no dense-gradient work.
    """
    eps_per_iter = max(1, round(cfg.env.n_envs / max(1, cfg.learner.updates_per_rollout)))
    steps_per_iter = eps_per_iter * episode_limit
    return WorkloadConfig(
        batch_size=cfg.learner.batch_size,
        episode_limit=int(episode_limit),
        episodes_per_iteration=eps_per_iter,
        update_interval_iters=max(1, round(cfg.sparsity.delta_t / steps_per_iter)),
        t_max=cfg.run.t_max,
        topology_updates=get_method(cfg.sparsity.method).dynamic,
    )


def load_run(run_dir: str | Path) -> RunMasks:
    """Newest mask snapshot and the workload settings of a training run.

    Without ``config.yaml`` the masks are costed with the default
    :class:`WorkloadConfig`; a map outside the cost model's map table keeps the default
    episode limit. Both are stated in ``notes``.
    """
    snap, layers = load_latest_masks(run_dir)
    if not (Path(run_dir) / "config.yaml").is_file():
        notes = ("no config.yaml; run settings are defaults",)
        return RunMasks(tuple(layers), WorkloadConfig(), snap, None, notes)
    cfg = read_config(run_dir)
    map_name = cfg.env.map_name
    notes: tuple[str, ...] = ()
    episode_limit = WorkloadConfig().episode_limit
    if map_name in SMAC_MAPS:
        episode_limit = SMAC_MAPS[map_name].episode_limit
    else:
        notes = (f"map {map_name!r} not in the map table; episode_limit={episode_limit} assumed",)
    return RunMasks(tuple(layers), workload_config(cfg, episode_limit), snap, map_name, notes)
