"""The training progress line and the end-of-run summary lines.

The progress line shows the environment steps with a percentage and the run's headline
figures from the latest metrics row: test win rate, sparsity, FLOPs ratios (train / test)
and, when a callback adds it, ``hw_speedup`` (the current training iteration's speedup on
the accelerator). :func:`progress_line` fits it to the terminal width by dropping, in
order, the run name, the step rate, long labels and the bar, never the figures; a run
that stops past ``t_max`` (runs stop at the end of a rollout) shows 100 % and its true
step count. :class:`ProgressBar` is a ``tqdm`` bar drawing that line.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from tqdm.std import tqdm

__all__ = [
    "DEFAULT_WIDTH",
    "Figure",
    "ProgressBar",
    "StageLog",
    "headline",
    "progress_line",
    "run_summary_lines",
]

DEFAULT_WIDTH = 120
"""Width used when the output is not a terminal."""
MIN_BAR = 10
"""The bar is dropped rather than drawn narrower than this."""
MAX_BAR = 30


@dataclass(frozen=True)
class Figure:
    """One headline figure: a long and a short label and the formatted value."""

    long: str
    short: str
    value: str

    def text(self, short: bool) -> str:
        """``label value``."""
        return f"{self.short if short else self.long} {self.value}"


def _fmt(v: object, spec: str) -> str:
    try:
        x = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "-"
    return "-" if math.isnan(x) else format(x, spec)


def headline(row: Mapping[str, object]) -> list[Figure]:
    """The headline figures of a metrics row (``hw_speedup`` only when the row has it)."""
    figs = [
        Figure("test win", "win", _fmt(row.get("test_win_rate"), ".2f")),
        Figure("sparsity", "sp", _fmt(row.get("sparsity"), ".2f")),
        Figure(
            "FLOPs",
            "FLOPs",
            f"{_fmt(row.get('flops_train_ratio'), '.3f')}/"
            f"{_fmt(row.get('flops_test_ratio'), '.3f')}",
        ),
    ]
    if "hw_speedup" in row:
        figs.append(Figure("hw_speedup/iter", "hw", _fmt(row["hw_speedup"], ".2f") + "x"))
    return figs


def _bar(frac: float, width: int, ascii: bool | str | None) -> str:
    return tqdm.format_meter(
        n=frac, total=1.0, elapsed=0.0, ncols=width, bar_format="{bar}", ascii=ascii
    )


def progress_line(
    n: int,
    total: int,
    elapsed: float,
    figures: Sequence[Figure] = (),
    width: int | None = None,
    desc: str = "",
    rate: float | None = None,
    ascii: bool | str | None = None,
) -> str:
    """One progress line of at most ``width`` characters.

    Parameters
    ----------
    n, total:
        Environment steps taken and planned (``n > total`` shows 100 %).
    elapsed:
        Seconds since the start (of this process).
    figures:
        :func:`headline` figures, always shown (long labels when they fit).
    width:
        Terminal columns (``None``: :data:`DEFAULT_WIDTH`).
    desc:
        Run name, shown first when it fits.
    rate:
        Steps per second (``None``: ``n / elapsed``).
    """
    width = width or DEFAULT_WIDTH
    done = min(n, total) if total > 0 else n
    frac = done / total if total > 0 else 1.0
    if rate is None:
        rate = n / elapsed if elapsed > 0 else None
    remaining = (total - done) / rate if rate else None
    pct = f"{100 * frac:3.0f}%"
    counts = f"{n:,}/{total:,}"
    clock = tqdm.format_interval(elapsed) + (
        "<" + tqdm.format_interval(remaining) if remaining is not None else ""
    )
    speed = f", {rate:,.0f} step/s" if rate else ""
    for use_desc, use_bar, use_rate, short in (
        (True, True, True, False),
        (False, True, True, False),
        (False, True, False, False),
        (False, False, False, False),
        (False, True, False, True),
        (False, False, False, True),
    ):
        status = "  ".join(f.text(short) for f in figures)
        head = f"{desc} " if use_desc and desc else ""
        tail = f" {counts} [{clock}{speed if use_rate else ''}]"
        if use_bar:
            fixed = len(head) + len(pct) + 2 + len(tail) + (1 + len(status) if status else 0)
            room = min(MAX_BAR, width - fixed)
            if room < MIN_BAR:
                continue
            line = f"{head}{pct}|{_bar(frac, room, ascii)}|{tail}"
        else:
            line = f"{head}{pct}{tail}"
        line = f"{line} {status}" if status else line
        if len(line) <= width:
            return line
    return line[:width]


class ProgressBar(tqdm):
    """A ``tqdm`` bar over environment steps drawing :func:`progress_line`.

    ``show(row)`` sets the headline figures from a metrics row and redraws.
    """

    def __init__(self, *args, **kwargs) -> None:
        self.figures: list[Figure] = []
        super().__init__(*args, **kwargs)

    def show(self, row: Mapping[str, object]) -> None:
        """Take the headline figures from ``row`` and redraw the line."""
        self.figures = headline(row)
        self.refresh()

    def __str__(self) -> str:
        d = self.format_dict
        elapsed = d["elapsed"]
        rate = d["rate"]
        if rate is None and elapsed:
            rate = (d["n"] - d["initial"]) / elapsed
        return progress_line(
            n=d["n"],
            total=d["total"] or 0,
            elapsed=elapsed,
            figures=self.figures,
            width=d["ncols"],
            desc=d["prefix"] or "",
            rate=rate,
            ascii=d["ascii"],
        )


def run_summary_lines(result) -> list[str]:
    """The end-of-run summary of a :class:`mast.train.RunResult`: the run folder, the final
    figures (the last metrics row, which is also what ``report.md`` shows) and the lines
    the callbacks added."""
    r = result
    return [
        f"run folder: {r.run_dir}",
        f"final, at t_env {r.t_env:,} ({r.episodes:,} episodes, {r.wall_s:.0f} s):",
        f"  test win rate {r.test_win_rate:.3f} (last evaluation), test return {r.test_return:.2f}",
        f"  sparsity {r.sparsity:.3f}, FLOPs train/test {r.flops_train:.4f}/"
        f"{r.flops_test:.4f} of dense",
        *r.summary,
    ]


class StageLog:
    """Prints ``PROG [   12 s] message`` lines to stderr: progress of commands that run for
    minutes in stages (export, synthesis) rather than over a count."""

    def __init__(self, prog: str, stream=None) -> None:
        import sys
        import time

        self.prog = prog
        self.stream = stream if stream is not None else sys.stderr
        self._clock = time.monotonic
        self.t0 = self._clock()

    def __call__(self, message: str) -> None:
        """Print ``message`` with the seconds since this log was made."""
        elapsed = self._clock() - self.t0
        print(f"{self.prog} [{elapsed:5.0f} s] {message}", file=self.stream, flush=True)

    @contextlib.contextmanager
    def during(self, message: str, every_s: float = 30.0) -> Iterator[None]:
        """Print ``message``, then ``still <message>`` every ``every_s`` seconds until the
        ``with`` block ends (for one long opaque step)."""
        import threading

        self(message)
        done = threading.Event()

        def beat() -> None:
            while not done.wait(every_s):
                self(f"still {message}")

        thread = threading.Thread(target=beat, daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()
