"""Per-type and per-agent masks on the hardware side: costing, the allocation columns of
``metrics.csv`` and the report's mask picture."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from codesign.mask_plot import agent_mask_groups, column_labels, save_agent_mask_figure
from codesign.report import write_run_report
from mast.sparsity import SparseLayer
from mast.sparsity.layer import load_layers


@pytest.mark.parametrize(
    ("topology", "labels"),
    [("per_type", ["stalker", "zealot"]), ("per_agent", [f"agent {i}" for i in range(5)])],
)
def test_stacked_masks_are_costed_logged_and_pictured(short_trainer, tmp_path, topology, labels):
    run = short_trainer(
        tmp_path, "--map", "2s3z", f"agent.topology={topology}", "--hw-profile", "sparse_pe_16"
    )
    n = len(labels)
    with open(run / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    cols = [c for c in rows[0] if c.startswith("nnz:")]
    assert len(cols) == 4 * n
    for layer in ("fc1", "gru.ih", "gru.hh", "fc2"):  # a layer's budget is kept
        keys = [f"nnz:agent.{layer}.weight[{i}]" for i in range(n)]
        assert len({sum(int(r[k]) for k in keys) for r in rows}) == 1
    final = load_layers(sorted((run / "masks").glob("masks_*.npz"))[-1])
    agent = {lay.name: lay.nnz for lay in final if lay.role == "agent"}
    assert agent == {c.removeprefix("nnz:"): int(rows[-1][c]) for c in cols}
    with open(run / "hw_trace.csv", newline="") as fh:
        trace = list(csv.DictReader(fh))
    assert trace and all(math.isfinite(float(r["train_cycles"])) for r in trace)
    assert all(float(r["train_cycles"]) > 0 for r in trace)
    report = write_run_report(run).read_text()
    assert (run / "plots" / "agent_masks.png").stat().st_size > 0
    assert "## Agent masks" in report and "plots/agent_masks.png" in report
    header = next(line for line in report.splitlines() if line.startswith("| layer |"))
    assert all(label in header for label in labels)


def test_mask_groups_and_labels(tmp_path):
    mask = np.eye(3, dtype=bool)
    layers = [
        SparseLayer("agent.fc1.weight[0]", "agent", mask),
        SparseLayer("agent.fc1.weight[1]", "agent", ~mask),
        SparseLayer("mixer.w.weight", "mixer", mask),
    ]
    groups = agent_mask_groups(layers)
    assert list(groups) == ["agent.fc1.weight"] and list(groups["agent.fc1.weight"]) == ["0", "1"]
    shared = agent_mask_groups([SparseLayer("agent.fc2.weight", "agent", mask)])
    assert list(shared["agent.fc2.weight"]) == ["all"]
    assert save_agent_mask_figure(layers, tmp_path / "m.png").stat().st_size > 0
    assert save_agent_mask_figure(layers[2:], tmp_path / "none.png") is None
    cfg = {"env": {"map_name": "MMM"}, "agent": {"topology": "per_type"}}
    assert column_labels(cfg) == ["marauder", "marine", "medivac"]
    assert column_labels({"env": {"map_name": "3m"}, "agent": {"topology": "shared"}}) is None
