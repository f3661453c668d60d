"""rliable statistics against values worked out by hand (sweep.stats)."""

from __future__ import annotations

import numpy as np
import pytest

from sweep.stats import aggregate_estimates, cell_estimates, curve_iqm, improvement

# Sorted: 0.0 0.1 0.2 0.3 | 0.4 0.8 0.9 1.0 -> median (0.3 + 0.4) / 2 = 0.35; the IQM drops
# the two lowest and two highest: (0.2 + 0.3 + 0.4 + 0.8) / 4 = 0.425; mean 3.7 / 8.
SCORES = np.array([0.9, 0.0, 0.3, 1.0, 0.2, 0.8, 0.1, 0.4])


def test_cell_point_estimates_by_hand():
    est = cell_estimates({"a": SCORES}, reps=300)["a"]
    assert est["median"].value == pytest.approx(0.35)
    assert est["iqm"].value == pytest.approx(0.425)
    assert est["mean"].value == pytest.approx(3.7 / 8)


def test_cell_intervals_bracket_and_are_reproducible():
    a = cell_estimates({"a": SCORES}, reps=300)["a"]
    b = cell_estimates({"a": SCORES}, reps=300)["a"]
    assert a == b
    for e in a.values():
        assert 0.0 <= e.low < e.value < e.high <= 1.0
    # One value or identical values: every resample is the same, the interval is a point.
    for scores in (np.array([0.625]), np.full(5, 0.5)):
        for e in cell_estimates({"c": scores}, reps=100)["c"].values():
            assert e.low == e.value == e.high == scores[0]


def test_probability_of_improvement_by_hand():
    # Pairs (x, y): 0.2 beats 0.1; 0.6 beats 0.1 and ties 0.6 (half); 0.9 beats all three.
    x, y = np.array([0.2, 0.6, 0.9]), np.array([0.1, 0.6, 0.7])
    poi = improvement(x, y, reps=200)
    assert poi.value == pytest.approx(5.5 / 9)
    assert poi.low <= poi.value <= poi.high
    # Two maps: the second is won on every pair; the maps are averaged.
    x2 = np.stack([x, np.ones(3)], axis=1)
    y2 = np.stack([y, np.zeros(3)], axis=1)
    assert improvement(x2, y2, reps=200).value == pytest.approx((5.5 / 9 + 1.0) / 2)
    assert improvement(y, y, reps=50).value == 0.5


def test_aggregates_over_maps_by_hand():
    # runs x maps; per-map means 0.3, 0.6, 1.0 -> median 0.6, mean 1.9 / 3 (the median of all
    # nine values would be 0.7); the IQM of all nine (0 .1 .5 .6 .7 .8 1 1 1) drops two at
    # each end: 3.6 / 5.
    scores = np.array([[0.0, 0.5, 1.0], [0.1, 0.6, 1.0], [0.8, 0.7, 1.0]])
    est = aggregate_estimates({"m": scores}, reps=200)["m"]
    assert est["median"].value == pytest.approx(0.6)
    assert est["mean"].value == pytest.approx(1.9 / 3)
    assert est["iqm"].value == pytest.approx(0.72)


def test_curve_iqm_per_point():
    # Four runs, three evaluation points; the IQM of four values is the mean of the middle two.
    curves = np.array([[0.0, 0.5, 1.0], [0.1, 0.6, 1.0], [0.3, 0.2, 1.0], [0.9, 0.4, 1.0]])
    point, interval = curve_iqm({"m": curves}, reps=100)
    assert point["m"] == pytest.approx([0.2, 0.45, 1.0])
    assert interval["m"].shape == (2, 3)
    assert interval["m"][0][2] == interval["m"][1][2] == 1.0
