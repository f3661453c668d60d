"""Router2's congestion heatmaps, summarised by RTL signal (``hw.congestion``), and how a
route that stops unconverged is reported."""

from __future__ import annotations

import pytest

from hw.congestion import (
    CongestionGroup,
    congestion_groups,
    keep_last_heatmaps,
    last_overuse,
    signal_group,
)
from hw.parts import get_part
from hw.pnr import TIMED_OUT, PnrResult, run_nextpnr, to_text
from hw.synth import Resources


@pytest.mark.parametrize(
    ("net", "signal"),
    [
        ("array.act_data12", "array.act_data*"),
        ("array.pe5.dy_addr_r_LUT4_B_3_Z", "array.pe*.dy_addr_r"),
        ("host__wdata[6]$TRELLIS_IO_IN", "host__wdata"),
        ("array.b_data_TRELLIS_FF_Q_11_DI_LUT4_Z_D[1]", "array.b_data"),
        ("array.pe3.act.0.1_DIA7", "array.pe*.act.*.*"),
        ("ctrl.weights.weight_last0.0.11_DO[0]", "ctrl.weights.weight_last*.*.*"),
        ("array.ctl[24]", "array.ctl"),
        ("rst$TRELLIS_IO_IN", "rst"),
    ],
)
def test_nets_fold_into_their_rtl_signal(net, signal):
    assert signal_group(net) == signal


def test_groups_rank_signals_by_overused_wires():
    csv = "\n".join(
        [
            "array.act_data0[3],5",
            "array.act_data7[0],4",
            "array.ctl[24],6",
            "host__addr[2]$TRELLIS_IO_IN,1",
            "array.pe2.rp_off_LUT4_Z,4",
            "not,a,count",
            "array.pe9.rp_off[1],0",
        ]
    )
    groups = congestion_groups(csv, top=3)
    assert [g.signal for g in groups] == ["array.act_data*", "array.ctl", "array.pe*.rp_off"]
    assert [g.overuse for g in groups] == [9, 6, 4]
    assert [g.nets for g in groups] == [2, 1, 2]
    assert groups[0].share == pytest.approx(9 / 20)
    assert congestion_groups("a,0\n") == ()


def test_only_the_last_iterations_heatmaps_are_kept(tmp_path):
    for it in (1, 2, 10):
        for kind in ("congestion_by_net", "congestion_by_coordinate", "utilisation_by_wiretype"):
            (tmp_path / f"route_{kind}_{it}.csv").write_text(f"x,{it}\n")
    (tmp_path / "notes.txt").write_text("kept")
    last = keep_last_heatmaps(tmp_path)
    assert last == tmp_path / "route_congestion_by_net_10.csv"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "notes.txt",
        "route_congestion_by_coordinate_10.csv",
        "route_congestion_by_net_10.csv",
        "route_utilisation_by_wiretype_10.csv",
    ]
    assert keep_last_heatmaps(tmp_path / "missing") is None


def test_last_router2_iteration_is_read_from_the_log():
    log = (
        "Info:     iter=1 wires=523149 overused=40626 overuse=49924 archfail=NA\n"
        "Info:     iter=13 wires=589424 overused=4521 overuse=4568 archfail=NA\n"
        "Info: Program finished normally.\n"
    )
    assert last_overuse(log) == (13, 4521)
    assert last_overuse("Info: router1\n") is None


def _unrouted(**kw) -> PnrResult:
    return PnrResult(
        profile="sparse_pe_16_ecp5", part="LFE5U-85F", package="CABGA381", speed="6",
        top="top", design_hash="h", target_mhz=100.0, seed=1, fmax_mhz={}, routed=False,
        utilisation={}, critical_from="", critical_to="", critical_ns=0.0,
        synthesis=Resources(1.0, 1.0, 0.0, 0.0, {}), tools={}, synth_s=1.0, pnr_s=2.0, date="",
        error="ERROR: nextpnr-ecp5 did not finish within 60 s", flow="router2", **kw,
    )  # fmt: skip


def test_an_unconverged_route_names_its_congested_signals():
    hot = (CongestionGroup("array.act_data*", 569, 204, 0.062),)
    r = _unrouted(congestion=hot, overused=4521, iterations=13)
    text = to_text(r, get_part("LFE5U-85F"))
    assert "NOT ROUTED: ERROR: nextpnr-ecp5 did not finish within 60 s" in text
    assert "router2 stopped at iteration 13 with 4,521 overused wires" in text
    assert "  6.2 %   204 nets  array.act_data*" in text
    assert PnrResult.from_dict(r.to_dict()) == r
    # a record written before the fields existed still reads
    old = r.to_dict()
    for key in ("congestion", "overused", "iterations"):
        old.pop(key)
    assert PnrResult.from_dict(old) == _unrouted()
    assert "router2 stopped" not in to_text(_unrouted(), get_part("LFE5U-85F"))


def test_a_route_past_its_time_limit_returns_a_status_not_an_exception(tmp_path):
    code, log = run_nextpnr("ecp5", ["--version"], cwd=tmp_path, timeout_s=0.001)
    assert code == TIMED_OUT
    assert log.rstrip().endswith("ERROR: nextpnr-ecp5 did not finish within 0.001 s")
