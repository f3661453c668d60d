"""RES: Regularized Softmax deep multi-agent Q-learning (Pan et al., NeurIPS 2021) on QMIX.

Two changes to QMIX, as we read the paper:

1. **Softmax bootstrap over an approximate joint-action set.** The max over joint actions
   in the target is replaced by a softmax-weighted mean
   ``sm_beta(Q) = sum_u softmax(beta Q_tot(s', u)) Q_tot(s', u)`` over the set ``U_hat``:
   the greedy joint action ``u_hat`` (per-agent argmax of the target agents' Q, or of the
   online agents' with ``targets.bootstrap=double_q``) and every joint action that differs
   from it in one agent's action (``1 + n (|A| - 1)`` joint actions, unavailable ones
   excluded). ``Q_tot`` is the target mixer evaluated on each candidate's per-agent values.
   This replaces the per-agent bootstrap operator (``targets.bootstrap`` max / Soft
   Mellowmax is not used); ``targets.kind`` still selects the return (one-step, n-step,
   TD(lambda), hybrid).
2. **Regularisation toward a baseline.** ``L = E[(Q_tot - y)^2] + lambda E[(Q_tot - G)^2]``
   with the baseline ``G_t`` the discounted Monte-Carlo return of the stored episode from
   ``t`` on (truncated at a time-limit cut), penalising joint values far above what the
   behaviour actually obtained.

``learner.res_beta`` and ``learner.res_lambda`` are configurable; their defaults are
chosen here (the paper tunes them per task).
"""

from __future__ import annotations

import torch

from mast.learners.base import Batch, ValueLearner

__all__ = ["RESLearner", "discounted_returns", "softmax_joint_value"]


def discounted_returns(
    r_t: torch.Tensor, d_t: torch.Tensor, mask_t: torch.Tensor, gamma: float
) -> torch.Tensor:
    """``G_t = r_t + gamma (1 - d_t) G_{t+1}`` within each episode, ``[B, T, 1]``."""
    g = torch.zeros_like(r_t)
    nxt = torch.zeros_like(r_t[:, 0])
    for t in range(r_t.shape[1] - 1, -1, -1):
        nxt = (r_t[:, t] + gamma * (1.0 - d_t[:, t]) * nxt) * mask_t[:, t]
        g[:, t] = nxt
    return g


def softmax_joint_value(
    mixer,
    q: torch.Tensor,
    avail: torch.Tensor,
    greedy: torch.Tensor,
    states: torch.Tensor,
    beta: float,
) -> torch.Tensor:
    """Softmax value over ``u_hat`` and its one-agent deviations.

    Parameters
    ----------
    mixer:
        Maps per-agent values ``[..., n]`` and states ``[..., S]`` to ``[..., 1]``.
    q, avail:
        Per-agent Q-values and availability ``[B, T, n, A]``.
    greedy:
        Greedy per-agent actions ``[B, T, n]`` (available ones).
    states:
        ``[B, T, S]``.
    beta:
        Inverse temperature.

    Returns
    -------
    torch.Tensor
        ``[B, T, 1]``; 0 where no agent has an available action (padding).
    """
    bsz, t_len, n, a = q.shape
    q_hat = q.gather(-1, greedy.unsqueeze(-1)).squeeze(-1)  # [B, T, n]
    cand = q_hat.unsqueeze(2).unsqueeze(2).expand(bsz, t_len, n, a, n).clone()
    idx = torch.arange(n, device=q.device)
    cand[:, :, idx, :, idx] = q.permute(2, 0, 1, 3)  # candidate (i, a): agent i plays a
    valid = avail.bool().clone()
    # u_hat appears once per agent (a = greedy_i); keep only agent 0's copy.
    dup = torch.nn.functional.one_hot(greedy, a).bool()
    dup[:, :, 0] = False
    valid &= ~dup
    cand = cand.reshape(bsz, t_len, n * a, n)
    s = states.unsqueeze(2).expand(bsz, t_len, n * a, states.shape[-1])
    q_tot = mixer(cand, s).squeeze(-1)  # [B, T, n*A]
    valid = valid.reshape(bsz, t_len, n * a)
    logits = (beta * q_tot).masked_fill(~valid, -float("inf"))
    any_valid = valid.any(dim=-1, keepdim=True)
    logits = torch.where(any_valid, logits, torch.zeros_like(logits))
    w = torch.softmax(logits, dim=-1)
    v = (w * torch.where(valid, q_tot, torch.zeros_like(q_tot))).sum(-1, keepdim=True)
    return torch.where(any_valid, v, torch.zeros_like(v))


class RESLearner(ValueLearner):
    """QMIX with the RES softmax bootstrap and return-baseline regulariser."""

    def bootstrap(self, b: Batch, q_online: torch.Tensor, actions_in: torch.Tensor) -> torch.Tensor:
        q_next = self.target_controller.unroll(b["obs"], actions_in)[:, 1:]
        avail = b["avail_actions"][:, 1:].bool()
        chooser = q_online[:, 1:] if self.cfg.targets.bootstrap == "double_q" else q_next
        greedy = chooser.masked_fill(~avail, -float("inf")).argmax(dim=-1)
        return softmax_joint_value(
            self.target["mixer"],
            q_next,
            avail,
            greedy,
            b["state"][:, 1:],
            self.cfg.learner.res_beta,
        )

    def loss(self, b, q, q_tot, y, mask_t, actions_in):
        n_valid = mask_t.sum().clamp(min=1.0)
        td = (q_tot - y) * mask_t
        with torch.no_grad():
            g = discounted_returns(
                b["reward"].unsqueeze(-1),
                b["terminated"].float().unsqueeze(-1),
                mask_t,
                self.cfg.targets.gamma,
            )
        reg = ((q_tot - g) * mask_t) ** 2
        loss = (td**2).sum() / n_valid + self.cfg.learner.res_lambda * reg.sum() / n_valid
        return loss, td.detach()
