"""Value-based MARL learners by algorithm name (one family, shared machinery in ``base``).

``LEARNERS[alg](cfg, env_info)`` builds the networks, their masks (``mast.sparsity``),
the target networks and the optimiser; ``learner.train(batch, t_env, episode)`` runs one
iteration. ``vdn`` and ``qmix`` use :class:`~mast.learners.base.ValueLearner` with their
mixer, ``ow_qmix``/``cw_qmix`` :class:`~mast.learners.wqmix.WeightedQLearner`, ``res``
:class:`~mast.learners.res.RESLearner`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from mast.learners.base import Batch, TrainStats, ValueLearner
from mast.learners.res import RESLearner
from mast.learners.wqmix import WeightedQLearner

__all__ = ["LEARNERS", "Batch", "TrainStats", "ValueLearner", "make_learner"]

LEARNERS: Mapping[str, type[ValueLearner]] = MappingProxyType(
    {
        "vdn": ValueLearner,
        "qmix": ValueLearner,
        "ow_qmix": WeightedQLearner,
        "cw_qmix": WeightedQLearner,
        "res": RESLearner,
    }
)
"""Learner class per ``learner.alg``."""


def make_learner(cfg, env_info: dict) -> ValueLearner:
    """The learner of ``cfg.learner.alg`` for an environment described by ``env_info``."""
    return LEARNERS[cfg.learner.alg](cfg, env_info)
