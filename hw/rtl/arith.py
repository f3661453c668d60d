"""Fixed-point datapath helpers shared by the Amaranth blocks.

These build the combinational expressions of ``docs/microarchitecture.md`` section 1
(saturating accumulation, round-half-up requantisation) from a :class:`HwProfile`'s
formats; every width is read from the profile.
"""

from __future__ import annotations

from amaranth.hdl import Const, Mux, Shape, Value, signed

from hw.profiles import HwProfile

__all__ = ["acc_shape", "op_shape", "prod_shape", "sat", "sat_add", "requant", "word_select"]


def op_shape(profile: HwProfile) -> Shape:
    """Signed operand format (weights, activations, gradients)."""
    return signed(profile.operand_bits)


def acc_shape(profile: HwProfile) -> Shape:
    """Signed accumulator format."""
    return signed(profile.acc_bits)


def prod_shape(profile: HwProfile) -> Shape:
    """Exact product of two operands (``2 * operand_bits`` bits, ``2 f`` fractional bits)."""
    return signed(2 * profile.operand_bits)


def sat(x: Value, bits: int) -> Value:
    """Clip the signed expression ``x`` to the ``bits``-bit two's complement range.

    ``x`` fits when its bits from ``bits - 1`` up are all equal (all copies of the sign);
    otherwise its sign picks the bound. Testing bits instead of comparing with the bounds
    keeps carry chains out of the path.
    """
    x = Value.cast(x).as_signed()
    if len(x) <= bits:
        return x
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    top = x[bits - 1 :]
    fits = top.all() | ~top.any()
    bound = Mux(x[-1], Const(lo, signed(bits)), Const(hi, signed(bits)))
    return Mux(fits, x[:bits].as_signed(), bound).as_signed()


def sat_add(a: Value, b: Value, bits: int) -> Value:
    """``sat(a + b)`` at ``bits`` bits: the saturating accumulator add of the contract."""
    return sat(a.as_signed() + b.as_signed(), bits)


def requant(profile: HwProfile, a: Value) -> Value:
    """``sat_op((a + 2^(f-1)) >> f)``: accumulator to operand, round half up.

    With ``frac_bits = 0`` the value is only saturated. Otherwise it is built as
    ``(a >> f) + a[f - 1]`` (the same value): whether ``a >> f`` fits the operand is read
    from its bits, beside the short increment of its low word, so no carry chain of the
    accumulator's width sits in front of the saturation.
    """
    f, ob = profile.frac_bits, profile.operand_bits
    a = Value.cast(a).as_signed()
    if f == 0:
        return sat(a, ob)
    hi, half = a >> f, a[f - 1]
    if len(hi) < ob:
        return sat(hi + half, ob)
    lo_b, hi_b = -(1 << (ob - 1)), (1 << (ob - 1)) - 1
    top = hi[ob - 1 :]
    fits = top.all() | ~top.any()
    at_max = ~hi[ob - 1] & hi[: ob - 1].all()  # the low word is the largest operand
    low = hi[:ob].as_signed()
    inc = (low + half)[:ob].as_signed()
    bound = Mux(hi[-1], Const(lo_b, signed(ob)), Const(hi_b, signed(ob)))
    return Mux(fits & ~(at_max & half), inc, bound).as_signed()


def word_select(row: Value, index: Value, n_words: int, bits: int) -> Value:
    """Signed word ``index`` of a row of ``n_words`` packed ``bits``-bit words."""
    if n_words == 1:
        return row[:bits].as_signed()
    return row.word_select(index, bits).as_signed()
