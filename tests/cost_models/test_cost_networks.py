"""The cost model's network table equals what the learners export, on every map and alg."""

from __future__ import annotations

import pytest

from cost_models.networks import SMAC_MAPS, MapDims, mast_network_layers
from mast.config import ALGS
from mast.envs import make_batch_env
from mast.learners import make_learner
from mast.presets import resolve_config


def _record(layer):
    return (
        layer.name,
        layer.role,
        layer.shape,
        layer.inputs,
        layer.recurrent,
        layer.uses_per_env_step,
        layer.uses_per_sample,
    )


@pytest.mark.parametrize("map_name", sorted(SMAC_MAPS))
def test_map_table_equals_the_environment(map_name):
    cfg = resolve_config(None, "qmix", "mast", {"env.map_name": map_name}, [])
    info = make_batch_env(cfg.env.name, map_name=map_name, n_envs=1, seed=0).get_env_info()
    assert SMAC_MAPS[map_name] == MapDims(
        obs=info["obs_shape"],
        state=info["state_shape"],
        n_actions=info["n_actions"],
        n_agents=info["n_agents"],
        episode_limit=info["episode_limit"],
    )


@pytest.mark.parametrize("alg", ALGS)
@pytest.mark.parametrize("map_name", sorted(SMAC_MAPS))
def test_network_shapes_equal_the_learners_export(map_name, alg):
    """QMIX: every matrix; the other algorithms share the agent network."""
    cfg = resolve_config(None, alg, "mast", {"env.map_name": map_name}, [])
    env = make_batch_env(cfg.env.name, map_name=map_name, n_envs=1, seed=0)
    exported = make_learner(cfg, dict(env.get_env_info())).sparsity.export_layers()
    modelled = mast_network_layers(map_name, 0.9)
    if alg != "qmix":
        exported = [lay for lay in exported if lay.role == "agent"]
        modelled = [lay for lay in modelled if lay.role == "agent"]
    assert [_record(lay) for lay in exported] == [_record(lay) for lay in modelled]
