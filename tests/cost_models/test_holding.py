"""``cost_models.holding``: which networks a profile's memories hold whole."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from cost_models.holding import check_holds
from cost_models.networks import mast_network_layers
from cost_models.workload import inference_graph
from hw.compiler import choose_dataflow, compile_layer
from hw.profiles import PAPER_MAPS, PROFILES, get_profile


@pytest.mark.parametrize("name", [n for n, p in PROFILES.items() if p.holds_maps])
def test_every_profile_holds_what_it_claims(name):
    assert check_holds(PROFILES[name]) == []


@pytest.mark.parametrize("name", ["sparse_pe_16_ecp5", "sparse_pe_64_xc7"])
def test_the_fpga_profiles_claim_the_papers_networks(name):
    p = get_profile(name)
    assert set(p.holds_maps) == set(PAPER_MAPS) and p.holds_sparsity <= 0.85 and p.part


def test_a_profile_too_small_for_its_claim_is_named():
    p = get_profile("sparse_pe_16_ecp5")
    small = replace(p, weight_sram_kib=4)  # 2048 entries
    problems = check_holds(small)
    assert any(x.startswith("2c_vs_64zg agent.fc1.weight forward: S=") for x in problems)
    assert all(x.endswith("exceeds weight_sram_words=2048") for x in problems)
    # Denser masks have longer streams: at 80 % the 4096-entry weight SRAM is too small.
    assert any("S=" in x and "weight_sram_words=4096" in x for x in check_holds(p, sparsity=0.8))
    assert "MMM mixer.hyper_w1.2.weight forward: N=320 exceeds out_buf_words=256" in check_holds(
        replace(p, out_buf_words=256), ("MMM",)
    )


def test_held_layers_compile_whole():
    """What the check calls holding is what the compiler takes: every kernel of every held
    layer compiles on one tile of samples."""
    p = get_profile("sparse_pe_16_ecp5")
    for map_name in ("2c_vs_64zg", "MMM"):
        for lay in mast_network_layers(map_name, p.holds_sparsity):
            for kernel in ("forward", "input_grad", "weight_grad"):
                prog = compile_layer(lay, kernel, p, p.n_pe, "sample")
                assert all(op.m == p.n_pe for op in prog.ops)


@pytest.mark.parametrize("map_name", ["3m", "3s5z", "MMM"])
def test_the_resized_64_pe_array_runs_the_acting_step_row_parallel(map_name):
    """sparse_pe_64_xc7's memories hold every acting op as a row-parallel op, and 3m's ops
    and 3s5z's input layer sample-unrolled (docs/microarchitecture.md s.2.5: K M words in
    the activation buffers and column indices, M nnz entries in the weight banks, M N
    pieces in the piece tables). With the per-PE sizes of the 16-PE FPGA profile (a
    1,024-word buffer, 9-bit indices, 511 pieces) 3s5z's input layer (K M = 1,200) ran
    sample-parallel, 1,117 cycles against 184."""
    p = get_profile("sparse_pe_64_xc7")
    layers = mast_network_layers(map_name, 0.9, "erdos_renyi", 0, "random")
    flows = {}
    for _, k in inference_graph(p, layers).nodes(data="kernel"):
        if k.op == "spmm":
            flows[k.layer] = choose_dataflow(np.asarray(k.mask) != 0, k.m, p)[0]
    assert len(flows) == 3 and "sample" not in flows.values(), flows
    unrolled = {"3m": 3, "3s5z": 1, "MMM": 0}[map_name]
    assert list(flows.values()).count("unrolled") >= unrolled, flows
    if unrolled:
        assert flows["agent.fc1.weight"] == "unrolled"


@pytest.mark.parametrize("map_name", ["3s5z", "MMM"])
def test_an_input_layer_over_the_pe_buffer_runs_its_agents_in_sample_tiles(map_name):
    """On sparse_pe_16_ecp5 (1,024-word PE buffers) 3s5z's and MMM's input layers (K M =
    1,200 and 1,860 words) do not fit row-parallel whole; they run as two sample tiles of
    row-parallel ops (docs/microarchitecture.md s.2.6) instead of sample-parallel on 8 or
    10 of the 16 PEs, and the acting program the compiler emits has the tiles' cycles."""
    from hw.export import compile_inference
    from hw.timing import spmm_sample_parallel_cycles

    p = get_profile("sparse_pe_16_ecp5")
    layers = mast_network_layers(map_name, 0.9, "erdos_renyi", 0, "random")
    fc1 = next(lay for lay in layers if lay.name == "agent.fc1.weight")
    agents = fc1.uses_per_env_step
    assert fc1.n_in * agents > p.act_buf_words
    flow, tiles = choose_dataflow(fc1.mask, agents, p)
    assert flow == "tiled" and [t.m for t in tiles] == [agents // 2, agents - agents // 2]
    s = int(np.maximum(fc1.mask.sum(axis=1), 1).sum())
    assert sum(t.cycles for t in tiles) < spmm_sample_parallel_cycles(
        fc1.n_in, fc1.n_out, agents, s, p
    )
    prog = compile_inference(layers, p)
    ops = prog.ops_of("agent.fc1.weight")
    assert [(op.sample0, op.samples, op.layer_m) for op in ops] == [
        (t.begin, t.m, agents) for t in tiles
    ]
    assert sum(op.formula_cycles(p) for op in ops) == sum(t.cycles for t in tiles)
