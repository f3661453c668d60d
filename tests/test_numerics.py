"""Numerics of section 1: quantize, requant, saturating chains, adder tree, references."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hw.numerics import (
    adder_tree,
    dequantize,
    float_error_bound,
    mac_chain,
    quantize,
    reference_sddmm,
    reference_spmm,
    requant,
    sat_acc,
)
from hw.profiles import HwProfile, get_profile

P16 = get_profile("sparse_pe_16")
# 8-bit operands, 2 fractional bits, 16-bit accumulators: three products can saturate.
NARROW = HwProfile(name="narrow", kind="sparse", n_pe=3, operand_bits=8, frac_bits=2, acc_bits=16)
WIDE = HwProfile(name="wide", kind="sparse", n_pe=4, operand_bits=32, frac_bits=16, acc_bits=64)


def naive_chain(prods, last, bits):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    out, acc = [], [0] * prods.shape[1]
    for i in range(prods.shape[0]):
        acc = [min(hi, max(lo, a + int(p))) for a, p in zip(acc, prods[i], strict=True)]
        if last[i]:
            out.append(acc)
            acc = [0] * prods.shape[1]
    return np.array(out, dtype=object)


def test_quantize_rounds_half_up_and_clips():
    f = P16.frac_bits
    x = np.array([0.5 / 2**f, -0.5 / 2**f, 1.0, -1.0, 1e9, -1e9, 1.49 / 2**f])
    assert quantize(x, P16).tolist() == [1, 0, 2**f, -(2**f), P16.operand_max, P16.operand_min, 1]


def test_requant_round_half_up_and_saturation():
    f = P16.frac_bits
    half = 1 << (f - 1)
    a = np.array([half, -half, -half - 1, 3 << f, 1 << 40, -(1 << 40)])
    assert requant(a, P16).tolist() == [1, 0, -1, 3, P16.operand_max, P16.operand_min]


def test_sat_acc_bounds():
    a = np.array([NARROW.acc_max + 5, NARROW.acc_min - 5, 7])
    assert sat_acc(a, NARROW).tolist() == [NARROW.acc_max, NARROW.acc_min, 7]


def test_mac_chain_saturates_after_every_add():
    big = 127 * 127  # 16129: two of them exceed acc_max = 32767
    prods = np.array([[big], [big], [big], [-big]])
    last = np.array([False, False, False, True])
    # 16129 -> 32258 -> 32767 (saturated) -> 16638; the exact sum would be 32258.
    assert mac_chain(prods, last, NARROW)[:, 0].tolist() == [32767 - big]


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), s=st.integers(1, 40), lanes=st.integers(1, 5))
def test_mac_chain_equals_naive_loop(seed, s, lanes):
    rng = np.random.default_rng(seed)
    prods = rng.integers(-(127 * 128), 128 * 128, size=(s, lanes))
    last = rng.random(s) < 0.3
    last[-1] = True
    got = mac_chain(prods, last, NARROW)
    assert np.array_equal(got.astype(object), naive_chain(prods, last, 16))


def test_mac_chain_wide_accumulator_is_exact():
    prods = np.array([[1 << 62], [1 << 62], [-(1 << 62)]], dtype=object)
    last = np.array([False, False, True])
    # acc_bits = 64: 2**62 + 2**62 saturates to 2**63 - 1, then minus 2**62.
    assert mac_chain(prods, last, WIDE)[0, 0] == (1 << 63) - 1 - (1 << 62)


def test_adder_tree_pairs_and_pads_with_saturation():
    big = 127 * 127
    x = np.array([[big, big, -big]])
    # P = 3 pads to 4: ((big + big), (-big + 0)) -> 32258 - 16129.
    assert adder_tree(x, NARROW).tolist() == [big]
    x = np.array([[big, big, big, big]])
    # (big+big)=32258, (big+big)=32258, 64516 saturates to 32767.
    assert adder_tree(x, NARROW).tolist() == [32767]
    assert adder_tree(np.array([[5]]), NARROW).tolist() == [5]


def test_reference_spmm_split_rows_add_partials_in_piece_order():
    w = np.array([[127, 127, 127, -127]])
    x = np.array([[127], [127], [127], [127]])
    whole = reference_spmm(w, x, NARROW, raw=True)
    split = reference_spmm(w, x, NARROW, splits={0: [2]}, raw=True)
    big = 127 * 127
    assert whole.tolist() == [[32767 - big]]
    # pieces [big+big=32258] and [big-big=0], then 32258 + 0.
    assert split.tolist() == [[2 * big]]


def test_reference_sddmm_tiles_through_tree():
    dy = np.array([[1, 2, 3, 4]])
    x = np.array([[10, 20, 30, 40]])
    got = reference_sddmm(dy, x, np.array([0]), np.array([0]), NARROW)
    assert got.tolist() == requant(np.array([10 + 40 + 90 + 160]), NARROW).tolist()


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 24),
    k=st.integers(1, 40),
    m=st.integers(1, 12),
    sparsity=st.floats(0.0, 0.98),
)
def test_float_reference_within_documented_bound(seed, n, k, m, sparsity):
    rng = np.random.default_rng(seed)
    mask = rng.random((n, k)) >= sparsity
    w = rng.uniform(-0.5, 0.5, (n, k)) * mask
    x = rng.uniform(-1, 1, (k, m))
    wq = quantize(w, P16)
    y = dequantize(reference_spmm(wq, quantize(x, P16), P16), P16)
    bound = float_error_bound(dequantize(wq, P16), x, P16, mask)
    assert np.all(np.abs(y - w @ x) <= bound + 1e-12)


def test_float_error_bound_is_not_vacuous():
    w = np.array([[0.3]])
    x = np.array([[0.7]])
    bound = float_error_bound(dequantize(quantize(w, P16), P16), x, P16)
    assert bound[0, 0] < 2.0**-P16.frac_bits * 2


def test_quantize_dequantize_round_trip_within_half_lsb():
    x = np.linspace(-3, 3, 101)
    err = np.abs(dequantize(quantize(x, P16), P16) - x)
    assert err.max() <= 2.0 ** -(P16.frac_bits + 1)


@pytest.mark.parametrize("bits", [8, 16])
def test_int_paths_agree_between_fast_and_replay(bits):
    prof = HwProfile(
        name="p", kind="sparse", n_pe=2, operand_bits=bits, frac_bits=2, acc_bits=2 * bits
    )
    rng = np.random.default_rng(bits)
    big = (1 << (bits - 1)) - 1
    prods = rng.integers(-big * big, big * big, size=(30, 3))
    last = np.zeros(30, dtype=bool)
    last[[9, 19, 29]] = True
    assert np.array_equal(
        mac_chain(prods, last, prof).astype(object), naive_chain(prods, last, 2 * bits)
    )
