"""Statistics over seeds with rliable: point estimates and stratified bootstrap CIs.

Scores are arrays of shape ``(runs, tasks)`` (a task is a map). Per cell (one map) the
estimates are over the cell's runs: the median and mean of the scores and the IQM (mean
of the middle 50 %, ``scipy.stats.trim_mean(x, 0.25)``, rliable's definition). Across maps
rliable's aggregates apply: IQM over all runs and maps, and the median and mean of the
per-map means. Intervals are 95 % percentile bootstrap intervals, resampling runs within
each map (rliable's stratified bootstrap) with a fixed random state, so a report is
reproducible. The probability of improvement of X over Y is P(X > Y) + P(X = Y) / 2 over
pairs of runs of the same map, averaged over maps, with an independent stratified bootstrap
of both sides.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Estimate",
    "aggregate_estimates",
    "cell_estimates",
    "curve_iqm",
    "improvement",
    "seeded",
]

CI = 0.95


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its 95 % confidence interval."""

    value: float
    low: float
    high: float

    def fmt(self, digits: int = 3) -> str:
        """``value [low, high]``."""
        return f"{self.value:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


def _rng(seed: int) -> np.random.RandomState:
    return np.random.RandomState(seed)


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run rliable's bootstrap reproducibly: its ``StratifiedBootstrap`` draws resampling
    indices from numpy's global generator (not from ``random_state``), so that is seeded
    here and restored afterwards. ``random_state`` itself, which arch 7 deprecates with a
    warning per estimate, is passed for the other bootstraps."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "random_state is deprecated", FutureWarning)
            yield
    finally:
        np.random.set_state(state)


def _estimates(
    scores: Mapping[str, np.ndarray], funcs: Mapping[str, object], reps: int, seed: int
) -> dict[str, dict[str, Estimate]]:
    from rliable import library

    out: dict[str, dict[str, Estimate]] = {k: {} for k in scores}
    for name, func in funcs.items():
        with seeded(seed):
            point, interval = library.get_interval_estimates(
                dict(scores),
                lambda x, f=func: np.array([f(x)]),
                reps=reps,
                confidence_interval_size=CI,
                random_state=_rng(seed),
            )
        for k in scores:
            out[k][name] = Estimate(
                float(point[k][0]), float(interval[k][0][0]), float(interval[k][1][0])
            )
    return out


def cell_estimates(
    scores: Mapping[str, np.ndarray], reps: int = 2000, seed: int = 0
) -> dict[str, dict[str, Estimate]]:
    """``median``, ``iqm`` and ``mean`` over the runs of each key's 1-D score array."""
    from rliable import metrics

    funcs = {
        "median": lambda x: float(np.median(x)),
        "iqm": metrics.aggregate_iqm,
        "mean": lambda x: float(np.mean(x)),
    }
    return _estimates(
        {k: np.asarray(v, float).reshape(-1, 1) for k, v in scores.items()}, funcs, reps, seed
    )


def aggregate_estimates(
    scores: Mapping[str, np.ndarray], reps: int = 2000, seed: int = 0
) -> dict[str, dict[str, Estimate]]:
    """rliable's ``median``, ``iqm`` and ``mean`` of each key's ``(runs, maps)`` scores."""
    from rliable import metrics

    funcs = {
        "median": metrics.aggregate_median,
        "iqm": metrics.aggregate_iqm,
        "mean": metrics.aggregate_mean,
    }
    return _estimates({k: np.asarray(v, float) for k, v in scores.items()}, funcs, reps, seed)


def improvement(x: np.ndarray, y: np.ndarray, reps: int = 2000, seed: int = 0) -> Estimate:
    """Probability of improvement of scores ``x`` over ``y`` (``(runs, maps)`` or 1-D)."""
    from rliable import library, metrics

    x2 = np.asarray(x, float).reshape(len(x), -1)
    y2 = np.asarray(y, float).reshape(len(y), -1)
    with seeded(seed):
        point, interval = library.get_interval_estimates(
            {"x,y": (x2, y2)},
            metrics.probability_of_improvement,
            reps=reps,
            confidence_interval_size=CI,
            random_state=_rng(seed),
        )
    lo, hi = np.asarray(interval["x,y"], float).reshape(2)
    return Estimate(float(np.asarray(point["x,y"]).reshape(())), float(lo), float(hi))


def curve_iqm(
    curves: Mapping[str, np.ndarray], reps: int = 500, seed: int = 0
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """IQM and its CI at every point of each key's ``(runs, points)`` curves.

    Returns rliable's ``(point_estimates, interval_estimates)``: per key an array of shape
    ``(points,)`` and one of shape ``(2, points)`` (lower, upper).
    """
    from rliable import library, metrics

    def iqm(scores: np.ndarray) -> np.ndarray:
        return np.array([metrics.aggregate_iqm(scores[..., j]) for j in range(scores.shape[-1])])

    data = {k: np.asarray(v, float)[:, None, :] for k, v in curves.items()}
    with seeded(seed):
        return library.get_interval_estimates(
            data, iqm, reps=reps, confidence_interval_size=CI, random_state=_rng(seed)
        )
