# amaranth: UnusedElaboratable=no
"""Bad input to the RTL generators and loaders fails early with a message naming it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hw.compiler import ProgramFitError, compile_layer
from hw.profiles import ProfileError, get_profile
from hw.rtl import MEMORY_IDS, build_top, check_fits, check_program, generate_verilog
from hw.rtl.controller import Controller
from hw.rtl.pe import SparsePE
from hw.rtl.systolic import SystolicArray
from hw.rtl.top import SEL_BITS, SparseTop, host_data_bits


def test_unknown_profile_name_lists_the_known_ones(tmp_path):
    with pytest.raises(ProfileError, match=r"unknown hardware profile 'sparse_pe_5'; known: .*"):
        generate_verilog("sparse_pe_5", tmp_path)
    with pytest.raises(ProfileError, match=r"unknown hardware profile 'nope'"):
        build_top("nope")


def test_blocks_reject_a_profile_of_the_wrong_kind():
    with pytest.raises(ValueError, match=r"SparsePE needs a sparse profile, got 'systolic_2x2'"):
        SparsePE(get_profile("systolic_2x2"))
    with pytest.raises(
        ValueError, match=r"SystolicArray needs a systolic profile, got 'sparse_pe_4'"
    ):
        SystolicArray(get_profile("sparse_pe_4"))
    with pytest.raises(TypeError, match=r"SparseTop needs an HwProfile, got 'sparse_pe_4'"):
        SparseTop("sparse_pe_4")


def test_broadcast_wider_than_the_banks_is_rejected():
    bad = get_profile("sparse_pe_4").__class__.from_dict(
        {"base": "sparse_pe_4", "name": "wide_bus", "bcast_words": 8, "act_buf_words": 64}
    )
    with pytest.raises(ValueError, match=r"bcast_words=8 must be <= n_pe=4"):
        Controller(bad, MEMORY_IDS, SEL_BITS, host_data_bits(bad))


def test_an_op_that_does_not_fit_names_the_field():
    small, big = get_profile("sparse_pe_4"), get_profile("sparse_pe_64")
    program = compile_layer(np.ones((8, 100), dtype=bool), "forward", big, 4, "sample")
    with pytest.raises(
        ProgramFitError, match=r"K=100 exceeds act_buf_words=64 of profile 'sparse_pe_4'"
    ):
        check_fits(small, program.ops[0])
    with pytest.raises(ProgramFitError, match=r"compiled for profile 'sparse_pe_64' cannot run"):
        check_program(small, program)
    gemm = compile_layer(np.ones((3, 3), dtype=bool), "forward", "systolic_2x2", 2)
    with pytest.raises(ProgramFitError, match=r"dataflow 'systolic' does not run on profile"):
        check_fits(small, gemm.ops[0])
    resident = compile_layer(np.ones((3, 3), dtype=bool), "forward", "systolic_2x2", 2, "resident")
    with pytest.raises(ProgramFitError, match=r"resident systolic weights are modelled in sim"):
        check_fits(get_profile("systolic_2x2"), resident.ops[0])


def test_a_split_row_with_two_pieces_on_one_pe_is_refused():
    """The output SRAM banks have one read port: the reduction's two partials of a row
    must come from two banks, i.e. a row's pieces from distinct PEs."""
    prof = get_profile("sparse_pe_4")
    mask = np.zeros((2, 40), dtype=bool)
    mask[0] = True  # one long row among short ones: split over several PEs
    mask[1, :2] = True
    (op,) = compile_layer(mask, "forward", prof, 1, "row").ops
    a = op.arrays
    idx = a["red_piece"][a["red_ptr"][0] : a["red_ptr"][1]]
    assert len(idx) >= 2 and len(set(a["piece_pe"][idx].tolist())) == len(idx)
    check_fits(prof, op)
    pe = a["piece_pe"].copy()
    pe[idx[1]] = pe[idx[0]]
    bad = dataclasses.replace(op, arrays={**a, "piece_pe": pe})
    with pytest.raises(ProgramFitError, match=r"split row 0 has two pieces on one PE"):
        check_fits(prof, bad)


def test_systolic_output_rows_limit_is_checked():
    prof = get_profile("systolic_2x2")
    mask = np.ones((3, 1), dtype=bool)
    # the compiler refuses the op for this profile with the same limit ...
    msg = r"ceil\(N/cols\)\*M=2400 exceeds act_sram_words/cols=2048"
    with pytest.raises(ProgramFitError, match=msg):
        compile_layer(mask, "forward", prof, 1200)
    # ... and the RTL refuses an op compiled for a larger output SRAM
    bigger = dataclasses.replace(prof, act_sram_kib=2 * prof.act_sram_kib)
    program = compile_layer(mask, "forward", bigger, 1200)
    with pytest.raises(ProgramFitError, match=msg):
        check_fits(prof, program.ops[0])


@pytest.mark.parametrize(
    "block, missing",
    [
        ("Controller", "op"),
        ("WeightSRAM", "weight_val"),
        ("GradientUnit", "grad"),
        ("ReductionUnit", "red_piece"),
        ("PEArray", "act_sram"),
    ],
)
def test_a_missing_host_memory_is_named(block, missing):
    from hw.rtl.array import PEArray
    from hw.rtl.gradient import GradientUnit
    from hw.rtl.reduce import ReductionUnit
    from hw.rtl.weights import WeightSRAM

    cls = {
        "Controller": Controller,
        "WeightSRAM": WeightSRAM,
        "GradientUnit": GradientUnit,
        "ReductionUnit": ReductionUnit,
        "PEArray": PEArray,
    }[block]
    p = get_profile("sparse_pe_4")
    ids = {k: v for k, v in MEMORY_IDS.items() if k != missing}
    with pytest.raises(ValueError) as e:
        cls(p, ids, SEL_BITS, host_data_bits(p))
    assert str(e.value) == f"{block}: host_ids lacks memory {missing!r}"
