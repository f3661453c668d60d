"""Run folders a user can trust: kill -9 at any point, then resume, equals an uninterrupted
run; checkpoints and buffer segments load without executing code; disk full and NaN stop
cleanly and leave the last checkpoint usable."""

from __future__ import annotations

import csv
import errno
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from codesign.train import main
from mast import atomicio
from mast import run_dir as rd
from mast.sparsity import load_layers

ARGS = [
    "--t-max",
    "300",
    "--no-progress",
    "--hw-profile",
    "sparse_pe_64",
    "agent.hidden_dim=16",
    "env.n_envs=4",
    "env.test_episodes=4",
    "learner.batch_size=4",
    "buffer.capacity=24",
    "buffer.on_capacity=4",
    "sparsity.delta_t=60",
    "sparsity.t_end=100000",
    "run.test_interval=120",
    "run.log_interval=60",
    "run.save_interval=60",
    "run.threads=1",
]
DRIVER = Path(__file__).with_name("crash_driver.py")


def _train(out: Path, *extra: str) -> Path:
    before = torch.get_num_threads()
    try:
        assert main([*ARGS, "--out", str(out), *extra]) == 0
    finally:
        torch.set_num_threads(before)
    (run,) = out.iterdir()
    return run


def _resume(run: Path, *extra: str) -> int:
    before = torch.get_num_threads()
    try:
        return main(["--resume", str(run), "--no-progress", *extra])
    finally:
        torch.set_num_threads(before)


def _csv(path: Path, skip: str) -> list[dict]:
    with open(path, newline="") as fh:
        return [{k: v for k, v in r.items() if k != skip} for r in csv.DictReader(fh)]


def _scalars(run: Path, tag: str) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run))
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def _state(run: Path) -> dict:
    """Everything of a run folder that must not depend on where it was interrupted."""
    ckpt = rd.load_checkpoint(run)
    masks = {}
    for p in sorted((run / "masks").glob("*.npz")):
        masks[p.name] = [(lay.mask.tobytes(), lay.values.tobytes()) for lay in load_layers(p)]
    return {
        "metrics": _csv(run / "metrics.csv", "fps"),
        "trace": _csv(run / "hw_trace.csv", "costing_s"),
        "loss_events": _scalars(run, "loss"),
        "masks": masks,
        "t_env": ckpt["t_env"],
        "episode": ckpt["episode"],
        "nets": {k: v.numpy().tobytes() for k, v in ckpt["learner"]["nets"].items()},
        "optimizer": str(ckpt["learner"]["optimizer"]),
        "buffer_ids": ckpt["buffer"]["ids"].tolist(),
        "segments": sorted(p.name for p in (run / "buffer").iterdir()),
        "trace_state": ckpt["callbacks"]["HwTrace"],
        "files": sorted(p.name for p in run.iterdir() if not p.name.startswith("events.")),
    }


@pytest.fixture(scope="module")
def whole(tmp_path_factory) -> dict:
    """The uninterrupted run."""
    return _state(_train(tmp_path_factory.mktemp("whole")))


def _crash(out: Path, pattern: str, nth: int, phase: str) -> Path:
    cmd = [sys.executable, str(DRIVER), pattern, str(nth), phase, "--", *ARGS, "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    (run,) = out.iterdir()
    return run


@pytest.mark.parametrize(
    "pattern, nth, phase",
    [
        ("checkpoint.pt", 3, "mid"),
        ("checkpoint.pt", 4, "after"),
        ("masks_*.npz", 3, "mid"),
        ("episodes_*.pt", 3, "before"),
        ("metrics.csv", 2, "mid"),
        ("hw_trace.csv", 3, "mid"),
    ],
)
def test_kill_at_a_write_then_resume_equals_the_uninterrupted_run(
    tmp_path, whole, pattern, nth, phase
):
    run = _crash(tmp_path / "runs", pattern, nth, phase)
    assert any(p.name.endswith(".tmp") for p in run.rglob(".*")) == (phase != "after")
    assert _resume(run) == 0  # no --hw-profile: the trace continues with the run's own
    assert not any(p.name.endswith(".tmp") for p in run.rglob(".*"))
    assert _state(run) == whole


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kill_at_a_random_moment_then_resume_equals_the_uninterrupted_run(tmp_path, whole, seed):
    out = tmp_path / "runs"
    cmd = [sys.executable, "-m", "codesign.train", *ARGS, "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while proc.poll() is None and not list(out.glob("*/checkpoint.pt")):
            time.sleep(0.02)
        time.sleep(random.Random(seed).uniform(0.0, 3.0))
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=600)
    (run,) = out.iterdir()
    assert _resume(run) == 0
    assert _state(run) == whole


def test_resumed_event_file_sorts_after_the_interrupted_runs(tmp_path):
    """TensorBoard reads event files in name order (creation second, host, pid): a run
    resumed in the same second as its interrupted run's file (here: one a second ahead,
    from a host that sorts last) must still get a file that is read after it."""
    old = tmp_path / f"events.out.tfevents.{int(time.time()) + 1}.~host.1.0"
    old.write_bytes(b"")
    log = rd.MetricsLog(tmp_path, tensorboard=True, resume_at=0)
    log.close()
    names = sorted(p.name for p in tmp_path.glob("events.out.tfevents.*"))
    assert len(names) == 2 and names[0] == old.name


# ---------------------------------------------------------------- loading runs no code
class _Evil:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    return _train(tmp_path_factory.mktemp("finished"), "--t-max", "120")


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    return Path(shutil.copytree(src, dst))


def _one_line_error(capsys, run: Path) -> str:
    assert _resume(run) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("mast-train: error: "), err
    return err


def test_malicious_checkpoint_runs_nothing(tmp_path, finished, capsys):
    run = _copy(finished, tmp_path / "run")
    marker = tmp_path / "pwned"
    torch.save({"format": rd.CHECKPOINT_FORMAT, "t_env": _Evil(marker)}, run / "checkpoint.pt")
    err = _one_line_error(capsys, run)
    assert "holds Python objects (io.open) that only code execution could load" in err
    from codesign.hw_cli import main as hw_main

    with pytest.raises(SystemExit) as info:
        hw_main(["eval", str(run), "--profile", "sparse_pe_64"])
    assert info.value.code == 2
    assert "holds Python objects (io.open)" in capsys.readouterr().err
    assert not marker.exists()


def test_malicious_buffer_segment_runs_nothing(tmp_path, finished, capsys):
    run = _copy(finished, tmp_path / "run")
    marker = tmp_path / "pwned"
    (seg,) = sorted((run / "buffer").iterdir())[-1:]
    torch.save({"format": "mast-episodes/1", "ids": _Evil(marker)}, seg)
    err = _one_line_error(capsys, run)
    assert f"replay buffer segment {str(seg)!r} is unreadable (UnpicklingError)" in err
    assert not marker.exists()


def test_old_format_checkpoint_is_named(tmp_path, finished, capsys):
    from mast.runner import RolloutStats

    run = _copy(finished, tmp_path / "run")
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    state.pop("format")
    state["buffer"] = {"data.obs": torch.zeros(2, 3), "next": 0, "size": 2, "total": 2}
    torch.save(state, run / "checkpoint.pt")
    err = _one_line_error(capsys, run)
    assert "has format mast-checkpoint/1 (the replay buffer inside the file)" in err
    state["test_stats"] = RolloutStats(1, 2, 0.0, 0.0, 2.0)
    torch.save(state, run / "checkpoint.pt")
    err = _one_line_error(capsys, run)
    assert "(mast.runner.RolloutStats)" in err and "older mast checkpoint" in err
    state = torch.load(finished / "checkpoint.pt", weights_only=True)
    state.pop("callbacks")
    torch.save(state, run / "checkpoint.pt")
    assert "lacks the entry 'callbacks'" in _one_line_error(capsys, run)


def test_checkpoint_that_does_not_fit_its_config_is_one_line(tmp_path, finished, capsys):
    run = _copy(finished, tmp_path / "run")
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    name = next(iter(state["learner"]["nets"]))
    state["learner"]["nets"][name] = torch.zeros(3, 3)
    torch.save(state, run / "checkpoint.pt")
    err = _one_line_error(capsys, run)
    assert "does not fit its configuration: Error(s) in loading state_dict" in err


@pytest.mark.parametrize("keep", [0, 100, 0.5])
def test_truncated_checkpoint_is_one_line(tmp_path, finished, capsys, keep):
    run = _copy(finished, tmp_path / "run")
    data = (run / "checkpoint.pt").read_bytes()
    n = int(keep * len(data)) if isinstance(keep, float) else keep
    (run / "checkpoint.pt").write_bytes(data[:n])
    assert "is truncated or corrupt" in _one_line_error(capsys, run)


# ---------------------------------------------------------------- disk full
@pytest.mark.parametrize(
    "pattern", [".checkpoint.pt.*", ".episodes_*", ".masks_*", ".metrics.csv.*"]
)
def test_disk_full_is_one_line_and_the_run_resumes_exactly(
    tmp_path, whole, monkeypatch, capsys, pattern
):
    import fnmatch

    real, calls = os.fsync, []

    def fsync(fd):
        name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        if fnmatch.fnmatch(name, pattern):
            calls.append(name)
            if len(calls) == 3:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    monkeypatch.setattr(atomicio.os, "fsync", fsync)
    out = tmp_path / "runs"
    assert main([*ARGS, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    (run,) = out.iterdir()
    assert err.count("\n") == 0 and err.startswith(
        "mast-train: error: no space left on device writing '"
    )
    assert not any(p.name.endswith(".tmp") for p in run.rglob(".*"))
    monkeypatch.setattr(atomicio.os, "fsync", real)
    assert _resume(run) == 0
    assert _state(run) == whole


# ---------------------------------------------------------------- non-finite guard
@pytest.mark.parametrize("method", ["dense", "mast"])
def test_diverging_run_stops_with_exit_3_and_keeps_the_good_checkpoint(tmp_path, capsys, method):
    out = tmp_path / "runs"
    argv = [*ARGS, "--out", str(out), "--method", method, "learner.lr=1e6"]
    assert main(argv) == 3
    err = capsys.readouterr().err.strip()
    (run,) = out.iterdir()
    assert err.count("\n") == 0 and err.startswith("mast-train: training stopped: non-finite ")
    assert " at iteration " in err and f"last good checkpoint: '{run / 'checkpoint.pt'}'" in err
    good = rd.load_checkpoint(run)
    assert "at t_env " + str(good["t_env"]) in err
    assert all(torch.isfinite(v).all() for v in good["learner"]["nets"].values())
    before = (run / "checkpoint.pt").read_bytes()
    assert _resume(run) == 3  # resuming diverges again and still keeps it
    assert (run / "checkpoint.pt").read_bytes() == before
    for p in (run / "masks").glob("*.npz"):
        assert all(np.isfinite(lay.values).all() for lay in load_layers(p))
