"""Applying a :class:`~mast.targets.config.TargetConfig` to tensors: targets and bootstraps."""

from __future__ import annotations

import torch

from mast.targets.bootstrap import greedy_bootstrap, soft_mellowmax
from mast.targets.config import TargetConfig, hybrid_one_step_weight
from mast.targets.returns import nstep_targets, one_step_targets, td_lambda_targets

__all__ = ["bootstrap_values", "make_targets"]


def make_targets(
    cfg: TargetConfig,
    r_t: torch.Tensor,
    d_t: torch.Tensor,
    mask_t: torch.Tensor,
    v_tp1: torch.Tensor,
    t_env: int,
) -> torch.Tensor:
    """Targets ``[B, T, *extra]`` of the configured kind at environment step ``t_env``.

    ``hybrid``: ``(1 - u) G^lambda + u G^(1)`` with ``u = hybrid_one_step_weight(cfg,
    t_env)``; only the returns with non-zero weight are computed. Inputs follow the
    conventions of :mod:`mast.targets.returns`.
    """
    if cfg.kind == "one_step":
        return one_step_targets(r_t, d_t, mask_t, v_tp1, cfg.gamma)
    if cfg.kind == "n_step":
        return nstep_targets(r_t, d_t, mask_t, v_tp1, cfg.gamma, cfg.n_step)
    if cfg.kind == "td_lambda":
        return td_lambda_targets(r_t, d_t, mask_t, v_tp1, cfg.gamma, cfg.td_lambda)
    u = hybrid_one_step_weight(cfg, t_env)
    if u >= 1.0:
        return one_step_targets(r_t, d_t, mask_t, v_tp1, cfg.gamma)
    g_lam = td_lambda_targets(r_t, d_t, mask_t, v_tp1, cfg.gamma, cfg.td_lambda)
    if u <= 0.0:
        return g_lam
    return (1.0 - u) * g_lam + u * one_step_targets(r_t, d_t, mask_t, v_tp1, cfg.gamma)


def bootstrap_values(
    cfg: TargetConfig,
    q_target: torch.Tensor,
    q_online: torch.Tensor | None = None,
    avail: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-agent bootstrap values ``q_target.shape[:-1]`` by ``cfg.bootstrap``.

    ``q_online`` (the online network's Q-values of the same next states) is needed for
    ``double_q`` only. Unavailable actions are ignored; rows without any available
    action give 0.
    """
    if cfg.bootstrap == "soft_mellowmax":
        return soft_mellowmax(q_target, cfg.sm_omega, cfg.sm_alpha, avail)
    return greedy_bootstrap(q_target, q_online, avail, double_q=cfg.bootstrap == "double_q")
