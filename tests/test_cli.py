"""``mast-train`` end to end through ``mast.cli.main`` on the built-in simulator."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
import yaml

from mast.cli import main
from mast.config import ALGS, METHODS
from mast.presets import resolve_config
from mast.run_dir import load_checkpoint
from mast.sparsity import flops_report, load_layers

# A few hundred env steps with tiny batches: every code path, no learning.
TINY = [
    "--t-max",
    "240",
    "--no-progress",
    "env.n_envs=2",
    "env.test_episodes=2",
    "learner.batch_size=2",
    "learner.updates_per_rollout=1",
    "buffer.capacity=16",
    "buffer.on_capacity=2",
    "sparsity.delta_t=100",
    "run.log_interval=100",
    "run.test_interval=100",
    "run.tensorboard=false",
]


def _run(tmp_path: Path, *argv: str) -> Path:
    out = tmp_path / "runs"
    assert main(["--out", str(out), *TINY, *argv]) == 0
    (run_dir,) = out.iterdir()
    return run_dir


def _rows(run_dir: Path) -> list[dict]:
    with open(run_dir / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _error(capsys, *argv: str) -> str:
    assert main(list(argv)) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("mast-train: error: ")
    return err


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("alg", ALGS)
def test_smoke_every_learner_and_method(tmp_path, alg, method):
    run_dir = _run(tmp_path, "--alg", alg, "--method", method)
    assert run_dir.name.startswith(f"{alg}_{method}_3m_s0_")
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["learner"]["alg"] == alg and saved["sparsity"]["method"] == method
    rows = _rows(run_dir)
    assert len(rows) >= 2 and int(rows[-1]["t_env"]) >= 240
    # won test episodes over env.test_episodes=2
    assert float(rows[-1]["test_win_rate"]) in (0.0, 0.5, 1.0)
    snaps = sorted((run_dir / "masks").glob("masks_*.npz"))
    assert snaps[0].name == "masks_0.npz"
    layers = load_layers(snaps[-1])
    assert all(layer.values is not None for layer in layers)
    if method in ("set", "rigl", "rlx2", "mast"):
        assert len(snaps) >= 2 and int(rows[-1]["topology_updates"]) >= 1
    sparse = method not in ("dense", "tiny")
    assert float(rows[-1]["sparsity"]) == pytest.approx(0.9 if sparse else 0.0, abs=0.01)
    ckpt = load_checkpoint(run_dir)
    assert ckpt["t_env"] == int(rows[-1]["t_env"]) and ckpt["buffer"] is not None


def test_default_run_folder_and_flops_consistency(tmp_path, capsys):
    run_dir = _run(tmp_path, "--config", "qmix_static", "--seed", "3", "run.tensorboard=true")
    assert "run folder:" in capsys.readouterr().out
    assert run_dir.name.startswith("qmix_static_3m_s3_")
    files = {p.name for p in run_dir.iterdir()}
    assert {"config.yaml", "metrics.csv", "masks", "checkpoint.pt"} <= files
    assert any(name.startswith("events.out.tfevents") for name in files)
    row = _rows(run_dir)[-1]
    layers = load_layers(run_dir / "masks" / "masks_0.npz")
    report = flops_report(layers, samples_per_iteration=2)  # static: no topology updates
    assert float(row["flops_train_ratio"]) == pytest.approx(report.train_ratio)
    assert float(row["flops_test_ratio"]) == pytest.approx(report.test_ratio)
    assert float(row["size_ratio"]) == pytest.approx(report.size_ratio)
    assert report.train_ratio < 0.11 and report.test_ratio < 0.2


def test_same_seed_same_metrics(tmp_path):
    a = _run(tmp_path / "a", "--method", "rigl")
    b = _run(tmp_path / "b", "--method", "rigl")
    strip = [{k: v for k, v in r.items() if k != "fps"} for r in _rows(a)]
    assert strip == [{k: v for k, v in r.items() if k != "fps"} for r in _rows(b)]
    c = _run(tmp_path / "c", "--method", "rigl", "--seed", "1")
    assert [r["train_return"] for r in _rows(c)] != [r["train_return"] for r in _rows(a)]


DYNAMIC = (
    "--method",
    "rlx2",
    "buffer.dynamic_min=4",
    "buffer.dynamic_oldest=2",
    "buffer.dynamic_interval=2",
    "buffer.dynamic_threshold=0",
)


@pytest.mark.parametrize("extra", [(), DYNAMIC], ids=["mast", "rlx2_dynamic_buffer"])
def test_resume_continues_exactly(tmp_path, extra):
    whole = _run(tmp_path / "whole", "--t-max", "480", *extra)
    half = _run(tmp_path / "half", *extra)
    assert main(["--resume", str(half), "--no-progress", "run.t_max=480"]) == 0
    assert int(_rows(half)[-1]["t_env"]) == int(_rows(whole)[-1]["t_env"])
    sizes = [r["buffer_episodes"] for r in _rows(whole)]
    assert sizes == [r["buffer_episodes"] for r in _rows(half)]
    if extra:  # trimmed to 4-5 episodes at every check
        assert all(int(n) <= 5 for n in sizes) and int(_rows(whole)[-1]["episode"]) > 16
    w = load_checkpoint(whole)["learner"]
    h = load_checkpoint(half)["learner"]
    for k, v in w["nets"].items():
        assert torch.equal(v, h["nets"][k]), k
    assert all(torch.equal(m, h["sparsity"]["masks"][n]) for n, m in w["sparsity"]["masks"].items())


def test_resume_with_other_config_fails_and_keeps_folder(tmp_path, capsys):
    run_dir = _run(tmp_path)
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    err = _error(capsys, "--resume", str(run_dir), "learner.lr=0.1")
    assert "learner.lr is 0.0005 there, 0.1 here" in err
    err = _error(capsys, "--resume", str(run_dir), "--config", "vdn_mast")
    assert "has a different config: env.n_envs is 2 there, 8 here" in err
    assert before == {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    err = _error(capsys, "--resume", str(tmp_path / "nowhere"))
    assert "does not exist" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--alg", "dqn"], "unknown algorithm 'dqn'; known: vdn, qmix, ow_qmix, cw_qmix, res"),
        (["--method", "prune"], "unknown method 'prune'; known: dense, tiny, static, set"),
        (["--map", "9z"], "unknown map '9z'; known maps: "),
        (["--config", "nope"], "unknown preset 'nope'; known: "),
        (["--sparsity", "1.0"], "sparsity"),
        (["--sparsity", "-0.5"], "sparsity"),
        (["learner.lr=abc"], "bad value 'abc' for learner.lr: expected a number"),
        (["learner.nope=1"], "unknown config key 'learner.nope'"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / "runs"
    err = _error(capsys, "--out", str(out), "--no-progress", *argv)
    assert message in err
    assert not out.exists() or not any(out.iterdir())


def test_malformed_yaml(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("learner:\n  lr: [0.1\n")
    err = _error(capsys, "--config", str(bad), "--out", str(tmp_path / "runs"))
    assert "malformed YAML" in err and "bad.yaml" in err


def test_list_presets(capsys):
    assert main(["--list-presets"]) == 0
    names = capsys.readouterr().out.split()
    assert "qmix_mast" in names and "res_dense" in names


def test_callbacks_and_extra_flags(tmp_path):
    seen: dict[str, list] = {"start": [], "topo": [], "log": [], "end": []}

    class Recorder:
        def on_start(self, run):
            seen["start"].append(run.run_dir)

        def on_topology_update(self, run, t_env, layers):
            seen["topo"].append((t_env, len(layers)))

        def on_log(self, run, t_env, metrics):
            seen["log"].append(t_env)
            return {"extra_metric": float(len(run.export_layers()))}

        def on_end(self, run):
            seen["end"].append(run.t_env)

    def hook(parser):
        parser.add_argument("--extra-flag")

    out = tmp_path / "runs"
    rc = main(
        ["--out", str(out), *TINY, "--extra-flag", "x"],
        callbacks=[Recorder()],
        extra_args_hook=hook,
    )
    assert rc == 0
    (run_dir,) = out.iterdir()
    assert seen["start"] == [run_dir] and seen["end"] and seen["log"]
    assert seen["topo"][0][0] == 0 and len(seen["topo"]) >= 2
    assert float(_rows(run_dir)[-1]["extra_metric"]) == seen["topo"][0][1]
    assert resolve_config().sparsity.method == "mast"
