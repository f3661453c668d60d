"""Small matplotlib helpers shared by the cost and run reports: readable axes and labels.

Every plot of the reports has a title, units in its axis labels, tick labels written as
plain numbers (no ``6 x 10^0``) and the values a reader looks for written on the plot.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

__all__ = ["fmt_steps", "label_bars", "label_points", "readable_y", "save_png", "steps_axis"]

LOG_SPAN = 8.0
"""A value axis spanning more than this factor is drawn logarithmic."""


def fmt_steps(x: float) -> str:
    """Environment steps as ``0``, ``2.5k``, ``60k``, ``1.2M``."""
    if abs(x) >= 1e6:
        return f"{x / 1e6:g}M"
    if abs(x) >= 1e3:
        return f"{x / 1e3:g}k"
    return f"{x:g}"


def _plain(v: float, _pos=None) -> str:
    return f"{v:g}"


def steps_axis(ax) -> None:
    """Label the x axis as environment steps with compact tick labels (``20k``)."""
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _p: fmt_steps(x)))
    ax.set_xlabel("environment steps")


def readable_y(ax, values: Sequence[float]) -> None:
    """Linear from 0 when the positive ``values`` span less than :data:`LOG_SPAN`, else
    logarithmic with ticks at 1, 2 and 5 per decade written as plain numbers."""
    pos = [v for v in values if v > 0 and math.isfinite(v)]
    if pos and max(pos) / min(pos) > LOG_SPAN:
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(_plain))
        ax.yaxis.set_minor_formatter(NullFormatter())
    else:
        ax.set_ylim(0, max(pos, default=1.0) * 1.15)


def label_points(ax, xs: Sequence[float], ys: Sequence[float], texts: Sequence[str]) -> None:
    """Write ``texts`` next to the points ``(xs, ys)``, alternately above and below so
    neighbouring labels do not overlap."""
    for i, (x, y, t) in enumerate(zip(xs, ys, texts, strict=True)):
        above = i % 2 == 0
        ax.annotate(
            t,
            (x, y),
            textcoords="offset points",
            xytext=(5, 5) if above else (-5, -6),
            ha="left" if above else "right",
            va="bottom" if above else "top",
            fontsize=8,
        )


def label_bars(ax, bars, texts: Sequence[str]) -> None:
    """Write ``texts`` above the bars of one ``ax.bar`` call."""
    ax.bar_label(bars, labels=list(texts), padding=2, fontsize=9)


def save_png(fig, path: Path, dpi: int = 110) -> Path:
    """Write ``fig`` as a PNG atomically (a reader never sees half a file)."""
    from mast.atomicio import save_with

    return save_with(path, lambda fh: fig.savefig(fh, format="png", dpi=dpi))
