"""Ground pathing on a unit grid: walkability checks and a flow field round obstacles.

Maps without blocked ground skip all of this (units walk straight). On maps with
obstacles every walkable cell knows its 8-connected shortest-path distance to every other
walkable cell (an all-pairs breadth-first search done once per map with array shifts),
and a ground unit heading for a goal steps toward the neighbouring cell closest to it
whenever the straight line would need a detour.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Terrain"]

_NBR = np.array([(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)])
_FAR = np.int32(1 << 20)


class Terrain:
    """Pathing grid ``walk[x, y]`` (``True`` walkable) with shortest-path look-ups.

    Parameters
    ----------
    walk:
        Boolean ``(width, height)`` grid of 1x1 cells.
    """

    def __init__(self, walk: np.ndarray) -> None:
        self.walk = np.asarray(walk, dtype=bool)
        self.width, self.height = self.walk.shape
        self.has_obstacles = not bool(self.walk.all())
        self._dist: np.ndarray | None = None
        self._nbrs: np.ndarray | None = None

    def walkable(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Whether points ``(x, y)`` lie inside the map on walkable cells."""
        ix = np.floor(x).astype(np.int64)
        iy = np.floor(y).astype(np.int64)
        inside = (ix >= 0) & (ix < self.width) & (iy >= 0) & (iy < self.height)
        ok = np.zeros(np.shape(x), dtype=bool)
        ok[inside] = self.walk[ix[inside], iy[inside]]
        return ok

    def cell(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Flat cell index ``ix * height + iy`` of points, clipped into the map."""
        ix = np.clip(np.floor(x).astype(np.int64), 0, self.width - 1)
        iy = np.clip(np.floor(y).astype(np.int64), 0, self.height - 1)
        return ix * self.height + iy

    def _build(self) -> None:
        """All-pairs 8-connected BFS distances, ``dist[goal_cell, cell]`` (int32)."""
        w, h = self.width, self.height
        n = w * h
        walk = self.walk
        reach = np.zeros((n, w, h), dtype=bool)
        idx = np.flatnonzero(walk.ravel())
        reach[idx, idx // h, idx % h] = True
        dist = np.full((n, w, h), _FAR, dtype=np.int32)
        dist[reach] = 0
        for step in range(1, n + 1):
            grown = reach.copy()
            grown[:, 1:, :] |= reach[:, :-1, :]
            grown[:, :-1, :] |= reach[:, 1:, :]
            g2 = grown.copy()
            g2[:, :, 1:] |= grown[:, :, :-1]
            g2[:, :, :-1] |= grown[:, :, 1:]
            g2 &= walk
            new = g2 & ~reach
            if not new.any():
                break
            dist[new] = step
            reach = g2
        self._dist = dist.reshape(n, n)
        nb = np.full((n, 8), -1, dtype=np.int64)
        xs, ys = np.divmod(np.arange(n), h)
        for k, (dx, dy) in enumerate(_NBR):
            nx, ny = xs + dx, ys + dy
            ok = (nx >= 0) & (nx < w) & (ny >= 0) & (ny < h)
            ok[ok] &= walk[nx[ok], ny[ok]]
            nb[ok, k] = nx[ok] * h + ny[ok]
        self._nbrs = nb

    def steer(self, pos: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """Waypoints for ground units at ``pos`` heading to ``goal`` (both ``(..., 2)``).

        Returns ``goal`` where the straight line needs no detour (grid distance equals
        the Chebyshev distance); otherwise the unit's position shifted by one cell toward
        the neighbouring walkable cell nearest to the goal along the ground (a flow field,
        so neighbouring units keep their spacing).
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
