"""Training configuration: presets, typed overrides and their error messages."""

from __future__ import annotations

import pytest

from mast.config import ALGS, METHODS, TrainConfig
from mast.errors import UserError
from mast.presets import (
    apply_overrides,
    config_from_dict,
    config_to_dict,
    diff_configs,
    load_preset,
    preset_names,
    resolve_config,
)


def test_default_is_mast_qmix_90_on_3m():
    cfg = resolve_config()
    assert (cfg.learner.alg, cfg.sparsity.method, cfg.env.map_name) == ("qmix", "mast", "3m")
    assert cfg.sparsity.sparsity == pytest.approx(0.9)
    assert cfg.targets.bootstrap == "soft_mellowmax" and cfg.targets.kind == "hybrid"
    assert cfg.buffer.on_fraction > 0


@pytest.mark.parametrize("alg", ALGS)
@pytest.mark.parametrize("method", METHODS)
def test_every_alg_method_preset_loads(alg, method):
    cfg = load_preset(f"{alg}_{method}")
    assert cfg.learner.alg == alg and cfg.sparsity.method == method
    assert f"{alg}_{method}" in preset_names()


def test_dense_baseline_uses_pymarl_targets():
    cfg = load_preset("qmix_dense")
    assert (cfg.targets.kind, cfg.targets.bootstrap, cfg.buffer.on_fraction) == (
        "one_step",
        "double_q",
        0.0,
    )


def test_only_rlx2_uses_the_dynamic_buffer():
    cfg = load_preset("qmix_rlx2")
    assert cfg.buffer.dynamic and (cfg.targets.kind, cfg.targets.n_step) == ("n_step", 3)
    assert not any(load_preset(f"qmix_{m}").buffer.dynamic for m in METHODS if m != "rlx2")


def test_overrides_are_typed():
    cfg = apply_overrides(
        TrainConfig(),
        [
            "learner.lr=1e-3",
            "sparsity.delta_t=5000",
            "agent.topology=per_agent",
            "env.continuing_episode=true",
            "sparsity.dense_layers=[agent.fc1.weight]",
            "run.t_max=2e5",
        ],
    )
    assert cfg.learner.lr == 1e-3 and isinstance(cfg.learner.lr, float)
    assert cfg.sparsity.delta_t == 5000 and cfg.agent.topology == "per_agent"
    assert cfg.env.continuing_episode is True
    assert cfg.sparsity.dense_layers == ("agent.fc1.weight",)
    assert cfg.run.t_max == 200000 and isinstance(cfg.run.t_max, int)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("learner.lrr=1", "unknown config key 'learner.lrr'"),
        ("nogroup.x=1", "unknown config key 'nogroup'"),
        ("learner.lr=fast", "bad value 'fast' for learner.lr: expected a number"),
        ("run.t_max=1.5", "bad value '1.5' for run.t_max: expected an integer"),
        (
            "env.obs_last_action=maybe",
            "bad value 'maybe' for env.obs_last_action: expected true or false",
        ),
        (
            "agent.topology=mixed",
            "unknown agent.topology 'mixed'; known: shared, per_type, per_agent",
        ),
        ("learner.alg=dqn", "unknown learner.alg 'dqn'; known: vdn, qmix, ow_qmix, cw_qmix, res"),
        ("sparsity.method=prune", "unknown sparse method 'prune'"),
        ("learner", "bad override 'learner': expected group.field=value"),
        ("buffer.dynamic_threshold=1.5", "buffer.dynamic_threshold must be in [0, 1], got 1.5"),
        ("buffer.dynamic_oldest=0", "buffer.dynamic_oldest must be > 0, got 0"),
        ("learner=3", "config key 'learner' is a group"),
    ],
)
def test_bad_override_names_key_and_value(override, message):
    with pytest.raises(UserError) as e:
        apply_overrides(TrainConfig(), [override])
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_sparsity_out_of_range():
    for bad in ("1.0", "-0.1"):
        with pytest.raises(UserError, match="sparsity"):
            resolve_config(flags={"sparsity.sparsity": bad})


def test_unknown_names():
    with pytest.raises(UserError, match="unknown algorithm 'dqn'; known: vdn"):
        resolve_config(alg="dqn")
    with pytest.raises(UserError, match="unknown method 'prune'; known: dense, tiny"):
        resolve_config(method="prune")
    with pytest.raises(UserError, match="unknown preset 'nope'; known: .*qmix_mast"):
        resolve_config("nope")


def test_yaml_file_with_base_and_malformed_yaml(tmp_path):
    good = tmp_path / "mine.yaml"
    good.write_text("base: qmix_dense\nlearner: {lr: 0.001}\nenv: {map_name: 2s3z}\n")
    cfg = resolve_config(str(good))
    assert cfg.learner.lr == 0.001 and cfg.env.map_name == "2s3z"
    assert cfg.sparsity.method == "dense"
    bad = tmp_path / "bad.yaml"
    bad.write_text("learner: {lr: [1, 2\n")
    with pytest.raises(UserError, match=r"malformed YAML in '.*bad.yaml' \(line \d+\)"):
        resolve_config(str(bad))
    with pytest.raises(UserError, match="config file '.*missing.yaml' does not exist"):
        resolve_config(str(tmp_path / "missing.yaml"))


def test_dict_round_trip_and_diff():
    cfg = apply_overrides(resolve_config(), ["learner.batch_size=8", "targets.sm_omega=5"])
    assert config_from_dict(config_to_dict(cfg)) == cfg
    assert diff_configs(cfg, resolve_config()) == ["learner.batch_size", "targets.sm_omega"]


def test_resolution_helpers_stay_importable_from_config():
    from mast import config, presets

    assert config.resolve_config is presets.resolve_config
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        config.nope  # noqa: B018


def test_smac_flags_reach_smac_envs_only():
    from mast.config import EnvConfig, smac_flags

    assert smac_flags(EnvConfig()) == {"continuing_episode": False, "obs_last_action": False}
    assert smac_flags(EnvConfig(name="mpe_spread")) == {}
    with pytest.raises(
        UserError,
        match=r"env.continuing_episode=true applies to SMAC environments \(builtin, sc2\), "
        r"not to env 'mpe_spread'",
    ):
        smac_flags(EnvConfig(name="mpe_spread", continuing_episode=True))


def test_legacy_per_type_flag_reads_as_topology():
    """Run folders written before agent.topology hold agent.per_type."""
    assert config_from_dict({"agent": {"per_type": True}}).agent.topology == "per_type"
    assert config_from_dict({"agent": {"per_type": "false"}}).agent.topology == "shared"


def test_mast_preset_uses_per_type_topology():
    """The paper's masks differ by agent type: MAST's preset is per-type (on a map with one
    unit type that is one weight set, as shared); the baselines share."""
    assert load_preset("qmix_mast").agent.topology == "per_type"
    assert load_preset("qmix_dense").agent.topology == "shared"


@pytest.mark.parametrize(
    ("preset", "map_name", "t_max", "overrides"),
    [
        (
            "qmix_mast_8m",
            "8m",
            400_000,
            ("run.test_interval=5000", "learner.epsilon_anneal_steps=5000", "learner.lr=0.002"),
        ),
        ("qmix_mast_2s3z", "2s3z", 300_000, ("run.test_interval=5000", "learner.lr=0.002")),
    ],
)
def test_map_presets_are_the_readme_sweeps_runs(preset, map_name, t_max, overrides):
    """``--config qmix_mast_8m`` / ``qmix_mast_2s3z`` train what the README's sweeps ran
    (``mast-sweep --maps MAP --methods mast --algs qmix --sparsity 0.9 --t-max T`` with
    the overrides, its schedule scaled to ``t_max``), bar the sweep's own run settings."""
    from sweep.spec import RunKey, SweepSpec

    spec = SweepSpec(
        out="unused", maps=(map_name,), methods=("mast",), t_max=t_max, overrides=overrides
    )
    key = RunKey(spec.cells()[0], 0)
    cfg = load_preset(preset)
    assert cfg.env.map_name == map_name and cfg.learner.lr == pytest.approx(0.002)
    assert preset in preset_names()
    assert diff_configs(cfg, spec.train_config(key)) == ["run.progress"]
