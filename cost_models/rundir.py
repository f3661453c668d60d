"""Reading a training run's masks and settings for a cost report.

A run folder holds ``config.yaml`` (the resolved training configuration) and
``masks/masks_<t>.npz`` snapshots written with :func:`mast.sparsity.layer.save_layers`.
The latest snapshot (largest ``<t>``) is costed. Settings are read tolerantly: a missing
file or key falls back to the :class:`~cost_models.workload.RunConfig` default and adds a
note to the report. Topology updates every ``sparsity.delta_t`` environment steps are
converted to training iterations with full-length episodes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cost_models.networks import SMAC_MAPS
from cost_models.workload import RunConfig
from mast.errors import UserError, reading
from mast.sparsity.layer import SparseLayer, load_layers

__all__ = ["RunMasks", "latest_snapshot", "load_run"]


@dataclass(frozen=True)
class RunMasks:
    """The masks and settings of one training run."""

    layers: tuple[SparseLayer, ...]
    run: RunConfig
    snapshot: Path
    map_name: str | None
    notes: tuple[str, ...]


def latest_snapshot(run_dir: str | Path) -> Path:
    """``RUN_DIR/masks/masks_<t>.npz`` with the largest ``t``."""
    root = Path(run_dir)
    if not root.is_dir():
        raise UserError(f"run directory {str(run_dir)!r} does not exist")
    snaps = sorted(root.glob("masks/masks_*.npz"), key=_step)
    if not snaps:
        raise UserError(f"run directory {str(run_dir)!r} has no masks/masks_*.npz snapshot")
    return snaps[-1]


def _step(path: Path) -> tuple[int, str]:
    found = re.search(r"(\d+)", path.stem)
    return (int(found.group(1)) if found else -1, path.name)


def _get(cfg: Mapping[str, Any], dotted: str) -> Any:
    cur: Any = cfg
    for part in dotted.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return None
        cur = cur[part]
    return cur


def load_run(run_dir: str | Path) -> RunMasks:
    """Latest mask snapshot and the cost-model settings of a training run."""
    snap = latest_snapshot(run_dir)
    with reading(snap, "mask snapshot"):
        layers = load_layers(snap)
    notes: list[str] = []
    cfg_path = Path(run_dir) / "config.yaml"
    cfg: Mapping[str, Any] = {}
    if cfg_path.is_file():
        try:
            loaded = yaml.safe_load(cfg_path.read_text())
            cfg = loaded if isinstance(loaded, Mapping) else {}
        except yaml.YAMLError:
            notes.append("config.yaml is not valid YAML; run settings are defaults")
    else:
        notes.append("no config.yaml; run settings are defaults")
    map_name = _get(cfg, "env.map_name")
    dims = SMAC_MAPS.get(map_name) if isinstance(map_name, str) else None
    kw: dict[str, Any] = {}
    defaults = RunConfig()
    if dims is not None:
        kw["episode_limit"] = dims.episode_limit
    elif cfg:
        notes.append(
            f"map {map_name!r} not in the map table; episode_limit={defaults.episode_limit} assumed"
        )
    for key, dotted in (("batch_size", "learner.batch_size"), ("t_max", "run.t_max")):
        v = _get(cfg, dotted)
        if isinstance(v, int) and v > 0:
            kw[key] = v
        elif cfg:
            notes.append(f"{dotted} missing; {key}={getattr(defaults, key)} assumed")
    n_envs = _get(cfg, "env.n_envs")
    upr = _get(cfg, "learner.updates_per_rollout") or 1
    if isinstance(n_envs, int) and n_envs > 0 and isinstance(upr, int) and upr > 0:
        kw["episodes_per_iteration"] = max(1, round(n_envs / upr))
    delta_env = _get(cfg, "sparsity.delta_t")
    if isinstance(delta_env, int | float) and delta_env > 0:
        steps = kw.get("episodes_per_iteration", 1) * kw.get(
            "episode_limit", defaults.episode_limit
        )
        kw["delta_t"] = max(1, round(delta_env / steps))
    elif cfg:
        notes.append(f"sparsity.delta_t missing; delta_t={defaults.delta_t} iterations assumed")
    method = _get(cfg, "sparsity.method")
    if isinstance(method, str) and method in ("dense", "static", "tiny"):
        kw["topology_updates"] = False
    return RunMasks(
        tuple(layers),
        RunConfig(**kw),
        snap,
        map_name if isinstance(map_name, str) else None,
        tuple(notes),
    )
