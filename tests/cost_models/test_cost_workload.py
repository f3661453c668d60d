"""The workload graph: structure derived from the layer records, GRU chains, batching."""

import dataclasses

import networkx as nx
import numpy as np
import pytest

from cost_models.networks import SMAC_MAPS, get_map, mast_network_layers
from cost_models.workload import WorkloadConfig, inference_graph, training_graph
from hw.profiles import get_profile
from mast.errors import UserError

P64 = get_profile("sparse_pe_64")
RUN = WorkloadConfig(batch_size=4, episode_limit=9)


@pytest.fixture(scope="module")
def graph():
    return training_graph(P64, mast_network_layers("3m", 0.9), RUN)


def kernels(g, **attrs):
    return [
        d["kernel"]
        for _, d in g.nodes(data=True)
        if all(getattr(d["kernel"], k) == v for k, v in attrs.items())
    ]


def test_network_shapes_follow_the_map_table():
    dims = get_map("3s5z")
    layers = {lay.name: lay for lay in mast_network_layers("3s5z", 0.0)}
    assert layers["agent.fc1.weight"].shape == (64, dims.obs + dims.n_actions + dims.n_agents)
    assert layers["agent.gru.ih.weight"].shape == (192, 64)
    assert layers["agent.gru.hh.weight"].recurrent
    assert layers["agent.fc2.weight"].shape == (dims.n_actions, 64)
    assert layers["mixer.hyper_w1.2.weight"].shape == (32 * dims.n_agents, 64)
    assert layers["mixer.hyper_w_final.0.weight"].shape == (64, dims.state)
    assert layers["mixer.v.2.weight"].shape == (1, 32)
    assert all(lay.nnz == lay.mask.size for lay in layers.values())


@pytest.mark.parametrize("density", ["erdos_renyi", "uniform"])
def test_overall_sparsity_is_met(density):
    for name in SMAC_MAPS:
        layers = mast_network_layers(name, 0.9, density, seed=1)
        size = sum(lay.mask.size for lay in layers)
        assert abs(sum(lay.nnz for lay in layers) / size - 0.1) < 0.002


def test_bad_network_arguments():
    with pytest.raises(UserError, match=r"unknown map '4m'; known: 3m, 8m"):
        mast_network_layers("4m")
    with pytest.raises(UserError, match=r"sparsity must be in \[0, 1\), got 1\.0"):
        mast_network_layers("3m", 1.0)
    with pytest.raises(UserError, match=r"unknown density rule 'er'; known: "):
        mast_network_layers("3m", 0.5, "er")


def test_graph_is_acyclic_with_gru_chains(graph):
    assert nx.is_directed_acyclic_graph(graph)
    T = RUN.steps
    hh = "agent.gru.hh.weight"
    for phase in ("fwd", "target_fwd"):
        chain = []
        for t in range(T):
            chain += [f"{phase}:{hh}:{t}", f"{phase}:cell:{t}"]
        assert all(graph.has_edge(a, b) for a, b in zip(chain, chain[1:], strict=False))
    back = []
    for t in reversed(range(1, T)):
        back += [f"dx:cell:{t}", f"dx:{hh}:{t}"]
    back.append("dx:cell:0")
    assert all(graph.has_edge(a, b) for a, b in zip(back, back[1:], strict=False))
    assert nx.has_path(graph, f"fwd:cell:{T - 1}", "dx:cell:0")


def test_batching_and_phases(graph):
    n, B, T = 3, RUN.batch_size, RUN.steps
    rec = kernels(graph, phase="fwd", layer="agent.gru.hh.weight")
    assert len(rec) == T and all(k.m == B * n for k in rec)
    fc1 = kernels(graph, phase="fwd", layer="agent.fc1.weight")
    assert sum(k.m for k in fc1) == B * T * n
    hyper = kernels(graph, phase="fwd", layer="mixer.hyper_w1.0.weight")
    assert [k.m for k in hyper] == [B * (T - 1)]
    # no input gradient for layers fed by observations or state
    assert not kernels(graph, phase="dx", layer="agent.fc1.weight")
    assert not kernels(graph, phase="dx", layer="mixer.hyper_b1.weight")
    assert kernels(graph, phase="dx", layer="mixer.hyper_w1.2.weight")
    dw = kernels(graph, phase="dw")
    assert len(dw) == 11 and all(k.op == "sddmm" for k in dw)
    dense = kernels(graph, phase="dense_dw")
    assert len(dense) == 11 and all(k.weight == 1 / RUN.update_interval_iters for k in dense)
    assert len(kernels(graph, phase="opt", op="vector")) == 12  # 11 layers + gradient norm


def test_no_topology_updates_drops_regrowth_work():
    run = dataclasses.replace(RUN, topology_updates=False)
    g = training_graph(P64, mast_network_layers("3m", 0.9), run)
    assert not kernels(g, phase="dense_dw") and not kernels(g, phase="topk")


def test_inference_graph_is_one_step_of_all_agents():
    g = inference_graph(P64, mast_network_layers("3s5z", 0.9))
    mats = [d["kernel"] for _, d in g.nodes(data=True) if d["kernel"].resource == "pe"]
    # the output layer runs stacked with the next step's recurrent product (same input h_t)
    stack = "agent.fc2.weight+agent.gru.hh.weight"
    assert sorted(k.layer for k in mats) == sorted(
        ["agent.fc1.weight", "agent.gru.ih.weight", stack]
    )
    assert all(k.m == SMAC_MAPS["3s5z"].n_agents for k in mats)
    (fused,) = [k for k in mats if k.layer == stack]
    layers = {lay.name: lay for lay in mast_network_layers("3s5z", 0.9)}
    want = np.vstack([layers["agent.fc2.weight"].mask, layers["agent.gru.hh.weight"].mask])
    assert np.array_equal(fused.mask, want)
    # fc1 -> gru.ih -> cell -> stack: the cell waits for nothing of this step's stack
    order = list(nx.topological_sort(g))
    cell = next(n for n in order if g.nodes[n]["kernel"].label == "cell")
    assert list(g.predecessors(fused.name)) == [cell]
    assert fused.name not in nx.ancestors(g, cell)


def test_run_config_validation_and_derived_values():
    run = WorkloadConfig(batch_size=8, episode_limit=60, episodes_per_iteration=2, t_max=1200)
    assert run.steps == 61 and run.env_steps_per_iteration == 120 and run.iterations == 10
    with pytest.raises(UserError, match=r"run config batch_size must be a positive integer, got 0"):
        WorkloadConfig(batch_size=0)
    with pytest.raises(UserError, match=r"seq_len must be an integer >= 2, got 1"):
        WorkloadConfig(seq_len=1)


def test_cyclic_inputs_are_refused():
    layers = mast_network_layers("3m", 0.5)
    bad = [
        dataclasses.replace(lay, inputs=("mixer.v.2.weight",))
        if lay.name == "mixer.v.0.weight"
        else lay
        for lay in layers
    ]
    with pytest.raises(UserError, match="cycle"):
        training_graph(P64, bad, RUN)
    unknown = [dataclasses.replace(layers[0], inputs=("nope",)), *layers[1:]]
    with pytest.raises(UserError, match=r"layer 'agent.fc1.weight' reads unknown layer 'nope'"):
        training_graph(P64, unknown, RUN)


def test_masks_of_a_shape_are_random_but_seeded():
    a = mast_network_layers("3m", 0.8, seed=5)
    b = mast_network_layers("3m", 0.8, seed=5)
    c = mast_network_layers("3m", 0.8, seed=6)
    assert all(np.array_equal(x.mask, y.mask) for x, y in zip(a, b, strict=False))
    assert not all(np.array_equal(x.mask, y.mask) for x, y in zip(a, c, strict=False))


def per_type_layers(uses=(3, 5)):
    """The 3s5z network with one agent network per unit type, named as the export names it."""
    out = []
    for lay in mast_network_layers("3s5z", 0.9):
        if lay.role != "agent":
            out.append(lay)
            continue
        for i, n in enumerate(uses):
            out.append(
                dataclasses.replace(
                    lay,
                    name=f"{lay.name}[{i}]",
                    uses_per_sample=n,
                    uses_per_env_step=n,
                    inputs=tuple(f"{x}[{i}]" for x in lay.inputs),
                )
            )
    return out


def test_per_type_agents_get_one_recurrence_each():
    g = training_graph(P64, per_type_layers(), RUN)
    assert nx.is_directed_acyclic_graph(g)
    for i, n in enumerate((3, 5)):
        rec = kernels(g, phase="fwd", layer=f"agent.gru.hh.weight[{i}]")
        assert len(rec) == RUN.steps and all(k.m == RUN.batch_size * n for k in rec)
        assert g.has_edge(f"fwd:cell[{i}]:0", f"fwd:agent.gru.hh.weight[{i}]:1")
        assert len(kernels(g, phase="dx", label=f"cell[{i}]")) == RUN.steps
    inf = inference_graph(P64, per_type_layers())
    mats = [d["kernel"] for _, d in inf.nodes(data=True) if d["kernel"].resource == "pe"]
    # each type's output layer is stacked with its own type's recurrent matrix, and the
    # same op of both types runs merged (block-diagonal, the 3 + 5 agents as one sample)
    stack = "|".join(f"agent.fc2.weight[{i}]+agent.gru.hh.weight[{i}]" for i in (0, 1))
    fc1 = "agent.fc1.weight[0]|agent.fc1.weight[1]"
    assert sorted(k.layer for k in mats) == sorted(
        [fc1, "agent.gru.ih.weight[0]|agent.gru.ih.weight[1]", stack]
    )
    assert all(k.m == 1 for k in mats)
    (k_fc1,) = [k for k in mats if k.layer == fc1]
    types = [lay for lay in per_type_layers() if lay.name.startswith("agent.fc1")]
    assert k_fc1.mask.shape == (
        sum(n * t.n_out for n, t in zip((3, 5), types, strict=True)),
        8 * 150,
    )
    assert k_fc1.mask.sum() == sum(n * t.nnz for n, t in zip((3, 5), types, strict=True))


def test_per_type_acting_program_runs_each_type_with_its_agents_as_costed():
    """Per-type masks: the same op of both types (3 and 5 agents) runs merged, in the
    compiled program as in the cost model's acting step, with equal cycles."""
    from cost_models.kernels import cost_kernel
    from hw.export import compile_inference
    from sim import layer_output, simulate

    rng = np.random.default_rng(0)
    layers = [
        dataclasses.replace(
            lay, values=(rng.normal(0, 0.3, lay.shape) * lay.mask).astype(np.float32)
        )
        for lay in per_type_layers()
    ]
    program = compile_inference(layers, P64)
    assert [len(program.blocks(op.layer)) for op in program.ops] == [2, 2, 2]
    by_name = {lay.name: lay for lay in layers}
    inputs = {
        name: {"x": rng.integers(-64, 65, (by_name[name].n_in, n))}
        for i, n in enumerate((3, 5))
        for name in (
            f"agent.fc1.weight[{i}]",
            f"agent.gru.ih.weight[{i}]",
            f"agent.fc2.weight[{i}]",
        )
    }
    res = simulate(program, inputs)
    from hw.numerics import quantize, reference_spmm

    for i in (0, 1):  # each type's products, read back from the merged ops
        for name, src in (
            (f"agent.fc1.weight[{i}]", f"agent.fc1.weight[{i}]"),
            (f"agent.gru.ih.weight[{i}]", f"agent.gru.ih.weight[{i}]"),
            (f"agent.fc2.weight[{i}]", f"agent.fc2.weight[{i}]"),
            (f"agent.gru.hh.weight[{i}]", f"agent.fc2.weight[{i}]"),  # reads the same h
        ):
            lay = by_name[name]
            w = np.where(lay.mask, quantize(lay.values, P64), 0)
            want = reference_spmm(w, inputs[src]["x"], P64)
            got = layer_output(program, res, name, "forward")
            assert got.shape == want.shape and np.array_equal(got, want), name
            assert np.abs(want).sum() > 0
    costs = {
        k.layer: cost_kernel(P64, k)
        for _, k in inference_graph(P64, layers).nodes(data="kernel")
        if k.op == "spmm"
    }
    assert sorted(costs) == sorted(op.layer for op in program.ops)
    for op, r in zip(program.ops, res.ops, strict=True):
        assert costs[op.layer].compute_cycles == r.cycles, op.layer


@pytest.mark.parametrize("alg", ["vdn", "qmix", "ow_qmix", "res"])
def test_training_side_export_of_every_learner(alg):
    """The records a learner exports (names, inputs, recurrent flags) build a valid graph."""
    from cost_models.report import evaluate
    from mast.config import config_from_dict
    from mast.envs import make_batch_env
    from mast.learners import make_learner

    cfg = config_from_dict(
        {"env": {"map_name": "3m"}, "learner": {"alg": alg}, "agent": {"hidden_dim": 16}}
    )
    env = make_batch_env(cfg.env.name, map_name="3m", n_envs=1, seed=0)
    layers = make_learner(cfg, dict(env.get_env_info())).sparsity.export_layers()
    run = WorkloadConfig(batch_size=2, episode_limit=4)
    g = training_graph(P64, layers, run)
    assert nx.is_directed_acyclic_graph(g)
    recurrent = [lay for lay in layers if lay.recurrent]
    for lay in recurrent:
        steps = run.steps if lay.role == "agent" else run.steps - 1
        assert len(kernels(g, phase="fwd", layer=lay.name)) == steps
    rep = evaluate(P64, layers, run)
    assert rep.training.cycles > 0 and rep.inference.cycles > 0
    acting = {
        part
        for _, d in inference_graph(P64, layers).nodes(data=True)
        if (k := d["kernel"]).layer
        for part in k.layer.split("+")
    }
    assert acting == {lay.name for lay in layers if lay.uses_per_env_step > 0}


def test_systolic_acting_step_keeps_weights_resident_when_they_fit():
    """Acting on a systolic baseline: resident tiles when every acting layer's tiles fit the
    weight SRAM together; otherwise the ops that fit stay resident and the rest reload;
    training ops stay cold."""
    from cost_models.workload import resident_tile_words

    sys8 = get_profile("systolic_8x8")
    layers = mast_network_layers("3m", 0.0)
    acting = [lay for lay in layers if lay.uses_per_env_step > 0]
    words = resident_tile_words(sys8, acting)
    assert words == (6 * 8 + 2 * 8 * 24 + 8 * 2) * 64  # fc1, gru ih/hh, fc2 tiles
    mats = kernels(inference_graph(sys8, layers), op="spmm")
    assert mats and all(k.resident for k in mats)
    small = dataclasses.replace(sys8, weight_sram_kib=words * sys8.operand_bytes // 1024 - 1)
    part = kernels(inference_graph(small, layers), op="spmm")
    kept = [k for k in part if k.resident]
    assert 0 < len(kept) < len(part)  # some ops keep their tiles, not all
    held = sum(-(-k.mask.shape[1] // 8) * -(-k.mask.shape[0] // 8) * 64 for k in kept)
    assert held <= small.weight_sram_words
    assert not any(k.resident for k in kernels(training_graph(sys8, layers, RUN), op="spmm"))


def test_observations_stream_with_the_agent_input_layers():
    """Training: each online / target forward node of an agent input layer reads its own
    observation block from DRAM (overlapping its compute) and waits for nothing; the
    replay node carries the rest of the batch."""
    layers = mast_network_layers("3m", 0.9)
    g = training_graph(P64, layers, RUN)
    dims, ob, steps = get_map("3m"), P64.operand_bytes, RUN.steps
    fc1 = [k for k in kernels(g, op="spmm") if k.layer == "agent.fc1.weight"]
    assert {k.phase for k in fc1} == {"fwd", "target_fwd"}
    for k in fc1:
        assert dict(k.dram)["replay"] == k.m * k.mask.shape[1] * ob
        assert g.in_degree(k.name) == 0
    agent_in = dims.obs + dims.n_actions + dims.n_agents
    per_pass = sum(dict(k.dram)["replay"] for k in fc1 if k.phase == "fwd")
    assert per_pass == RUN.batch_size * steps * dims.n_agents * agent_in * ob
    rest = 2 * dims.n_agents + dims.state + 3
    assert dict(g.nodes["replay"]["kernel"].dram)["replay"] == RUN.batch_size * steps * rest * ob
