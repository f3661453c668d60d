"""Block-level cocotb tests on Verilator: PE, adder tree + gradient unit, controller, systolic.

Each test builds one Amaranth component on its own (``harness.BLOCKS``, a Verilator build
per block and profile, reused while ``hw/rtl/`` is unchanged) and runs its cocotb test of
``rtl/tb_blocks.py``: constrained-random trials scored against :mod:`hw.numerics` and
:mod:`hw.timing`, with a scoreboard that counts mismatches. The stimulus and the answers
are drawn inside the testbench from ``MAST_SEED`` (added to each test's base seed);
``MAST_PROGRAMS`` scales the number of trials.
"""

from __future__ import annotations

import gc
import json
import os

import pytest

from hw.profiles import get_profile

from .harness import build, run_testbench

SPARSE = get_profile("sparse_pe_4")
SYSTOLIC = get_profile("systolic_2x2")


def check_block(block: str, profile, trials: int, seed: int) -> dict:
    """Run ``block``'s cocotb test; return its scoreboard counts (all trials checked, none bad)."""
    scale = float(os.environ.get("MAST_PROGRAMS", "1"))
    seed += int(os.environ.get("MAST_SEED", "0"))
    trials = max(1, round(trials * scale))
    report = build(profile, block).directory / f"report-{seed}.json"
    report.unlink(missing_ok=True)
    run_testbench(
        profile,
        "tb_blocks",
        run=str(seed),
        block=block,
        test=block,
        seed=seed,
        trials=trials,
        report=report,
    )
    counts = json.loads(report.read_text())
    assert counts["trials"] == trials
    assert counts["checked"] >= trials
    assert counts["mismatches"] == 0
    return counts


_BLOCK_BUILD = pytest.mark.slow
"""A Verilator build of one block (about 15 s): in the ``slow`` tier. ``make test-fast``
still runs the accelerator programs of ``test_accel.py``, which drive the same blocks
inside the top level."""


@_BLOCK_BUILD
@pytest.mark.xdist_group("rtl_block_pe_sparse_pe_4")
def test_pe_matches_mac_chain_and_requant_and_finishes_in_s_plus_pd():
    check_block("pe", SPARSE, trials=250, seed=301)


@_BLOCK_BUILD
@pytest.mark.xdist_group("rtl_block_gradient_sparse_pe_4")
def test_gradient_unit_matches_sim_adder_tree_and_sat_acc_with_latency_pd_plus_td():
    check_block("gradient", SPARSE, trials=150, seed=302)


@_BLOCK_BUILD
@pytest.mark.xdist_group("rtl_block_controller_sparse_pe_4")
def test_controller_op_cycles_and_stage_durations_match_the_contract_formulas():
    counts = check_block("controller", SPARSE, trials=250, seed=303)
    assert counts["checked"] == 2 * counts["trials"]


@_BLOCK_BUILD
@pytest.mark.xdist_group("rtl_block_systolic_array_systolic_2x2")
def test_systolic_array_columns_form_the_sequential_saturating_chain():
    counts = check_block("systolic_array", SYSTOLIC, trials=250, seed=304)
    assert counts["checked"] == counts["trials"]


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_block_builds_reject_unknown_blocks_and_wrong_profiles():
    with pytest.raises(ValueError, match="unknown block"):
        build(SPARSE, "adder")
    with pytest.raises(ValueError, match="sparse profile"):
        build(SYSTOLIC, "pe")
    with pytest.raises(ValueError, match="systolic profile"):
        build(SPARSE, "systolic_array")
    gc.collect()  # the half-built components go while their warning is filtered
