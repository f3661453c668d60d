"""Ground pathing on a unit grid: pathable cells, cliffs between levels and a flow field.

A map's ground is a grid of 1x1 cells, each either not pathable or pathable at a cliff
level (SC2's terrain height: 64 low ground, 128 a plateau, ramps in between). A ground
unit may step between two adjacent pathable cells whose levels differ by at most
:data:`MAX_STEP`; a larger difference is a cliff, which only cliff-walking units (colossi)
cross. Maps whose ground is one pathable rectangle at one level (the open maps' band) skip
all of this: units walk straight and are only kept inside it. Otherwise every pathable
cell knows its 8-connected shortest-path distance to every other pathable cell (an
all-pairs breadth-first search done once per ground layout with array shifts), and a
ground unit heading for a goal steps toward the neighbouring cell closest to it whenever
the straight line would need a detour.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MAX_STEP", "Terrain"]

MAX_STEP = 24
"""Largest level difference between neighbouring cells a ground unit walks (a ramp's
steps, 64 -> 72 -> 88 -> 104 -> 128 on 2c_vs_64zg); larger differences are cliffs."""

_NBR = np.array([(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)])
_FAR = np.int32(1 << 20)
_PATHS: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
"""Shortest-path tables by ground layout (read-only once built)."""


def _shift(a: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """``out[..., x, y] = a[..., x - dx, y - dy]`` (zero/False where that lies outside)."""
    out = np.zeros_like(a)
    w, h = a.shape[-2:]
    out[..., max(dx, 0) : w + min(dx, 0), max(dy, 0) : h + min(dy, 0)] = a[
        ..., max(-dx, 0) : w + min(-dx, 0), max(-dy, 0) : h + min(-dy, 0)
    ]
    return out


class Terrain:
    """Pathing grid ``walk[x, y]`` (``True`` pathable) with cliffs and shortest paths.

    Parameters
    ----------
    walk:
        Boolean ``(width, height)`` grid of 1x1 cells.
    level:
        Cliff level of every cell (same shape), or ``None`` for no cliffs (cliff-walkers).
    """

    def __init__(self, walk: np.ndarray, level: np.ndarray | None = None) -> None:
        self.walk = np.asarray(walk, dtype=bool)
        self.width, self.height = self.walk.shape
        self.level = None if level is None else np.asarray(level, dtype=np.int64)
        # edge_ok[k, x, y]: a ground unit may step from (x, y) to (x, y) + _NBR[k]
        edge = np.zeros((len(_NBR), self.width, self.height), dtype=bool)
        for k, (dx, dy) in enumerate(_NBR):
            dst_walk = _shift(self.walk, -dx, -dy)
            ok = self.walk & dst_walk
            if self.level is not None:
                ok &= np.abs(_shift(self.level, -dx, -dy) - self.level) <= MAX_STEP
            edge[k] = ok
        self._edge = edge
        self.has_cliffs = bool((edge != _nbr_walk(self.walk)).any())
        self.rect = None if self.has_cliffs else _single_rect(self.walk)
        """``(x0, y0, x1, y1)`` when the pathable ground is one rectangle at one level, which
        needs no path finding (units only stay inside it); ``None`` otherwise."""
        self.has_obstacles = self.rect is None
        self._dist: np.ndarray | None = None
        self._nbrs: np.ndarray | None = None

    def walkable(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Whether points ``(x, y)`` lie inside the map on pathable cells."""
        ix = np.floor(x).astype(np.int64)
        iy = np.floor(y).astype(np.int64)
        inside = (ix >= 0) & (ix < self.width) & (iy >= 0) & (iy < self.height)
        ok = np.zeros(np.shape(x), dtype=bool)
        ok[inside] = self.walk[ix[inside], iy[inside]]
        return ok

    def level_at(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Cliff level under points ``(x, y)`` (clipped into the map; 0 without levels)."""
        if self.level is None:
            return np.zeros(np.shape(x), dtype=np.int64)
        ix = np.clip(np.floor(x).astype(np.int64), 0, self.width - 1)
        iy = np.clip(np.floor(y).astype(np.int64), 0, self.height - 1)
        return self.level[ix, iy]

    def passable(self, ox, oy, x, y) -> np.ndarray:
        """Whether a ground unit may go from ``(ox, oy)`` to ``(x, y)`` (at most one cell
        apart per axis): the target is pathable and no cliff lies between."""
        ok = self.walkable(x, y)
        if self.level is not None:
            ok &= np.abs(self.level_at(x, y) - self.level_at(ox, oy)) <= MAX_STEP
        return ok

    def cell(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Flat cell index ``ix * height + iy`` of points, clipped into the map."""
        ix = np.clip(np.floor(x).astype(np.int64), 0, self.width - 1)
        iy = np.clip(np.floor(y).astype(np.int64), 0, self.height - 1)
        return ix * self.height + iy

    def _build(self) -> None:
        """All-pairs 8-connected BFS distances over the allowed steps, ``dist[goal, cell]``
        (computed once per ground layout and process, shared by every engine)."""
        key = (self.walk.shape, self.walk.tobytes(), self._edge.tobytes())
        if key not in _PATHS:
            _PATHS[key] = self._search()
        self._dist, self._nbrs = _PATHS[key]

    def _search(self) -> tuple[np.ndarray, np.ndarray]:
        w, h = self.width, self.height
        n = w * h
        reach = np.zeros((n, w, h), dtype=bool)
        idx = np.flatnonzero(self.walk.ravel())
        reach[idx, idx // h, idx % h] = True
        dist = np.full((n, w, h), _FAR, dtype=np.int32)
        dist[reach] = 0
        for step in range(1, n + 1):
            grown = reach.copy()
            for k, (dx, dy) in enumerate(_NBR):
                # steps are symmetric: (x, y) is reached when a reached neighbour may step in
                grown |= _shift(reach & self._edge[k], dx, dy)
            new = grown & ~reach
            if not new.any():
                break
            dist[new] = step
            reach = grown
        nb = np.full((n, 8), -1, dtype=np.int64)
        xs, ys = np.divmod(np.arange(n), h)
        for k, (dx, dy) in enumerate(_NBR):
            ok = self._edge[k].ravel()
            nb[ok, k] = (xs[ok] + dx) * h + ys[ok] + dy
        return dist.reshape(n, n), nb

    def steer(self, pos: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """Waypoints for ground units at ``pos`` heading to ``goal`` (both ``(..., 2)``).

        Returns ``goal`` where the straight line needs no detour (grid distance equals
        the Chebyshev distance); otherwise the unit's position shifted by one cell toward
        the neighbouring cell nearest to the goal along the ground (a flow field, so
        neighbouring units keep their spacing).
        """
        if not self.has_obstacles:
            return goal
        if self._dist is None:
            self._build()
        c = self.cell(pos[..., 0], pos[..., 1])
        g = self.cell(goal[..., 0], goal[..., 1])
        d_here = self._dist[g, c]
        h = self.height
        cheb = np.maximum(np.abs(c // h - g // h), np.abs(c % h - g % h))
        detour = (d_here > cheb) & (d_here < _FAR)
        if not detour.any():
            return goal
        nb = self._nbrs[c[detour]]
        dn = np.where(nb >= 0, self._dist[g[detour][:, None], np.maximum(nb, 0)], _FAR)
        best = nb[np.arange(len(nb)), dn.argmin(axis=1)]
        here = c[detour]
        out = goal.copy()
        out[detour, 0] = pos[detour, 0] + (best // h - here // h)
        out[detour, 1] = pos[detour, 1] + (best % h - here % h)
        return out


def _single_rect(walk: np.ndarray) -> tuple[int, int, int, int] | None:
    """Half-open bounds of the pathable cells if they fill exactly one rectangle."""
    xs, ys = np.nonzero(walk)
    if xs.size == 0:
        return None
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
    return (x0, y0, x1, y1) if walk[x0:x1, y0:y1].all() else None


def _nbr_walk(walk: np.ndarray) -> np.ndarray:
    """Steps between pathable neighbours, ignoring levels (``edge`` without cliffs)."""
    return np.stack([walk & _shift(walk, -dx, -dy) for dx, dy in _NBR])
