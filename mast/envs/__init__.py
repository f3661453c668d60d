"""Multi-agent environments: SMAC's API, the built-in combat simulator and adapters.

Environment families (``ENVS``): ``builtin`` (default; the numpy SMAC re-implementation,
batched), ``sc2`` (real SMAC, needs the ``smac`` package from GitHub and StarCraft II),
``mpe_spread`` (PettingZoo MPE ``simple_spread``, optional extra ``mpe``).

>>> from mast.envs import make_batch_env
>>> benv = make_batch_env("builtin", map_name="3m", n_envs=8, seed=0)
>>> benv.get_env_info()["obs_shape"]
30

Maps (``MAPS``) and unit types are YAML data in ``mast/envs/maps/``; add a map by
dropping a file there or with ``register_map(path)``. ``python -m mast.envs`` plays the
scripted policies and prints win rates; ``bench/env_throughput.py`` measures speed.
Tests and scenarios can place units directly with ``BuiltinBatchEnv.set_units``.
"""

from mast.envs.base import BatchEnv, MultiAgentEnv, VectorEnv
from mast.envs.builtin import BuiltinBatchEnv, BuiltinEnv, RewardConfig
from mast.envs.engine import CombatEngine, EngineConfig
from mast.envs.maps import MAPS, UNIT_TYPES, MapSpec, UnitType, load_map, register_map
from mast.envs.registry import ENVS, make_batch_env, make_env

__all__ = [
    "BatchEnv",
    "BuiltinBatchEnv",
    "BuiltinEnv",
    "CombatEngine",
    "ENVS",
    "EngineConfig",
    "MAPS",
    "MapSpec",
    "MultiAgentEnv",
    "RewardConfig",
    "UNIT_TYPES",
    "UnitType",
    "VectorEnv",
    "load_map",
    "make_batch_env",
    "make_env",
    "register_map",
]
