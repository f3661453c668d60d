"""Incremental persistence of an :class:`EpisodeBuffer`: append-only episode segments.

A checkpoint does not hold the replay buffer. Each save writes one segment file,
``<folder>/episodes_<first>-<last>.pt``, with only the episodes inserted since the previous
save that are still stored, and returns a small *manifest* (pointers, the ids of the
stored episodes and the segments holding them) that goes into the checkpoint. The bytes
a save writes are therefore bounded by the episodes added since the last one plus the
manifest, whatever the buffer holds.

Why this is exact: the buffer keeps the newest ``len`` episodes in FIFO order (RLx2's
dynamic capacity drops the oldest), so every stored episode older than the last save was
stored at that save too and already lives in a segment. Loading writes each stored
episode back into its ring slot (``newest_slots``) and leaves every other slot empty;
sampling only ever reads stored episodes, and the padding beyond each episode is zero in
both cases, so the restored buffer samples exactly as the saved one would.

Crash safety: segments and checkpoints are written atomically (:mod:`mast.atomicio`), a
save writes its segment before the checkpoint that references it, and segments are only
deleted (:meth:`EpisodeStore.prune`) once no durable checkpoint references them. A crash
at any point leaves the last checkpoint loadable; segments no checkpoint references
(written after it) are removed when the run is resumed.

Files are read with ``torch.load(weights_only=True, mmap=True)``: no code runs, and an
episode's rows are copied from the file's pages rather than a second resident copy.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from mast import atomicio
from mast.buffer.episode import EpisodeBuffer
from mast.errors import UserError

__all__ = ["MANIFEST_FORMAT", "EpisodeStore"]

MANIFEST_FORMAT = "mast-episodes/1"
_SEGMENT = re.compile(r"^episodes_(\d+)-(\d+)\.pt$")


def _segment_name(first: int, last: int) -> str:
    return f"episodes_{first:09d}-{last:09d}.pt"


class EpisodeStore:
    """Append-only segment files of one buffer in ``folder`` (created on first save).

    Parameters
    ----------
    folder:
        Where the segments live (a run folder's ``buffer/``).
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.saved_total = 0
        """``total_inserted`` of the buffer at the last save or load."""
        self.segments: list[tuple[str, int, int]] = []
        """``(file name, first id, last id)`` of the segments the last manifest references."""

    # ------------------------------------------------------------------ save
    def save(self, buf: EpisodeBuffer) -> dict:
        """Write the episodes added since the last save; return the manifest.

        The manifest is a dict of ints, strings and one int64 tensor (checkpoint-safe).
        Nothing is deleted here: call :meth:`prune` once the checkpoint holding the
        manifest is written.
        """
        slots, ids, lengths = buf.stored()
        new = ids >= self.saved_total
        segments = [s for s in self.segments if ids.size and s[2] >= int(ids.min())]
        if new.any():
            segments.append(self._write(buf, slots[new], ids[new], lengths[new]))
        self.saved_total = buf.total_inserted
        self.segments = segments
        return {
            "format": MANIFEST_FORMAT,
            "next": buf.next_slot,
            "size": len(buf),
            "total": buf.total_inserted,
            "ids": torch.from_numpy(ids),
            "segments": [list(s) for s in segments],
        }

    def _write(
        self, buf: EpisodeBuffer, slots: np.ndarray, ids: np.ndarray, lengths: np.ndarray
    ) -> tuple[str, int, int]:
        fields = {
            name: torch.from_numpy(
                np.ascontiguousarray(np.concatenate([buf.stored_rows(name, s) for s in slots]))
            )
            for name in buf.scheme
        }
        seg = {
            "format": MANIFEST_FORMAT,
            "ids": torch.from_numpy(ids.copy()),
            "lengths": torch.from_numpy(lengths),
            "fields": fields,
        }
        name = _segment_name(int(ids[0]), int(ids[-1]))
        atomicio.save_with(self.folder / name, lambda fh: torch.save(seg, fh))
        return (name, int(ids[0]), int(ids[-1]))

    def prune(self) -> list[Path]:
        """Delete segment files the last manifest does not reference; returns them."""
        keep = {s[0] for s in self.segments}
        removed = []
        if self.folder.is_dir():
            for p in sorted(self.folder.iterdir()):
                if _SEGMENT.match(p.name) and p.name not in keep:
                    p.unlink()
                    removed.append(p)
        return removed

    # ------------------------------------------------------------------ load
    def load(self, buf: EpisodeBuffer, manifest: dict) -> None:
        """Restore ``buf`` (freshly built, same scheme and sizes) from ``manifest``.

        Raises
        ------
        mast.errors.UserError
            A segment is missing, unreadable or does not match the buffer's scheme and
            sizes, or the manifest is inconsistent; the message names the file.
        """
        if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
            got = manifest.get("format") if isinstance(manifest, dict) else type(manifest)
            raise UserError(f"replay buffer manifest has format {got!r}, not {MANIFEST_FORMAT}")
        size, nxt, total = (int(manifest[k]) for k in ("size", "next", "total"))
        ids = manifest["ids"].numpy().astype(np.int64)
        if not (0 <= size <= buf.capacity and 0 <= nxt < buf.capacity and ids.shape == (size,)):
            raise UserError(
                f"replay buffer manifest holds {ids.shape[0]} ids for size {size}, next {nxt}; "
                f"the buffer has capacity {buf.capacity}"
            )
        slots = buf.restore(nxt, size, total)
        slot_of = dict(zip(ids.tolist(), slots.tolist(), strict=True))
        found = 0
        for name, _, _ in manifest["segments"]:
            found += self._read_into(buf, self.folder / name, slot_of)
        if found != size:
            raise UserError(
                f"replay buffer segments in {str(self.folder)!r} hold {found} of the {size} "
                f"episodes the checkpoint needs"
            )
        self.saved_total = total
        self.segments = [(str(n), int(a), int(b)) for n, a, b in manifest["segments"]]

    def _read_into(self, buf: EpisodeBuffer, path: Path, slot_of: dict[int, int]) -> int:
        if not path.is_file():
            raise UserError(f"replay buffer segment {str(path)!r} is missing")
        try:
            seg = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception as e:  # noqa: BLE001 - any unreadable file is the same user error
            raise UserError(
                f"replay buffer segment {str(path)!r} is unreadable ({type(e).__name__})"
            ) from None
        bad = UserError(f"replay buffer segment {str(path)!r} does not match the buffer's scheme")
        if not isinstance(seg, dict) or seg.get("format") != MANIFEST_FORMAT:
            raise bad
        ids, lengths = seg["ids"].numpy(), seg["lengths"].numpy()
        if ids.shape != lengths.shape or ids.ndim != 1 or set(seg["fields"]) != set(buf.scheme):
            raise bad
        if lengths.size and (lengths.min() < 1 or lengths.max() > buf.episode_limit):
            raise bad
        arrays = {}
        for name, spec in buf.scheme.items():
            a = seg["fields"][name].numpy()
            rows = int(sum(spec.slots(int(n)) for n in lengths))
            if a.shape != (rows, *spec.stored_shape) or a.dtype != spec.dtype:
                raise bad
            arrays[name] = a
        offsets = dict.fromkeys(buf.scheme, 0)
        found = 0
        for i, n in zip(ids.tolist(), lengths.tolist(), strict=True):
            rows = {}
            for name, spec in buf.scheme.items():
                k = spec.slots(n)
                rows[name] = arrays[name][offsets[name] : offsets[name] + k]
                offsets[name] += k
            if i in slot_of:
                buf.put_stored(slot_of[i], i, n, rows)
                found += 1
        return found
