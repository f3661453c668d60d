"""pyverilator co-simulation: the verilated RTL replays compiled programs exactly as ``sim``."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import rtl.cosim as cosim
from hw.compiler import compile_network
from hw.export import op_load
from hw.profiles import get_profile
from mast.errors import UserError
from rtl.cosim import CosimMismatch, build_model, check_against_sim, replay
from sim import simulate

ROOT = Path(__file__).resolve().parents[1]
PROFILE = get_profile("sparse_pe_4")
KERNELS = ("forward", "input_grad", "weight_grad")

pytestmark = pytest.mark.xdist_group("pyverilator_sparse_pe_4")


@pytest.fixture(scope="module")
def model():
    return build_model(PROFILE, build_root=ROOT / "build" / "pyverilator")


def random_case(
    seed: int,
    profile=PROFILE,
    dataflow: str = "sample",
    kernels=KERNELS,
    max_dim: int = PROFILE.act_buf_words,
):
    """A random layer with ``K + N <= max_dim`` (fits ``sparse_pe_4``), and its inputs."""
    rng = np.random.default_rng(seed)
    p = profile
    n = int(rng.integers(1, max_dim // 2 + 1))
    k = int(rng.integers(1, max_dim - n + 1))
    m = int(rng.integers(1, 3 * p.n_pe + 2))
    if dataflow == "row":
        # Batch-1..N inference; every PE holds all K*M inputs.
        m = int(rng.integers(1, 3))
        k = min(k, p.act_buf_words // m)
    sparsity = float(rng.choice([0.0, 0.5, 0.8, 0.9, 0.98]))
    mask = rng.random((n, k)) >= sparsity
    w = np.where(mask, rng.integers(p.operand_min, p.operand_max + 1, (n, k)), 0)
    # Large operands drive the accumulators into saturation on some seeds.
    scale = int(rng.choice([1 << p.frac_bits, p.operand_max]))
    inputs = {
        "layer": {
            "x": rng.integers(-scale, scale + 1, (k, m)),
            "dy": rng.integers(-scale, scale + 1, (n, m)),
        }
    }
    program = compile_network([w], kernels, p, m, dataflow, names=["layer"])
    return program, inputs


@pytest.mark.parametrize("seed", range(12))
def test_replay_equals_sim(model, seed):
    program, inputs = random_case(seed)
    got = check_against_sim(program, inputs, model=model)
    ref = simulate(program, inputs)
    assert [o.name for o in got.ops] == [o.name for o in ref.ops]
    assert [o.cycles for o in got.ops] == [o.cycles for o in ref.ops]
    for g, r in zip(got.ops, ref.ops, strict=True):
        np.testing.assert_array_equal(g.output, r.output, err_msg=f"seed {seed} op {g.name}")
        assert g.host_cycles > 0
    assert got.cycles == ref.cycles


def test_sddmm_chunks_replay(model):
    """A mask with more non-zeros than grad_buf_words is cut into several SDDMM ops."""
    p = PROFILE
    rng = np.random.default_rng(7)
    n, k, m = 24, 24, 5
    mask = rng.random((n, k)) < 0.6
    assert mask.sum() > p.grad_buf_words
    program = compile_network([mask], ["weight_grad"], p, m, names=["big"])
    assert len(program.ops) >= 2
    inputs = {
        "big": {"x": rng.integers(-2000, 2000, (k, m)), "dy": rng.integers(-2000, 2000, (n, m))}
    }
    got = check_against_sim(program, inputs, model=model)
    assert len(got.ops) == len(program.ops)


def test_mismatch_names_op_word_and_values(model, monkeypatch):
    program, inputs = random_case(3)
    real_replay = cosim.replay

    def corrupted(*args, **kwargs):
        res = real_replay(*args, **kwargs)
        res.ops[0].output.reshape(-1)[0] += 1
        return res

    monkeypatch.setattr(cosim, "replay", corrupted)
    want = simulate(program, inputs).ops[0].output.reshape(-1)[0]
    name = program.ops[0].name
    first = "[0, 0]" if program.ops[0].kernel == "spmm" else "[0]"
    msg = re.escape(f"op '{name}': output{first} RTL {want + 1} != sim {want} (1 of ")
    with pytest.raises(CosimMismatch, match=msg + r"\d+ words differ\)"):
        check_against_sim(program, inputs, model=model)


def test_cycle_mismatch_message(model, monkeypatch):
    program, inputs = random_case(4)
    real_replay = cosim.replay

    def slow(*args, **kwargs):
        res = real_replay(*args, **kwargs)
        o = res.ops[-1]
        ops = (*res.ops[:-1], cosim.OpCosim(o.name, o.output, o.cycles + 2, o.host_cycles))
        return cosim.CosimResult(ops, res.seconds)

    monkeypatch.setattr(cosim, "replay", slow)
    ref = simulate(program, inputs).ops[-1]
    with pytest.raises(CosimMismatch, match=rf"RTL {ref.cycles + 2} cycles != sim {ref.cycles}"):
        check_against_sim(program, inputs, model=model)


def test_cached_build_is_reused(model):
    again = build_model(PROFILE, build_root=ROOT / "build" / "pyverilator")
    assert again.build_dir == model.build_dir
    assert again.build_s == 0.0
    assert model.build_dir.name.startswith("mast_accel_sparse_pe_4-")


@pytest.mark.parametrize("seed", range(6))
def test_row_parallel_replay_equals_sim(model, seed):
    program, inputs = random_case(100 + seed, dataflow="row", kernels=("forward", "input_grad"))
    assert {op.dataflow for op in program.ops} == {"row"}
    got = check_against_sim(program, inputs, model=model)
    assert got.cycles == simulate(program, inputs).cycles


def test_systolic_replay_equals_sim():
    prof = get_profile("systolic_2x2")
    sys_model = build_model(prof, build_root=ROOT / "build" / "pyverilator")
    for seed in range(3):
        program, inputs = random_case(
            200 + seed, profile=prof, max_dim=24, kernels=(*KERNELS, "dense_grad")
        )
        assert {op.kernel for op in program.ops} == {"gemm"}
        got = check_against_sim(program, inputs, model=sys_model)
        assert got.cycles == simulate(program, inputs).cycles


def test_op_of_other_kind_is_refused():
    mask = np.ones((4, 4), dtype=bool)
    program = compile_network([mask], ["forward"], "systolic_2x2", 1, names=["g"])
    with pytest.raises(
        UserError,
        match=r"op 'g:forward': the RTL of profile 'sparse_pe_4' does "
        r"not run gemm ops with the 'systolic' dataflow \(RTL op kinds: "
        r"sp_spmm, sddmm, rp_spmm\)",
    ):
        op_load(program.ops[0], PROFILE)


def test_op_that_does_not_fit_is_refused():
    from hw.fit import ProgramFitError

    prog = compile_network([np.ones((8, 8), bool)], ["forward"], "sparse_pe_16", 1, "sample")
    with pytest.raises(ProgramFitError) as e:
        op_load(prog.ops[0], replace(PROFILE, act_buf_words=4))
    assert (
        str(e.value) == "op 'layer:forward': K=8 exceeds act_buf_words=4 of profile 'sparse_pe_4'"
    )


def test_model_of_other_profile_is_refused(model):
    other = compile_network([np.ones((2, 2), bool)], ["forward"], "sparse_pe_16", 1, "sample")
    with pytest.raises(
        ValueError, match="model of profile 'sparse_pe_4' cannot run a program for 'sparse_pe_16'"
    ):
        replay(other, {"layer0": {"x": np.zeros((2, 1), int)}}, model=model)


def test_cli_replays_saved_program(model, tmp_path, capsys):
    program, _ = random_case(9)
    path = program.save(tmp_path / "program.npz")
    assert cosim.main([str(path), "--seed", "3"]) == 0
    out = capsys.readouterr().out
    ref = simulate(program, cosim.random_inputs(program, 3))
    assert f"{len(program.ops)} ops, {ref.cycles} cycles, outputs and cycles equal sim" in out
    missing = tmp_path / "missing.npz"
    assert cosim.main([str(missing)]) == 2
    err = capsys.readouterr().err
    assert err == f"python -m rtl.cosim: error: program '{missing}' does not exist\n"


@pytest.mark.slow
def test_no_op_uses_a_read_that_collides_with_a_write():
    """Synthesis leaves a synchronous read of a word written in the same cycle undefined
    (``hw.rtl.host.SYNTH_READ_COLLISIONS``). Built with such reads returning the new word
    instead of the old, the RTL still matches ``sim`` on every kernel and dataflow, so no
    op uses one (a used collision would change an output)."""
    new = build_model(PROFILE, build_root=ROOT / "build" / "pyverilator", collisions="new")
    assert (
        new.build_dir.name != build_model(PROFILE, build_root=new.build_dir.parent).build_dir.name
    )
    for seed in range(4):
        check_against_sim(*random_case(300 + seed), model=new)
        row = random_case(310 + seed, dataflow="row", kernels=("forward", "input_grad"))
        check_against_sim(*row, model=new)
    prof = get_profile("systolic_2x2")
    sys_new = build_model(prof, build_root=ROOT / "build" / "pyverilator", collisions="new")
    for seed in range(2):
        case = random_case(320 + seed, profile=prof, max_dim=24, kernels=(*KERNELS, "dense_grad"))
        check_against_sim(*case, model=sys_new)


def test_collision_mode_returns_the_new_word_on_a_collision():
    """The mode the test above relies on: under ``read_collisions("new")`` a read of the
    word being written returns the new word; by default, the old one."""
    from amaranth.hdl import Module
    from amaranth.lib import memory
    from amaranth.sim import Simulator

    from hw.rtl.host import collision_ports, read_collisions

    def run(mode: str) -> int:
        with read_collisions(mode):
            m = Module()
            m.submodules.mem = mem = memory.Memory(shape=8, depth=4, init=[5, 0, 0, 0])
            wr = mem.write_port()
            rd = mem.read_port(transparent_for=collision_ports(wr))
        seen = []

        async def bench(ctx):
            ctx.set(wr.addr, 0)
            ctx.set(rd.addr, 0)
            ctx.set(wr.data, 9)
            ctx.set(wr.en, 1)
            await ctx.tick()
            seen.append(ctx.get(rd.data))

        sim = Simulator(m)
        sim.add_clock(1e-6)
        sim.add_testbench(bench)
        sim.run()
        return seen[0]

    assert (run("old"), run("new")) == (5, 9)
    with pytest.raises(ValueError, match=r"read collisions 'any': expected one of old, new"):
        with read_collisions("any"):
            pass
