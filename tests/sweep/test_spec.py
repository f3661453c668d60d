"""The grid spec: flags and YAML, cells and slots, bad input (sweep.spec, sweep.cli)."""

from __future__ import annotations

import pytest
import yaml

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


MAST_TARGETS = {
    "methods": ["dense"],
    "overrides": {"targets.kind": "hybrid", "targets.bootstrap": "soft_mellowmax"},
}


def test_variants_add_cells_with_their_overrides(tmp_path):
    spec = SweepSpec.from_dict(
        {
            "methods": "dense,mast",
            "seeds": 1,
            "overrides": ["learner.lr=0.001", "targets.kind=td_lambda"],
            "variants": {"mast_targets": MAST_TARGETS, "lr": {"overrides": ["learner.lr=0.002"]}},
        },
        out=str(tmp_path),
    )
    names = [k.name for k in spec.runs()]
    assert names == [
        "qmix_dense_3m/s0",
        "qmix_dense_3m+mast_targets/s0",
        "qmix_dense_3m+lr/s0",
        "qmix_mast_3m_sp0.9/s0",
        "qmix_mast_3m_sp0.9+lr/s0",  # mast_targets names only dense
    ]
    plain, targets, lr, mast, mast_lr = (spec.train_config(k) for k in spec.runs())
    assert (plain.targets.kind, plain.targets.bootstrap) == ("td_lambda", "double_q")
    # The variant's overrides come after the spec's.
    assert (targets.targets.kind, targets.targets.bootstrap) == ("hybrid", "soft_mellowmax")
    assert targets.learner.lr == plain.learner.lr == 0.001
    assert (lr.learner.lr, lr.targets.kind, lr.sparsity.method) == (0.002, "td_lambda", "dense")
    assert (mast_lr.learner.lr, mast_lr.sparsity.sparsity) == (0.002, 0.9)
    assert mast.learner.lr == 0.001
    assert spec.slot(spec.runs()[1]) == tmp_path / "qmix_dense_3m+mast_targets" / "s0"
    again = SweepSpec.from_dict(yaml.safe_load(yaml.safe_dump(spec.to_dict(), sort_keys=False)))
    assert again == spec


def test_a_grid_without_variants_keeps_its_cells(tmp_path):
    plain = SweepSpec.from_dict({"methods": "dense,mast", "seeds": 2}, out="x")
    more = SweepSpec.from_dict(
        {"methods": "dense,mast", "seeds": 2, "variants": {"mast_targets": MAST_TARGETS}}, out="x"
    )
    assert set(k.name for k in plain.runs()) < set(k.name for k in more.runs())


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
        ({"variants": {"v": {"overrides": ["x"]}}}, "override 'x' is not of the form"),
        ({"variants": {"Big": {}}}, "bad variant name 'Big': lower-case letters"),
        ({"variants": ["a"]}, "variants must be a mapping of name"),
        ({"variants": {"v": {"method": ["dense"]}}}, "unknown key 'method' in variant 'v'"),
        (
            {"methods": "mast", "variants": {"v": {"methods": "dense"}}},
            "variant 'v' names method 'dense', which is not in the grid; the grid's methods: mast",
        ),
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
