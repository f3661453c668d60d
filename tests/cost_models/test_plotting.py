"""Plot helpers: compact step labels, log axes only for wide ranges, plain tick labels."""

from __future__ import annotations

from matplotlib.figure import Figure

from cost_models.plotting import fmt_steps, readable_y


def test_fmt_steps():
    assert [fmt_steps(x) for x in (0, 500, 2500, 60_000, 1_200_000)] == [
        "0",
        "500",
        "2.5k",
        "60k",
        "1.2M",
    ]


def test_readable_y_linear_for_narrow_ranges_log_with_plain_ticks_for_wide():
    ax = Figure().add_subplot()
    readable_y(ax, [3.7, 9.3])
    assert ax.get_yscale() == "linear" and ax.get_ylim()[0] == 0
    ax = Figure().add_subplot()
    ax.plot([0, 1], [4.2, 66.0])
    readable_y(ax, [4.2, 66.0])
    assert ax.get_yscale() == "log"
    fmt = ax.yaxis.get_major_formatter()
    assert [fmt(v, 0) for v in (5.0, 20.0, 50.0)] == ["5", "20", "50"]
