"""``--hw-verify``: every snapshot replays one agent layer on the Verilated RTL."""

from __future__ import annotations

from pathlib import Path

import pytest

from codesign.trace import read_trace
from codesign.verify import VerifyResult
from rtl.cosim import CosimMismatch

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.xdist_group("pyverilator_sparse_pe_4")


@pytest.mark.slow
def test_hw_verify_records_equal_cycles(tmp_path, monkeypatch, short_trainer):
    monkeypatch.chdir(ROOT)  # the pyverilator build cache lives in build/pyverilator
    run_dir = short_trainer(tmp_path / "runs", "--hw-profile", "sparse_pe_4", "--hw-verify")
    rows = [r for r in read_trace(run_dir) if r["verify_layer"]]
    assert len(rows) >= 3
    layers = [r["verify_layer"] for r in rows]
    assert layers[:3] == ["agent.fc1.weight", "agent.gru.ih.weight", "agent.gru.hh.weight"]
    for r in rows:
        assert r["verify_ok"] == "1"
        assert int(r["verify_sim_cycles"]) == int(r["verify_rtl_cycles"]) > 0
    assert "0 mismatches" in (run_dir / "report.md").read_text()


def test_failed_check_raises_with_the_layer():
    bad = VerifyResult("agent.fc2.weight", 100, -1, False, "op 'x': RTL 101 cycles != sim 100")
    assert bad.as_row() == {
        "verify_layer": "agent.fc2.weight",
        "verify_sim_cycles": 100,
        "verify_rtl_cycles": -1,
        "verify_ok": 0,
    }
    with pytest.raises(CosimMismatch, match=r"--hw-verify: layer 'agent.fc2.weight': op 'x'"):
        bad.raise_if_failed()
    VerifyResult("agent.fc2.weight", 100, 100, True).raise_if_failed()
