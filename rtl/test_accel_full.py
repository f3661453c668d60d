"""The full-size tier: ``sparse_pe_64``, ``systolic_8x8`` and the FPGA-sized
``sparse_pe_16_ecp5`` and ``sparse_pe_64_xc7`` (marked ``rtl_full`` + ``slow``).

Same checks as ``test_accel.py`` with larger shapes and fewer programs, since each
full-size build takes minutes and each full-size op thousands of simulated cycles. Part of
the default run and of CI. Programs per case: ``sparse_pe_64`` 12 SP forward, 12 RP
forward, 12 RP input-grad, 8 sample-unrolled forward, 8 forward with rows joined at the
drain, 12 SDDMM weight-grad, 8 dense-grad (72); ``systolic_8x8`` 12
each of forward, input-grad and weight-grad GEMMs and 8 dense-grad (44); ``sparse_pe_16_ecp5``
10 RP forward, 6 sample-unrolled forward, 8 SP input-grad, 8 SDDMM weight-grad, 6
row-parallel forward with many split rows, 6 SP forward with K of 1 to 3, 4 forward in
sample tiles (48), and the same on ``sparse_pe_64_xc7``. The
small-profile
tier (``test_accel.py``) carries the bulk: 120-150 programs per case.
"""

from __future__ import annotations

import pytest

from hw.profiles import get_profile
from hw.toolchain import lint_verilog

from .harness import build
from .programs import check_random

pytestmark = [pytest.mark.rtl_full, pytest.mark.slow]

SPARSE_CASES = [
    ("forward", "sample", 12, 301),
    ("input_grad", "row", 12, 302),
    ("forward", "row", 12, 303),
    ("forward", "unrolled", 8, 306),
    ("forward", "joined", 8, 307),
    ("weight_grad", "sample", 12, 304),
    ("dense_grad", "sample", 8, 305),
]
"""(kernel, dataflow, programs, seed) on ``sparse_pe_64``."""

SYSTOLIC_CASES = [
    ("forward", "systolic", 12, 401),
    ("input_grad", "systolic", 12, 402),
    ("weight_grad", "systolic", 12, 403),
    ("dense_grad", "systolic", 8, 404),
]
"""(kernel, dataflow, programs, seed) on ``systolic_8x8``."""


FPGA_CASES = [
    ("forward", "row", 10, 311),
    ("forward", "unrolled", 6, 314),
    ("input_grad", "sample", 8, 312),
    ("weight_grad", "sample", 8, 313),
    ("forward", "split", 6, 315),
    ("forward", "narrow", 6, 316),
    ("forward", "tiled", 4, 317),
]
"""(kernel, dataflow, programs, seed) on ``sparse_pe_16_ecp5`` (memories sized for its
part: 4-word broadcast, 512-entry reduction tables, SDDMM dY in the output buffers)."""


@pytest.mark.xdist_group("rtl_sparse_pe_64_xc7")
def test_sparse_pe_64_xc7_random_programs_match_sim():
    """The resized 64-PE array (16 broadcast lanes through the two-level bank trees, the
    control lag, 11-bit indices, 512-entry weight banks, 4,095-entry piece tables) on the
    FPGA cases: its own build, not only the generator's other parameter sets."""
    counts = check_random(get_profile("sparse_pe_64_xc7"), FPGA_CASES, max_dim=40, max_m=48)
    for kernel, dataflow, programs, _ in FPGA_CASES:
        assert counts[f"{kernel}/{dataflow}"] >= programs


@pytest.mark.xdist_group("rtl_sparse_pe_16_ecp5")
def test_sparse_pe_16_ecp5_random_programs_match_sim():
    counts = check_random(get_profile("sparse_pe_16_ecp5"), FPGA_CASES, max_dim=40, max_m=48)
    for kernel, dataflow, programs, _ in FPGA_CASES:
        assert counts[f"{kernel}/{dataflow}"] >= programs


@pytest.mark.xdist_group("rtl_sparse_pe_64")
def test_sparse_pe_64_random_programs_match_sim():
    counts = check_random(get_profile("sparse_pe_64"), SPARSE_CASES, max_dim=40, max_m=80)
    for kernel, dataflow, programs, _ in SPARSE_CASES:
        assert counts[f"{kernel}/{dataflow}"] >= programs


@pytest.mark.xdist_group("rtl_sparse_pe_64")
def test_sparse_pe_64_verilog_lints_clean():
    """The build's Verilog (``generate_verilog``, the text ``mast-hw export`` writes) lints
    clean with the waivers of ``hw/toolchain.py``; it reuses the elaboration of the tier."""
    b = build("sparse_pe_64")
    assert b.verilog.name == "mast_accel_sparse_pe_64.v"
    lint = lint_verilog(b.verilog, b.toplevel)
    assert lint.messages == () and lint.returncode == 0, lint.messages[:5]


@pytest.mark.xdist_group("rtl_systolic_8x8")
def test_systolic_8x8_random_gemms_match_sim():
    counts = check_random(get_profile("systolic_8x8"), SYSTOLIC_CASES, max_dim=40, max_m=24)
    for kernel, dataflow, programs, _ in SYSTOLIC_CASES:
        assert counts[f"{kernel}/{dataflow}"] == programs
