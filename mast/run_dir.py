"""The run folder: resolved config, metrics CSV, TensorBoard events, mask snapshots, checkpoints.

Layout of ``<out>/<alg>_<method>_<map>_s<seed>_<YYYYmmdd-HHMMSS>/``::

    config.yaml           the resolved TrainConfig
    metrics.csv           one row per log interval (columns fixed by the first row)
    events.out.tfevents.* TensorBoard scalars (same numbers as the CSV)
    masks/masks_<t>.npz   SparseLayer snapshots (masks + values) at start and each update
    checkpoint.pt         everything needed to resume

An existing folder is never overwritten: a new run that would land on one gets a ``-N``
suffix, and only ``--resume`` writes into an existing folder.
"""

from __future__ import annotations

import csv
import datetime as _dt
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import yaml

from mast import atomicio
from mast.config import TrainConfig
from mast.errors import UserError
from mast.presets import config_from_dict, config_to_dict, diff_configs
from mast.sparsity import SparseLayer, save_layers

__all__ = [
    "create_run_dir",
    "write_config",
    "read_config",
    "MetricsLog",
    "save_masks",
    "save_checkpoint",
    "load_checkpoint",
    "check_same_config",
    "RESUMABLE_KEYS",
]

RESUMABLE_KEYS: tuple[str, ...] = ("run.t_max", "run.progress", "run.device", "run.threads")
"""Keys a resumed run may change (train longer, another device, no progress bar)."""


def create_run_dir(out: str | Path, cfg: TrainConfig) -> Path:
    """Create a fresh run folder under ``out`` (never an existing one)."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    name = f"{cfg.learner.alg}_{cfg.sparsity.method}_{cfg.env.map_name}_s{cfg.run.seed}_{stamp}"
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    path, k = root / name, 1
    while True:
        try:
            path.mkdir()
            return path
        except FileExistsError:
            path, k = root / f"{name}-{k}", k + 1


def write_config(run_dir: Path, cfg: TrainConfig) -> None:
    """Write ``config.yaml`` (the fully resolved configuration)."""
    text = yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
    atomicio.write_text(Path(run_dir) / "config.yaml", text)


def read_config(run_dir: str | Path) -> TrainConfig:
    """Read a run folder's ``config.yaml``."""
    path = Path(run_dir) / "config.yaml"
    if not Path(run_dir).is_dir():
        raise UserError(f"run folder {str(run_dir)!r} does not exist")
    if not path.is_file():
        raise UserError(f"{str(run_dir)!r} is not a run folder: it has no config.yaml")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError:
        raise UserError(f"malformed YAML in {str(path)!r}") from None
    return config_from_dict(data or {})


def check_same_config(saved: TrainConfig, wanted: TrainConfig, what: str) -> None:
    """Raise naming the first key (outside :data:`RESUMABLE_KEYS`) that differs."""
    diff = diff_configs(saved, wanted, ignore=RESUMABLE_KEYS)
    if diff:
        key = diff[0]
        flat_s, flat_w = config_to_dict(saved), config_to_dict(wanted)
        group, _, name = key.partition(".")
        raise UserError(
            f"{what} has a different config: {key} is {flat_s[group][name]!r} there, "
            f"{flat_w[group][name]!r} here"
        )


class MetricsLog:
    """Appends metric rows to ``metrics.csv`` and, optionally, TensorBoard.

    The first row fixes the CSV columns (later unknown keys are dropped from the CSV but
    still reach TensorBoard); an existing file (resume) keeps its header.
    """

    def __init__(self, run_dir: Path, tensorboard: bool = True) -> None:
        self.path = Path(run_dir) / "metrics.csv"
        self.columns: list[str] | None = None
        if self.path.is_file() and self.path.stat().st_size:
            with open(self.path, newline="") as fh:
                self.columns = next(csv.reader(fh))
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(run_dir))

    def write(self, row: Mapping[str, object]) -> None:
        """Append one row; ``row["t_env"]`` is the TensorBoard step."""
        new = self.columns is None
        if new:
            self.columns = list(row)
        with open(self.path, "a", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=self.columns, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow({k: row.get(k, "") for k in self.columns})
        if self.writer is not None:
            step = int(row["t_env"])  # type: ignore[call-overload]
            for k, v in row.items():
                if k != "t_env" and isinstance(v, int | float):
                    self.writer.add_scalar(k, v, step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def save_masks(run_dir: Path, t_env: int, layers: Sequence[SparseLayer]) -> Path:
    """Write ``masks/masks_<t_env>.npz`` (masks and values)."""
    return save_layers(Path(run_dir) / "masks" / f"masks_{t_env}.npz", layers)


def save_checkpoint(run_dir: Path, state: dict) -> Path:
    """Write ``checkpoint.pt`` atomically (:mod:`mast.atomicio`)."""
    path = Path(run_dir) / "checkpoint.pt"
    return atomicio.save_with(path, lambda fh: torch.save(state, fh))


def load_checkpoint(run_dir: str | Path) -> dict:
    """Read ``checkpoint.pt`` of a run folder."""
    path = Path(run_dir) / "checkpoint.pt"
    if not path.is_file():
        raise UserError(f"run folder {str(run_dir)!r} has no checkpoint.pt to resume from")
    # Memory-mapped: the replay buffer's rows are copied from the file's pages, which the
    # kernel can drop again, instead of a second resident copy of the buffer.
    return torch.load(path, map_location="cpu", weights_only=False, mmap=True)
