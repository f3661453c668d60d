"""Bad input to every command: one line ``prog: error: ...``, exit 2, nothing lost.

Each case runs a real entry point (``mast-train``, ``mast-hw SUBCOMMAND``,
``python -m rtl.cosim``, ``mast-sweep``) in-process on a copy of one short training run,
after damaging what the case names. Every case must exit 2 with exactly one line on stderr
that starts with ``prog: error:`` and names the bad value, flag or file; no traceback; and
no file that existed before (the run folder, a sentinel in the output folder) is removed or
changed, nor any new file written.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from codesign import hw_cli
from codesign.train import main as train_main
from rtl import cosim

TRAIN_ARGS = [
    "--t-max",
    "120",
    "--no-progress",
    "agent.hidden_dim=16",
    "env.n_envs=2",
    "env.test_episodes=2",
    "learner.batch_size=2",
    "buffer.capacity=8",
    "buffer.on_capacity=2",
    "sparsity.delta_t=60",
    "run.test_interval=60",
    "run.log_interval=60",
    "run.tensorboard=false",
]


@pytest.fixture(scope="module")
def base_run(tmp_path_factory) -> Path:
    """A finished ``mast-train --hw-profile sparse_pe_4`` run (checkpoint, masks, trace)."""
    out = tmp_path_factory.mktemp("bad_input_run")
    before = torch.get_num_threads()
    try:
        rc = train_main([*TRAIN_ARGS, "--hw-profile", "sparse_pe_4", "--out", str(out)])
    finally:
        torch.set_num_threads(before)
    assert rc == 0
    (run_dir,) = out.iterdir()
    return run_dir


# ---------------------------------------------------------------- damaging the inputs
def _write(rel: str, data: bytes | str) -> Callable[[Path, Path], None]:
    """Replace ``rel`` (under the run folder, or ``tmp:`` the test folder) by ``data``."""

    def prepare(tmp: Path, run: Path) -> None:
        path = tmp / rel[4:] if rel.startswith("tmp:") else run / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            path.write_text(data)
        else:
            path.write_bytes(data)

    return prepare


def _truncate(rel: str, keep: float = 0.5) -> Callable[[Path, Path], None]:
    def prepare(tmp: Path, run: Path) -> None:
        path = run / rel
        path.write_bytes(path.read_bytes()[: int(path.stat().st_size * keep)])

    return prepare


def _first_masks(run: Path) -> Path:
    return run / "masks" / "masks_0.npz"


def _copy_masks(name: str, keep: float | None = None) -> Callable[[Path, Path], None]:
    """``tmp/<name>``: the run's first mask snapshot, cut to ``keep`` of its bytes."""

    def prepare(tmp: Path, run: Path) -> None:
        data = _first_masks(run).read_bytes()
        (tmp / name).write_bytes(data if keep is None else data[: int(len(data) * keep)])

    return prepare


def _all_masks(keep: float) -> Callable[[Path, Path], None]:
    def prepare(tmp: Path, run: Path) -> None:
        for snap in (run / "masks").glob("*.npz"):
            snap.write_bytes(snap.read_bytes()[: int(snap.stat().st_size * keep)])

    return prepare


def _reshaped_checkpoint(tmp: Path, run: Path) -> None:
    """A checkpoint whose first network tensor has the wrong shape."""
    path = run / "checkpoint.pt"
    state = torch.load(path, weights_only=True)
    nets = state["learner"]["nets"]
    key = next(iter(nets))
    nets[key] = torch.zeros(3, 3)
    torch.save(state, path)


def _profile(file: str, **fields) -> Callable[[Path, Path], None]:
    """``tmp/<file>.yaml``: a profile based on sparse_pe_4 with ``fields``."""
    return _write(f"tmp:{file}.yaml", yaml.safe_dump({"base": "sparse_pe_4", **fields}))


def _evil_program(tmp: Path, run: Path) -> None:
    """``tmp/evil.npz``: a compiled program whose profile is named ``../../escaped``."""
    from hw.compiler import compile_layer

    path = compile_layer(np.ones((2, 2), dtype=bool), "forward", "sparse_pe_4", 1).save(
        tmp / "good.npz"
    )
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(bytes(arrays["meta"]).decode())
    meta["profile"]["name"] = "../../escaped"
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(tmp / "evil.npz", **arrays)
    path.unlink()


def _unwritable(tmp: Path, run: Path) -> None:
    (tmp / "a_file").write_text("not a folder")


GARBAGE = bytes(range(256)) * 8
EVIL = {"name": "../../escaped"}
TINY_SRAM = {"name": "tiny", "act_buf_words": 1, "out_buf_words": 1}
TWO_BIT = {"name": "narrow", "index_bits": 2}


@dataclass(frozen=True)
class Case:
    """One bad input: the command line, what to damage first and what the error names."""

    id: str
    prog: str
    argv: tuple[str, ...]
    expect: str | tuple[str, ...]
    """Text the error line must contain (each, for a tuple); ``{run}``, ``{out}``, ``{tmp}``
    are substituted."""
    prepare: Callable[[Path, Path], None] | None = None


T, H, C, S = "mast-train", "mast-hw", "python -m rtl.cosim", "mast-sweep"
RESUME = ("--resume", "{run}", "--no-progress")
CKPT = ("checkpoint", "{run}")  # names the checkpoint of this run folder
CASES = [
    # --- checkpoints: corrupt, truncated, empty, shape-mismatched
    Case("train-ckpt-corrupt", T, RESUME, CKPT, _write("checkpoint.pt", GARBAGE)),
    Case("train-ckpt-truncated", T, RESUME, CKPT, _truncate("checkpoint.pt")),
    Case("train-ckpt-empty", T, RESUME, CKPT, _write("checkpoint.pt", b"")),
    Case("train-ckpt-shape", T, RESUME, CKPT, _reshaped_checkpoint),
    Case("eval-ckpt-corrupt", H, ("eval", "{run}"), CKPT, _write("checkpoint.pt", GARBAGE)),
    Case("eval-ckpt-truncated", H, ("eval", "{run}"), CKPT, _truncate("checkpoint.pt")),
    Case("eval-ckpt-empty", H, ("eval", "{run}"), CKPT, _write("checkpoint.pt", b"")),
    Case("eval-ckpt-shape", H, ("eval", "{run}"), CKPT, _reshaped_checkpoint),
    # --- devices and sizes
    Case("train-device-unknown", T, ("--device", "tpu7", "--out", "{out}"), "'tpu7'"),
    Case("train-device-no-gpu", T, ("--device", "cuda:99", "--out", "{out}"), "'cuda:99'"),
    Case(
        "train-huge-width", T, ("agent.hidden_dim=100000000", "--out", "{out}"), "agent.hidden_dim"
    ),
    Case(
        "train-huge-buffer",
        T,
        ("buffer.capacity=1000000000", "--out", "{out}", "--no-progress"),
        "buffer.capacity=1000000000",
    ),
    Case("train-t-max-float", T, ("--t-max", "1e30", "--out", "{out}"), "'1e30'"),
    Case("train-t-max-huge", T, ("--t-max", "100000000000", "--out", "{out}"), "100000000000"),
    Case("train-t-max-override", T, ("run.t_max=1e30", "--out", "{out}"), "run.t_max"),
    Case("train-lr-nan", T, ("learner.lr=nan", "--out", "{out}"), "learner.lr"),
    Case("eval-episodes-huge", H, ("eval", "{run}", "--episodes", "1000000000"), "1000000000"),
    Case("report-batch-huge", H, ("report", "--batch-size", "1e9", "--out", "{out}/r"), "'1e9'"),
    Case(
        "synth-timeout-nan",
        H,
        (
            "synth",
            "--profile",
            "sparse_pe_4",
            "--target",
            "ice40",
            "--timeout-s",
            "nan",
            "--out",
            "{out}/s",
        ),
        "'nan'",
    ),
    # --- output paths: permission denied, not a folder
    Case(
        "train-out-permission",
        T,
        ("--out", "/sys/mast_denied", "--no-progress"),
        "'/sys/mast_denied'",
    ),
    Case("train-out-not-dir", T, ("--out", "{tmp}/a_file/runs"), "a_file", _unwritable),
    Case("report-out-not-dir", H, ("report", "--out", "{tmp}/a_file/rep"), "a_file", _unwritable),
    Case(
        "report-out-permission", H, ("report", "--out", "/sys/mast_denied/rep"), "/sys/mast_denied"
    ),
    Case(
        "export-out-file",
        H,
        ("export", "--profile", "sparse_pe_4", "--out", "{tmp}/a_file"),
        "a_file",
        _unwritable,
    ),
    Case(
        "export-out-permission",
        H,
        ("export", "--profile", "sparse_pe_4", "--out", "/sys/mast_denied/x"),
        "/sys/mast_denied",
    ),
    Case(
        "synth-out-not-dir",
        H,
        ("synth", "--profile", "sparse_pe_4", "--target", "ice40", "--out", "{tmp}/a_file/s"),
        "a_file",
        _unwritable,
    ),
    # --- npz files: truncated, empty, missing entries
    Case(
        "export-npz-truncated",
        H,
        ("export", "--profile", "sparse_pe_4", "--out", "{out}/e", "--checkpoint", "{tmp}/cut.npz"),
        "cut.npz",
        _copy_masks("cut.npz", 0.5),
    ),
    Case(
        "export-npz-empty",
        H,
        (
            "export",
            "--profile",
            "sparse_pe_4",
            "--out",
            "{out}/e",
            "--checkpoint",
            "{tmp}/empty.npz",
        ),
        "empty.npz",
        _write("tmp:empty.npz", b""),
    ),
    Case(
        "export-npz-no-meta",
        H,
        (
            "export",
            "--profile",
            "sparse_pe_4",
            "--out",
            "{out}/e",
            "--checkpoint",
            "{tmp}/other.npz",
        ),
        "other.npz",
        lambda tmp, run: np.savez(tmp / "other.npz", x=np.zeros(3)),
    ),
    Case(
        "export-masks-truncated",
        H,
        ("export", "--profile", "sparse_pe_4", "--out", "{out}/e", "--masks", "{run}"),
        "masks_",
        _all_masks(0.5),
    ),
    Case(
        "report-masks-truncated",
        H,
        ("report", "--masks", "{run}", "--out", "{out}/r"),
        "masks_",
        _all_masks(0.3),
    ),
    Case("cosim-npz-truncated", C, ("{tmp}/cut.npz",), "cut.npz", _copy_masks("cut.npz", 0.5)),
    # --- malformed run files: config.yaml, hw_meta.json, hw_trace.csv, metrics.csv
    Case("train-config-malformed", T, RESUME, "config.yaml", _write("config.yaml", "a: [1\n")),
    Case("train-config-garbage", T, RESUME, "config.yaml", _write("config.yaml", GARBAGE)),
    Case(
        "eval-config-malformed",
        H,
        ("eval", "{run}"),
        "config.yaml",
        _write("config.yaml", "learner: 7\n"),
    ),
    Case(
        "eval-meta-malformed",
        H,
        ("eval", "{run}"),
        "hw_meta.json",
        _write("hw_meta.json", "{not json"),
    ),
    Case(
        "eval-meta-no-profile", H, ("eval", "{run}"), "hw_meta.json", _write("hw_meta.json", "{}")
    ),
    Case(
        "report-meta-malformed",
        H,
        ("report", "--masks", "{run}", "--out", "{out}/r"),
        "hw_meta.json",
        _write("hw_meta.json", "[1, 2]"),
    ),
    Case(
        "report-trace-garbage",
        H,
        ("report", "--masks", "{run}", "--out", "{out}/r"),
        "hw_trace.csv",
        _write("hw_trace.csv", "t_env,cum_time_s\nabc,def\n"),
    ),
    Case(
        "report-trace-no-columns",
        H,
        ("report", "--masks", "{run}", "--out", "{out}/r"),
        "hw_trace.csv",
        _write("hw_trace.csv", "x,y\n1,2\n"),
    ),
    Case(
        "report-metrics-garbage",
        H,
        ("report", "--masks", "{run}", "--out", "{out}/r"),
        "metrics.csv",
        _write("metrics.csv", GARBAGE),
    ),
    Case(
        "report-metrics-bad-cell",
        H,
        ("report", "--masks", "{run}", "--out", "{out}/r"),
        "metrics.csv",
        _write("metrics.csv", "t_env,test_win_rate\n60,0.5\n120,lots\n"),
    ),
    # --- profiles: names that leave the output folder, profiles that cannot be built
    Case(
        "report-profile-path-name",
        H,
        ("report", "--profile", "{tmp}/evil.yaml", "--out", "{out}/r"),
        "../../escaped",
        _profile("evil", **EVIL),
    ),
    Case(
        "synth-profile-path-name",
        H,
        ("synth", "--profile", "{tmp}/evil.yaml", "--target", "ice40"),
        "../../escaped",
        _profile("evil", **EVIL),
    ),
    Case(
        "export-profile-path-name",
        H,
        ("export", "--profile", "{tmp}/evil.yaml", "--out", "{out}/e"),
        "../../escaped",
        _profile("evil", **EVIL),
    ),
    Case(
        "train-profile-path-name",
        T,
        ("--hw-profile", "{tmp}/evil.yaml", "--out", "{out}"),
        "../../escaped",
        _profile("evil", **EVIL),
    ),
    Case(
        "eval-profile-path-name",
        H,
        ("eval", "{run}", "--profile", "{tmp}/evil.yaml"),
        "../../escaped",
        _profile("evil", **EVIL),
    ),
    Case("cosim-profile-path-name", C, ("{tmp}/evil.npz",), "../../escaped", _evil_program),
    Case(
        "profiles-path-name",
        H,
        ("profiles", "--show", "{tmp}/evil.yaml"),
        "../../escaped",
        _profile("evil", **EVIL),
    ),
    Case(
        "report-profile-tiny-sram",
        H,
        ("report", "--profile", "{tmp}/tiny.yaml", "--out", "{out}/r"),
        "act_buf_words",
        _profile("tiny", **TINY_SRAM),
    ),
    Case(
        "report-profile-2bit-index",
        H,
        ("report", "--profile", "{tmp}/narrow.yaml", "--out", "{out}/r"),
        "index_bits",
        _profile("narrow", **TWO_BIT),
    ),
    Case(
        "synth-profile-tiny-sram",
        H,
        ("synth", "--profile", "{tmp}/tiny.yaml", "--target", "ice40"),
        "act_buf_words",
        _profile("tiny", **TINY_SRAM),
    ),
    Case(
        "train-profile-2bit-index",
        T,
        ("--hw-profile", "{tmp}/narrow.yaml", "--out", "{out}"),
        "index_bits",
        _profile("narrow", **TWO_BIT),
    ),
    Case(
        "profiles-binary-file",
        H,
        ("profiles", "--show", "{tmp}/bin.yaml"),
        "bin.yaml",
        _write("tmp:bin.yaml", GARBAGE),
    ),
    # --- mast-sweep: grids fail before Ray starts
    Case("sweep-unknown-map", S, ("--maps", "9z9", "--out", "{out}/sw"), "'9z9'"),
    Case("sweep-unknown-method", S, ("--methods", "prune", "--out", "{out}/sw"), "'prune'"),
    Case("sweep-t-max-float", S, ("--t-max", "1e30", "--out", "{out}/sw"), "'1e30'"),
    Case(
        "sweep-grid-malformed",
        S,
        ("{tmp}/grid.yaml", "--out", "{out}/sw"),
        "grid.yaml",
        _write("tmp:grid.yaml", "maps: [3m\n"),
    ),
    Case(
        "sweep-out-permission",
        S,
        ("--out", "/sys/mast_denied/sw", "--maps", "3m", "--seeds", "1", "--t-max", "100"),
        "/sys/mast_denied",
    ),
    Case("sweep-report-missing", S, ("report", "{tmp}/no_sweep"), "no_sweep"),
    # --- flags and names argparse or the commands reject
    Case("hw-unknown-command", H, ("place",), "'place'"),
    Case("report-unknown-map", H, ("report", "--map", "9z9", "--out", "{out}/r"), "'9z9'"),
    Case(
        "synth-unknown-target", H, ("synth", "--profile", "sparse_pe_4", "--target", "gal"), "'gal'"
    ),
]


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _invoke(prog: str, argv: list[str]) -> int:
    if prog == "mast-train":
        before = torch.get_num_threads()
        try:
            return train_main(argv)
        finally:
            torch.set_num_threads(before)
    if prog == "python -m rtl.cosim":
        return cosim.main(argv)
    if prog == "mast-sweep":
        from sweep.cli import main as sweep_main

        return sweep_main(argv)
    with pytest.raises(SystemExit) as exc:
        hw_cli.main(argv)
    return exc.value.code


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_exit_2_and_loses_nothing(
    case, base_run, tmp_path, capsys, monkeypatch
):
    run = tmp_path / "run"
    shutil.copytree(base_run, run)
    out = tmp_path / "out"
    out.mkdir()
    (out / "sentinel.txt").write_text("a file the user had")
    if case.prepare is not None:
        case.prepare(tmp_path, run)
    before = _tree(tmp_path)
    monkeypatch.chdir(tmp_path)  # default output folders (reports/, build/) land here
    monkeypatch.setattr(sys, "argv", [case.prog])
    capsys.readouterr()

    def fmt(s: str) -> str:
        return s.format(run=run, out=out, tmp=tmp_path)

    rc = _invoke(case.prog, [fmt(a) for a in case.argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1, err
    assert lines[0].startswith(f"{case.prog}: error: "), err
    for part in (case.expect,) if isinstance(case.expect, str) else case.expect:
        assert fmt(part) in lines[0], err
    assert _tree(tmp_path) == before
    assert not [p for p in tmp_path.parent.rglob("*escaped*") if tmp_path not in p.parents]


def test_a_bug_still_shows_its_traceback(monkeypatch):
    """The boundary converts bad input only: an unexpected exception propagates."""
    from mast.errors import run_cli

    def buggy(argv):
        raise KeyError("a bug, not bad input")

    with pytest.raises(KeyError):
        run_cli("prog", buggy, [])

    def runtime(argv):
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError):
        run_cli("prog", runtime, [])


def test_a_closed_stdout_pipe_ends_the_cli_quietly():
    """``mast-hw profiles | head -1``: the reader has gone; no traceback, exit 141."""
    import os
    import subprocess

    read_end, write_end = os.pipe()
    os.close(read_end)  # every write to stdout now fails with EPIPE
    try:
        proc = subprocess.run(
            [str(Path(sys.executable).parent / "mast-hw"), "profiles"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    finally:
        os.close(write_end)
    assert proc.returncode == 141
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr


def test_utilisation_bench_names_a_bad_run_folder_before_running(tmp_path):
    import os
    import subprocess

    root = Path(__file__).resolve().parents[1]
    missing = tmp_path / "none"
    res = subprocess.run(
        [sys.executable, "bench/hw_utilisation.py", "--masks", str(missing)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr == f"bench/hw_utilisation.py: error: run folder '{missing}' does not exist\n"


def test_a_local_ray_that_does_not_start_is_a_one_line_error(monkeypatch, capsys, tmp_path):
    """Ray raises a bare ``Exception`` when its local node does not come up (a starved
    machine): ``mast-sweep`` says so in one line and a non-zero exit, no traceback."""
    import ray

    from sweep.cli import main as sweep_main

    def no_node(**kw):
        raise Exception("The current node timed out during startup.")

    monkeypatch.setattr(ray, "init", no_node)
    argv = ["--maps", "3m", "--methods", "mast", "--seeds", "1", "--t-max", "1000"]
    rc = sweep_main([*argv, "--out", str(tmp_path / "s"), "--num-cpus", "1"])
    err = capsys.readouterr().err
    assert rc != 0 and "Traceback" not in err
    assert err.splitlines()[-1] == (
        "mast-sweep: error: could not start a local Ray of 1 CPU: "
        "The current node timed out during startup."
    )
