"""Per-agent bootstrap operators: max, double-Q and Soft Mellowmax over the action dim.

All operators reduce the last dimension (actions) of a Q tensor of any leading shape,
ignore unavailable actions, and return ``0`` for a row in which no action is available
(padded time steps carry all-zero availability; a finite value keeps ``0 * value``
finite when the learner masks those steps out).
"""

from __future__ import annotations

import math
from numbers import Real

import torch

from mast.errors import UserError

__all__ = ["greedy_bootstrap", "soft_mellowmax"]


def _avail_mask(q: torch.Tensor, avail: torch.Tensor | None) -> torch.Tensor:
    """Boolean availability of ``q``'s shape (all True when ``avail`` is None)."""
    if avail is None:
        return torch.ones_like(q, dtype=torch.bool)
    if avail.shape != q.shape:
        raise ValueError(
            f"avail shape {tuple(avail.shape)} does not match Q shape {tuple(q.shape)}"
        )
    return avail.to(device=q.device, dtype=torch.bool)


def soft_mellowmax(
    q: torch.Tensor,
    omega: float,
    alpha: float = 1.0,
    avail: torch.Tensor | None = None,
) -> torch.Tensor:
    """Soft Mellowmax of ``q`` over its last dimension.

    ``sm_w(q) = (1/w) log( sum_a softmax(alpha q)_a exp(w q_a) )
             = (1/w) (logsumexp((alpha + w) q) - logsumexp(alpha q))``
    taken over the available actions only.

    Parameters
    ----------
    q:
        Q-values ``[..., n_actions]`` (floating point).
    omega:
        Inverse temperature ``w > 0`` of the mellowmax; ``math.inf`` gives the max.
        ``w -> inf`` tends to the max over available actions, ``w -> 0`` to the
        ``softmax(alpha q)``-weighted mean.
    alpha:
        Inverse temperature of the softmax weighting, finite and ``>= 0`` (``0`` gives
        plain mellowmax; a negative one would weight the smallest Q-values most, where
        this evaluation loses all precision).
    avail:
        Optional availability ``[..., n_actions]`` (bool or 0/1); unavailable actions are
        excluded from both log-sum-exps.

    Returns
    -------
    torch.Tensor
        ``q.shape[:-1]``, dtype of ``q``; 0 where no action is available.

    Notes
    -----
    Evaluated as ``m + (1/w) log1p( sum_a p_a expm1(w (q_a - m)) )`` with ``m`` the max
    over available actions and ``p = softmax(alpha q)``. Because ``sum_a p_a = 1`` this is
    the formula above, but it keeps full relative precision when ``w (q - m)`` is small
    (small ``omega``) and cannot overflow for large ``omega`` (the argument of the
    ``log1p`` is at least ``max_a p_a - 1 >= 1/n_actions - 1``). Half-precision inputs
    are evaluated in float32.
    """
    if not (isinstance(omega, Real) and omega > 0 and not math.isnan(omega)):
        raise UserError(f"soft mellowmax omega must be > 0, got {omega!r}")
    if not (isinstance(alpha, Real) and math.isfinite(alpha) and alpha >= 0):
        raise UserError(f"soft mellowmax alpha must be a finite number >= 0, got {alpha!r}")
    if not q.is_floating_point():
        raise ValueError(f"soft_mellowmax needs a floating-point Q tensor, got {q.dtype}")
    work = q.float() if q.element_size() < 4 else q
    if avail is None:
        unavailable = None
        any_ok = torch.ones(q.shape[:-1], dtype=torch.bool, device=q.device)
    else:
        ok = _avail_mask(q, avail)
        any_ok = ok.any(dim=-1)
        # Rows without any available action are evaluated over all actions (keeping
        # values and gradients finite) and then replaced by 0.
        unavailable = ~ok & any_ok.unsqueeze(-1)
        work = work.masked_fill(unavailable, -math.inf)
    m = work.amax(dim=-1)
    if math.isinf(omega):
        return torch.where(any_ok, m, torch.zeros_like(m)).to(q.dtype)
    d = work - m.unsqueeze(-1)  # <= 0; -inf where unavailable
    if alpha > 0 or unavailable is None:
        logits = alpha * d
    else:  # alpha * -inf would be nan (alpha = 0)
        logits = (alpha * d.masked_fill(unavailable, 0.0)).masked_fill(unavailable, -math.inf)
    p = torch.softmax(logits, dim=-1)
    s = (p * torch.expm1(omega * d)).sum(dim=-1)
    out = m + torch.log1p(s) / omega
    return torch.where(any_ok, out, torch.zeros_like(out)).to(q.dtype)


def greedy_bootstrap(
    q_target: torch.Tensor,
    q_online: torch.Tensor | None,
    avail: torch.Tensor | None,
    double_q: bool,
) -> torch.Tensor:
    """Max (``double_q=False``) or double-Q (``double_q=True``) bootstrap value.

    Parameters
    ----------
    q_target:
        Target-network Q-values ``[..., n_actions]``.
    q_online:
        Online-network Q-values of the same shape; required when ``double_q``.
    avail:
        Optional availability of the same shape; unavailable actions are never chosen.
    double_q:
        Choose the action by the online network's argmax and evaluate it with the target
        network (van Hasselt et al. 2016) instead of the target network's own max.

    Returns
    -------
    torch.Tensor
        ``q_target.shape[:-1]``, dtype of ``q_target``; 0 where no action is available.
    """
    ok = _avail_mask(q_target, avail)
    any_ok = ok.any(dim=-1)
    if double_q:
        if q_online is None:
            raise ValueError("double_q bootstrap needs the online network's Q-values")
        if q_online.shape != q_target.shape:
            raise ValueError(
                f"online Q shape {tuple(q_online.shape)} does not match target Q shape "
                f"{tuple(q_target.shape)}"
            )
        fill = torch.finfo(q_online.dtype).min
        a_star = q_online.detach().masked_fill(~ok, fill).argmax(dim=-1, keepdim=True)
        v = q_target.gather(-1, a_star).squeeze(-1)
    else:
        v = q_target.masked_fill(~ok, torch.finfo(q_target.dtype).min).amax(dim=-1)
    return torch.where(any_ok, v, torch.zeros_like(v))
