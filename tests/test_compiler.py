"""Compiler invariants: placement, balancing bound, W^T encoding, SDDMM chunks, dataflow
choice, quantisation and fit errors."""

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hw import timing
from hw.compiler import (
    ProgramFitError,
    balance_rows,
    choose_dataflow,
    compile_layer,
    compile_network,
    encode_banks,
    plan_for_threshold,
    row_plan_cycles,
)
from hw.fit import OpShape, fits
from hw.numerics import quantize
from hw.profiles import HwProfile, get_profile
from hw.program import Program
from mast.sparsity.layer import SparseLayer

P4, P16, P64 = (get_profile(f"sparse_pe_{n}") for n in (4, 16, 64))


def rand_layer(seed, n, k, sparsity, prof=P16):
    rng = np.random.default_rng(seed)
    mask = rng.random((n, k)) >= sparsity
    w = rng.integers(prof.operand_min, prof.operand_max + 1, (n, k)) * mask
    return mask, w


def decode_stream(op):
    """(row, col, val) of every non-token stream entry."""
    a = op.arrays
    real = ~a["stream_token"].astype(bool)
    return op.stream_rows()[real], a["stream_col"][real], a["stream_val"][real]


cases = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**32 - 1),
        "n": st.integers(1, 70),
        "k": st.integers(1, 40),
        "sparsity": st.sampled_from([0.0, 0.5, 0.9, 0.98]),
    }
)


@settings(max_examples=50, deadline=None)
@given(case=cases)
def test_stream_places_every_nonzero_once_and_tokens_for_empty_rows(case):
    mask, w = rand_layer(**case)
    (op,) = compile_layer((mask, w), "forward", P16, 64, "sample").ops
    rows, cols, vals = decode_stream(op)
    r, c = np.nonzero(mask)
    assert np.array_equal(rows, r) and np.array_equal(cols, c)
    assert np.array_equal(vals, w[mask])
    assert op.stream_length == timing.stream_length(mask.sum(axis=1))
    assert op.arrays["stream_token"].sum() == (mask.sum(axis=1) == 0).sum()
    assert op.arrays["stream_last"].sum() == case["n"]
    tok = op.arrays["stream_token"].astype(bool)
    assert not op.arrays["stream_val"][tok].any() and not op.arrays["stream_col"][tok].any()


@settings(max_examples=50, deadline=None)
@given(case=cases)
def test_input_grad_encodes_the_transpose(case):
    mask, w = rand_layer(**case)
    (op,) = compile_layer((mask, w), "input_grad", P16, 64, "sample").ops
    assert op.transpose and (op.n, op.k) == (case["k"], case["n"])
    rows, cols, vals = decode_stream(op)
    dense = np.zeros((case["k"], case["n"]), dtype=np.int64)
    dense[rows, cols] = vals
    assert np.array_equal(dense, w.T)
    assert len(rows) == mask.sum()


@settings(max_examples=50, deadline=None)
@given(case=cases, pi=st.sampled_from([4, 16, 64]), m=st.integers(1, 4))
def test_row_parallel_pieces_cover_each_nonzero_once_within_load_bound(case, pi, m):
    prof = get_profile(f"sparse_pe_{pi}")
    case = {**case, "n": min(case["n"], 40)}  # sparse_pe_4 banks hold 512 entries
    mask, w = rand_layer(**case, prof=prof)
    m = min(m, prof.act_buf_words // case["k"])
    op = compile_layer((mask, w), "forward", prof, m, "row").ops[0]
    a = op.arrays
    ptr = a["bank_ptr"]
    seen = np.zeros(mask.shape, dtype=np.int64)
    got = np.zeros(mask.shape, dtype=np.int64)
    piece_start = np.concatenate(([0], np.flatnonzero(a["bank_end"])[:-1] + 1))
    # bank_col holds broadcast positions: a permutation of the input columns
    assert sorted(a["bcast_pos"].tolist()) == list(range(mask.shape[1]))
    column = np.argsort(a["bcast_pos"])
    for i, (r, length) in enumerate(zip(a["piece_row"], a["piece_len"], strict=True)):
        pe = a["piece_pe"][i]
        s = piece_start[i]
        assert ptr[pe] <= s < ptr[pe + 1]
        if length == 0:
            assert a["bank_val"][s] == 0 and a["bank_end"][s] == 1 and not mask[r].any()
            continue
        cols = column[a["bank_col"][s : s + length]]
        seen[r, cols] += 1
        got[r, cols] = a["bank_val"][s : s + length]
    assert np.array_equal(seen, mask.astype(np.int64))
    assert np.array_equal(got, w)
    assert set(a["piece_row"].tolist()) == set(range(case["n"]))
    # greedy longest-first bound: n_p <= floor((E - l) / P) + l, l = longest piece
    entries = np.maximum(a["piece_len"], 1)
    total, longest = int(entries.sum()), int(entries.max())
    assert np.diff(ptr).max() <= (total - longest) // prof.n_pe + longest
    # reduction schedule: each split row lists its pieces in column order, each piece on
    # its own PE (the output SRAM banks have one read port)
    for j, r in enumerate(a["red_row"]):
        idx = a["red_piece"][a["red_ptr"][j] : a["red_ptr"][j + 1]]
        assert len(idx) >= 2 and (a["piece_row"][idx] == r).all()
        assert len(set(a["piece_pe"][idx].tolist())) == len(idx) <= prof.n_pe
        firsts = column[a["bank_col"][piece_start[idx]]]
        assert (np.diff(firsts) > 0).all()
        assert (a["piece_red"][idx] == j).all() and a["piece_split"][idx].all()


@pytest.mark.parametrize("threshold", [1, 5, 9, 40])
def test_a_rows_pieces_go_to_distinct_pes(threshold):
    """At most P pieces per row, each on its own PE, however small the threshold."""
    row_nnz = np.array([40, 1, 3, 0, 17])
    plan = plan_for_threshold(row_nnz, 4, threshold)
    for r in range(len(row_nnz)):
        pes = plan.pe[plan.row == r].tolist()
        assert len(pes) == len(set(pes)) <= 4
        assert sum(np.maximum(plan.end - plan.begin, 0)[plan.row == r]) == row_nnz[r]


def test_balancing_splits_long_rows_to_reach_ideal():
    row_nnz = np.full(64, 6)  # a 64 x 64 layer at ~90% sparsity on 64 PEs: one row per PE
    row_nnz[:4] = 40  # a few long rows would dominate without splitting
    mask = np.arange(64)[None, :] < row_nnz[:, None]
    plan = balance_rows(mask, 1, P64)
    unsplit = plan_for_threshold(row_nnz, 64, int(row_nnz.max()))
    assert plan.pe_entries.max() < unsplit.pe_entries.max() == 40
    assert row_plan_cycles(mask, plan, 1, P64) < row_plan_cycles(mask, unsplit, 1, P64)
    assert plan.pe_entries.max() <= math.ceil(row_nnz.sum() / 64) + plan.entries.max()


def test_balancing_is_deterministic():
    rng = np.random.default_rng(5)
    mask = rng.random((50, 40)) < 0.4
    a, b = balance_rows(mask, 2, P16), balance_rows(mask, 2, P16)
    assert all(np.array_equal(getattr(a, f), getattr(b, f)) for f in ("row", "pe", "begin"))


@settings(max_examples=40, deadline=None)
@given(case=cases, limit=st.integers(1, 50), m=st.integers(1, 70))
def test_sddmm_chunks_cover_the_stream_in_order(case, limit, m):
    mask, _ = rand_layer(**case)
    prof = HwProfile(name="g", kind="sparse", n_pe=4, grad_buf_words=limit)
    ops = compile_layer(mask, "weight_grad", prof, m).ops
    full = compile_layer(mask, "forward", prof, 4, "sample").ops[0]
    assert all(op.kernel == "sddmm" and op.dataflow == "sample" for op in ops)
    assert [op.name for op in ops] == [f"layer:weight_grad[{i}]" for i in range(len(ops))]
    assert all(op.nnz <= limit for op in ops)
    assert [op.nz_begin for op in ops] == [0] + [op.nz_end for op in ops[:-1]]
    assert ops[-1].nz_end == mask.sum()
    for key in ("stream_col", "stream_last", "stream_token"):
        joined = np.concatenate([op.arrays[key] for op in ops])
        assert np.array_equal(joined, full.arrays[key])
    offset = 0
    for op in ops:
        assert op.row0 == full.stream_rows()[offset]
        offset += op.stream_length
    assert len(ops) == max(1, math.ceil(mask.sum() / limit))


def test_dense_grad_uses_all_ones_mask():
    mask = np.zeros((5, 6), dtype=bool)
    mask[0, 0] = True
    (op,) = compile_layer(mask, "dense_grad", P16, 20).ops
    assert op.nnz == 30 and op.stream_length == 30 and not op.arrays["stream_token"].any()


def _row_options(mask, m):
    """(cycles, dataflow, unroll) of the row-parallel and sample-unrolled ops of ``mask`` on
    ``m`` samples that fit ``P64``, from the formulas and the balancer."""
    n, k = mask.shape

    def row_fits(n_, k_, m_, plan_):
        shape = OpShape(
            "spmm",
            "row",
            n_,
            k_,
            m_,
            bank_entries=int(plan_.pe_entries.max()),
            pe_pieces=int(plan_.pe_pieces.max()),
            pieces=len(plan_.row),
        )
        return fits(P64, shape)

    options = []
    if k * m <= P64.act_buf_words:
        plan = balance_rows(mask, m, P64)
        if row_fits(n, k, m, plan):
            options.append((row_plan_cycles(mask, plan, m, P64), "row", 1))
    # the sample-unrolled form: M copies of the rows, one sample, columns up to K*M
    if m > 1 and k * m <= min(P64.act_buf_words, 1 << P64.index_bits):
        umask = np.kron(np.eye(m, dtype=bool), mask)
        uplan = balance_rows(umask, 1, P64, blocks=m)
        if row_fits(n * m, k * m, 1, uplan):
            options.append((row_plan_cycles(umask, uplan, 1, P64), "row", m))
    return options


@settings(max_examples=30, deadline=None)
@given(case=cases, m=st.integers(1, 64) | st.integers(65, 300))
def test_auto_dataflow_picks_the_formula_minimum(case, m):
    """The cheapest of sample-parallel, row-parallel, sample-unrolled and, for an input
    over the PE buffer, sample tiles (the fewest near-equal sample ranges that fit, each
    its cheapest row-parallel form)."""
    mask, w = rand_layer(**case)
    prog = compile_layer((mask, w), "forward", P64, m)
    k, n = case["k"], case["n"]
    s = timing.stream_length(mask.sum(axis=1))
    options = [(timing.spmm_sample_parallel_cycles(k, n, m, s, P64), "sample", 1)]
    options += _row_options(mask, m)
    if k * m > P64.act_buf_words and m < P64.n_pe:  # tiles, for fewer samples than PEs
        per = P64.act_buf_words // k
        count = -(-m // per)
        sizes = [m // count + (i < m % count) for i in range(count)]
        best = {size: min(_row_options(mask, size), default=None) for size in set(sizes)}
        if all(best.values()):
            options.append((sum(best[size][0] for size in sizes), "tiled", 0))
    cycles, flow, unroll = min(options, key=lambda o: o[0])
    assert sum(op.formula_cycles(P64) for op in prog.ops) == cycles
    if flow == "tiled":
        assert [op.samples for op in prog.ops] == sizes
        assert [op.unroll for op in prog.ops] == [best[size][2] for size in sizes]
    else:
        (op,) = prog.ops
        assert (op.dataflow, op.unroll) == (flow, unroll)


def test_auto_chooses_row_parallel_for_batch_one_and_sample_parallel_for_training():
    """One sample: row-parallel. 256 samples (more than PEs): sample-parallel, every PE
    busy. 40 samples of a 12-row layer, whose inputs outgrow the 2,048-word PE buffer:
    two sample tiles of 20, each sample-unrolled."""
    mask, w = rand_layer(0, 64, 64, 0.9, P64)
    assert choose_dataflow(mask, 1, P64)[0] == "row"
    assert choose_dataflow(mask, 256, P64)[0] == "sample"
    small, _ = rand_layer(1, 12, 64, 0.5, P64)
    flow, tiles = choose_dataflow(small, 40, P64)
    assert flow == "tiled" and [(t.m, t.flow) for t in tiles] == [(20, "unrolled")] * 2


def test_float_values_are_quantised_with_hw_numerics():
    rng = np.random.default_rng(2)
    values = rng.normal(size=(6, 7)).astype(np.float32) * (rng.random((6, 7)) < 0.5)
    layer = SparseLayer(name="agent.fc1", role="agent", mask=values != 0, values=values)
    prog = compile_layer(layer, "forward", P16, 64, "sample")
    (op,) = prog.ops
    assert op.layer == "agent.fc1" and prog.layers[0]["name"] == "agent.fc1"
    assert np.array_equal(decode_stream(op)[2], quantize(values, P16)[values != 0])


def test_systolic_profile_compiles_dense_tiles():
    prof = get_profile("systolic_4x4")
    w = np.arange(1, 1 + 5 * 6).reshape(5, 6) * (np.arange(6) % 2 == 0)
    (op,) = compile_layer(w, "forward", prof, 3).ops
    assert (op.kernel, op.dataflow) == ("gemm", "systolic")
    tiles = op.arrays["weight_tiles"]
    assert tiles.shape == (2 * 2, 4, 4)
    # fold f = nf * KF + kf, cell (i, j) = W[nf*C + j, kf*R + i]
    assert tiles[1 * 2 + 1, 0, 0] == w[4, 4] and tiles[0, 2, 1] == w[1, 2]
    assert tiles[1 * 2 + 1, 3, 3] == 0


def test_fit_errors_name_the_field():
    # a sparse_pe_64 with the small buffers these cases are phrased in
    P64 = replace(get_profile("sparse_pe_64"), act_buf_words=512, index_bits=8)
    mask = np.ones((4, 700), dtype=bool)
    with pytest.raises(
        ProgramFitError,
        match=r"^layer 'agent.fc1' \(forward\): K=700 exceeds "
        r"act_buf_words=512 of profile 'sparse_pe_64'$",
    ):
        compile_layer(mask, "forward", P64, 1, "sample", name="agent.fc1")
    with pytest.raises(ProgramFitError, match=r"K=300 exceeds 2\*\*index_bits=256"):
        compile_layer(np.ones((4, 300), dtype=bool), "forward", P64, 1, "sample")
    # SDDMM: X in the activation buffer, dY in the output buffer.
    with pytest.raises(ProgramFitError, match=r"\(weight_grad\): N=600 exceeds out_buf_words=512"):
        compile_layer(np.ones((600, 200), dtype=bool), "weight_grad", P64, 1)
    column = np.zeros((400, 200), dtype=bool)
    column[:, 7] = True  # 400 non-zeros: one gradient chunk
    (op,) = compile_layer(column, "weight_grad", P64, 1).ops
    assert (op.kernel, op.k, op.n) == ("sddmm", 200, 400)  # K+N = 600 > 512 fits now
    with pytest.raises(ProgramFitError, match=r"K\*M=640 exceeds act_buf_words=512"):
        compile_layer(np.ones((4, 64), dtype=bool), "forward", P64, 10, "row")
    with pytest.raises(
        ProgramFitError,
        match=r"ceil\(M/P\)\*max\(K,N\)=4096 exceeds "
        r"act_sram_words/P=2048",
    ):
        compile_layer(np.ones((4, 64), dtype=bool), "forward", P64, 64 * 64, "sample")
    with pytest.raises(ProgramFitError, match=r"N=600 exceeds out_buf_words=512"):
        compile_layer(np.ones((600, 4), dtype=bool), "forward", P64, 1, "sample")
    with pytest.raises(ProgramFitError, match=r"S=1200 exceeds weight_sram_words=1024"):
        compile_layer(
            np.ones((60, 20), dtype=bool),
            "forward",
            get_profile("systolic_2x2").__class__(
                name="s", kind="sparse", n_pe=4, weight_sram_kib=2
            ),
            1,
            "sample",
        )
    with pytest.raises(ProgramFitError, match=r"integer weight 40000 outside the operand range"):
        compile_layer(np.full((2, 2), 40000), "forward", P64, 1)


def test_max_pieces_bounds_row_parallel_ops():
    """A profile's ``max_pieces`` sizes the reduction tables: an op with more pieces is
    not row-parallel there (an error when asked for, sample-parallel in auto)."""
    mask = np.ones((40, 16), dtype=bool)  # 40 rows: at least 40 pieces
    small = replace(P64, max_pieces=32)
    with pytest.raises(ProgramFitError, match=r"pieces=\d+ exceeds max_pieces=32"):
        compile_layer(mask, "forward", small, 2, "row")
    assert compile_layer(mask, "forward", small, 2).ops[0].dataflow == "sample"
    (op,) = compile_layer(mask, "forward", replace(P64, max_pieces=40), 2, "row").ops
    assert op.dataflow == "row"


def test_auto_falls_back_to_the_dataflows_that_fit():
    """K M over the PE buffer: no row-parallel op on every sample fits, so auto runs the
    cheaper of the sample-parallel op and sample tiles, here two tiles (17 + 16)."""
    k = 64
    m = P64.act_buf_words // k + 1  # K*M > act_buf_words: row-parallel cannot run whole
    mask = np.ones((8, k), dtype=bool)
    with pytest.raises(ProgramFitError, match="act_buf_words"):
        compile_layer(mask, "forward", P64, m, "row")
    ops = compile_layer(mask, "forward", P64, m).ops
    assert [(op.sample0, op.samples, op.layer_m) for op in ops] == [(0, 17, m), (17, 16, m)]
    sample = compile_layer(mask, "forward", P64, m, "sample").ops[0].formula_cycles(P64)
    assert sum(op.formula_cycles(P64) for op in ops) < sample


def test_bad_kernel_dataflow_and_m():
    with pytest.raises(
        ValueError,
        match=r"unknown kernel 'backward'; known: forward, "
        r"input_grad, weight_grad, dense_grad",
    ):
        compile_layer(np.eye(3), "backward", P4, 1)
    with pytest.raises(ValueError, match=r"unknown dataflow 'diagonal'; known: auto, sample, row"):
        compile_layer(np.eye(3), "forward", P4, 1, "diagonal")
    with pytest.raises(ValueError, match=r"M \(samples\) must be an integer >= 1, got 0"):
        compile_layer(np.eye(3), "forward", P4, 0)
    with pytest.raises(ValueError, match=r"duplicate layer name 'a'"):
        compile_network([np.eye(2), np.eye(2)], "forward", P4, 1, names=["a", "a"])


def test_compile_network_orders_ops_layer_major():
    prog = compile_network(
        [np.eye(3), np.eye(4)], ["forward", "input_grad"], "sparse_pe_4", 2, names=["a", "b"]
    )
    assert [o.name for o in prog.ops] == ["a:forward", "a:input_grad", "b:forward", "b:input_grad"]
    assert [m["name"] for m in prog.layers] == ["a", "b"]


@settings(max_examples=30, deadline=None)
@given(case=cases, limit=st.integers(1, 40))
def test_timing_chunk_bounds_match_the_compiled_chunks(case, limit):
    mask, _ = rand_layer(**case)
    prof = HwProfile(name="g", kind="sparse", n_pe=4, grad_buf_words=limit)
    ops = compile_layer(mask, "weight_grad", prof, 3).ops
    bounds = timing.sddmm_chunk_bounds(mask.sum(axis=1), limit)
    assert [b - a for a, b, _, _ in bounds] == [op.stream_length for op in ops]
    assert [(za, zb) for _, _, za, zb in bounds] == [(op.nz_begin, op.nz_end) for op in ops]


def brute_steps(t, stages):
    """Step by step: step s runs stage j on tile s - j when it exists; max + 1 each."""
    total = 0
    for s in range(t + len(stages) - 1):
        total += max(d for j, d in enumerate(stages) if 0 <= s - j < t) + 1
    return total


@settings(max_examples=60, deadline=None)
@given(
    k=st.integers(1, 300),
    n=st.integers(1, 300),
    m=st.integers(1, 700),
    s=st.integers(1, 900),
    p=st.sampled_from(["sparse_pe_4", "sparse_pe_16", "sparse_pe_64", "sparse_pe_256"]),
)
def test_timing_closed_forms_equal_the_step_sums(k, n, m, s, p):
    prof = get_profile(p)
    t = math.ceil(m / prof.n_pe)
    pd, td = prof.pipeline_depth, math.ceil(math.log2(prof.n_pe))
    # with PD >= 4 the FPGA pipeline registers a result before the PE's output buffer (the
    # compute stage's last write a cycle later) and a drained word before the output SRAM
    fpga = 1 if pd >= 4 else 0
    assert timing.spmm_sample_parallel_cycles(k, n, m, s, prof) == brute_steps(
        t, [k, s + pd + fpga, n + fpga]
    )
    assert timing.sddmm_cycles(k, n, m, s, prof) == brute_steps(t, [k + n, s + pd + td])
    assert timing.ideal_cycles(m, s, prof) == math.ceil(m * s / prof.n_pe)


def test_row_parallel_formula_skips_empty_reduction():
    prof = get_profile("sparse_pe_64")  # bcast_words 16, PD 2
    # load 4, walk 12 + 2 from cycle 3, drain 1 from cycle 10 share a phase: max = 17, + 1
    assert timing.row_parallel_cycles(64, 1, 12, 1, 0, prof, 3, 10) == 17 + 1
    # a drain that starts late sets the phase: 20 + 1 = 21 cycles, + 1
    assert timing.row_parallel_cycles(64, 1, 12, 1, 0, prof, 3, 20) == 21 + 1
    # the load outlasts both (128 words: 8 cycles): 8 + 1, then the reduction 6 + 2 + 1
    assert timing.row_parallel_cycles(64, 2, 1, 1, 3, prof, 0, 4) == 9 + 9
    assert timing.row_parallel_cycles(64, 2, 12, 1, 3, prof, 5, 29) == (5 + 26 + 1) + 9
    assert timing.row_parallel_cycles(64, 2, 12, 1, 3, prof, 5, 30) == (30 + 2 + 1) + 9
    assert timing.stream_length(np.array([0, 3, 0, 1])) == 6


def test_drain_delay_waits_for_each_result():
    prof = get_profile("sparse_pe_64")  # PD 2
    # one PE: pieces ending at entries 0 and 3 (n_p = 4), two samples, walk from cycle 5.
    # results j = 0, 1 (sample 0) are formed at cycles 5+0+2 = 7 and 5+3+2 = 10 and written
    # at the end of the next (8, 11), j = 2, 3 (sample 1) formed at 5+4+0+2 = 11 and
    # 5+4+3+2 = 14, written at 12 and 15; readable a cycle later, so
    # e >= 9 - 0, 12 - 1, 13 - 2, 16 - 3  ->  e = 13
    end, ptr = np.array([1, 0, 0, 1]), np.array([0, 4] + [4] * 63)
    assert timing.row_parallel_drain_delay(end, ptr, 2, 5, prof) == 13


def test_drain_is_right_aligned_so_a_long_single_piece_drains_last():
    prof = get_profile("sparse_pe_64")  # PD 2, results written a cycle after forming
    # PE 0: one piece of 6 entries (ends at entry 5); PE 1: three one-entry pieces; walk
    # from cycle 0, one sample. PE 0's result is written at the end of cycle 5+2+1 = 8,
    # PE 1's at 3, 4, 5. max q = 3, so PE 0 drains from offset 2, PE 1 from 0:
    # e >= 9 - 2, 4 - 0, 5 - 1, 6 - 2  ->  e = 7 (left-aligned, 9 - 0 = 9).
    end = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1])
    ptr = np.array([0, 6] + [9] * 63)
    assert timing.drain_offsets(np.array([1, 3] + [0] * 62))[:2].tolist() == [2, 0]
    assert timing.row_parallel_drain_delay(end, ptr, 1, 0, prof) == 7


def test_walk_delay_waits_for_the_word_each_entry_reads():
    prof = get_profile("sparse_pe_64")  # bcast_words 16: word w is sent in cycle w // 16
    # one PE, entries reading columns 0 and 40 of K = 48, two samples, two entries a sample:
    # sample 0: col 0 (sent 0, readable 2) at d + 0, col 40 (sent 2, readable 4) at d + 1;
    # sample 1: words 48, 88 (sent 3, 5; readable 5, 7) at d + 2, d + 3  ->  d = 4
    col, ptr = np.array([0, 40]), np.array([0, 2] + [2] * 63)
    assert timing.row_parallel_walk_delay(col, ptr, 48, 2, prof) == 4
    assert (
        timing.row_parallel_walk_delay(np.array([0]), np.array([0, 1] + [1] * 63), 1, 1, prof) == 2
    )
    assert timing.stream_length(np.array([0, 3, 0, 1])) == 6


@settings(max_examples=40, deadline=None)
@given(case=cases, pi=st.sampled_from([4, 16, 64]), m=st.integers(1, 4))
def test_broadcast_order_never_starts_the_walk_later_than_column_order(case, pi, m):
    prof = get_profile(f"sparse_pe_{pi}")
    case = {**case, "n": min(case["n"], 40)}  # sparse_pe_4's output buffers hold 64 words
    mask, w = rand_layer(**case, prof=prof)
    m = min(m, prof.act_buf_words // case["k"])
    op = compile_layer((mask, w), "forward", prof, m, "row").ops[0]
    a = op.arrays
    in_columns = op.bcast_pos.argsort()[a["bank_col"]]  # the entries' input columns
    chosen = timing.row_parallel_walk_delay(a["bank_col"], a["bank_ptr"], op.k, m, prof)
    plain = timing.row_parallel_walk_delay(in_columns, a["bank_ptr"], op.k, m, prof)
    assert chosen == op.walk_delay(prof) <= plain


def test_broadcast_order_sends_words_by_their_first_read():
    from hw.compiler.encode import broadcast_positions

    # PE 0 reads columns 5, 2 (entries 0, 1), PE 1 reads 7, 5 (entries 0, 1); columns 0,
    # 1, 3, 4, 6 are not read. First reads: 5 and 7 at entry 0, 2 at entry 1.
    pos = broadcast_positions(np.array([5, 2, 7, 5]), np.array([0, 2, 4]), 8)
    assert np.argsort(pos).tolist() == [5, 7, 2, 0, 1, 3, 4, 6]


def test_systolic_closed_form():
    prof = get_profile("systolic_8x8")
    assert timing.systolic_cycles(64, 64, 256, prof) == 8 * 8 * (16 + 8 + 256 - 2)
    assert timing.systolic_cycles(9, 1, 1, prof) == 2 * 1 * (16 + 8 + 1 - 2)


def test_resident_systolic_ops_fit_the_weight_sram_together():
    """``dataflow="resident"``: systolic forward / input-gradient ops only, all of a
    program's resident tiles within ``weight_sram_words``, kept through save and load."""
    prof = get_profile("systolic_2x2")  # 4 KiB of 16-bit words: 2048 words, 512 tiles
    ones = np.ones((20, 20), dtype=bool)
    prog = compile_network([ones], ["forward", "weight_grad"], prof, 3, "resident")
    assert [op.resident for op in prog.ops] == [True, False]
    with pytest.raises(
        ProgramFitError,
        match=r"resident weight tiles: 2400 words exceed weight_sram_words=2048",
    ):
        compile_network(
            [np.ones((40, 30), dtype=bool)], ["forward", "input_grad"], prof, 3, "resident"
        )
    with pytest.raises(ValueError, match=r"dataflow 'resident' needs a systolic profile"):
        compile_layer(np.ones((4, 4), dtype=bool), "forward", P16, 3, "resident")


def test_resident_flag_survives_save_and_load(tmp_path):
    prof = get_profile("systolic_2x2")
    prog = compile_layer(np.ones((5, 3), dtype=bool), "forward", prof, 2, "resident")
    loaded = Program.load(prog.save(tmp_path / "p.npz"))
    assert loaded == prog and loaded.ops[0].resident


def _bench_module(name: str):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_free_reduction_bound_splits_long_rows_and_drops_only_the_reduction():
    """bench/hw_utilisation.py --acting-ops: the cycles of the best row-parallel plan if
    split rows cost nothing. On a mask with one long row the bound splits it (fewer cycles
    than the compiled op, which pays a reduction or the long row); on a mask whose rows
    already balance it is the compiled op's cycles (no reduction to drop)."""
    bench = _bench_module("hw_utilisation")
    prof = get_profile("sparse_pe_4")
    long_row = np.zeros((4, 48), dtype=bool)
    long_row[0, :40] = True
    long_row[1:, :2] = True
    compiled = row_plan_cycles(long_row, balance_rows(long_row, 1, prof), 1, prof)
    free = bench.free_reduction_cycles(long_row, 1, 1, prof)
    # the long row in four pieces of 10 with the short rows beside them, no reduction phase
    plan = plan_for_threshold(long_row.sum(1), 4, 10)
    assert plan.split_adds == 3
    banks = encode_banks(long_row, np.zeros(long_row.shape, dtype=np.int64), plan)
    walk = timing.row_parallel_walk_delay(banks["bank_col"], banks["bank_ptr"], 48, 1, prof)
    drain = timing.row_parallel_drain_delay(banks["bank_end"], banks["bank_ptr"], 1, walk, prof)
    nmax, qmax = int(plan.pe_entries.max()), int(plan.pe_pieces.max())
    split = timing.row_parallel_cycles(48, 1, nmax, qmax, 0, prof, walk, drain)
    assert free == split < compiled
    even = np.zeros((8, 16), dtype=bool)
    for r in range(8):
        even[r, 2 * r : 2 * r + 3] = True
    assert bench.free_reduction_cycles(even, 1, 1, prof) == row_plan_cycles(
        even, balance_rows(even, 1, prof), 1, prof
    )


@settings(max_examples=200, deadline=None)
@given(
    row_nnz=st.lists(st.integers(0, 40), min_size=1, max_size=30),
    n_pe=st.integers(2, 9),
    threshold=st.integers(1, 30),
    blocks=st.sampled_from([1, 2, 3]),
)
def test_joined_rows_sit_last_on_a_pair_of_pes(row_nnz, n_pe, threshold, blocks):
    """plan_with_joins: the longest rows over the threshold (at most one per pair of PEs)
    are cut in two, first piece the last of PE 2i, second the last of PE 2i+1; every
    other row is one piece; nothing is left to the reduction unit."""
    from hw.compiler import plan_with_joins

    nnz = np.array(row_nnz, dtype=np.int64)
    plan = plan_with_joins(nnz, n_pe, threshold, blocks)
    pieces = plan.row_pieces
    assert len(pieces) <= len(nnz) and set(plan.row.tolist()) == set(range(len(nnz)))
    assert plan.split_adds == 0 and pieces.max() <= 2
    for r in range(len(nnz)):  # each row's pieces cover its non-zeros in order
        idx = np.flatnonzero(plan.row == r)
        idx = idx[np.argsort(plan.part[idx])]
        assert plan.begin[idx[0]] == 0 and plan.end[idx[-1]] == nnz[r]
        assert np.array_equal(plan.begin[idx[1:]], plan.end[idx[:-1]])
    want = [r for r in np.lexsort((np.arange(len(nnz)), -nnz)) if nnz[r] > threshold]
    want = [int(r) for r in want if nnz[r] >= 2][: n_pe // 2]
    second = np.flatnonzero(plan.joined)
    assert sorted(plan.row[second].tolist()) == sorted(want)
    ptr = np.concatenate(([0], np.cumsum(plan.pe_pieces)))
    for j, s in enumerate(sorted(second, key=lambda s: plan.pe[s])):
        p = int(plan.pe[s])
        assert p == 2 * j + 1 and s == ptr[p + 1] - 1  # pair j, the odd PE's last piece
        first = ptr[p] - 1
        assert plan.pe[first] == p - 1 and plan.row[first] == plan.row[s]
        assert (plan.part[first], plan.part[s]) == (0, 1)
    assert np.array_equal(np.sort(plan.pe), plan.pe)  # PE-major
