"""Weighted QMIX (Rashid et al., NeurIPS 2020): OW-QMIX and CW-QMIX.

Besides the monotonic QMIX ``Q_tot`` the learner trains an unrestricted centralised
``Q*``: a separate central agent network (same recurrent architecture, training only) whose
per-agent utilities feed a feed-forward central mixer (PyMARL's ``qmix_central`` with
``central_mixer=ff``). Targets bootstrap from the *target* ``Q*``: the central target
agents' next-state values reduced per agent by the configured operator (double-Q picks the
online QMIX agents' argmax, as PyMARL's ``max_q_learner``) and mixed by the central target
mixer. Losses:

- QMIX: ``sum_t w_t (Q_tot - y)^2 / n``, with weight 1 for the up-weighted transitions
  and ``alpha`` (``learner.wqmix_alpha``) for the rest:
  OW ("optimistic"): up-weight ``Q_tot < y`` (TD error < 0);
  CW ("centrally weighted"): up-weight when the joint action is the QMIX-greedy one or
  ``y > Q*(s, u_greedy)``.
- central: plain masked MSE of ``Q*(s, u)`` against ``y``; total
  ``L = L_qmix + central_loss * L_central``.
"""

from __future__ import annotations

import torch
from torch import nn

from mast.learners.base import Batch, ValueLearner
from mast.mixers import CentralFFMixer
from mast.targets import bootstrap_values

__all__ = ["WeightedQLearner"]


class WeightedQLearner(ValueLearner):
    """OW-QMIX (``alg=ow_qmix``) and CW-QMIX (``alg=cw_qmix``)."""

    def build_networks(self, scale: float = 1.0) -> dict[str, nn.Module]:
        nets = super().build_networks(scale)
        embed = max(1, round(self.cfg.learner.central_mixing_embed_dim * scale))
        nets["central_agent"] = self._agent(scale)
        nets["central_mixer"] = CentralFFMixer(self.n_agents, self.state_dim, embed)
        return nets

    def layer_specs(self, nets=None):
        specs = super().layer_specs(nets)
        # The central agent runs in training only: role mixer, no use when acting.
        for name, spec in list(specs.items()):
            if name.startswith("central_agent."):
                n = spec.uses_per_sample
                specs[name] = type(spec)(
                    name,
                    "mixer",
                    0 if isinstance(n, int) else (0,) * len(n),
                    n,
                    spec.inputs,
                    spec.recurrent,
                )
        return specs

    def _central_q(self, nets: nn.ModuleDict, b: Batch, actions_in: torch.Tensor) -> torch.Tensor:
        return self._controller(nets["central_agent"]).unroll(b["obs"], actions_in)

    def _greedy(self, q: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
        return q.masked_fill(~avail, -float("inf")).argmax(dim=-1)

    def bootstrap(self, b: Batch, q_online: torch.Tensor, actions_in: torch.Tensor) -> torch.Tensor:
        q_star = self._central_q(self.target, b, actions_in)  # [B, T+1, n, A]
        self._target_q_star = q_star
        v_agents = bootstrap_values(
            self.cfg.targets, q_star[:, 1:], q_online[:, 1:], b["avail_actions"][:, 1:]
        )
        return self.target["central_mixer"](v_agents, b["state"][:, 1:])

    def loss(self, b, q, q_tot, y, mask_t, actions_in):
        actions = actions_in[:, :-1]
        n_valid = mask_t.sum().clamp(min=1.0)
        td = q_tot - y
        alpha = self.cfg.learner.wqmix_alpha
        ones = torch.ones_like(td)
        if self.cfg.learner.alg == "ow_qmix":
            w = torch.where(td < 0, ones, alpha * ones)
        else:
            with torch.no_grad():
                greedy = self._greedy(q.detach()[:, :-1], b["avail_actions"][:, :-1])
                is_greedy = (actions == greedy).all(dim=-1, keepdim=True)
                q_star_greedy = self._target_q_star[:, :-1].gather(-1, greedy.unsqueeze(-1))
                v_greedy = self.target["central_mixer"](
                    q_star_greedy.squeeze(-1), b["state"][:, :-1]
                )
            w = torch.where(is_greedy | (y > v_greedy), ones, alpha * ones)
        qmix_loss = (w.detach() * (td * mask_t) ** 2).sum() / n_valid
        central = self._central_q(self.nets, b, actions_in)[:, :-1]
        central_taken = central.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
        q_star = self.nets["central_mixer"](central_taken, b["state"][:, :-1])
        central_loss = (((q_star - y) * mask_t) ** 2).sum() / n_valid
        return qmix_loss + self.cfg.learner.central_loss * central_loss, (td * mask_t).detach()
