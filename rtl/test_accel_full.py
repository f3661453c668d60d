"""The full-size tier: ``sparse_pe_64`` and ``systolic_8x8`` (marked ``rtl_full`` + ``slow``).

Same checks as ``test_accel.py`` with larger shapes; fewer programs, since each
full-size build takes minutes. Part of the default run and of CI.
"""

from __future__ import annotations

import pytest

from hw.profiles import get_profile

from .programs import check_random

pytestmark = [pytest.mark.rtl_full, pytest.mark.slow]


@pytest.mark.xdist_group("rtl_sparse_pe_64")
@pytest.mark.parametrize(
    ("kernel", "dataflow", "count", "seed"),
    [("forward", "sample", 25, 301), ("input_grad", "row", 25, 302),
     ("forward", "row", 25, 303), ("weight_grad", "sample", 25, 304),
     ("dense_grad", "sample", 15, 305)],
)  # fmt: skip
def test_sparse_pe_64_random_programs_match_sim(kernel, dataflow, count, seed):
    ops = check_random(get_profile("sparse_pe_64"), kernel, dataflow, count, seed,
                       max_dim=40, max_m=80)  # fmt: skip
    assert ops >= count


@pytest.mark.xdist_group("rtl_systolic_8x8")
@pytest.mark.parametrize(
    ("kernel", "count", "seed"),
    [("forward", 25, 401), ("input_grad", 25, 402), ("weight_grad", 25, 403),
     ("dense_grad", 15, 404)],
)  # fmt: skip
def test_systolic_8x8_random_gemms_match_sim(kernel, count, seed):
    ops = check_random(get_profile("systolic_8x8"), kernel, "systolic", count, seed,
                       max_dim=40, max_m=24)  # fmt: skip
    assert ops == count
