"""The run folder: resolved config, metrics CSV, TensorBoard events, mask snapshots, checkpoints.

Layout of ``<out>/<alg>_<method>_<map>_s<seed>_<YYYYmmdd-HHMMSS>/``::

    config.yaml           the resolved TrainConfig
    metrics.csv           one row per log interval (columns fixed by the first row)
    events.out.tfevents.* TensorBoard scalars (same numbers as the CSV)
    masks/masks_<t>.npz   SparseLayer snapshots (masks + values) at start and each update
    checkpoint.pt         everything needed to resume (CHECKPOINT_FORMAT)
    buffer/episodes_*.pt  the replay buffer as append-only segments the checkpoint references

Every file is written atomically (:mod:`mast.atomicio`), so a kill at any moment leaves the
last checkpoint and everything it refers to intact; :func:`cut_back` and
:class:`MetricsLog` bring a folder back to its checkpoint before a resume.

The torch-free reading of ``config.yaml`` and of the snapshots is :mod:`mast.run_folder`
(``read_config`` is re-exported here).

An existing folder is never overwritten: a new run that would land on one gets a ``-N``
suffix, and only ``--resume`` writes into an existing folder.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import pickle
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import yaml

from mast import atomicio
from mast.config import TrainConfig
from mast.errors import UserError
from mast.presets import config_to_dict, diff_configs
from mast.run_folder import MASKS_DIR, mask_snapshots, read_config, snapshot_path, snapshot_step
from mast.sparsity import SparseLayer, save_layers

__all__ = [
    "create_run_dir",
    "write_config",
    "read_config",
    "MetricsLog",
    "save_masks",
    "cut_back",
    "save_checkpoint",
    "load_checkpoint",
    "check_same_config",
    "RESUMABLE_KEYS",
]

CHECKPOINT_FILE = "checkpoint.pt"
CHECKPOINT_FORMAT = "mast-checkpoint/2"
"""Format tag of ``checkpoint.pt``: a ``torch.save`` dict of tensors and plain values (no
Python objects) whose replay buffer lives in ``buffer/`` segments
(:mod:`mast.buffer.persist`)."""
CHECKPOINT_KEYS: tuple[str, ...] = (
    "config",
    "t_env",
    "episode",
    "learner",
    "buffer",
    "rng",
    "envs",
    "last",
    "wall_s",
    "loss",
    "td",
    "test_stats",
    "callbacks",
)
"""Entries every checkpoint has (checked on load)."""
METRICS_FILE = "metrics.csv"
BUFFER_DIR = "buffer"

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


_EVENTS_SECOND = re.compile(r"^events\.out\.tfevents\.(\d+)\.")


def _after_existing_event_files(run_dir: Path, max_wait_s: float = 2.0) -> None:
    """Wait until a new TensorBoard event file will sort after the folder's existing ones.

    TensorBoard reads a folder's event files in name order, and a name starts with the
    second the file was created, then the host name and the process id (as text). A run
    resumed within the second its interrupted run last opened a file could sort first;
    its ``purge_step`` would then be read before the events it must hide, and the
    interrupted run's later events would show again. Waits at most ``max_wait_s``.
    """
    seconds = [
        int(m.group(1)) for p in run_dir.glob("events.out.tfevents.*")
        if (m := _EVENTS_SECOND.match(p.name))
    ]  # fmt: skip
    if seconds:
        time.sleep(min(max_wait_s, max(0.0, max(seconds) + 1 - time.time())))


class MetricsLog:
    """Writes metric rows to ``metrics.csv`` and, optionally, TensorBoard.

    The first row fixes the CSV columns (later unknown keys are dropped from the CSV but
    still reach TensorBoard). Every row rewrites the whole file atomically, so a kill
    never leaves a torn row. ``resume_at``: a resumed run first cuts the CSV back to the
    rows with ``t_env <= resume_at`` (its checkpoint's) and hides later TensorBoard events
    (``purge_step``), so a resumed folder holds exactly the rows of an uninterrupted run.
    """

    def __init__(
        self, run_dir: Path, tensorboard: bool = True, resume_at: int | None = None
    ) -> None:
        self.path = Path(run_dir) / METRICS_FILE
        self.columns: list[str] | None = None
        self.rows: list[list[str]] = []
        if resume_at is not None and self.path.is_file():
            self._cut_back(resume_at)
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            purge = None if resume_at is None else resume_at + 1
            if resume_at is not None:
                _after_existing_event_files(Path(run_dir))
            self.writer = SummaryWriter(log_dir=str(run_dir), purge_step=purge)

    def _cut_back(self, t_env: int) -> None:
        with open(self.path, newline="") as fh:
            table = list(csv.reader(fh))
        if not table:
            return
        self.columns = table[0]
        if "t_env" not in self.columns:
            raise UserError(f"{str(self.path)!r} has no t_env column; it is not a metrics file")
        col = self.columns.index("t_env")
        for r in table[1:]:
            try:
                if len(r) == len(self.columns) and int(r[col]) <= t_env:
                    self.rows.append(r)
            except ValueError:
                raise UserError(f"{str(self.path)!r} has a row with t_env {r[col]!r}") from None
        self._flush()

    def _flush(self) -> None:
        text = io.StringIO(newline="")
        w = csv.writer(text)
        w.writerow(self.columns or [])
        w.writerows(self.rows)
        atomicio.write_text(self.path, text.getvalue())

    def write(self, row: Mapping[str, object]) -> None:
        """Add one row; ``row["t_env"]`` is the TensorBoard step."""
        if self.columns is None:
            self.columns = list(row)
        buf = io.StringIO(newline="")
        csv.DictWriter(buf, fieldnames=self.columns, extrasaction="ignore").writerow(
            {k: row.get(k, "") for k in self.columns}
        )
        self.rows.append(next(csv.reader(io.StringIO(buf.getvalue(), newline=""))))
        self._flush()
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
    """Write ``masks/masks_<t_env>.npz`` (masks and values) atomically."""
    return save_layers(snapshot_path(run_dir, t_env), layers)


def cut_back(run_dir: str | Path, t_env: int) -> None:
    """Before resuming from a checkpoint at ``t_env``: remove the temporary files of killed
    writers and the mask snapshots taken after ``t_env`` (the resumed run retakes them)."""
    run_dir = Path(run_dir)
    atomicio.clean_stale_temps(run_dir)
    if not (run_dir / MASKS_DIR).is_dir():
        return
    for p in mask_snapshots(run_dir):
        if snapshot_step(p) > t_env:
            p.unlink()


def save_checkpoint(run_dir: Path, state: dict) -> Path:
    """Write ``checkpoint.pt`` atomically (:mod:`mast.atomicio`), tagged with
    :data:`CHECKPOINT_FORMAT`. ``state`` holds only tensors, numbers, strings, ``None``
    and lists/dicts of them, so it loads with ``weights_only=True``."""
    path = Path(run_dir) / CHECKPOINT_FILE
    state = {"format": CHECKPOINT_FORMAT, **state}
    return atomicio.save_with(path, lambda fh: torch.save(state, fh))


def load_checkpoint(run_dir: str | Path) -> dict:
    """Read ``checkpoint.pt`` of a run folder without executing code.

    ``torch.load(weights_only=True)`` admits only tensors and plain containers, so a
    crafted file cannot run anything; the file is memory-mapped.

    Raises
    ------
    mast.errors.UserError
        No checkpoint; a file of an older format (named); or a corrupt, truncated or
        foreign file.
    """
    path = Path(run_dir) / CHECKPOINT_FILE
    if not path.is_file():
        raise UserError(f"run folder {str(run_dir)!r} has no {CHECKPOINT_FILE} to resume from")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as e:
        what = re.search(r"GLOBAL (\S+)", str(e))
        raise UserError(
            f"checkpoint {str(path)!r} holds Python objects"
            f"{f' ({what[1]})' if what else ''} that only code execution could load: it is "
            f"an older mast checkpoint (before {CHECKPOINT_FORMAT}) or not a mast checkpoint; "
            f"this version reads {CHECKPOINT_FORMAT} only"
        ) from None
    except Exception as e:  # noqa: BLE001 - torch raises RuntimeError, EOFError, ...
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"checkpoint {str(path)!r} is truncated or corrupt ({first})") from None
    fmt = state.get("format") if isinstance(state, dict) else None
    if fmt != CHECKPOINT_FORMAT:
        old = isinstance(state, dict) and "learner" in state and fmt is None
        name = "mast-checkpoint/1 (the replay buffer inside the file)" if old else repr(fmt)
        raise UserError(
            f"checkpoint {str(path)!r} has format {name}; this version reads "
            f"{CHECKPOINT_FORMAT} only (start a new run)"
        )
    missing = [k for k in CHECKPOINT_KEYS if k not in state]
    if missing:
        raise UserError(f"checkpoint {str(path)!r} lacks the entry {missing[0]!r}")
    return state
