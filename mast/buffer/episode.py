"""``EpisodeBuffer``: a FIFO of whole episodes in compact, padded numpy storage."""

from __future__ import annotations

import mmap
import os
from collections.abc import Mapping

import numpy as np
import torch

from mast.buffer.codec import CODECS
from mast.buffer.scheme import FieldSpec, Scheme, validate_scheme
from mast.errors import UserError

__all__ = ["EpisodeBuffer"]


def _to_numpy(x: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _onehot_tail(values: np.ndarray, filled: np.ndarray, num_values: int) -> np.ndarray:
    """``[B, T + 1, tail_size]`` tails of ``B`` episodes' states: zero in the first state,
    then the one-hot codes of ``values [B, T, ...]`` at the previous transition where it is
    ``filled [B, T]``, zero beyond."""
    b, t = values.shape[:2]
    codes = np.eye(num_values, dtype=np.float32)[values.astype(np.int64)].reshape(b, t, -1)
    out = np.zeros((b, t + 1, codes.shape[-1]), dtype=np.float32)
    out[:, 1:] = codes * filled[..., None]
    return out


def available_memory_bytes() -> int | None:
    """Memory a new allocation can get now: Linux's ``MemAvailable`` plus free swap
    (``/proc/meminfo``), else the free physical pages; ``None`` where neither is known."""
    try:
        with open("/proc/meminfo") as fh:
            info = {k: v for k, _, v in (line.partition(":") for line in fh)}
        return sum(int(info[k].split()[0]) * 1024 for k in ("MemAvailable", "SwapFree"))
    except (OSError, KeyError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _lazy_zeros(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A zero array on an anonymous memory map: pages become resident when written.

    ``np.zeros`` asks the kernel for transparent huge pages on large arrays, which makes
    a write anywhere in 2 MiB resident; a plain anonymous map keeps 4 KiB granularity.
    """
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if nbytes == 0:
        return np.zeros(shape, dtype)
    if hasattr(mmap, "MAP_PRIVATE"):  # private: a forked process gets its own copy
        region = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    else:
        region = mmap.mmap(-1, nbytes)
    return np.frombuffer(region, dtype=dtype).reshape(shape)


class EpisodeBuffer:
    """First-in first-out store of ``capacity`` whole episodes.

    Storage is padded: every field is one zero-initialised array
    ``[capacity, slots, *stored_shape]`` with ``episode_limit + 1`` slots for state
    fields and ``episode_limit`` for transition fields, in the dtype the scheme chooses
    (see :mod:`mast.buffer.scheme` for what is exact). Pages are touched only as far as
    episodes reach, so resident memory follows the longest episode each slot has held;
    :attr:`nbytes` is the padded worst case.

    Parameters
    ----------
    scheme:
        ``name -> FieldSpec`` (e.g. :func:`mast.buffer.smac_scheme`).
    capacity:
        Number of episodes kept; inserting more evicts the oldest.
    episode_limit:
        Maximum number of transitions of an episode.
    """

    def __init__(self, scheme: Scheme, capacity: int, episode_limit: int) -> None:
        for what, value in (("capacity", capacity), ("episode_limit", episode_limit)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise UserError(f"buffer {what} must be an integer >= 1, got {value!r}")
        self.scheme: dict[str, FieldSpec] = validate_scheme(scheme)
        self.capacity = int(capacity)
        self.episode_limit = int(episode_limit)
        self._check_memory()
        # Fields with a one-hot tail last: their check indexes by the validated source.
        self._encode_order = sorted(self.scheme.items(), key=lambda kv: bool(kv[1].onehot_tail))
        self._data = {
            name: _lazy_zeros(
                (self.capacity, spec.slots(self.episode_limit), *spec.stored_shape), spec.dtype
            )
            for name, spec in self.scheme.items()
        }
        self._lengths = np.zeros(self.capacity, dtype=np.int32)
        self._extent = np.zeros(self.capacity, dtype=np.int32)  # transitions ever written
        self._ids = np.full(self.capacity, -1, dtype=np.int64)
        self._next = 0
        self._size = 0
        self._total = 0

    def _check_memory(self) -> None:
        """Refuse a capacity whose padded storage exceeds the memory available now."""
        per = self.bytes_per_episode()
        need = self.capacity * per
        avail = available_memory_bytes()
        if avail is not None and need > avail:
            raise UserError(
                f"buffer.capacity={self.capacity} needs {need:.3g} bytes of replay memory "
                f"({per} bytes per episode of up to {self.episode_limit} steps), more than "
                f"the {avail:.3g} bytes available; at most {avail // per} episodes fit"
            )

    def __len__(self) -> int:
        """Number of episodes currently stored."""
        return self._size

    @property
    def total_inserted(self) -> int:
        """Episodes inserted since construction (the next episode's ``episode_id``)."""
        return self._total

    @property
    def nbytes(self) -> int:
        """Bytes reserved by the storage arrays and bookkeeping (the padded worst case)."""
        arrays = [*self._data.values(), self._lengths, self._extent, self._ids]
        return int(sum(a.nbytes for a in arrays))

    def bytes_per_episode(self, episode_len: int | None = None) -> int:
        """Stored field bytes of one episode of ``episode_len`` transitions.

        ``None`` means ``episode_limit``: the bytes every padded slot reserves.
        """
        n = self.episode_limit if episode_len is None else int(episode_len)
        return sum(spec.bytes_per_step * spec.slots(n) for spec in self.scheme.values())

    def can_sample(self, batch_size: int) -> bool:
        """Whether ``batch_size`` distinct episodes are stored."""
        return self._size >= batch_size

    def _check_lengths(self, lengths) -> np.ndarray:
        lengths = _to_numpy(lengths)
        if lengths.ndim != 1 or not np.issubdtype(lengths.dtype, np.integer):
            raise UserError(f"lengths must be a 1-D integer array, got {lengths!r}")
        if lengths.size and (lengths.min() < 1 or lengths.max() > self.episode_limit):
            bad = lengths.min() if lengths.min() < 1 else lengths.max()
            raise UserError(
                f"episode length {int(bad)} outside [1, episode_limit={self.episode_limit}]"
            )
        return lengths.astype(np.int64)

    def _check_batch(
        self, batch: Mapping[str, np.ndarray | torch.Tensor], lengths: np.ndarray
    ) -> dict[str, np.ndarray]:
        """The scheme's fields of ``batch`` as numpy arrays, names and shapes checked."""
        n = lengths.size
        unknown = sorted(set(batch) - set(self.scheme))
        missing = [k for k in self.scheme if k not in batch]
        if unknown or missing:
            bad = f"unknown field {unknown[0]!r}" if unknown else f"missing field {missing[0]!r}"
            raise UserError(f"{bad}; scheme fields: {', '.join(self.scheme)}")
        arrays = {}
        for name, spec in self.scheme.items():
            x = _to_numpy(batch[name])
            need = spec.slots(int(lengths.max())) if n else 0
            if (
                x.ndim != 2 + len(spec.shape)
                or x.shape[0] != n
                or tuple(x.shape[2:]) != spec.shape
                or not need <= x.shape[1] <= self.episode_limit + 1
            ):
                raise UserError(
                    f"field {name!r} has shape {tuple(x.shape)}; expected "
                    f"[{n}, {need}..{self.episode_limit + 1}, "
                    f"{', '.join(map(str, spec.shape))}]".replace(", ]", "]")
                )
            arrays[name] = x
        return arrays

    def insert(self, batch: Mapping[str, np.ndarray | torch.Tensor], lengths) -> None:
        """Append ``n`` episodes, evicting the oldest beyond ``capacity``.

        Parameters
        ----------
        batch:
            One array per scheme field, ``[n, T_in, *shape]``. State fields need
            ``length + 1 <= T_in <= episode_limit + 1`` slots, transition fields
            ``length <= T_in <= episode_limit + 1`` (a PyMARL-style trailing slot is
            allowed). Only the valid part is stored: slots ``t <= length`` of state
            fields, ``t < length`` of transition fields; the rest is stored as zero.
        lengths:
            ``[n]`` integers in ``[1, episode_limit]``: transitions per episode.
        """
        lengths = self._check_lengths(lengths)
        n = lengths.size
        arrays = self._check_batch(batch, lengths)
        start = max(0, n - self.capacity)  # older ones would be evicted at once
        encoded = [
            {
                name: CODECS[spec.storage].encode(
                    name, spec, self._stored_part(name, spec, arrays, j, int(lengths[j]))
                )
                for name, spec in self._encode_order
            }
            for j in range(start, n)
        ]
        for j, fields in zip(range(start, n), encoded, strict=True):
            slot, length = self._next, int(lengths[j])
            for name, spec in self.scheme.items():
                k = spec.slots(length)
                self._data[name][slot, :k] = fields[name]
                old = spec.slots(int(self._extent[slot])) if self._extent[slot] else 0
                if old > k:
                    self._data[name][slot, k:old] = 0
            self._lengths[slot] = length
            self._extent[slot] = length
            self._ids[slot] = self._total + j
            self._next = (slot + 1) % self.capacity
            self._size = min(self._size + 1, self.capacity)
        self._total += n

    def _stored_part(
        self, name: str, spec: FieldSpec, arrays: dict[str, np.ndarray], j: int, length: int
    ) -> np.ndarray:
        """Episode ``j``'s valid slots of field ``name``, less a one-hot tail, which must
        equal the codes of the previous actions (it is rebuilt from them on sampling)."""
        x = arrays[name][j, : spec.slots(length)]
        if not spec.onehot_tail:
            return x
        src = self.scheme[spec.onehot_tail]
        values = arrays[spec.onehot_tail][j : j + 1, :length]
        want = _onehot_tail(values, np.ones((1, length), bool), src.num_values)[0]
        bad = np.argwhere(x[:, -spec.tail_size :] != want)
        if bad.size:
            t, k = (int(v) for v in bad[0])
            f = x.shape[1] - spec.tail_size + k
            raise UserError(
                f"field {name!r}: feature {f} at step {t} is {x[t, f]:g}, not {want[t, k]:g} "
                f"(the one-hot code of the previous {spec.onehot_tail!r}); the environment's "
                f"state does not end with the agents' last actions"
            )
        return x[:, : -spec.tail_size]

    def drop_oldest(self, count: int) -> int:
        """Discard the ``min(count, len)`` oldest episodes; returns how many.

        Their slots are reused by later inserts in FIFO order, as if the buffer had held
        fewer episodes all along.
        """
        count = max(0, min(int(count), self._size))
        self._size -= count
        return count

    def newest_slots(self, count: int) -> np.ndarray:
        """Slots of the ``min(count, len)`` newest episodes, oldest first."""
        count = min(int(count), self._size)
        return (self._next - count + np.arange(count)) % self.capacity

    def gather(self, slots: np.ndarray) -> dict[str, torch.Tensor]:
        """Episodes at ``slots`` as tensors cut to the longest of them.

        Returns
        -------
        dict[str, torch.Tensor]
            Each scheme field ``[B, T + 1, *shape]`` (state) or ``[B, T, *shape]``
            (transition), float32 / int64 / bool by storage, zero beyond each episode;
            ``filled`` bool ``[B, T]`` (``t < length``); ``episode_id`` int64 ``[B]``
            (insertion counter, larger is newer). ``T`` is the longest length in the batch.
        """
        slots = np.asarray(slots, dtype=np.int64)
        lengths = self._lengths[slots]
        t_max = int(lengths.max()) if slots.size else 0
        out = {
            name: CODECS[spec.storage].decode(spec, self._data[name][slots, : spec.slots(t_max)])
            for name, spec in self.scheme.items()
        }
        filled = np.arange(t_max)[None, :] < lengths[:, None]
        for name, spec in self.scheme.items():
            if spec.onehot_tail:
                src = self.scheme[spec.onehot_tail]
                values = self._data[spec.onehot_tail][slots, :t_max]
                tail = _onehot_tail(values, filled, src.num_values)
                out[name] = torch.cat([out[name], torch.from_numpy(tail)], dim=-1)
        out["filled"] = torch.from_numpy(filled)
        out["episode_id"] = torch.from_numpy(self._ids[slots].copy())
        return out

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """``batch_size`` distinct episodes drawn uniformly (see :meth:`gather`)."""
        if not self.can_sample(batch_size):
            raise ValueError(
                f"cannot sample {batch_size} episodes from a buffer holding {self._size}"
            )
        pos = rng.choice(self._size, size=batch_size, replace=False)
        return self.gather(self.newest_slots(self._size)[pos])

    # ------------------------------------------------------------------ persistence
    @property
    def next_slot(self) -> int:
        """The slot the next inserted episode goes to."""
        return self._next

    def stored(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(slots, episode_ids, lengths)`` of the stored episodes, oldest first."""
        slots = self.newest_slots(self._size)
        return slots, self._ids[slots].astype(np.int64), self._lengths[slots].astype(np.int64)

    def stored_rows(self, name: str, slot: int) -> np.ndarray:
        """Field ``name`` of the episode in ``slot`` as stored: its valid slots only, in the
        stored dtype and shape (a view)."""
        return self._data[name][slot, : self.scheme[name].slots(int(self._lengths[slot]))]

    def restore(self, next_slot: int, size: int, total: int) -> np.ndarray:
        """Reset an empty buffer to the pointers of a saved one; returns the slots its
        ``size`` stored episodes go to, oldest first (fill them with :meth:`put_stored`)."""
        if self._total:
            raise ValueError("restore() needs a buffer nothing was inserted into")
        if not (0 <= size <= self.capacity and 0 <= next_slot < self.capacity and size <= total):
            raise UserError(
                f"buffer pointers next {next_slot}, size {size}, total {total} do not fit a "
                f"buffer of capacity {self.capacity}"
            )
        self._next, self._size, self._total = int(next_slot), int(size), int(total)
        return self.newest_slots(size)

    def put_stored(
        self, slot: int, episode_id: int, length: int, rows: Mapping[str, np.ndarray]
    ) -> None:
        """Write one episode as :meth:`stored_rows` gave it back into ``slot``."""
        for name, spec in self.scheme.items():
            self._data[name][slot, : spec.slots(length)] = rows[name]
        self._lengths[slot] = self._extent[slot] = length
        self._ids[slot] = episode_id

    def state_dict(self, written_only: bool = False) -> dict[str, np.ndarray | int]:
        """Contents and pointers (arrays are views; copy or save them at once).

        ``written_only``: the per-episode arrays are cut to the ``min(total, capacity)``
        slots ever written (a FIFO fills slots ``0, 1, ...`` first; dropped episodes leave
        theirs behind), which is all a checkpoint needs.
        """
        rows = min(self._total, self.capacity) if written_only else self.capacity
        state: dict[str, np.ndarray | int] = {f"data.{k}": v[:rows] for k, v in self._data.items()}
        state.update(
            lengths=self._lengths[:rows],
            extent=self._extent[:rows],
            ids=self._ids[:rows],
            next=self._next,
            size=self._size,
            total=self._total,
        )
        return state

    def load_state_dict(self, state: Mapping[str, np.ndarray | torch.Tensor | int]) -> None:
        """Restore from :meth:`state_dict` of a buffer with the same scheme and sizes.

        Arrays (numpy or tensors) may hold only the first slots (``written_only``); the
        other slots are reset to empty, touching only those this buffer has written.
        """
        arrays = {f"data.{k}": v for k, v in self._data.items()}
        arrays.update(lengths=self._lengths, extent=self._extent, ids=self._ids)
        loaded = {k: _to_numpy(state.get(k, np.empty(0))) for k in arrays}
        for key, arr in arrays.items():
            src = loaded[key]
            if (
                src.ndim != arr.ndim
                or src.shape[1:] != arr.shape[1:]
                or src.dtype != arr.dtype
                or src.shape[0] > self.capacity
            ):
                raise UserError(
                    f"buffer state field {key.removeprefix('data.')!r} has shape {src.shape} "
                    f"{src.dtype}; this buffer needs {arr.shape} {arr.dtype}"
                )
        rows = sorted({v.shape[0] for v in loaded.values()})
        if len(rows) != 1:
            raise UserError(f"buffer state arrays hold different numbers of episodes: {rows}")
        n = rows[0]
        written = max(n, min(self._total, self.capacity))
        for key, arr in arrays.items():
            arr[:n] = loaded[key]
            arr[n:written] = -1 if key == "ids" else 0
        self._next, self._size, self._total = (
            int(state["next"]),
            int(state["size"]),
            int(state["total"]),
        )
