"""End-to-end cocotb tests of the fast profiles (``sparse_pe_4``, ``systolic_2x2``).

Each test runs many constrained-random programs of one kernel through one Verilator build
(built once per profile and reused) and asserts RTL output == ``sim`` output bit for bit
and RTL cycles == ``sim`` cycles exactly. Tests of one profile share an ``xdist_group`` so
``pytest -n 2 --dist loadgroup`` builds each profile once.
"""

from __future__ import annotations

import pytest

from hw.profiles import get_profile

from .programs import check_random

SPARSE_CASES = [
    ("forward", "sample", 120, 101),
    ("input_grad", "sample", 120, 102),
    ("forward", "row", 120, 103),
    ("input_grad", "row", 120, 104),
    ("weight_grad", "sample", 150, 105),
    ("dense_grad", "sample", 150, 106),
]
"""(kernel, dataflow, programs, seed) on ``sparse_pe_4``."""

SYSTOLIC_CASES = [
    ("forward", 120, 201),
    ("input_grad", 120, 202),
    ("weight_grad", 120, 203),
    ("dense_grad", 120, 204),
]
"""(kernel, programs, seed) on ``systolic_2x2``."""


@pytest.mark.xdist_group("rtl_sparse_pe_4")
@pytest.mark.parametrize(("kernel", "dataflow", "count", "seed"), SPARSE_CASES)
def test_sparse_pe_4_random_programs_match_sim(kernel, dataflow, count, seed):
    ops = check_random(get_profile("sparse_pe_4"), kernel, dataflow, count, seed)
    assert ops >= count


@pytest.mark.xdist_group("rtl_systolic_2x2")
@pytest.mark.parametrize(("kernel", "count", "seed"), SYSTOLIC_CASES)
def test_systolic_2x2_random_gemms_match_sim(kernel, count, seed):
    ops = check_random(get_profile("systolic_2x2"), kernel, "systolic", count, seed)
    assert ops == count
