"""The grid spec: flags and YAML, cells and slots, bad input (sweep.spec, sweep.cli)."""

from __future__ import annotations

import pytest

from mast.errors import UserError
from sweep.cli import main
from sweep.spec import SweepSpec


def test_grid_cells_and_slots(tmp_path):
    spec = SweepSpec.from_dict(
        {"maps": "3m,2s3z", "methods": ["dense", "mast"], "sparsity": [0.8, 0.9], "seeds": 2},
        out=str(tmp_path),
    )
    names = [k.name for k in spec.runs()]
    # dense ignores the sparsity: one dense cell per map.
    assert names[:3] == ["qmix_dense_3m/s0", "qmix_mast_3m_sp0.8/s0", "qmix_mast_3m_sp0.9/s0"]
    assert len(names) == 2 * 3 * 2 and len(set(names)) == len(names)
    key = spec.runs()[2]
    cfg = spec.train_config(key)
    assert (cfg.env.map_name, cfg.sparsity.sparsity, cfg.run.seed) == ("3m", 0.9, 0)
    assert (cfg.sparsity.delta_t, cfg.sparsity.t_end) == (5000, 45000)  # 60k / 12, 3/4
    assert spec.slot(key) == tmp_path / "qmix_mast_3m_sp0.9" / "s0"


def test_yaml_round_trip_and_overrides(tmp_path):
    spec = SweepSpec.from_dict(
        {"maps": ["3m"], "overrides": {"learner.lr": 0.001}, "t_max": 1000}, out="x"
    )
    again = SweepSpec.from_dict(spec.to_dict())
    assert again == spec
    assert spec.train_config(spec.runs()[0]).learner.lr == 0.001
    assert SweepSpec.from_dict(spec.to_dict(), t_max=5).t_max == 5  # flags win over the file


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"methods": "dense,prune"}, "unknown method 'prune'; known: dense, tiny, static"),
        ({"algs": "dqn"}, "unknown algorithm 'dqn'; known: vdn, qmix"),
        ({"sparsity": "1.0"}, "sparsity must be in [0, 1), got 1.0"),
        ({"seeds": "many"}, "bad value 'many' for seeds: expected a number"),
        ({"seedz": 3}, "unknown sweep key 'seedz'; known: "),
        ({"device": "cuda"}, "device 'cuda' needs gpus_per_run > 0"),
        ({"overrides": ["learner.lr"]}, "override 'learner.lr' is not of the form"),
    ],
)
def test_bad_spec(data, message):
    with pytest.raises(UserError, match=None) as err:
        SweepSpec.from_dict(data, out="x")
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--maps", "9z"], "unknown map '9z'; known maps: "),
        (["--methods", "prune"], "unknown method 'prune'"),
        (["learner.nope=1"], "unknown config key 'learner.nope'"),
        (["learner.lr=abc"], "bad value 'abc' for learner.lr: expected a number"),
        (["--hw-profile", "nope"], "nope"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / "sw"
    assert main(["--out", str(out), "--t-max", "100", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("mast-sweep: error: ")
    assert message in err
    assert not out.exists()


def test_grid_file_errors(tmp_path, capsys):
    assert main([str(tmp_path / "none.yaml")]) == 2
    assert "grid file" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("maps: [3m\n")
    assert main([str(bad)]) == 2
    assert "malformed YAML" in capsys.readouterr().err
    (tmp_path / "g.yaml").write_text("maps: [3m]\n")
    assert main([str(tmp_path / "g.yaml")]) == 2
    assert "needs an output folder" in capsys.readouterr().err
