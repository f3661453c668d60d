"""``mast-hw pnr --floorplan``: every PE's block RAMs pinned side by side (hw.floorplan)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hw.floorplan import bel_name, cluster, dsp_bel_name, pe_site, plan, plan_dsps, write_floorplan
from hw.parts import get_part
from hw.pnr import run_nextpnr
from mast.errors import UserError

P85 = get_part("LFE5U-85F")


def sixteen_pe_brams() -> list[str]:
    """The block-RAM instance names of the 16-PE array's synthesised netlist (Yosys)."""
    cells = []
    for i in range(16):
        cells += [f"array.pe{i}.act.0.{j}" for j in range(2)]
        cells += [f"array.pe{i}.out.{j}.0" for j in range(2)]
        cells += [f"array.pe{i}.split.0.0", f"array.act{i}.0.0", f"array.out{i}.0.0"]
        cells += [f"ctrl.weights.weight_val{i}.0.0", f"ctrl.weights.weight_col{i}.0.0"]
    cells += [f"array.grad.grad.0.{j}" for j in range(4)]
    cells += ["array.grad.dw.0.0", "array.grad.dw.0.1"]
    tables = ("red_ptr", "red_piece", "piece_pe")
    cells += [f"array.reduce.{t}.{j}.0" for t in tables for j in (0, 1)]
    return cells


def site(bel: str) -> tuple[int, int]:
    x, y, _ = bel.split("/")
    return int(y[1:]), P85.bram_columns.index(int(x[1:]))


def test_cluster_is_the_first_indexed_component_of_the_instance_path():
    assert cluster("array.pe3.act.0.1") == 3
    assert cluster("array.out12.0.0") == 12
    assert cluster("ctrl.weights.weight_col7.0.0") == 7
    assert cluster("array.grad.grad.0.2") is None  # bare numbers are Yosys' block indices
    assert cluster("array.reduce.red_ptr.1.0") is None


def test_each_pe_gets_consecutive_sites_of_one_row_and_shared_memories_the_middle():
    cells = sixteen_pe_brams()
    pins = plan(cells, P85, 16)
    assert sorted(pins) == sorted(cells) and len(set(pins.values())) == len(cells) == 156
    for i in range(16):
        mine = sorted(site(b) for c, b in pins.items() if cluster(c) == i)
        rows = {r for r, _ in mine}
        cols = [k for _, k in mine]
        row, band = pe_site(i, 4, 4)
        assert len(mine) == 9 and rows == {P85.bram_rows[row]}
        assert cols == list(range(cols[0], cols[0] + 9))  # side by side
        assert 13 * band <= cols[0] and cols[-1] < 13 * (band + 1)  # in the PE's band
        # the weight banks at the edge the band shares with its group's other band
        weights = [site(b)[1] for c, b in pins.items() if cluster(c) == i and c.startswith("ctrl")]
        edge = 13 * (band + 1) - 1 if band % 2 == 0 else 13 * band
        assert edge in weights and max(abs(k - edge) for k in weights) == 1
    shared = [site(b) for c, b in pins.items() if cluster(c) is None]
    # the two rows nearest the die's middle, near its middle column (X62)
    assert {r for r, _ in shared} == {46, 70}
    taken = {site(b) for b in pins.values()}
    free = [(r, k) for r in (46, 70) for k in range(52) if (r, k) not in taken]
    dist = [abs(P85.bram_columns[k] - 62) for _, k in shared]
    assert max(dist) <= min(abs(P85.bram_columns[k] - 62) for _, k in free)


def test_each_group_of_four_pes_is_a_block_of_two_rows_and_two_bands():
    """16 PEs on four rows of four bands: group g (PEs 4g..4g+3) takes rows 2(g // 2) and
    2(g // 2) + 1 and bands 2(g % 2) and 2(g % 2) + 1, a quarter of the die each."""
    for g in range(4):
        sites = {pe_site(i, 4, 4) for i in range(4 * g, 4 * g + 4)}
        assert sites == {
            (r, b) for r in (2 * (g // 2), 2 * (g // 2) + 1) for b in (2 * (g % 2), 2 * (g % 2) + 1)
        }
    assert {pe_site(i, 4, 4) for i in range(16)} == {(r, b) for r in range(4) for b in range(4)}
    # rows that do not pair up: the PEs fill the rows in order
    assert [pe_site(i, 3, 2) for i in range(6)] == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]


def test_bel_names_follow_nextpnr():
    assert bel_name(P85, 22, 0) == "X4/Y22/EBR0"
    assert bel_name(P85, 70, 29) == "X71/Y70/EBR1"
    assert bel_name(P85, 82, 51) == "X120/Y82/EBR3"


def test_floorplan_errors_are_one_line():
    no_map = r"^--floorplan: no block-RAM site map for part "
    with pytest.raises(UserError, match=no_map + r"'LFE5U-25F'; parts with one: LFE5U-85F, "):
        plan(["array.pe0.act.0.0"], get_part("LFE5U-25F"), 4)
    with pytest.raises(UserError, match=no_map + r"'iCE40HX8K'"):
        plan([], get_part("iCE40HX8K"), 4)
    with pytest.raises(UserError, match=r"^--floorplan: 209 block RAMs do not fit the 208 sites"):
        plan([f"array.pe0.m{i}.0.0" for i in range(209)], P85, 16)
    # 14 block RAMs of one PE exceed a band of 13 sites (16 PEs: 4 a row)
    with pytest.raises(UserError, match=r"a PE's 14 block RAMs exceed its band of 13 sites"):
        plan([f"array.pe0.m.{j}.0" for j in range(14)], P85, 16)


def test_write_floorplan_pins_the_top_modules_block_rams_only(tmp_path):
    design = {
        "modules": {
            "lib": {"cells": {"array.pe0.act.0.0": {"type": "DP16KD", "attributes": {}}}},
            "top": {
                "attributes": {"top": "00000000000000000000000000000001"},
                "cells": {
                    "array.pe0.act.0.0": {"type": "DP16KD", "attributes": {"src": "x"}},
                    "array.pe1.act.0.0": {"type": "DP16KD", "attributes": {}},
                    "array.pe0.acc_LUT4": {"type": "LUT4", "attributes": {}},
                },
            },
        }
    }
    src, dst = tmp_path / "netlist.json", tmp_path / "pinned.json"
    src.write_text(json.dumps(design))
    assert write_floorplan(src, dst, P85, 16) == 2
    out = json.loads(dst.read_text())
    top = out["modules"]["top"]["cells"]
    # (PE 0 ends its band and PE 1, the next band of its group's row, starts its own)
    assert top["array.pe0.act.0.0"]["attributes"] == {"src": "x", "BEL": "X31/Y22/EBR0"}
    assert top["array.pe1.act.0.0"]["attributes"]["BEL"] == "X33/Y22/EBR1"
    assert "BEL" not in top["array.pe0.acc_LUT4"]["attributes"]
    assert out["modules"]["lib"] == design["modules"]["lib"]
    assert json.loads(src.read_text()) == design  # the synthesised netlist is left as it was


def _bind_every_site(tmp_path, cell_type: str, clock: str, bels: list[str]) -> str:
    """nextpnr's log of a placement that binds one ``cell_type`` cell to each of ``bels``
    (an unknown BEL is an error: 'No Bel named ...')."""
    cells = {
        f"cell_{n}": {
            "type": cell_type,
            "parameters": {},
            "attributes": {"BEL": bel},
            "port_directions": {clock: "input"},
            "connections": {clock: [2]},
        }
        for n, bel in enumerate(bels)
    }
    top = {
        "attributes": {"top": "00000000000000000000000000000001"},
        "ports": {"clk": {"direction": "input", "bits": [2]}},
        "cells": cells,
        "netnames": {"clk": {"hide_name": 0, "bits": [2], "attributes": {}}},
    }
    Path(tmp_path / "sites.json").write_text(json.dumps({"modules": {"top": top}}))
    args = [*P85.nextpnr, "--json", "sites.json", "--no-route"]
    code, log = run_nextpnr("ecp5", args, cwd=tmp_path)
    assert code == 0, log[-2000:]
    return log


def test_site_map_names_every_block_ram_site_of_the_part(tmp_path):
    """nextpnr binds a block RAM to each of the 208 sites the table names."""
    bels = [bel_name(P85, r, k) for r in P85.bram_rows for k in range(len(P85.bram_columns))]
    assert len(bels) == P85.bram == 208
    assert "DP16KD:     208/    208   100%" in _bind_every_site(tmp_path, "DP16KD", "CLKA", bels)


def test_each_pes_multiplier_sits_in_the_nearest_multiplier_row_above_its_memories():
    pins = plan(sixteen_pe_brams(), P85, 16)
    mults = [f"array.pe{i}.prod1_MULT18X18D_P9" for i in range(16)]
    others = ["ctrl.rp_km1_TRELLIS_FF_Q_DI_MULT18X18D_P0", "array.reduce.red_s5_7_MULT18X18D_P8"]
    dsp = plan_dsps(mults + others, P85, 16, pins)
    assert sorted(dsp) == sorted(mults) and len(set(dsp.values())) == 16  # the PEs' only
    for i in range(16):
        x, y, _ = dsp[mults[i]].split("/")
        mine = [site(b) for c, b in pins.items() if cluster(c) == i]
        row = mine[0][0]
        # EBR rows 22, 46, 70, 82 -> multiplier rows 10, 34, 58, 58 (ties: the upper one)
        assert int(y[1:]) == {22: 10, 46: 34, 70: 58, 82: 58}[row]
        xs = [P85.bram_columns[k] for _, k in mine]
        assert min(xs) - 4 <= int(x[1:]) <= max(xs) + 4  # above its memories
    assert plan_dsps(mults, get_part("LFE5U-25F"), 16, pins) == {}  # no site map


def test_dsp_site_map_names_every_multiplier_site_of_the_part(tmp_path):
    """nextpnr binds a multiplier to each of the 156 sites the table names."""
    bels = [dsp_bel_name(P85, r, k) for r in P85.dsp_rows for k in range(len(P85.dsp_columns))]
    assert len(bels) == P85.dsp == 156
    log = _bind_every_site(tmp_path, "MULT18X18D", "CLK0", bels)
    assert "MULT18X18D:     156/    156   100%" in log


def test_place_and_route_routes_the_pinned_copy_and_names_the_flow(monkeypatch, tmp_path):
    """``place_and_route(floorplan=True)`` hands nextpnr the netlist with the pins (Yosys
    and nextpnr stand in: the wiring between them is what is checked here)."""
    from hw import pnr
    from hw.profiles import get_profile
    from hw.synth import Resources, SynthResult

    netlist = {
        "modules": {
            "top": {
                "attributes": {"top": "00000000000000000000000000000001"},
                "cells": {f"array.pe{i}.act.0.0": {"type": "DP16KD"} for i in range(4)},
            }
        }
    }

    def fake_synth(design, top, target, work_dir, *, netlist_json, **kw):
        (Path(work_dir) / netlist_json).write_text(json.dumps(netlist))
        return SynthResult("p", target, top, Resources(1, 1, 0, 4, {}), 1.0, str(work_dir))

    seen = {}

    def fake_nextpnr(family, args, *, cwd, timeout_s=None):
        seen["json"] = args[args.index("--json") + 1]
        return 1, "ERROR: stand-in\n"

    monkeypatch.setattr(pnr, "synthesize", fake_synth)
    monkeypatch.setattr(pnr, "run_nextpnr", fake_nextpnr)
    r = pnr.place_and_route(get_profile("sparse_pe_4"), P85, tmp_path, floorplan=True)
    assert seen["json"] == pnr.FLOORPLAN_NETLIST
    pinned = json.loads((tmp_path / pnr.FLOORPLAN_NETLIST).read_text())
    bels = [c["attributes"]["BEL"] for c in pinned["modules"]["top"]["cells"].values()]
    assert bels == [bel_name(P85, row, 25) for row in P85.bram_rows]  # one PE a row
    assert r.flow.endswith(", block RAMs floorplanned by PE") and not r.routed
    # without the option the synthesised netlist itself is routed
    pnr.place_and_route(get_profile("sparse_pe_4"), P85, tmp_path, floorplan=False)
    assert seen["json"] == "netlist.json"
