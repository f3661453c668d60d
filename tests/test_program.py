"""Program format: save/load round trip, memory image layouts, validation."""

import dataclasses
import json

import numpy as np
import pytest

from hw.compiler import compile_layer, compile_network
from hw.fit import piece_word_fields
from hw.profiles import HwProfile, get_profile
from hw.program import Op, Program, piece_words
from sim import simulate

P4, P16 = get_profile("sparse_pe_4"), get_profile("sparse_pe_16")


def mixed_program(prof):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(12, 10)) * (rng.random((12, 10)) < 0.3)
    a[4] = 0
    b = rng.normal(size=(6, 12)) * (rng.random((6, 12)) < 0.5)
    kernels = ["forward", "input_grad", "weight_grad", "dense_grad"]
    return compile_network([a, b], kernels, prof, 3, names=["agent.fc1", "agent.fc2"])


@pytest.mark.parametrize(
    "prof",
    [
        P4,
        P16,
        get_profile("systolic_4x4"),
        HwProfile(
            name="custom",
            kind="sparse",
            n_pe=8,
            grad_buf_words=5,
            energy_overrides=(("mac_pj", 0.5),),
        ),
    ],
)
def test_save_load_round_trip_is_equal(tmp_path, prof):
    prog = mixed_program(prof)
    path = prog.save(tmp_path / "sub" / "prog.npz")
    back = Program.load(path)
    assert back == prog
    assert back.profile == prof
    assert [o.dataflow for o in back.ops] == [o.dataflow for o in prog.ops]
    x = {
        "agent.fc1": {"x": np.ones((10, 3)), "dy": np.ones((12, 3))},
        "agent.fc2": {"x": np.ones((12, 3)), "dy": np.ones((6, 3))},
    }
    assert simulate(back, x).cycles == simulate(prog, x).cycles


def test_program_embeds_profile_json(tmp_path):
    prog = mixed_program(P16)
    with np.load(prog.save(tmp_path / "p.npz")) as z:
        meta = json.loads(bytes(z["meta"]).decode())
    assert meta["profile"] == json.loads(P16.to_json())
    assert meta["ops"][0]["name"] == "agent.fc1:forward"


def test_programs_differ_when_a_value_differs():
    a = compile_layer(np.eye(3) * 0.5, "forward", P4, 1, "sample")
    b = compile_layer(np.eye(3) * 0.25, "forward", P4, 1, "sample")
    assert a != b and a == compile_layer(np.eye(3) * 0.5, "forward", P4, 1, "sample")


def test_sample_parallel_images_and_act_sram_layout():
    w = np.array([[0, 3, 0], [0, 0, 0], [5, 0, 7]])
    (op,) = compile_layer(w, "forward", P4, 6, "sample").ops
    img = op.memory_images(P4, x=np.arange(18).reshape(3, 6))
    assert img["weight_val"].tolist() == [3, 0, 5, 7]
    assert img["weight_col"].tolist() == [1, 0, 0, 2]
    assert img["weight_last"].tolist() == [1, 1, 0, 1]
    assert img["weight_token"].tolist() == [0, 1, 0, 0]
    depth = P4.act_sram_words // 4
    act = img["act_sram"].reshape(4, depth)
    x = np.arange(18).reshape(3, 6)
    for m in range(6):
        for k in range(3):
            assert act[m % 4, (m // 4) * 3 + k] == x[k, m]


def test_sddmm_act_sram_holds_x_then_dy():
    (op,) = compile_layer(np.ones((2, 3), dtype=bool), "weight_grad", P4, 5).ops
    x, dy = np.arange(15).reshape(3, 5), 100 + np.arange(10).reshape(2, 5)
    act = op.memory_images(P4, x=x, dy=dy)["act_sram"].reshape(4, -1)
    assert act[1, 0:5].tolist() == [1, 6, 11, 101, 106]
    assert act[0, 5:10].tolist() == [4, 9, 14, 104, 109]


def test_row_parallel_images_bank_layout_and_broadcast_banks():
    rng = np.random.default_rng(1)
    w = rng.integers(1, 9, (5, 7)) * (rng.random((5, 7)) < 0.6)
    (op,) = compile_layer(w, "forward", P4, 3, "row").ops
    img = op.memory_images(P4, x=np.arange(21).reshape(7, 3))
    depth = P4.weight_bank_words
    ptr = op.arrays["bank_ptr"]
    for p in range(4):
        n = ptr[p + 1] - ptr[p]
        assert np.array_equal(
            img["bank_val"][p * depth : p * depth + n], op.arrays["bank_val"][ptr[p] : ptr[p + 1]]
        )
        assert not img["bank_val"][p * depth + n : (p + 1) * depth].any()
    act = img["act_sram"].reshape(4, -1)
    x = np.arange(21).reshape(7, 3)
    # broadcast order i = m*K + bcast_pos[k]: word i holds column argsort(bcast_pos)[i % K]
    column = np.argsort(op.bcast_pos)
    assert op.bcast_pos.tolist() != list(range(7))  # (this op's order is not column order)
    words = [x[column[i % 7], i // 7] for i in range(21)]
    banks = [i % 4 for i in range(21)]
    assert [act[i % 4, i // 4] for i in range(21)] == words
    for i in range(0, 21 - P4.bcast_words + 1):
        assert len(set(banks[i : i + P4.bcast_words])) == P4.bcast_words


def test_row_parallel_piece_words_pack_pe_slot_and_pe_count():
    # a row with more non-zeros than a PE takes is split, so pieces sit on several PEs
    w = np.zeros((6, 24), dtype=int)
    w[0] = np.arange(1, 25)
    w[1:, :2] = 3
    (op,) = compile_layer(w, "forward", P4, 2, "row").ops
    a = op.arrays
    words = op.memory_images(P4)["piece_pe"]
    fields = dict(piece_word_fields(P4))
    assert list(fields) == ["pe", "slot", "q"]
    pe = words & ((1 << fields["pe"]) - 1)
    slot = (words >> fields["pe"]) & ((1 << fields["slot"]) - 1)
    q = words >> (fields["pe"] + fields["slot"])
    assert np.array_equal(pe, a["piece_pe"])
    assert len(set(pe.tolist())) > 1 and len(set(np.diff(a["piece_ptr"]).tolist())) > 1
    for g in range(len(words)):
        lo, hi = a["piece_ptr"][pe[g]], a["piece_ptr"][pe[g] + 1]
        assert lo + slot[g] == g and q[g] == hi - lo
    narrow = dataclasses.replace(P4, out_buf_words=1)
    with pytest.raises(ValueError, match="piece table: a piece's slot"):
        piece_words(narrow, a)


def test_systolic_images():
    prof = get_profile("systolic_2x2")
    w = np.arange(1, 7).reshape(2, 3)
    (op,) = compile_layer(w, "forward", prof, 2).ops
    tiles = op.memory_images(prof)["weight_tiles"]
    # folds (nf=0, kf=0), (nf=0, kf=1); address (f*R + i)*C + j = W[j, kf*R + i]
    assert tiles.tolist() == [1, 4, 2, 5, 3, 6, 0, 0]


def test_op_validation_messages():
    with pytest.raises(ValueError, match=r"unknown kernel 'conv'; known: spmm, sddmm, gemm"):
        Op(
            name="a",
            layer="a",
            purpose="forward",
            kernel="conv",
            dataflow="sample",
            transpose=False,
            n=1,
            k=1,
            m=1,
            arrays={},
        )
    with pytest.raises(ValueError, match=r"op 'a': missing array 'stream_val'"):
        Op(
            name="a",
            layer="a",
            purpose="forward",
            kernel="spmm",
            dataflow="sample",
            transpose=False,
            n=1,
            k=1,
            m=1,
            arrays={},
        )
    prog = compile_layer(np.eye(2), "forward", P4, 1)
    with pytest.raises(ValueError, match=r"duplicate op name 'layer:forward'"):
        Program(P4, prog.ops + prog.ops)
    with pytest.raises(KeyError, match=r"unknown op 'x'; known: layer:forward"):
        prog.op("x")


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"program file '.*nope.npz' does not exist"):
        Program.load(tmp_path / "nope.npz")


def test_systolic_weight_grad_images_come_from_dy_and_x_transposed():
    prof = get_profile("systolic_2x2")
    (op,) = compile_layer(np.ones((3, 2)), "weight_grad", prof, 4).ops
    x, dy = np.arange(8).reshape(2, 4), np.arange(12).reshape(3, 4)
    img = op.memory_images(prof, x=x, dy=dy)
    assert img["act_sram"].tolist() == x.T.reshape(-1).tolist()
    assert img["weight_tiles"][:4].tolist() == [dy[0, 0], dy[1, 0], dy[0, 1], dy[1, 1]]


def test_sample_tiles_round_trip_and_name_a_tile_outside_the_layer(tmp_path):
    rng = np.random.default_rng(3)
    w = rng.integers(-9, 10, (5, 30)) * (rng.random((5, 30)) < 0.5)
    prog = compile_layer(w, "forward", P4, 7, "tiled")  # 7 x 30 words over a 64-word buffer
    assert [(o.sample0, o.samples, o.layer_m) for o in prog.ops] == [
        (0, 2, 7),
        (2, 2, 7),
        (4, 2, 7),
        (6, 1, 7),
    ]
    back = Program.load(prog.save(tmp_path / "tiles.npz"))
    assert back == prog
    assert [(o.sample0, o.layer_m) for o in back.ops] == [(o.sample0, o.layer_m) for o in prog.ops]
    x = {"layer": {"x": rng.integers(-9, 10, (30, 7))}}
    assert simulate(back, x).cycles == simulate(prog, x).cycles
    last = prog.ops[-1]  # one sample, row-parallel
    with pytest.raises(ValueError, match=r"samples 6\.\.7 lie within the layer's 0\.\.6"):
        dataclasses.replace(last, m=2)
