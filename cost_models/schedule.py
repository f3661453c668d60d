"""Scheduling a kernel graph on the accelerator's resources.

Resources: the PE array (``pe``), the vector unit (``vec``) and the DRAM channel
(``dma``, transfers that are not part of a compute kernel). Each resource executes one
kernel at a time; kernels on different resources overlap when the graph allows it.
Independent kernels on the *same* resource do not overlap: the batching that makes them
share the array is already done when the graph is built (one node covers all batch
elements and, off the recurrence, all time steps).

The schedule is a non-delay list schedule: whenever a resource is idle it starts the
ready kernel with the longest remaining path to the end of the graph (its bottom level,
durations included). The critical path (infinite resources) is a lower bound of the
makespan; the serial sum of durations an upper bound.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass

import networkx as nx

__all__ = ["Schedule", "list_schedule", "critical_path"]


@dataclass(frozen=True)
class Schedule:
    """Result of :func:`list_schedule` (times in cycles)."""

    makespan: float
    """Finish time of the last kernel."""
    critical_path: float
    """Longest dependency chain, durations summed (resource limits ignored)."""
    serial: float
    """Sum of all durations (every kernel one after another)."""
    busy: dict[str, float]
    """Busy cycles per resource."""
    start: dict[str, float]
    """Start time of every node."""


def critical_path(g: nx.DiGraph, duration: Mapping[str, float]) -> float:
    """Longest path through ``g`` where each node costs ``duration[node]``."""
    finish: dict[str, float] = {}
    for n in nx.topological_sort(g):
        finish[n] = duration[n] + max((finish[p] for p in g.predecessors(n)), default=0.0)
    return max(finish.values(), default=0.0)


def list_schedule(
    g: nx.DiGraph, duration: Mapping[str, float], resource: Mapping[str, str]
) -> Schedule:
    """Non-delay list schedule of ``g`` by bottom-level priority, one kernel per resource."""
    order = list(nx.topological_sort(g))
    index = {n: i for i, n in enumerate(order)}
    level: dict[str, float] = {}
    for n in reversed(order):
        level[n] = duration[n] + max((level[s] for s in g.successors(n)), default=0.0)
    waiting = {n: g.in_degree(n) for n in order}
    ready: dict[str, list] = {}
    for n in order:
        if waiting[n] == 0:
            heapq.heappush(ready.setdefault(resource[n], []), (-level[n], index[n], n))
    busy_until: dict[str, float] = {}
    events: list[tuple[float, int, str]] = []
    start: dict[str, float] = {}
    busy: dict[str, float] = {}
    now, done = 0.0, 0
    while done < len(order):
        for res, heap in ready.items():
            if heap and busy_until.get(res, 0.0) <= now:
                _, i, n = heapq.heappop(heap)
                start[n] = now
                busy_until[res] = now + duration[n]
                busy[res] = busy.get(res, 0.0) + duration[n]
                heapq.heappush(events, (now + duration[n], i, n))
        t, _, n = heapq.heappop(events)
        now = t
        finished = [n]
        while events and events[0][0] <= now:
            finished.append(heapq.heappop(events)[2])
        for f in finished:
            done += 1
            for s in g.successors(f):
                waiting[s] -= 1
                if waiting[s] == 0:
                    heapq.heappush(ready.setdefault(resource[s], []), (-level[s], index[s], s))
    return Schedule(
        makespan=max((start[n] + duration[n] for n in order), default=0.0),
        critical_path=critical_path(g, duration),
        serial=float(sum(duration.values())),
        busy=busy,
        start=start,
    )
