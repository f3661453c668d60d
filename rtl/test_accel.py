"""End-to-end cocotb tests of the fast profiles (``sparse_pe_4``, ``systolic_2x2``, and
``sparse_pe_4`` with the drain's adders).

Each test runs many constrained-random programs of every kernel through one Verilator
build and one simulation, and asserts RTL output == ``sim`` output bit for bit and RTL
cycles == ``sim`` cycles exactly for every op.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from hw.profiles import get_profile

from .programs import check_random

SPARSE_CASES = [
    ("forward", "sample", 120, 101),
    ("input_grad", "sample", 120, 102),
    ("forward", "row", 120, 103),
    ("input_grad", "row", 120, 104),
    ("forward", "unrolled", 60, 107),
    ("forward", "split", 80, 108),
    ("input_grad", "split", 60, 109),
    ("forward", "tiled", 30, 110),
    ("input_grad", "tiled", 20, 111),
    ("weight_grad", "sample", 150, 105),
    ("dense_grad", "sample", 150, 106),
]
"""(kernel, dataflow, programs, seed) on ``sparse_pe_4``."""

SYSTOLIC_CASES = [
    ("forward", "systolic", 120, 201),
    ("input_grad", "systolic", 120, 202),
    ("weight_grad", "systolic", 120, 203),
    ("dense_grad", "systolic", 120, 204),
]
"""(kernel, dataflow, programs, seed) on ``systolic_2x2``."""


@pytest.mark.xdist_group("rtl_sparse_pe_4")
def test_sparse_pe_4_random_programs_match_sim():
    counts = check_random(get_profile("sparse_pe_4"), SPARSE_CASES)
    for kernel, dataflow, programs, _ in SPARSE_CASES:
        assert counts[f"{kernel}/{dataflow}"] >= programs


PIPELINE_CASES = [(k, d, max(15, n // 6), seed + 20) for k, d, n, seed in SPARSE_CASES]
"""``SPARSE_CASES`` at a sixth of the programs (other seeds), for the other pipeline depths."""


@pytest.mark.slow
@pytest.mark.xdist_group("rtl_sparse_pe_4_depths")
@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5, 6])
def test_sparse_pe_4_at_other_pipeline_depths_matches_sim(depth):
    """Every PD stage the PE places (product, operand, entry, buffer-word registers)
    against ``sim``: the profiles use PD 2 (ASIC) and 7 (FPGA); ``sparse_pe_4`` itself
    runs PD 7."""
    base = get_profile("sparse_pe_4")
    assert base.pipeline_depth not in (1, 2, 3, 4, 5, 6)
    prof = replace(base, name=f"sparse_pe_4_pd{depth}", pipeline_depth=depth)
    counts = check_random(prof, PIPELINE_CASES)
    for kernel, dataflow, programs, _ in PIPELINE_CASES:
        assert counts[f"{kernel}/{dataflow}"] >= programs


JOIN_CASES = [
    ("forward", "joined", 60, 121),
    ("input_grad", "joined", 40, 122),
    ("forward", "row", 30, 123),
    ("forward", "unrolled", 30, 124),
    ("forward", "split", 30, 125),
    ("forward", "sample", 20, 126),
]
"""(kernel, dataflow, programs, seed) on ``sparse_pe_4`` with the drain's adders."""


@pytest.mark.xdist_group("rtl_sparse_pe_4_join")
@pytest.mark.parametrize("depth", [2, 7])
def test_rows_joined_at_the_drain_match_sim(depth):
    """``drain_join``: an odd PE's drained word is its raw partial plus the previous PE's,
    requantised, in the drain's last cycle (s.2.4), at the ASIC depth (the word written
    the cycle it is read) and the FPGA depth (through the drain's register), beside the
    other row-parallel forms on the same build. Fails when the adder is bypassed or adds
    the wrong PE's word."""
    prof = replace(
        get_profile("sparse_pe_4"),
        name=f"sparse_pe_4_join_pd{depth}",
        pipeline_depth=depth,
        drain_join=True,
    )
    counts = check_random(prof, JOIN_CASES)
    for kernel, dataflow, programs, _ in JOIN_CASES:
        assert counts[f"{kernel}/{dataflow}"] >= programs


@pytest.mark.xdist_group("rtl_systolic_2x2")
def test_systolic_2x2_random_gemms_match_sim():
    counts = check_random(get_profile("systolic_2x2"), SYSTOLIC_CASES)
    for kernel, dataflow, programs, _ in SYSTOLIC_CASES:
        assert counts[f"{kernel}/{dataflow}"] == programs
