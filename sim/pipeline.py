"""Step sequencer shared by the sample-parallel kernels (``docs/microarchitecture.md`` s.2).

Step ``s`` runs stage ``j`` on tile ``s - j`` when that tile exists. Each active stage's
action is executed (it reads and writes the model's buffers and counts its accesses) and
the step lasts the longest active stage plus one handshake cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sim.result import PhaseCycles

__all__ = ["Stage", "run_steps"]

_PRIORITY = ("compute", "load", "drain", "reduction")


@dataclass(frozen=True)
class Stage:
    """A pipeline stage: its phase name, duration per tile and action ``action(tile)``."""

    phase: str
    duration: int
    action: Callable[[int], None]


def run_steps(tiles: int, stages: Sequence[Stage]) -> tuple[int, PhaseCycles, int, int]:
    """Execute the steps; return ``(cycles, phases, compute_cycles, steps)``."""
    counts = dict.fromkeys(_PRIORITY, 0)
    handshake = cycles = compute = steps = 0
    for s in range(tiles + len(stages) - 1):
        active = [st for j, st in enumerate(stages) if 0 <= s - j < tiles]
        # Stages act on distinct buffer halves (tile parity), so their order is free.
        for j, st in enumerate(stages):
            if 0 <= s - j < tiles:
                st.action(s - j)
        longest = max(st.duration for st in active)
        owner = min(
            (st for st in active if st.duration == longest),
            key=lambda st: _PRIORITY.index(st.phase),
        )
        counts[owner.phase] += longest
        compute += sum(st.duration for st in active if st.phase == "compute")
        handshake += 1
        cycles += longest + 1
        steps += 1
    return cycles, PhaseCycles(handshake=handshake, **counts), compute, steps
