"""``DualReplayBuffer``: MAST's large off-policy FIFO plus small on-policy FIFO.

Every inserted episode enters both FIFOs; the off-policy FIFO keeps the newest
``off_capacity`` episodes, the on-policy FIFO the newest ``on_capacity``. Because the
newest ``on_capacity`` episodes of a FIFO of capacity ``off_capacity >= on_capacity``
are exactly the contents of a FIFO of capacity ``on_capacity`` fed the same stream, both
are views of one :class:`~mast.buffer.episode.EpisodeBuffer`: no episode is stored twice.

Batch composition: ``n_on = min(floor(on_fraction * B + 1/2), len_on)`` episodes
(``on_fraction * B`` rounded half up, capped by the ``len_on = min(len, on_capacity)``
episodes the on-policy FIFO holds) are drawn without replacement from the on-policy
FIFO and placed first; the other ``B - n_on`` are drawn without replacement from the
off-policy FIFO. As with two separate buffers, one episode may appear in both parts.
``on_fraction = 0`` is the plain single replay buffer.

Dynamic capacity (RLx2, Tan et al. 2023): :meth:`trim` discards the oldest episodes while
a policy distance of the oldest ones exceeds a threshold, so that multi-step targets are
not computed from data of a policy too unlike the current one.

Defaults: ``off_capacity = 5000`` (the paper's and pymarl's); ``on_capacity = 64`` and
``on_fraction = 0.5`` are not given in the paper and are chosen here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from numbers import Real

import numpy as np
import torch

from mast.buffer.episode import EpisodeBuffer
from mast.buffer.scheme import Scheme
from mast.errors import UserError

__all__ = ["DualReplayBuffer"]


class DualReplayBuffer:
    """Off-policy FIFO of ``off_capacity`` episodes + on-policy FIFO of the newest ones.

    Parameters
    ----------
    scheme:
        ``name -> FieldSpec`` of the stored episodes.
    episode_limit:
        Maximum transitions per episode.
    off_capacity:
        Episodes kept by the off-policy FIFO (the memory this buffer reserves).
    on_capacity:
        Episodes kept by the on-policy FIFO, ``1 <= on_capacity <= off_capacity``.
    on_fraction:
        Share of every batch drawn from the on-policy FIFO, in ``[0, 1]``.
    """

    def __init__(
        self,
        scheme: Scheme,
        episode_limit: int,
        off_capacity: int = 5000,
        on_capacity: int = 64,
        on_fraction: float = 0.5,
    ) -> None:
        self.store = EpisodeBuffer(scheme, off_capacity, episode_limit)
        if (
            isinstance(on_capacity, bool)
            or not isinstance(on_capacity, int)
            or not (1 <= on_capacity <= off_capacity)
        ):
            raise UserError(
                f"on_capacity must be an integer in [1, off_capacity={off_capacity}], "
                f"got {on_capacity!r}"
            )
        if not (
            isinstance(on_fraction, Real)
            and 0.0 <= on_fraction <= 1.0
            and not math.isnan(on_fraction)
        ):
            raise UserError(f"on_fraction must be in [0, 1], got {on_fraction!r}")
        self.on_capacity = on_capacity
        self.on_fraction = float(on_fraction)

    @property
    def off_capacity(self) -> int:
        """Episodes kept by the off-policy FIFO."""
        return self.store.capacity

    @property
    def scheme(self):
        """The stored fields (see :class:`~mast.buffer.scheme.FieldSpec`)."""
        return self.store.scheme

    def __len__(self) -> int:
        """Episodes in the off-policy FIFO (the on-policy FIFO holds the newest of them)."""
        return len(self.store)

    @property
    def on_len(self) -> int:
        """Episodes in the on-policy FIFO."""
        return min(len(self.store), self.on_capacity)

    @property
    def nbytes(self) -> int:
        """Bytes reserved (one shared storage; see :attr:`EpisodeBuffer.nbytes`)."""
        return self.store.nbytes

    def bytes_per_episode(self, episode_len: int | None = None) -> int:
        """Stored bytes of one episode (see :meth:`EpisodeBuffer.bytes_per_episode`)."""
        return self.store.bytes_per_episode(episode_len)

    def can_sample(self, batch_size: int) -> bool:
        """Whether a batch of ``batch_size`` distinct-per-part episodes can be drawn."""
        return self.store.can_sample(batch_size)

    def insert(self, batch: Mapping[str, np.ndarray | torch.Tensor], lengths) -> None:
        """Append episodes to both FIFOs (see :meth:`EpisodeBuffer.insert`)."""
        self.store.insert(batch, lengths)

    def on_policy_count(self, batch_size: int) -> int:
        """How many of a ``batch_size`` batch come from the on-policy FIFO now."""
        return min(math.floor(self.on_fraction * batch_size + 0.5), self.on_len)

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """A batch: :meth:`on_policy_count` on-policy episodes first, then off-policy.

        Returns the tensors of :meth:`EpisodeBuffer.gather`.
        """
        if not self.can_sample(batch_size):
            raise ValueError(
                f"cannot sample {batch_size} episodes from a buffer holding {len(self)}"
            )
        n_on = self.on_policy_count(batch_size)
        on_slots = self.store.newest_slots(self.on_len)
        off_slots = self.store.newest_slots(len(self.store))
        slots = np.concatenate(
            [
                on_slots[rng.choice(on_slots.size, size=n_on, replace=False)],
                off_slots[rng.choice(off_slots.size, size=batch_size - n_on, replace=False)],
            ]
        )
        return self.store.gather(slots)

    def trim(
        self,
        distance: Callable[[dict[str, torch.Tensor]], float],
        oldest: int,
        threshold: float,
        min_episodes: int,
    ) -> int:
        """RLx2's dynamic capacity: while ``distance`` of the ``oldest`` oldest episodes
        (a :meth:`EpisodeBuffer.gather` batch) exceeds ``threshold`` and dropping them
        leaves at least ``min_episodes``, drop them. Returns the episodes dropped."""
        dropped = 0
        while len(self) - oldest >= min_episodes:
            batch = self.store.gather(self.store.newest_slots(len(self))[:oldest])
            if distance(batch) <= threshold:
                break
            dropped += self.store.drop_oldest(oldest)
        return dropped

    def state_dict(self, written_only: bool = False) -> dict[str, np.ndarray | int]:
        """Contents and pointers (see :meth:`EpisodeBuffer.state_dict`)."""
        return self.store.state_dict(written_only)

    def load_state_dict(self, state: Mapping[str, np.ndarray | torch.Tensor | int]) -> None:
        """Restore from :meth:`state_dict` of a buffer with the same scheme and sizes."""
        self.store.load_state_dict(state)
