"""Analytical kernel costs == the cycle-level model ``sim`` on the compiled ops.

Cycles, performed MACs, adder-tree/reduction adds and every memory-access counter are
compared exactly, over random masks, shapes, sample counts and profiles.
"""

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cost_models.kernels import Kernel, cost_kernel
from hw import timing
from hw.compiler import ProgramFitError, compile_layer
from hw.profiles import HwProfile, get_profile
from sim import MemoryAccesses, simulate

PROFILES = [
    get_profile("sparse_pe_4"),
    get_profile("sparse_pe_16"),
    get_profile("sparse_pe_64"),
    HwProfile(
        name="odd_pe",
        kind="sparse",
        n_pe=3,
        pipeline_depth=3,
        bcast_words=2,
        act_buf_words=128,
        out_buf_words=128,
        grad_buf_words=7,
        weight_sram_kib=8,
        act_sram_kib=8,
    ),
    get_profile("systolic_2x2"),
    get_profile("systolic_4x4"),
    HwProfile(
        name="sys_3x2", kind="systolic", n_pe=6, rows=3, cols=2, weight_sram_kib=8, act_sram_kib=8
    ),
]
KERNELS = {
    "spmm": "forward",
    "spmm_t": "input_grad",
    "sddmm": "weight_grad",
    "sddmm_dense": "dense_grad",
}
MEM_FIELDS = [f.name for f in dataclasses.fields(MemoryAccesses)]


def sim_run(p: HwProfile, mask: np.ndarray, op: str, m: int):
    rng = np.random.default_rng(0)
    prog = compile_layer(mask, KERNELS[op], p, m, name="w")
    n, k = mask.shape
    x = rng.integers(-50, 50, size=(k, m))
    dy = rng.integers(-50, 50, size=(n, m))
    return simulate(prog, {"w": {"x": x, "dy": dy}})


def check(p: HwProfile, mask: np.ndarray, op: str, m: int) -> None:
    res = sim_run(p, mask, op, m)
    cost = cost_kernel(p, Kernel("k", "fwd", op, m, "w", mask=mask))
    assert cost.compute_cycles == res.cycles
    assert cost.ops == len(res.ops)
    acts = cost.actions
    assert acts.get("macs", 0) == res.macs
    assert acts.get("adds", 0) == sum(r.adds for r in res.ops)
    for f in MEM_FIELDS:
        assert acts.get(f, 0) == getattr(res.mem, f), f
    nnz = mask.size if op == "sddmm_dense" else int(mask.sum())
    assert cost.macs == res.useful_macs == m * nnz
    assert cost.ideal_cycles == timing.ideal_cycles(m, nnz, p)


@st.composite
def cases(draw):
    p = draw(st.sampled_from(PROFILES))
    op = draw(st.sampled_from(sorted(KERNELS)))
    n = draw(st.integers(1, 40))
    k = draw(st.integers(1, 40))
    if not p.is_sparse or op.startswith("sddmm"):
        k = min(k, p.act_buf_words - n)
    m = draw(st.integers(1, 3 * p.n_pe + 5))
    density = draw(st.sampled_from([0.02, 0.1, 0.3, 0.7, 1.0]))
    seed = draw(st.integers(0, 2**16))
    mask = np.random.default_rng(seed).random((n, k)) < density
    return p, mask, op, m


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_kernel_cost_equals_sim(case):
    check(*case)


# memories small enough that drawn shapes exceed every one of them
SMALL_MEMORIES = [
    HwProfile(
        name="small_sparse",
        kind="sparse",
        n_pe=4,
        act_buf_words=128,
        out_buf_words=32,
        grad_buf_words=24,
        weight_sram_kib=1,
        act_sram_kib=4,
        index_bits=8,
    ),
    HwProfile(
        name="small_sys", kind="systolic", n_pe=6, rows=3, cols=2, weight_sram_kib=1, act_sram_kib=1
    ),
]


@st.composite
def large_cases(draw):
    p = draw(st.sampled_from(SMALL_MEMORIES))
    op = draw(st.sampled_from(sorted(KERNELS)))
    n = draw(st.integers(1, 100))
    k = draw(st.integers(1, 100))
    m = draw(st.integers(1, 3 * p.n_pe + 5))
    density = draw(st.sampled_from([0.1, 0.5, 1.0]))
    seed = draw(st.integers(0, 2**16))
    mask = np.random.default_rng(seed).random((n, k)) < density
    return p, mask, op, m


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(large_cases())
def test_kernel_cost_equals_sim_beyond_the_memories(case):
    """Shapes up to beyond every memory: whatever the compiler compiles, costs as sim runs it.

    Kernels the compiler rejects (:class:`ProgramFitError`) are tiled by the cost model and
    have no compiled counterpart to compare with.
    """
    p, mask, op, m = case
    try:
        compile_layer(mask, KERNELS[op], p, m, name="w")
    except ProgramFitError:
        event("rejected by the compiler")
        return
    stream = int(np.maximum(mask.sum(axis=1), 1).sum()) if op != "sddmm_dense" else mask.size
    event(f"compiled, stream {'>' if stream > p.weight_sram_words else '<='} weight SRAM")
    check(p, mask, op, m)


@pytest.mark.parametrize("op", ["sddmm", "sddmm_dense"])
def test_gradient_stream_longer_than_the_weight_sram_equals_sim(op):
    """The compiler chunks a gradient by ``grad_buf_words`` only; so must the cost model."""
    p = get_profile("sparse_pe_16")
    mask = np.random.default_rng(5).random((200, 220)) < 0.9
    assert int(mask.sum()) > p.weight_sram_words
    check(p, mask, op, 16)


@pytest.mark.parametrize("profile", ["sparse_pe_16", "sparse_pe_64"])
def test_mast_inference_layers_equal_sim(profile):
    """Batch-of-agents inference ops (row-parallel candidates) on MAST layer shapes."""
    from cost_models.networks import mast_network_layers

    p = get_profile(profile)
    for sparsity in (0.5, 0.9, 0.95):
        for lay in mast_network_layers("3m", sparsity, seed=3)[:4]:
            check(p, lay.mask, "spmm", 3)
            check(p, lay.mask, "spmm_t", 3)


def test_sample_unrolled_inference_op_costs_as_sim():
    """3m's fc2 (9 rows) at 90 % on 64 PEs: the compiler unrolls the 3 agents into 27 rows
    (one sample), and the cost model prices that op as sim runs it."""
    from cost_models.networks import mast_network_layers

    p = get_profile("sparse_pe_64")
    fc2 = next(
        lay
        for lay in mast_network_layers("3m", 0.9, layout="row_balanced")
        if lay.name == "agent.fc2.weight"
    )
    (op,) = compile_layer(fc2.mask, "forward", p, 3, name="w").ops
    assert (op.unroll, op.n, op.m) == (3, 27, 1)
    check(p, fc2.mask, "spmm", 3)
    rolled = compile_layer(fc2.mask, "forward", p, 3, "row", name="w").ops[0]
    assert op.formula_cycles(p) < rolled.formula_cycles(p)


@pytest.mark.parametrize("profile", ["sparse_pe_16", "sparse_pe_64", "sparse_pe_16_ecp5"])
@pytest.mark.parametrize("map_name", ["3m", "3s5z", "MMM"])
def test_acting_step_costs_as_sim_runs_the_compiled_program(profile, map_name):
    """The cost model's acting step (stacked fc2 + next step's gate product included) has
    the ops and cycles of sim running the program the compiler emits for it."""
    from cost_models.networks import mast_network_layers
    from cost_models.workload import inference_graph
    from hw.export import compile_inference
    from sim import simulate

    p = get_profile(profile)
    layers = mast_network_layers(map_name, 0.9, layout="random")
    program = compile_inference(layers, p)
    inputs = {op.layer: {"x": np.zeros((op.in_width, op.layer_samples))} for op in program.ops}
    res = simulate(program, inputs)
    g = inference_graph(p, layers)
    costs = {k.layer: cost_kernel(p, k) for _, k in g.nodes(data="kernel") if k.op == "spmm"}
    assert sorted(costs) == sorted({op.layer for op in program.ops})
    for layer, cost in costs.items():  # a sample-tiled layer: the sum of its tiles' ops
        ran = [r for op, r in zip(program.ops, res.ops, strict=True) if op.layer == layer]
        assert cost.ops == len(ran), layer
        assert cost.compute_cycles == sum(r.cycles for r in ran), layer
        assert cost.macs == sum(r.useful_macs for r in ran)


def test_sample_chunks_sum_sim_ops():
    """An SpMM over more samples than the activation SRAM holds costs as its chunks."""
    p = get_profile("sparse_pe_4")
    mask = np.random.default_rng(1).random((48, 40)) < 0.2
    per_op = (p.act_sram_words // p.n_pe) // 48 * p.n_pe
    whole = cost_kernel(p, Kernel("k", "fwd", "spmm", 3 * per_op + 5, "w", mask=mask))
    chunk = sim_run(p, mask, "spmm", per_op)
    rest = sim_run(p, mask, "spmm", 5)
    assert whole.compute_cycles == 3 * chunk.cycles + rest.cycles
    assert whole.ops == 3 * len(chunk.ops) + len(rest.ops)  # a chunk may run as sample tiles
    assert whole.macs == (3 * per_op + 5) * int(mask.sum())


def test_wide_input_is_split_and_partials_added():
    """K above the buffer / column-index range: ops over input blocks plus vector adds."""
    p = get_profile("sparse_pe_16")
    limit = min(p.act_buf_words, 1 << p.index_bits)
    k, n, m = limit + 40, 8, 20
    mask = np.random.default_rng(2).random((n, k)) < 0.1
    cost = cost_kernel(p, Kernel("k", "fwd", "spmm", m, "w", mask=mask))
    assert cost.actions["vector_ops"] == n * m  # one partial output added per (n, m)
    half = k // 2
    runs = [sim_run(p, h, "spmm", m) for h in (mask[:, :half], mask[:, half:])]
    assert cost.ops == sum(len(r.ops) for r in runs)
    ops = sum(r.cycles for r in runs)
    assert cost.compute_cycles == ops + -(-n * m // (p.n_pe * p.vector_lanes_per_pe))


def test_tall_matrix_is_cut_into_row_blocks():
    """More rows than an output buffer holds: one op per block of rows, each as sim runs it."""
    p = get_profile("sparse_pe_4")
    n = p.out_buf_words + 20
    mask = np.random.default_rng(4).random((n, 24)) < 0.3
    cost = cost_kernel(p, Kernel("k", "fwd", "spmm", 9, "w", mask=mask))
    top = sim_run(p, mask[: p.out_buf_words], "spmm", 9)
    rest = sim_run(p, mask[p.out_buf_words :], "spmm", 9)
    assert cost.ops == len(top.ops) + len(rest.ops)  # a block may run as sample tiles
    assert cost.compute_cycles == top.cycles + rest.cycles
    assert cost.actions["macs"] == top.macs + rest.macs


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    p=st.sampled_from([p for p in PROFILES if not p.is_sparse]),
    op=st.sampled_from(["spmm", "spmm_t"]),
    n=st.integers(1, 40),
    k=st.integers(1, 40),
    m=st.integers(1, 30),
)
def test_resident_systolic_kernel_cost_equals_sim(p, op, n, k, m):
    """Resident-weight systolic ops (``Kernel.resident`` / ``dataflow="resident"``)."""
    mask = np.ones((n, k), dtype=bool)
    rng = np.random.default_rng(0)
    prog = compile_layer(mask, KERNELS[op], p, m, "resident", name="w")
    assert prog.ops[0].resident
    res = simulate(
        prog, {"w": {"x": rng.integers(-50, 50, (k, m)), "dy": rng.integers(-50, 50, (n, m))}}
    )
    cost = cost_kernel(p, Kernel("k", "infer", op, m, "w", mask=mask, resident=True))
    assert cost.compute_cycles == res.cycles
    for f in MEM_FIELDS:
        assert cost.actions.get(f, 0) == getattr(res.mem, f), f


def test_vector_kernels_run_on_the_vector_lanes():
    """``ceil(ops / (n_pe * vector_lanes_per_pe))`` cycles: the profile's lane count."""
    p = get_profile("sparse_pe_64")
    kern = Kernel("v", "fwd", "vector", 1000, label="cell", ops_per_elem=12)
    assert cost_kernel(p, kern).compute_cycles == -(-12000 // (64 * p.vector_lanes_per_pe))
    one = dataclasses.replace(p, vector_lanes_per_pe=1)
    assert cost_kernel(one, kern).compute_cycles == -(-12000 // 64)
