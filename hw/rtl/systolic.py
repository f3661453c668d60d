"""Dense weight-stationary systolic array of a ``kind="systolic"`` profile (contract s.3).

``R x C`` cells; cell ``(i, j)`` holds ``W[nf*C + j, kf*R + i]`` of the current fold.
Activations enter row ``i`` from the left skewed by ``i`` cycles (sample ``m`` reaches
cell ``(i, j)`` in stream cycle ``m + i + j``) and move one cell right per cycle; partial
sums move one cell down per cycle, each cell adding its product with saturation, so a
column forms the sequential saturating chain over ``k``. The previous ``k``-fold's partial
sum enters the top of column ``j`` in cycle ``m + j``; the bottom row's sums are deskewed
to leave all ``C`` columns of sample ``m`` together in cycle ``m + R + C - 2``, the last of
them in the fold's last stream cycle. Per fold: ``R`` weight shift-in cycles plus
``M + R + C - 2`` stream cycles, no handshake.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.profiles import HwProfile

from .arith import acc_shape, op_shape, sat_add

__all__ = ["SystolicArray", "check_systolic"]


def check_systolic(profile: HwProfile, what: str) -> HwProfile:
    """Return ``profile`` if it describes a systolic array, else raise ``ValueError``."""
    if not isinstance(profile, HwProfile):
        raise TypeError(f"{what} needs an HwProfile, got {profile!r}")
    if profile.kind != "systolic":
        raise ValueError(
            f"{what} needs a systolic profile, got {profile.name!r} of kind {profile.kind!r}"
        )
    return profile


class SystolicArray(wiring.Component):
    """The ``rows x cols`` cell mesh.

    Ports
    -----
    shift, w_row:
        While ``shift`` is high, ``w_row`` (``cols`` operands) enters row 0 and every row
        moves down by one: after ``rows`` shifts row ``i`` holds the ``rows - 1 - i``-th
        row shifted in.
    x:
        One operand per row, entering column 0 (the caller applies the skew).
    top:
        One accumulator per column entering row 0 (the caller applies the skew).
    bottom:
        Per column, the (combinational) sum leaving the last row.
    """

    def __init__(self, profile: HwProfile):
        self._profile = check_systolic(profile, "SystolicArray")
        p = profile
        super().__init__(
            {
                "shift": In(1),
                "w_row": In(op_shape(p)).array(p.cols),
                "x": In(op_shape(p)).array(p.rows),
                "top": In(acc_shape(p)).array(p.cols),
                "bottom": Out(acc_shape(p)).array(p.cols),
            }
        )

    @property
    def profile(self) -> HwProfile:
        return self._profile

    def elaborate(self, platform):
        p = self._profile
        m = Module()
        r, c = p.rows, p.cols
        w = [[Signal(op_shape(p), name=f"w_{i}_{j}") for j in range(c)] for i in range(r)]
        xr = [[Signal(op_shape(p), name=f"x_{i}_{j}") for j in range(c)] for i in range(r)]
        ps = [[Signal(acc_shape(p), name=f"ps_{i}_{j}") for j in range(c)] for i in range(r)]
        with m.If(self.shift):
            for j in range(c):
                m.d.sync += w[0][j].eq(self.w_row[j])
                for i in range(1, r):
                    m.d.sync += w[i][j].eq(w[i - 1][j])
        for i in range(r):
            for j in range(c):
                x_in = self.x[i] if j == 0 else xr[i][j - 1]
                p_in = self.top[j] if i == 0 else ps[i - 1][j]
                total = Signal(acc_shape(p), name=f"sum_{i}_{j}")
                m.d.comb += total.eq(sat_add(p_in, w[i][j] * x_in, p.acc_bits))
                m.d.sync += [xr[i][j].eq(x_in), ps[i][j].eq(total)]
                if i == r - 1:
                    m.d.comb += self.bottom[j].eq(total)
        return m
