"""Drop-fraction schedule values and update timing."""

import math

import pytest

from mast.errors import UserError
from mast.sparsity import TopologySchedule


def test_cosine_values():
    s = TopologySchedule(zeta=0.5, delta_t=10, t_end=100)
    assert s.drop_fraction(0) == pytest.approx(0.5)
    assert s.drop_fraction(50) == pytest.approx(0.25)
    assert s.drop_fraction(25) == pytest.approx(0.25 * (1 + math.cos(math.pi / 4)))
    assert s.drop_fraction(99) == pytest.approx(0.25 * (1 + math.cos(math.pi * 0.99)))
    assert s.drop_fraction(100) == 0.0
    assert s.drop_fraction(1000) == 0.0


def test_constant_values():
    s = TopologySchedule(zeta=0.3, delta_t=10, t_end=100, decay="constant")
    assert [s.drop_fraction(t) for t in (0, 50, 99, 100)] == [0.3, 0.3, 0.3, 0.0]


def test_due_times_with_irregular_steps():
    s = TopologySchedule(delta_t=10, t_end=45)
    last, fired = 0, []
    for t in (7, 14, 21, 30, 38, 44, 52, 70):
        if s.is_due(t, last):
            fired.append(t)
            last = t
    # 21 < 14 + 10 and 38 < 30 + 10 are early; 52 and 70 are at or after t_end
    assert fired == [14, 30, 44]
    assert not s.is_due(45, 30)
    assert not s.is_due(43, 34)


def test_grad_window():
    s = TopologySchedule(delta_t=10, t_end=100, dense_grad_window=3)
    assert [t for t in range(0, 12) if s.in_grad_window(t, 0)] == [7, 8, 9, 10, 11]
    s0 = TopologySchedule(delta_t=10, t_end=100)
    assert [t for t in range(0, 12) if s0.in_grad_window(t, 0)] == [10, 11]


def test_bad_values():
    with pytest.raises(UserError, match=r"^topology update interval delta_t must be >= 1, got 0$"):
        TopologySchedule(delta_t=0)
    with pytest.raises(UserError, match=r"^drop fraction zeta must be in \(0, 1\], got 0.0$"):
        TopologySchedule(zeta=0.0)
    with pytest.raises(UserError, match=r"^topology update end t_end must be >= 1, got -5$"):
        TopologySchedule(t_end=-5)
