"""Episodic multi-step returns: one-step, n-step and TD(lambda) targets.

Conventions (shared by every function here). All inputs are ``[B, T, *extra]`` tensors
that broadcast to one common shape, which is also the output's:

``r_t[:, t]``
    reward of the transition from step ``t`` to ``t + 1``.
``d_t[:, t]``
    1 if the episode *terminated* at that transition (no bootstrap from its successor),
    else 0. An episode cut by the time limit keeps ``d_t = 0`` and is bootstrapped.
``mask_t[:, t]``
    1 for the valid steps ``t < length`` of each episode, 0 for padding. The valid steps
    must form a prefix; step ``t`` is the *last valid step* when ``mask_t[:, t + 1] == 0``
    or ``t == T - 1``.
``v_tp1[:, t]``
    bootstrapped (already mixed) target value of the state reached after step ``t``.

Padded steps (``mask_t == 0``) get the finite one-step value ``r_t + gamma (1 - d_t)
v_tp1_t`` so that the learner can multiply them by the mask. Targets carry no gradient
unless the inputs do; learners pass detached target-network values.
"""

from __future__ import annotations

import math
from numbers import Real

import torch

from mast.errors import UserError

__all__ = ["nstep_targets", "one_step_targets", "td_lambda_targets"]


def _check_gamma(gamma: float) -> None:
    if not (isinstance(gamma, Real) and 0.0 <= gamma <= 1.0):
        raise UserError(f"discount gamma must be in [0, 1], got {gamma!r}")


def _prepare(r_t, d_t, mask_t, v_tp1) -> tuple[torch.Tensor, ...]:
    """Broadcast the four inputs to one floating shape ``[B, T, *extra]``."""
    dtype = v_tp1.dtype if v_tp1.is_floating_point() else torch.float32
    r, d, m, v = (x.to(dtype) for x in torch.broadcast_tensors(r_t, d_t, mask_t, v_tp1))
    if r.dim() < 2:
        raise ValueError(f"targets need [B, T, ...] inputs, got shape {tuple(r.shape)}")
    return r, d, m, v


def _next_valid(m: torch.Tensor, k: int) -> torch.Tensor:
    """``mask[:, t + k]`` for every ``t`` (0 beyond the end of the time axis)."""
    out = torch.zeros_like(m)
    if k < m.shape[1]:
        out[:, : m.shape[1] - k] = m[:, k:]
    return out


def _shift(x: torch.Tensor, k: int) -> torch.Tensor:
    """``x[:, t + k]`` for every ``t``; zero beyond the end of the time axis."""
    return _next_valid(x, k)


def one_step_targets(r_t, d_t, mask_t, v_tp1, gamma: float) -> torch.Tensor:
    """One-step targets ``y_t = r_t + gamma (1 - d_t) v_tp1_t`` (``mask_t`` unused).

    Returns
    -------
    torch.Tensor
        ``[B, T, *extra]``.
    """
    _check_gamma(gamma)
    r, d, _, v = _prepare(r_t, d_t, mask_t, v_tp1)
    return r + gamma * (1.0 - d) * v


def nstep_targets(r_t, d_t, mask_t, v_tp1, gamma: float, n: int) -> torch.Tensor:
    """Truncated n-step returns bootstrapped with the target value after ``k`` steps.

    ``y_t = sum_{i<k} gamma^i r_{t+i} + gamma^k (1 - d_{t+k-1}) v_tp1_{t+k-1}`` where
    ``k <= n`` is the number of steps until the n-th step, the first terminated step
    (inclusive) or the last valid step (inclusive), whichever comes first. ``n = 1`` is
    the one-step target; ``n >= T`` is the Monte-Carlo return, bootstrapped only where
    the episode was truncated rather than terminated.

    Parameters
    ----------
    r_t, d_t, mask_t, v_tp1:
        ``[B, T, *extra]`` (see the module conventions).
    gamma:
        Discount in ``[0, 1]``.
    n:
        Number of reward steps, ``n >= 1``.

    Returns
    -------
    torch.Tensor
        ``[B, T, *extra]``; padded steps hold their one-step value.
    """
    _check_gamma(gamma)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise UserError(f"n-step length must be an integer >= 1, got {n!r}")
    r, d, m, v = _prepare(r_t, d_t, mask_t, v_tp1)
    out = torch.zeros_like(r)
    alive = torch.ones_like(r)  # 1 while step t + i is still part of the n-step window
    disc = 1.0
    for i in range(min(n, r.shape[1])):
        r_i, d_i, v_i = _shift(r, i), _shift(d, i), _shift(v, i)
        out = out + alive * disc * r_i
        more = (1.0 - d_i) * _next_valid(m, i + 1) if i + 1 < n else torch.zeros_like(r)
        ends = alive * (1.0 - more)
        out = out + ends * disc * gamma * (1.0 - d_i) * v_i
        alive = alive * more
        disc *= gamma
    return out


def td_lambda_targets(r_t, d_t, mask_t, v_tp1, gamma: float, lam: float) -> torch.Tensor:
    """Episodic lambda-returns (the pymarl2 recursion, with explicit truncation).

    Backwards over time, with ``c_t = mask_{t+1}`` (0 at the last valid step)::

        G_t = r_t + gamma (1 - d_t) [ (1 - lam c_t) v_tp1_t + lam c_t G_{t+1} ]

    i.e. ``G_t = r_t + gamma (1 - d_t) [(1 - lam) v_tp1_t + lam G_{t+1}]`` with
    ``G_{t+1}`` replaced by ``v_tp1_t`` at the last valid step. Equivalently, with
    ``N = length - t`` steps left and ``G^(k)`` the n-step return of
    :func:`nstep_targets`,
    ``G_t = (1 - lam) sum_{k=1}^{N-1} lam^(k-1) G^(k)_t + lam^(N-1) G^(N)_t``.
    ``lam = 0`` gives one-step targets, ``lam = 1`` the Monte-Carlo return bootstrapped
    at truncation.

    Parameters
    ----------
    r_t, d_t, mask_t, v_tp1:
        ``[B, T, *extra]`` (see the module conventions).
    gamma:
        Discount in ``[0, 1]``.
    lam:
        Trace decay ``lambda`` in ``[0, 1]``.

    Returns
    -------
    torch.Tensor
        ``[B, T, *extra]``; padded steps hold their one-step value.
    """
    _check_gamma(gamma)
    if not (isinstance(lam, Real) and 0.0 <= lam <= 1.0 and not math.isnan(lam)):
        raise UserError(f"TD(lambda) lambda must be in [0, 1], got {lam!r}")
    r, d, m, v = _prepare(r_t, d_t, mask_t, v_tp1)
    # G_t = a_t + b_t G_{t+1}: the coefficients are computed for all t at once, leaving
    # one multiply-add per step for the sequential part.
    c = _next_valid(m, 1)
    keep = gamma * (1.0 - d)
    a = r + keep * (1.0 - lam * c) * v
    b = keep * lam * c
    out = torch.empty_like(r)
    g = torch.zeros_like(r[:, 0])
    for t in range(r.shape[1] - 1, -1, -1):
        g = torch.addcmul(a[:, t], b[:, t], g)
        out[:, t] = g
    return out
