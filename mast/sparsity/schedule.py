"""When topology updates happen and what fraction of each tensor's non-zeros they swap.

Time ``t`` is one counter chosen by the caller and used in the same unit by ``delta_t``,
``t_end`` and ``dense_grad_window``. The training loop passes the number of environment
steps taken so far (``t_env``), so ``delta_t = 10_000`` means one update per ~10k env
steps (MAST: every 200 episodes). An update is due at the first call with
``t >= last_update_t + delta_t`` and ``t < t_end``; ``t`` may advance by any amount between
calls (a whole batch of episodes), and no update happens at or after ``t_end``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from mast.errors import UserError

__all__ = ["DECAYS", "TopologySchedule"]


def _cosine(zeta: float, t: float, t_end: float) -> float:
    return zeta / 2.0 * (1.0 + math.cos(math.pi * t / t_end))


def _constant(zeta: float, t: float, t_end: float) -> float:
    return zeta


DECAYS: Mapping[str, Callable[[float, float, float], float]] = {
    "cosine": _cosine,
    "constant": _constant,
}
"""Drop-fraction decays by name: ``(zeta, t, t_end) -> zeta_t``."""


@dataclass(frozen=True)
class TopologySchedule:
    """Update times and drop fraction ``zeta_t`` of dynamic sparse training."""

    zeta: float = 0.5
    """Initial drop fraction, in (0, 1]."""
    delta_t: int = 10_000
    """Time between topology updates (same unit as ``t``)."""
    t_end: int = 1_500_000
    """No updates at or after this time; the cosine decay reaches 0 here."""
    decay: str = "cosine"
    """Key of :data:`DECAYS`: ``cosine`` gives ``zeta/2 * (1 + cos(pi t / t_end))``."""
    dense_grad_window: int = 0
    """Average dense gradients over ``[due - window, due]`` for growth scores (RLx2's
    gradient accumulation); 0 uses the gradient of the update iteration only."""

    def __post_init__(self) -> None:
        if self.decay not in DECAYS:
            raise UserError(f"unknown drop decay {self.decay!r}; known: {', '.join(DECAYS)}")
        if not 0.0 < self.zeta <= 1.0:
            raise UserError(f"drop fraction zeta must be in (0, 1], got {self.zeta!r}")
        if self.delta_t < 1:
            raise UserError(f"topology update interval delta_t must be >= 1, got {self.delta_t}")
        if self.t_end < 1:
            raise UserError(f"topology update end t_end must be >= 1, got {self.t_end}")
        if self.dense_grad_window < 0:
            raise UserError(f"dense_grad_window must be >= 0, got {self.dense_grad_window}")

    def drop_fraction(self, t: float) -> float:
        """``zeta_t``: the fraction of a tensor's non-zeros swapped at time ``t`` (0 after
        ``t_end``)."""
        if t >= self.t_end:
            return 0.0
        return DECAYS[self.decay](self.zeta, max(0.0, float(t)), float(self.t_end))

    def next_due(self, last_update_t: int) -> int:
        """Earliest time of the update following one at ``last_update_t``."""
        return last_update_t + self.delta_t

    def is_due(self, t: int, last_update_t: int) -> bool:
        """Whether a call at time ``t`` performs a topology update."""
        return self.next_due(last_update_t) <= t < self.t_end

    def in_grad_window(self, t: int, last_update_t: int) -> bool:
        """Whether the dense gradient at ``t`` contributes to the next update's scores."""
        return self.next_due(last_update_t) - self.dense_grad_window <= t < self.t_end
