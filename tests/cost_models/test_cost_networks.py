"""The cost model's network table equals what the learners export, on every map and alg."""

from __future__ import annotations

import pytest

from cost_models.networks import SMAC_MAPS, MapDims, mast_network_layers
from mast.config import ALGS
from mast.learners import make_learner
from mast.presets import resolve_config
from mast.train import make_env


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
    info = make_env(cfg.env, 1, 0).get_env_info()
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
    """QMIX: every matrix; the other algorithms share the agent network.

    The cost model's table is the shared agent network (``agent.topology=shared``); a run
    with per-type masks is costed from its own exported records (``--masks``).
    """
    cfg = resolve_config(None, alg, "mast", {"env.map_name": map_name}, ["agent.topology=shared"])
    env = make_env(cfg.env, 1, 0)
    info = dict(env.get_env_info())
    exported = make_learner(cfg, info).sparsity.export_layers()
    modelled = mast_network_layers(map_name, 0.9)
    if alg != "qmix":
        exported = [lay for lay in exported if lay.role == "agent"]
        modelled = [lay for lay in modelled if lay.role == "agent"]
    assert [_record(lay) for lay in exported] == [_record(lay) for lay in modelled]
