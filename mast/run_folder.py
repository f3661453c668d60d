"""Reading a training run's folder without torch: its configuration and mask snapshots.

What training writes (:mod:`mast.run_dir`) and the hardware side reads:

- ``config.yaml``: the resolved :class:`~mast.config.TrainConfig` (:func:`read_config`);
- ``masks/masks_<t>.npz``: :class:`~mast.sparsity.layer.SparseLayer` snapshots at
  environment step ``t`` (:func:`mask_snapshots`, :func:`latest_snapshot`,
  :func:`load_latest_masks`).

Checkpoints (``checkpoint.pt``, torch) are read by :mod:`mast.run_dir` only.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from mast.config import TrainConfig
from mast.errors import UserError, reading
from mast.presets import config_from_dict
from mast.sparsity.layer import SparseLayer, load_layers

__all__ = [
    "MASKS_DIR",
    "latest_snapshot",
    "load_latest_masks",
    "mask_snapshots",
    "read_config",
    "snapshot_path",
    "snapshot_step",
]

MASKS_DIR = "masks"
"""Folder of the mask snapshots inside a run folder."""


def _folder(run_dir: str | Path) -> Path:
    root = Path(run_dir)
    if not root.is_dir():
        raise UserError(f"run folder {str(run_dir)!r} does not exist")
    return root


def read_config(run_dir: str | Path) -> TrainConfig:
    """The run's ``config.yaml`` as a :class:`TrainConfig`.

    Raises
    ------
    UserError
        No such folder, no ``config.yaml`` in it, malformed YAML or a bad value.
    """
    path = _folder(run_dir) / "config.yaml"
    if not path.is_file():
        raise UserError(f"{str(run_dir)!r} is not a run folder: it has no config.yaml")
    try:
        with reading(path, "run config", (OSError, UnicodeDecodeError)):
            text = path.read_text()
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        raise UserError(f"malformed YAML in {str(path)!r}") from None
    if data is not None and not isinstance(data, dict):
        raise UserError(f"run config {str(path)!r} must hold a mapping, got {type(data).__name__}")
    try:
        return config_from_dict(data or {})
    except UserError as e:
        raise UserError(f"{e} (in {str(path)!r})") from None


def snapshot_path(run_dir: str | Path, t_env: int) -> Path:
    """Where the snapshot at environment step ``t_env`` is written: ``masks/masks_<t>.npz``."""
    return Path(run_dir) / MASKS_DIR / f"masks_{int(t_env)}.npz"


def snapshot_step(path: str | Path) -> int | None:
    """The environment step of a snapshot file name, ``None`` if it names no snapshot."""
    path = Path(path)
    stem = path.stem.removeprefix("masks_")
    if path.suffix != ".npz" or stem == path.stem or not stem.isdigit():
        return None
    return int(stem)


def mask_snapshots(run_dir: str | Path) -> list[Path]:
    """Every ``masks/masks_<t>.npz`` of the run, oldest (smallest ``t``) first."""
    found = (_folder(run_dir) / MASKS_DIR).glob("masks_*.npz")
    steps = {p: snapshot_step(p) for p in found}
    return sorted((p for p, t in steps.items() if t is not None), key=lambda p: steps[p])


def latest_snapshot(run_dir: str | Path) -> Path:
    """The newest ``masks/masks_<t>.npz`` (largest ``t``); a :class:`UserError` if none."""
    snaps = mask_snapshots(run_dir)
    if not snaps:
        raise UserError(f"run folder {str(run_dir)!r} has no masks/masks_*.npz snapshot")
    return snaps[-1]


def load_latest_masks(run_dir: str | Path) -> tuple[Path, list[SparseLayer]]:
    """The newest snapshot's path and its records."""
    snap = latest_snapshot(run_dir)
    with reading(snap, "mask snapshot"):
        return snap, load_layers(snap)
