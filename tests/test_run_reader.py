"""The torch-free reader of a run folder (``mast.run_folder``)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mast.config import TrainConfig
from mast.errors import UserError
from mast.run_dir import write_config
from mast.run_folder import latest_snapshot, mask_snapshots, read_config
from mast.sparsity.layer import SparseLayer, save_layers


def test_the_hardware_side_reads_a_run_without_torch():
    code = (
        "import sys\n"
        "import mast.run_folder, mast.config, cost_models.rundir, hw.export, hw.compiler\n"
        "import cost_models.report_cli\n"
        "loaded = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))\n"
        "print(len(loaded))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"


def test_config_round_trip(tmp_path):
    cfg = TrainConfig()
    write_config(tmp_path, cfg)
    assert read_config(tmp_path) == cfg


def test_snapshots_by_step_not_by_name(tmp_path):
    layer = [SparseLayer("w", "agent", [[True]])]
    for t in (900, 10_000, 0):
        save_layers(tmp_path / "masks" / f"masks_{t}.npz", layer)
    assert [p.name for p in mask_snapshots(tmp_path)] == [
        "masks_0.npz",
        "masks_900.npz",
        "masks_10000.npz",
    ]
    assert latest_snapshot(tmp_path).name == "masks_10000.npz"


@pytest.mark.parametrize(
    "setup, message",
    [
        (None, "run folder '{d}/run' does not exist"),
        ("empty", "'{d}/run' is not a run folder: it has no config.yaml"),
        ("bad", "malformed YAML in '{d}/run/config.yaml'"),
    ],
)
def test_read_config_errors(tmp_path, setup, message):
    run = tmp_path / "run"
    if setup:
        run.mkdir()
    if setup == "bad":
        (run / "config.yaml").write_text("env: [\n")
    with pytest.raises(UserError) as e:
        read_config(run)
    assert str(e.value) == message.format(d=tmp_path)
