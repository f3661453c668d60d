"""sim == integer reference bit for bit, == float reference within the bound, and
cycle counts == the closed forms of hw.timing, on random masks, shapes and profiles."""

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hw import timing
from hw.compiler import compile_layer, compile_network
from hw.numerics import (
    dequantize,
    float_error_bound,
    float_reference_sddmm,
    float_reference_spmm,
    quantize,
    reference_sddmm,
    reference_spmm,
)
from hw.profiles import HwProfile, get_profile
from sim import layer_output, simulate

SPARSE = [
    get_profile("sparse_pe_4"),
    get_profile("sparse_pe_16"),
    get_profile("sparse_pe_64"),
    # odd PE count, deep pipeline, tiny gradient SRAM (many SDDMM chunks), narrow formats
    HwProfile(
        name="odd_narrow",
        kind="sparse",
        n_pe=3,
        operand_bits=8,
        frac_bits=2,
        acc_bits=16,
        pipeline_depth=3,
        bcast_words=2,
        act_buf_words=128,
        out_buf_words=128,
        grad_buf_words=7,
        weight_sram_kib=8,
        act_sram_kib=8,
    ),
    HwProfile(
        name="one_pe",
        kind="sparse",
        n_pe=1,
        pipeline_depth=1,
        bcast_words=1,
        act_buf_words=256,
        grad_buf_words=16,
    ),
]
SYSTOLIC = [
    get_profile("systolic_2x2"),
    get_profile("systolic_4x4"),
    HwProfile(
        name="sys_3x2",
        kind="systolic",
        n_pe=6,
        rows=3,
        cols=2,
        operand_bits=8,
        frac_bits=2,
        acc_bits=16,
    ),
]


def rand_case(seed, prof, n, k, m, sparsity, small=False):
    """Full-range operands (saturation likely) or small ones (no add can saturate, so the
    simulator's exact matrix-product path runs)."""
    rng = np.random.default_rng(seed)
    mask = rng.random((n, k)) >= sparsity
    lo, hi = prof.operand_min, prof.operand_max
    if small:
        hi = 1 << max(0, (prof.acc_bits - 12) // 2)
        lo = -hi
    w = rng.integers(lo, hi + 1, (n, k)) * mask
    x = rng.integers(lo, hi + 1, (k, m))
    dy = rng.integers(lo, hi + 1, (n, m))
    return mask, w, x, dy


def check_cycles(prog, res):
    for op, r in zip(prog.ops, res.ops, strict=True):
        assert r.cycles == op.formula_cycles(prog.profile)
        assert r.phases.total == r.cycles
        assert r.useful_macs == op.m * op.nnz
    assert 0 <= res.utilisation <= 1
    assert res.overall_utilisation <= res.utilisation


cases = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**32 - 1),
        "n": st.integers(1, 24),
        "k": st.integers(1, 24),
        "m": st.integers(1, 20),
        "sparsity": st.sampled_from([0.0, 0.3, 0.7, 0.9, 0.98]),
        "small": st.booleans(),
    }
)


@settings(max_examples=80, deadline=None)
@given(case=cases, pi=st.integers(0, len(SPARSE) - 1))
def test_sample_parallel_kernels_match_integer_reference(case, pi):
    prof = SPARSE[pi]
    mask, w, x, dy = rand_case(prof=prof, **case)
    kernels = ["forward", "input_grad", "weight_grad", "dense_grad"]
    prog = compile_network([(mask, w)], kernels, prof, case["m"], "sample", names=["l"])
    res = simulate(prog, {"l": {"x": x, "dy": dy}})
    assert np.array_equal(layer_output(prog, res, "l", "forward"), reference_spmm(w, x, prof))
    assert np.array_equal(layer_output(prog, res, "l", "input_grad"), reference_spmm(w.T, dy, prof))
    r, c = np.nonzero(mask)
    dw = layer_output(prog, res, "l", "weight_grad")
    assert np.array_equal(dw[r, c], reference_sddmm(dy, x, r, c, prof))
    assert not dw[~mask].any()
    rr, cc = np.nonzero(np.ones_like(mask))
    dense = layer_output(prog, res, "l", "dense_grad")
    assert np.array_equal(dense[rr, cc], reference_sddmm(dy, x, rr, cc, prof))
    check_cycles(prog, res)


@settings(max_examples=80, deadline=None)
@given(case=cases, pi=st.integers(0, len(SPARSE) - 1))
def test_row_parallel_spmm_matches_integer_reference(case, pi):
    prof = SPARSE[pi]
    m = max(1, min(case["m"], prof.act_buf_words // max(case["n"], case["k"]), 6))
    case = {**case, "m": m}
    mask, w, x, dy = rand_case(prof=prof, **case)
    prog = compile_network([(mask, w)], ["forward", "input_grad"], prof, m, "row", names=["l"])
    res = simulate(prog, {"l": {"x": x, "dy": dy}})
    fwd, ig = prog.ops
    assert np.array_equal(
        res.op(fwd.name).output, reference_spmm(w, x, prof, splits=fwd.row_splits())
    )
    assert np.array_equal(
        res.op(ig.name).output, reference_spmm(w.T, dy, prof, splits=ig.row_splits())
    )
    check_cycles(prog, res)


@settings(max_examples=60, deadline=None)
@given(case=cases, pi=st.integers(0, len(SPARSE) - 1))
def test_sample_unrolled_row_parallel_matches_integer_reference(case, pi):
    """I_M (x) W on the M samples stacked: the layer's Y, per-sample split order kept."""
    prof = SPARSE[pi]
    cap = min(prof.act_buf_words, 1 << prof.index_bits)
    m = max(2, min(case["m"], cap // max(case["n"], case["k"]), 6))
    case = {**case, "m": m}
    mask, w, x, dy = rand_case(prof=prof, **case)
    prog = compile_network([(mask, w)], ["forward", "input_grad"], prof, m, "unrolled", names=["l"])
    res = simulate(prog, {"l": {"x": x, "dy": dy}})
    fwd, ig = prog.ops
    assert (fwd.unroll, fwd.m, fwd.k, fwd.n) == (m, 1, m * case["k"], m * case["n"])
    for op, a, b, name in ((fwd, w, x, "forward"), (ig, w.T, dy, "input_grad")):
        big = np.kron(np.eye(m, dtype=np.int64), a)  # written out here, not the compiler's
        stacked = b.T.reshape(-1, 1)
        want = reference_spmm(big, stacked, prof, splits=op.row_splits())
        assert np.array_equal(res.op(op.name).output, want)
        got = layer_output(prog, res, "l", name)
        assert got.shape == (a.shape[0], m)
        assert np.array_equal(got, want.reshape(m, -1).T)
        if not op.row_splits():  # no split row: exactly the plain product
            assert np.array_equal(got, reference_spmm(a, b, prof))
    check_cycles(prog, res)


@settings(max_examples=40, deadline=None)
@given(case=cases, pi=st.integers(0, len(SYSTOLIC) - 1))
def test_systolic_gemm_matches_reference_and_closed_form(case, pi):
    prof = SYSTOLIC[pi]
    mask, w, x, dy = rand_case(prof=prof, **case)
    kernels = ["forward", "input_grad", "weight_grad", "dense_grad"]
    prog = compile_network([(mask, w)], kernels, prof, case["m"], names=["l"])
    res = simulate(prog, {"l": {"x": x, "dy": dy}})
    assert np.array_equal(layer_output(prog, res, "l", "forward"), reference_spmm(w, x, prof))
    assert np.array_equal(layer_output(prog, res, "l", "input_grad"), reference_spmm(w.T, dy, prof))
    dense = reference_spmm(dy, x.T, prof)
    assert np.array_equal(layer_output(prog, res, "l", "dense_grad"), dense)
    assert np.array_equal(layer_output(prog, res, "l", "weight_grad"), dense * mask)
    n, k, m, r, c = case["n"], case["k"], case["m"], prof.rows, prof.cols
    fwd = math.ceil(k / r) * math.ceil(n / c) * (2 * r + c + m - 2)
    assert res.op("l:forward").cycles == fwd
    wgrad = math.ceil(m / r) * math.ceil(n / c) * (2 * r + c + k - 2)
    assert res.op("l:weight_grad").cycles == wgrad
    check_cycles(prog, res)


@settings(max_examples=40, deadline=None)
@given(case=cases, dataflow=st.sampled_from(["sample", "row"]))
def test_float_reference_within_bound(case, dataflow):
    prof = get_profile("sparse_pe_16")
    rng = np.random.default_rng(case["seed"])
    n, k, m = case["n"], case["k"], min(case["m"], 8)  # case["small"] unused: float inputs
    mask = rng.random((n, k)) >= case["sparsity"]
    w = rng.uniform(-0.5, 0.5, (n, k)) * mask
    x = rng.uniform(-1, 1, (k, m))
    dy = rng.uniform(-1, 1, (n, m))
    prog = compile_network([w], ["forward", "weight_grad"], prof, m, dataflow, names=["l"])
    res = simulate(prog, {"l": {"x": x, "dy": dy}})
    wq = dequantize(quantize(w, prof), prof)
    y = dequantize(layer_output(prog, res, "l", "forward"), prof)
    err = np.abs(y - float_reference_spmm(w, x))
    assert np.all(err <= float_error_bound(wq, x, prof, mask) + 1e-12)
    g = dequantize(layer_output(prog, res, "l", "weight_grad"), prof)
    dyq = dequantize(quantize(dy, prof), prof)
    bound = float_error_bound(dyq, x.T, prof)
    assert np.all(np.abs(g - float_reference_sddmm(dy, x, mask)) <= bound + 1e-12)


def test_sample_parallel_steps_by_hand():
    prof = replace(get_profile("sparse_pe_4"), pipeline_depth=3)  # P = 4, PD = 3
    mask = np.zeros((3, 5), dtype=bool)
    mask[0, [1, 3]] = True
    mask[2, :] = True  # row 1 empty: one token; S = 2 + 1 + 5 = 8
    prog = compile_layer(mask.astype(np.int64), "forward", prof, 10, "sample")
    res = simulate(prog, {"layer": {"x": np.ones((5, 10), dtype=np.int64)}})
    # T = 3 tiles; load 5, compute 8 + 3 = 11, drain 3.
    steps = [5, 11, 11, 11, 3]
    assert res.cycles == sum(s + 1 for s in steps) == 46
    assert res.phases.load == 5 and res.phases.compute == 33 and res.phases.drain == 3
    assert res.phases.handshake == 5
    assert res.compute_cycles == 33
    assert res.mem.act_sram_reads == res.mem.act_sram_writes == 5 * 10
    assert res.mem.out_sram_writes == 3 * 10
    assert res.mem.weight_sram_reads == 3 * 8
    assert res.pe_busy.tolist() == [24, 24, 16, 16]


def test_sddmm_steps_by_hand():
    prof = replace(get_profile("sparse_pe_4"), pipeline_depth=3)  # PD = 3, TD = 2
    mask = np.eye(4, 6, dtype=bool)
    prog = compile_layer(mask, "weight_grad", prof, 5)
    (op,) = prog.ops
    res = simulate(prog, {"layer": {"x": np.ones((6, 5)), "dy": np.ones((4, 5))}})
    # T = 2; load 10, compute S + PD + TD = 4 + 3 + 2 = 9: steps 10, 10, 9.
    assert res.cycles == 11 + 11 + 10 == timing.sddmm_cycles(6, 4, 5, 4, prof)
    assert res.op(op.name).output.tolist() == [5 * 1024] * 4


def test_row_parallel_phases_by_hand():
    prof = replace(get_profile("sparse_pe_4"), pipeline_depth=4)  # bcast_words = 4
    mask = np.zeros((2, 16), dtype=bool)
    mask[0, :] = True  # 16 non-zeros on one row: split over the PEs
    prog = compile_layer(mask.astype(np.int64), "forward", prof, 2, "row")
    (op,) = prog.ops
    n_p = np.diff(op.arrays["bank_ptr"])
    q_p = np.diff(op.arrays["piece_ptr"])
    adds = int(np.sum(np.diff(op.arrays["red_ptr"]) - 1))
    res = simulate(prog, {"layer": {"x": np.ones((16, 2), dtype=np.int64)}})
    # the walk reads words 0..31 (4 a cycle, readable 2 cycles after they are sent): it
    # starts once its sample-1 reads cannot overtake the load, and shares the load's phase
    delay, drain = op.walk_delay(prof), op.drain_delay(prof)
    walk = 2 * n_p.max() + prof.pipeline_depth
    # the drain's last word is written 2 cycles after its read (with PD 4 it is
    # registered as it leaves the PE's output buffer); the reduction: one add a cycle,
    # the last sum written 4 cycles after its read (with PD 4 each output bank's word is
    # registered before the bank multiplexer, and the requantised sum before its write)
    want = (max(8, delay + walk, drain + 2 * q_p.max() + 1) + 1) + (2 * adds + 4 + 1)
    # (with PD 4 a result is written two cycles after its accumulate: the drain may start
    # a cycle after the walk's last cycle)
    assert adds > 0 and 0 < delay < 8 + 2 and delay < drain <= delay + walk + 1
    assert res.cycles == want
    assert res.ops[0].phases.reduction == 2 * adds + 4
    assert res.ops[0].phases.load == 8 and res.ops[0].phases.handshake == 2


def test_a_walk_that_would_overtake_the_broadcast_is_refused(monkeypatch):
    """sim clocks every read of the bank walk against the load: one cycle earlier than
    the compiled start and some PE reads a word that has not arrived."""
    from hw.program import Op

    prof = get_profile("sparse_pe_4")
    rng = np.random.default_rng(5)
    mask = rng.random((6, 20)) < 0.5
    prog = compile_layer(mask.astype(np.int64), "forward", prof, 3, "row")
    x = {"layer": {"x": np.ones((20, 3), dtype=np.int64)}}
    simulate(prog, x)  # the compiled start is fine
    early = prog.ops[0].walk_delay(prof) - 1
    monkeypatch.setattr(Op, "walk_delay", lambda self, profile: early)
    with pytest.raises(ValueError, match="before the broadcast delivers it"):
        simulate(prog, x)


def test_a_drain_that_would_overtake_the_walk_is_refused(monkeypatch):
    """sim checks every drained result against the cycle the walk wrote it."""
    from hw.program import Op

    prof = get_profile("sparse_pe_4")
    rng = np.random.default_rng(6)
    mask = rng.random((6, 20)) < 0.5
    prog = compile_layer(mask.astype(np.int64), "forward", prof, 3, "row")
    x = {"layer": {"x": np.ones((20, 3), dtype=np.int64)}}
    simulate(prog, x)
    early = prog.ops[0].drain_delay(prof) - 1
    monkeypatch.setattr(Op, "drain_delay", lambda self, profile: early)
    with pytest.raises(ValueError, match="before the walk writes it"):
        simulate(prog, x)


def test_narrow_profile_saturates_like_reference():
    prof = SPARSE[3]
    w = np.full((2, 6), prof.operand_max)
    w[1] = prof.operand_min
    x = np.full((6, 3), prof.operand_max)
    for df in ("sample", "row"):
        prog = compile_layer(w, "forward", prof, 3, df)
        res = simulate(prog, {"layer": {"x": x}})
        assert res.ops[0].output.tolist() == [[prof.operand_max] * 3, [prof.operand_min] * 3]


def test_float_and_int_inputs_agree():
    prof = get_profile("sparse_pe_16")
    rng = np.random.default_rng(3)
    w = rng.normal(size=(8, 9)) * (rng.random((8, 9)) < 0.4)
    x = rng.normal(size=(9, 5))
    prog = compile_layer(w, "forward", prof, 5)
    a = simulate(prog, {"layer": {"x": x}}).ops[0].output
    b = simulate(prog, {"layer:forward": {"x": quantize(x, prof)}}).ops[0].output
    assert np.array_equal(a, b)


def test_bad_inputs_are_named():
    prof = get_profile("sparse_pe_4")
    prog = compile_layer(np.eye(3), "forward", prof, 2)
    with pytest.raises(ValueError, match=r"no inputs for op 'layer:forward'"):
        simulate(prog, {})
    with pytest.raises(ValueError, match=r"input 'x' has shape \(2, 2\), expected \(3, 2\)"):
        simulate(prog, {"layer": {"x": np.zeros((2, 2))}})
    with pytest.raises(ValueError, match=r"input 'x' value 40000 outside the operand range"):
        simulate(prog, {"layer": {"x": np.full((3, 2), 40000)}})
    with pytest.raises(ValueError, match=r"op 'layer:forward': inputs lack 'x'"):
        simulate(prog, {"layer": {"dy": np.zeros((3, 2))}})


def test_output_images_follow_documented_layout():
    prof = get_profile("sparse_pe_4")
    rng = np.random.default_rng(4)
    w = rng.integers(-50, 50, (5, 6)) * (rng.random((5, 6)) < 0.5)
    w[:, 0] = 7
    w[:, 1:] = 0
    w[1, :] = 9  # one long row among short ones: the balancer splits it
    x = rng.integers(-50, 50, (6, 3))
    depth = prof.act_sram_words // prof.n_pe
    sp = compile_layer(w, "forward", prof, 3, "sample")
    r = simulate(sp, {"layer": {"x": x}}).ops[0]
    banks = r.out_image.reshape(prof.n_pe, depth)
    for m in range(3):
        for n in range(5):
            assert banks[m % 4, (m // 4) * 5 + n] == r.output[n, m]
    rp = compile_layer(w, "forward", prof, 3, "row")
    (op,) = rp.ops
    r = simulate(rp, {"layer": {"x": x}}).ops[0]
    a = op.arrays
    q_p = np.diff(a["piece_ptr"])
    banks = r.out_image.reshape(prof.n_pe, -1)
    assert len(a["red_row"]) > 0
    for row in range(5):
        i = int(np.flatnonzero(a["piece_row"] == row)[0])
        if a["piece_red"][i] >= 0:  # split row: its first piece in the reduction schedule
            i = int(a["red_piece"][a["red_ptr"][a["piece_red"][i]]])
        pe, slot = a["piece_pe"][i], i - a["piece_ptr"][a["piece_pe"][i]]
        assert [banks[pe, m * q_p[pe] + slot] for m in range(3)] == r.output[row].tolist()
    sd = compile_layer(w != 0, "weight_grad", prof, 3)
    r = simulate(sd, {"layer": {"x": x, "dy": x[:5]}}).ops[0]
    assert np.array_equal(r.out_image, r.output)


@settings(max_examples=40, deadline=None)
@given(case=cases, pi=st.integers(0, len(SYSTOLIC) - 1))
def test_systolic_resident_weights_match_cold_ops_and_closed_form(case, pi):
    """Resident tiles (s.3.1): the cold ops' outputs and memory counters, no shift-in
    cycles, folds back to back: ``(KF-1) max(NF M, R) + NF M + R + C - 2``."""
    prof = SYSTOLIC[pi]
    mask, w, x, dy = rand_case(prof=prof, **case)
    kernels = ["forward", "input_grad"]
    cold = compile_network([(mask, w)], kernels, prof, case["m"], names=["l"])
    warm = compile_network([(mask, w)], kernels, prof, case["m"], "resident", names=["l"])
    assert all(op.resident for op in warm.ops) and not any(op.resident for op in cold.ops)
    rc = simulate(cold, {"l": {"x": x, "dy": dy}})
    rw = simulate(warm, {"l": {"x": x, "dy": dy}})
    assert np.array_equal(layer_output(warm, rw, "l", "forward"), reference_spmm(w, x, prof))
    assert np.array_equal(layer_output(warm, rw, "l", "input_grad"), reference_spmm(w.T, dy, prof))
    n, k, m, r, c = case["n"], case["k"], case["m"], prof.rows, prof.cols
    kf, nf = math.ceil(k / r), math.ceil(n / c)
    assert rw.op("l:forward").cycles == (kf - 1) * max(nf * m, r) + nf * m + r + c - 2
    for a, b in zip(rc.ops, rw.ops, strict=True):
        assert a.mem == b.mem and a.macs == b.macs
        assert b.phases.load == 0 and b.cycles <= a.cycles
    check_cycles(warm, rw)


JOIN = replace(
    get_profile("sparse_pe_4"), name="sparse_pe_4_join", pipeline_depth=2, drain_join=True
)
"""``sparse_pe_4`` with the drain's adders (``drain_join``), at the ASIC pipeline depth."""


def _joined_op(seed: int, prof: HwProfile, n: int, k: int, threshold: int):
    """A one-sample row-parallel forward op whose long rows are joined at the drain
    (written here from the plan, not the balancer's choice), with its inputs."""
    from hw.compiler.balance import plan_with_joins
    from hw.compiler.encode import encode_banks

    mask, w, x, _ = rand_case(seed, prof, n, k, 1, 0.3)
    prog = compile_layer(w, "forward", prof, 1, "row")
    (op,) = prog.ops
    plan = plan_with_joins(mask.sum(axis=1), prof.n_pe, threshold)
    op = replace(op, arrays=encode_banks(mask, w, plan))
    return replace(prog, ops=(op,)), op, w, x


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 12), k=st.integers(4, 40))
def test_rows_joined_at_the_drain_match_integer_reference(seed, n, k):
    """A joined row's two raw partials, added and requantised at the drain, give the
    reference's value for a row split at its second piece (the serial reduction's)."""
    prog, op, w, x = _joined_op(seed, JOIN, n, k, 2)
    pairs = op.joined_pairs()
    res = simulate(prog, {"layer": {"x": x}})
    assert np.array_equal(
        res.op(op.name).output, reference_spmm(w, x, JOIN, splits=op.row_splits())
    )
    check_cycles(prog, res)
    if pairs:  # the rows joined have no reduction phase and no reduction record
        assert len(op.row_splits()) >= len(pairs)
        joined_rows = {int(op.arrays["piece_row"][s]) for _, s in pairs}
        assert joined_rows.isdisjoint(op.arrays["red_row"].tolist())


def test_the_balancer_joins_long_rows_instead_of_reducing_them():
    """Two rows of 16 on 4 PEs, one sample: without the drain's adders the cheapest plan
    splits them and pays the reduction phase (or keeps them whole); with them each row is
    joined across a pair of PEs, with no reduction phase, in fewer cycles."""
    mask = np.zeros((6, 32), dtype=bool)
    mask[0, :16] = mask[1, 16:] = True
    mask[2:, :3] = True
    w = mask.astype(np.int64)
    x = {"layer": {"x": np.arange(32, dtype=np.int64)[:, None]}}
    plain = replace(JOIN, name="sparse_pe_4_plain", drain_join=False)
    cyc = {}
    for prof in (plain, JOIN):
        prog = compile_layer(w, "forward", prof, 1, "row")
        (op,) = prog.ops
        res = simulate(prog, x)
        assert np.array_equal(res.op(op.name).output, reference_spmm(w, x["layer"]["x"], prof))
        cyc[prof.name] = res.cycles
        if prof.drain_join:
            assert len(op.joined_pairs()) == 2 and res.ops[0].phases.reduction == 0
            assert sorted(int(op.arrays["piece_pe"][s]) for _, s in op.joined_pairs()) == [1, 3]
    assert cyc[JOIN.name] < cyc[plain.name]


def test_a_joined_op_needs_the_drain_adders_and_their_layout():
    """sim and the RTL loader refuse a joined op on a profile without ``drain_join``, and
    a join whose pieces are not the last of a pair of PEs."""
    from hw.fit import ProgramFitError
    from hw.rtl.fit import check_fits

    prog, op, _, x = _joined_op(3, JOIN, 6, 30, 2)
    assert op.joined_pairs()
    plain = replace(JOIN, name="sparse_pe_4_plain", drain_join=False)
    with pytest.raises(ValueError, match="no adders for"):
        simulate(replace(prog, profile=plain), {"layer": {"x": x}})
    with pytest.raises(ProgramFitError, match="no drain adders"):
        check_fits(plain, op)
    check_fits(JOIN, op)
    # move the join flag to the row's first piece (on the even PE): refused
    first, second = op.joined_pairs()[0]
    bad = op.arrays["piece_join"].copy()
    bad[second], bad[first] = 0, 1
    broken = replace(op, arrays={**op.arrays, "piece_join": bad})
    with pytest.raises(ValueError, match="must be the last piece of an odd PE"):
        broken.joined_pairs()
    with pytest.raises(ProgramFitError, match="must be the last piece of an odd PE"):
        check_fits(JOIN, broken)


def test_a_joined_piece_that_is_requantised_is_refused():
    """Both pieces of a joined row are raw partials: the drain requantises their sum."""
    _, op, _, _ = _joined_op(4, JOIN, 6, 30, 2)
    first, _ = op.joined_pairs()[0]
    split = op.arrays["piece_split"].copy()
    split[first] = 0
    with pytest.raises(ValueError, match="both raw partials"):
        replace(op, arrays={**op.arrays, "piece_split": split}).joined_pairs()


TILED = [p for p in SPARSE if p.act_buf_words <= 256]
"""Profiles whose PE buffers a small layer outgrows: every sample tile's op stays small."""


@settings(max_examples=50, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    pi=st.integers(0, len(TILED) - 1),
    sparsity=st.sampled_from([0.0, 0.5, 0.9]),
    small=st.booleans(),
    extra=st.integers(1, 9),
)
def test_sample_tiled_spmm_matches_integer_reference(seed, pi, sparsity, small, extra):
    """An SpMM whose M samples outgrow the PE buffer, as sample tiles: each tile's op
    computes its own samples of the layer (split rows in the tile's own order), the
    layer's output is the tiles' side by side, and the tiles are the fewest near-equal
    ranges that fit (s.2.6)."""
    prof = TILED[pi]
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, prof.act_buf_words // 2 + 1))
    n = int(rng.integers(1, 2 * prof.n_pe + 2))
    m = prof.act_buf_words // k + extra  # more samples than the buffer holds
    mask, w, x, dy = rand_case(seed, prof, n, k, m, sparsity, small)
    prog = compile_network([(mask, w)], ["forward"], prof, m, "tiled", names=["l"])
    res = simulate(prog, {"l": {"x": x}})
    tiles = [(op.sample0, op.sample0 + op.samples) for op in prog.ops]
    assert tiles[0][0] == 0 and tiles[-1][1] == m
    assert all(a[1] == b[0] for a, b in zip(tiles, tiles[1:], strict=False))
    sizes = [b - a for a, b in tiles]
    assert max(sizes) * k <= prof.act_buf_words and max(sizes) - min(sizes) <= 1
    assert len(tiles) == -(-m // (prof.act_buf_words // k))
    want = []
    for op in prog.ops:
        assert op.layer_m == m and op.dataflow == "row"
        a, b = op.sample0, op.sample0 + op.samples
        u = op.unroll
        big = np.kron(np.eye(u, dtype=np.int64), w)  # written out here, not the compiler's
        xb = x[:, a:b].T.reshape(-1, 1) if u > 1 else x[:, a:b]
        got = reference_spmm(big, xb, prof, splits=op.row_splits())
        assert np.array_equal(res.op(op.name).output, got)
        want.append(got.reshape(u, -1).T if u > 1 else got)
    out = layer_output(prog, res, "l", "forward")
    assert np.array_equal(out, np.concatenate(want, axis=1))
    if not any(op.row_splits() for op in prog.ops):
        assert np.array_equal(out, reference_spmm(w, x, prof))
    check_cycles(prog, res)


def test_the_compiler_tiles_samples_only_where_that_beats_the_sample_parallel_op():
    """``auto``: an op whose input outgrows the PE buffer runs as sample tiles when
    their cycles are fewer than the sample-parallel op's, and the cost model prices the
    tiles as ``sim`` runs them."""
    from cost_models.ops import spmm_op

    prof = get_profile("sparse_pe_4")
    rng = np.random.default_rng(7)
    tiled = 0
    for _ in range(40):
        k = int(rng.integers(8, 33))
        n = int(rng.integers(1, 9))
        m = prof.act_buf_words // k + int(rng.integers(1, 8))
        mask = rng.random((n, k)) >= rng.choice([0.5, 0.8, 0.9])
        w = rng.integers(-50, 51, (n, k)) * mask
        prog = compile_network([(mask, w)], ["forward"], prof, m, "auto", names=["l"])
        sample = compile_network([(mask, w)], ["forward"], prof, m, "sample", names=["l"])
        res = simulate(prog, {"l": {"x": rng.integers(-50, 51, (k, m))}})
        sample_cycles = sample.ops[0].formula_cycles(prof)
        assert res.cycles == spmm_op(prof, mask, m).cycles
        if any(op.layer_m for op in prog.ops):
            tiled += 1
            assert res.cycles < sample_cycles
        else:
            assert res.cycles == sample_cycles
    assert 0 < tiled < 40
