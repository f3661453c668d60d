"""Sweeps on real Ray: a local Ray with two workers, a killed worker, a two-node cluster.

Every test starts what it needs (an embedded Ray, or ``ray start`` processes on the
loopback interface with a fresh token and temp folder) and stops it at the end. The runs
are tiny (2k environment steps) and their results are compared with plain ``mast-train``
runs of the same settings.
"""

from __future__ import annotations

import csv
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import torch
import yaml

from codesign.train import main as train_main
from mast.run_dir import load_checkpoint
from sweep.cli import main
from sweep.results import read_metrics
from sweep.spec import schedule_flags

pytestmark = [pytest.mark.xdist_group("ray"), pytest.mark.slow]  # Ray start-up: tens of s

ROOT = Path(__file__).resolve().parents[2]
T_MAX = 2000
# Small evaluations, an evaluation every 500 steps logged every 250 (rows repeat them).
OVERRIDES = [
    "env.test_episodes=4",
    "run.test_interval=500",
    "run.log_interval=250",
    "run.tensorboard=false",
    "agent.hidden_dim=32",
]
GRID = ["--maps", "3m,2s3z", "--methods", "dense,mast", "--seeds", "1"]
RAY_BIN = Path(sys.executable).with_name("ray")
TOKEN = secrets.token_hex(32)
"""One auth token for the test process: Ray caches the token a process first reads, so a
driver in this process could not join a later cluster started with another one."""


@pytest.fixture
def ray_env(monkeypatch):
    """A private token and a short temp folder (Unix socket paths are limited) for Ray."""
    tmp = tempfile.mkdtemp(prefix="r", dir="/tmp")
    env = {
        "RAY_TMPDIR": tmp,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": TOKEN,
        "RAY_USAGE_STATS_ENABLED": "0",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    yield {**os.environ, **env}
    shutil.rmtree(tmp, ignore_errors=True)


def _mast_train(out: Path, map_name: str, method: str, t_max: int, *extra: str) -> Path:
    """The same run through ``mast-train``, one at a time."""
    argv = ["--map", map_name, "--method", method, "--seed", "0", "--t-max", str(t_max)]
    if method != "dense":
        argv += ["--sparsity", "0.9"] + [f"{k}={v}" for k, v in schedule_flags(t_max).items()]
    assert train_main(["--out", str(out), "--no-progress", *argv, *OVERRIDES, *extra]) == 0
    return max(out.iterdir(), key=lambda p: p.stat().st_mtime)


@pytest.fixture(scope="module")
def sequential(tmp_path_factory) -> dict[str, Path]:
    """Run folders of the grid's four runs, trained one after another by ``mast-train``."""
    out = tmp_path_factory.mktemp("seq")
    cells = {
        "qmix_dense_3m": ("3m", "dense"),
        "qmix_mast_3m_sp0.9": ("3m", "mast"),
        "qmix_dense_2s3z": ("2s3z", "dense"),
        "qmix_mast_2s3z_sp0.9": ("2s3z", "mast"),
    }
    return {c: _mast_train(out / c, m, me, T_MAX) for c, (m, me) in cells.items()}


def _rows(run_dir: Path) -> list[dict]:
    return [
        {k: v for k, v in r.items() if k != "fps"} for r in read_metrics(run_dir / "metrics.csv")
    ]


def _t_env(metrics: Path) -> int:
    try:
        return int(read_metrics(metrics)[-1]["t_env"])
    except (IndexError, KeyError, ValueError, OSError):
        return 0


def _status(slot: Path) -> dict:
    return json.loads((slot / "status.json").read_text())


def _run_dir(slot: Path) -> Path:
    (cfg,) = slot.glob("*/config.yaml")
    return cfg.parent


def _assert_same_as_sequential(sweep: Path, sequential: dict[str, Path]) -> None:
    for cell, seq in sequential.items():
        got = _run_dir(sweep / cell / "s0")
        assert got.name.startswith(seq.name[: -len("20260101-000000")]), (got, seq)
        assert yaml.safe_load((got / "config.yaml").read_text()) == yaml.safe_load(
            (seq / "config.yaml").read_text()
        ), cell
        assert _rows(got) == _rows(seq), cell


def test_local_grid_equals_sequential_runs(tmp_path, ray_env, sequential, capsys):
    out = tmp_path / "sw"
    argv = [*GRID, "--t-max", str(T_MAX), "--out", str(out), "--num-cpus", "2", *OVERRIDES]
    assert main([*argv, "--no-report"]) == 0
    _assert_same_as_sequential(out, sequential)
    workers = {_status(out / c / "s0")["pid"] for c in sequential}
    assert len(workers) == 2  # two runs at a time on the two CPUs
    # results.csv: one row per run, equal to the plain runs' final rows.
    from sweep.report import write_report

    with open(write_report(out, k=3, reps=100).results_csv, newline="") as fh:
        rows = {r["run"]: r for r in csv.DictReader(fh)}
    assert set(rows) == {f"{c}/s0" for c in sequential}
    for cell, seq in sequential.items():
        last = read_metrics(seq / "metrics.csv")[-1]
        row = rows[f"{cell}/s0"]
        assert (row["final_test_win"], row["t_env"]) == (last["test_win_rate"], last["t_env"])
        evals = {r["test_t_env"] for r in read_metrics(seq / "metrics.csv")} - {"-1"}
        assert int(row["evals"]) == len(evals) < len(read_metrics(seq / "metrics.csv"))
    # Running the same sweep again skips every run and touches no run folder.
    before = {p: p.stat().st_mtime_ns for p in out.glob("*/s0/**/*") if p.is_file()}
    capsys.readouterr()
    assert main([*argv, "--no-report"]) == 0
    assert "0 run(s) finished, 4 skipped" in capsys.readouterr().out
    assert before == {p: p.stat().st_mtime_ns for p in out.glob("*/s0/**/*") if p.is_file()}


LONG = ["--maps", "3m", "--methods", "mast", "--seeds", "1", "--t-max", "6000"]
LONG_EXTRA = ["run.save_interval=1000"]  # a checkpoint every 1000 steps


@pytest.fixture(scope="module")
def long_reference(tmp_path_factory) -> Path:
    """The 6000-step run of :data:`LONG`, uninterrupted, through ``mast-train``."""
    return _mast_train(tmp_path_factory.mktemp("ref"), "3m", "mast", 6000, *LONG_EXTRA)


_IN_FOREGROUND = (
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv[0] = 'mast-sweep'; runpy.run_module('sweep.cli', run_name='__main__')"
)
"""``python -c`` running ``mast-sweep`` as a foreground program gets SIGINT: with its
default handler, even where this test runs as a background job of a non-interactive
shell, which starts every child with SIGINT ignored (as every shell does for background
jobs, so that a terminal's Ctrl-C does not reach them)."""


class _Sweep:
    """A ``mast-sweep`` process whose output is read as it comes (a thread drains the
    pipe, so the driver can never block on a full one)."""

    def __init__(self, out: Path, env: dict, *flags: str) -> None:
        cmd = [sys.executable, "-c", _IN_FOREGROUND, *LONG, "--out", str(out), "--num-cpus", "1",
               *flags, "--no-report", *OVERRIDES, *LONG_EXTRA]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def wait_for_line(self, text: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return True
            if self.proc.poll() is not None and not self._reader.is_alive():
                return False
            time.sleep(0.05)
        return False

    def wait(self, timeout: float) -> tuple[int, str]:
        """The exit status and the whole output."""
        rc = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=60)
        return rc, self.log


def _wait_past_checkpoint(sweep: _Sweep, slot: Path) -> bool:
    """Wait until the run has logged 1500 steps (so a checkpoint at >= 1000 exists)."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and sweep.proc.poll() is None:
        metrics = list(slot.glob("*/metrics.csv"))
        if metrics and _t_env(metrics[0]) >= 1500:
            return True
        time.sleep(0.05)
    return False


def _assert_same_as_reference(slot: Path, ref: Path) -> None:
    got = _run_dir(slot)
    assert _rows(got) == _rows(ref)
    a = load_checkpoint(got)["learner"]["nets"]
    b = load_checkpoint(ref)["learner"]["nets"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_killed_worker_resumes_with_identical_results(tmp_path, ray_env, long_reference):
    out = tmp_path / "sw"
    slot = out / "qmix_mast_3m_sp0.9" / "s0"
    sweep = _Sweep(out, ray_env)
    reached = _wait_past_checkpoint(sweep, slot)
    killed = _status(slot)["pid"] if reached else None
    if killed is not None:
        # The embedded Ray's worker runs at the driver's priority (sweep.driver).
        niceness = (os.getpriority(os.PRIO_PROCESS, killed),
                    os.getpriority(os.PRIO_PROCESS, sweep.proc.pid))  # fmt: skip
        os.kill(killed, signal.SIGKILL)  # the Ray worker running the task
    rc, log = sweep.wait(timeout=600)
    assert killed is not None, log
    assert rc == 0, log
    assert niceness[0] == niceness[1], niceness
    status = _status(slot)
    assert status["state"] == "done" and status["attempts"] == 2, status
    assert status["pid"] != killed and 1000 <= status["resumed_from"] < 6000
    _assert_same_as_reference(slot, long_reference)


def test_retries_are_bounded(tmp_path, ray_env):
    out = tmp_path / "sw"
    slot = out / "qmix_mast_3m_sp0.9" / "s0"
    sweep = _Sweep(out, ray_env, "--max-retries", "0")
    assert _wait_past_checkpoint(sweep, slot), sweep.wait(timeout=300)[1]
    os.kill(_status(slot)["pid"], signal.SIGKILL)
    rc, log = sweep.wait(timeout=300)
    assert rc == 1, log
    assert "1 failed" in log and "failed: qmix_mast_3m_sp0.9/s0: " in log
    status = _status(slot)
    assert status["state"] == "failed" and status["attempts"] == 1


def _ctrl_c_with_run_paused(sweep: _Sweep, slot: Path) -> None:
    """Ctrl-C to the driver while the run's worker is stopped (SIGSTOP), so that the run
    cannot reach its end before the interruption reaches it, however loaded the machine;
    the worker continues once the driver says it is stopping the runs."""
    worker = _status(slot)["pid"]
    os.kill(worker, signal.SIGSTOP)
    try:
        sweep.proc.send_signal(signal.SIGINT)
        said = sweep.wait_for_line("interrupted: stopping", timeout=120)
    finally:
        try:
            os.kill(worker, signal.SIGCONT)
            gone = False
        except ProcessLookupError:
            gone = True
    assert said and not gone, f"line seen: {said}, worker gone: {gone}\n{sweep.log}"


def test_ctrl_c_leaves_runs_resumable(tmp_path, ray_env, long_reference):
    out = tmp_path / "sw"
    slot = out / "qmix_mast_3m_sp0.9" / "s0"
    sweep = _Sweep(out, ray_env)
    assert _wait_past_checkpoint(sweep, slot), sweep.wait(timeout=300)[1]
    _ctrl_c_with_run_paused(sweep, slot)
    rc, log = sweep.wait(timeout=300)
    assert rc == 130, log
    assert log.strip().endswith("mast-sweep: interrupted"), log
    assert _status(slot)["state"] == "interrupted"
    rc, log = _Sweep(out, ray_env).wait(timeout=600)
    assert rc == 0, log
    status = _status(slot)
    assert status["state"] == "done" and status["attempts"] == 2
    assert 1000 <= status["resumed_from"] < 6000
    _assert_same_as_reference(slot, long_reference)


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _start(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    """``ray start --block`` in the foreground: terminating it stops its node."""
    fh = open(log, "w")
    proc = subprocess.Popen([str(RAY_BIN), "start", "--block", *args], env=env, stdout=fh,
                            stderr=subprocess.STDOUT)  # fmt: skip
    deadline = time.monotonic() + 180
    while "block forever" not in log.read_text():
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.5)
    return proc


def test_two_node_cluster_on_loopback(tmp_path, ray_env, sequential):
    # Ray replaces 127.0.0.1 by the machine's outward address for multi-node clusters, so
    # both nodes and the driver use another loopback address: nothing leaves the machine.
    ip = "127.0.0.2"
    gcs, client, *agent = _free_ports(10)
    node_ports = lambda p: [  # noqa: E731
        "--dashboard-agent-listen-port", str(p[0]), "--dashboard-agent-grpc-port", str(p[1]),
        "--runtime-env-agent-port", str(p[2]), "--metrics-export-port", str(p[3]),
    ]  # fmt: skip
    common = ["--node-ip-address", ip, "--num-cpus", "1", "--disable-usage-stats",
              "--object-store-memory", str(100 * 2**20)]  # fmt: skip
    nodes = []
    try:
        nodes.append(_start(
            ["--head", "--port", str(gcs), "--ray-client-server-port", str(client),
             "--system-config", json.dumps({"worker_niceness": 0}),
             "--temp-dir", ray_env["RAY_TMPDIR"], "--include-dashboard", "false",
             *common, *node_ports(agent[:4])],
            ray_env, tmp_path / "head.log",
        ))  # fmt: skip
        nodes.append(_start(
            ["--address", f"{ip}:{gcs}", *common, *node_ports(agent[4:8])],
            ray_env, tmp_path / "node.log",
        ))  # fmt: skip
        out = tmp_path / "sw"
        argv = [*GRID, "--t-max", str(T_MAX), "--out", str(out), *OVERRIDES, "--no-report"]
        assert main([*argv, "--address", f"{ip}:{gcs}", "--node-ip-address", ip]) == 0
    finally:
        for p in reversed(nodes):
            p.terminate()
            p.wait(timeout=120)
    _assert_same_as_sequential(out, sequential)
    assert len({_status(out / c / "s0")["ray_node"] for c in sequential}) == 2  # both nodes
