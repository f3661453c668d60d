"""Episode replay: compact episode storage and MAST's dual (off-/on-policy) buffer.

- :func:`smac_scheme`, :class:`FieldSpec`: which fields an episode has and how each is
  stored (what is exact, what is rounded);
- :class:`EpisodeBuffer`: FIFO of whole episodes with uniform sampling;
- :class:`DualReplayBuffer`: large off-policy FIFO + small on-policy FIFO of the newest
  episodes, each batch drawn from both (``on_fraction = 0``: a plain buffer), with RLx2's
  dynamic capacity (``trim``).
"""

from mast.buffer.dual import DualReplayBuffer
from mast.buffer.episode import EpisodeBuffer
from mast.buffer.scheme import (
    FLOAT_STORAGES,
    STEP_KINDS,
    STORAGE_KINDS,
    FieldSpec,
    Scheme,
    smac_scheme,
)

__all__ = [
    "FLOAT_STORAGES",
    "STEP_KINDS",
    "STORAGE_KINDS",
    "DualReplayBuffer",
    "EpisodeBuffer",
    "FieldSpec",
    "Scheme",
    "smac_scheme",
]
