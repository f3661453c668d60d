"""Mixing networks: per-agent values ``(B, T, n_agents)`` + state ``(B, T, S)`` -> ``Q_tot``.

- :class:`VDNMixer`: ``Q_tot = sum_i Q_i`` (Sunehag et al. 2018).
- :class:`QMixer`: monotonic mixing with hypernetworks (Rashid et al. 2018, PyMARL's
  ``qmix`` with ``hypernet_layers=2``): ``|W1(s)|`` and ``|W_final(s)|`` from 2-layer
  hypernets, bias ``b1(s)``, state value ``V(s)``.
- :class:`CentralFFMixer`: the unrestricted feed-forward ``Q*`` of weighted QMIX
  (Rashid et al. 2020, PyMARL's ``qmix_central`` with ``central_mixer=ff``).

Every mixer reports its weight matrices through ``layer_specs`` so masks cover them.
"""

from __future__ import annotations

import torch
from torch import nn

from mast.agents import LayerSpec

__all__ = ["VDNMixer", "QMixer", "CentralFFMixer", "MIXERS"]


class VDNMixer(nn.Module):
    """Sum of the agents' values (no weights)."""

    def forward(self, qs: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        return qs.sum(dim=-1, keepdim=True)

    def layer_specs(self) -> list[LayerSpec]:
        return []


class QMixer(nn.Module):
    """QMIX monotonic mixer; returns ``(B, T, 1)``.

    Parameters
    ----------
    n_agents, state_dim:
        Input sizes.
    embed_dim:
        Mixing embedding (PyMARL: 32).
    hypernet_embed:
        Hidden width of the 2-layer hypernetworks (PyMARL: 64).
    """

    def __init__(
        self, n_agents: int, state_dim: int, embed_dim: int = 32, hypernet_embed: int = 64
    ) -> None:
        super().__init__()
        self.n_agents, self.embed_dim = n_agents, embed_dim
        self.hyper_w1 = nn.Sequential(
            nn.Linear(state_dim, hypernet_embed),
            nn.ReLU(),
            nn.Linear(hypernet_embed, embed_dim * n_agents),
        )
        self.hyper_w_final = nn.Sequential(
            nn.Linear(state_dim, hypernet_embed), nn.ReLU(), nn.Linear(hypernet_embed, embed_dim)
        )
        self.hyper_b1 = nn.Linear(state_dim, embed_dim)
        self.v = nn.Sequential(nn.Linear(state_dim, embed_dim), nn.ReLU(), nn.Linear(embed_dim, 1))

    def forward(self, qs: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        lead = qs.shape[:-1]
        s = states.reshape(-1, states.shape[-1])
        q = qs.reshape(-1, 1, self.n_agents)
        w1 = self.hyper_w1(s).abs().view(-1, self.n_agents, self.embed_dim)
        b1 = self.hyper_b1(s).view(-1, 1, self.embed_dim)
        hidden = nn.functional.elu(torch.bmm(q, w1) + b1)
        w_final = self.hyper_w_final(s).abs().view(-1, self.embed_dim, 1)
        y = torch.bmm(hidden, w_final) + self.v(s).view(-1, 1, 1)
        return y.view(*lead, 1)

    def layer_specs(self) -> list[LayerSpec]:
        return [
            LayerSpec("hyper_w1.0.weight", "hypernet", 0, 1),
            LayerSpec("hyper_w1.2.weight", "hypernet", 0, 1, ("hyper_w1.0.weight",)),
            LayerSpec("hyper_w_final.0.weight", "hypernet", 0, 1),
            LayerSpec("hyper_w_final.2.weight", "hypernet", 0, 1, ("hyper_w_final.0.weight",)),
            LayerSpec("hyper_b1.weight", "hypernet", 0, 1),
            LayerSpec("v.0.weight", "mixer", 0, 1),
            LayerSpec("v.2.weight", "mixer", 0, 1, ("v.0.weight",)),
        ]


class CentralFFMixer(nn.Module):
    """Unrestricted ``Q*(s, u)``: a 3-layer ReLU MLP on ``[s, Q_1..Q_n]`` plus ``V(s)``.

    PyMARL's ``QMixerCentralFF`` (weighted QMIX, central embed 256 by default).
    """

    def __init__(self, n_agents: int, state_dim: int, embed_dim: int = 256) -> None:
        super().__init__()
        d_in = state_dim + n_agents
        self.net = nn.Sequential(
            nn.Linear(d_in, embed_dim),
            nn.ReLU(),
            nn.Linear(embed_dim, embed_dim),
            nn.ReLU(),
            nn.Linear(embed_dim, 1),
        )
        self.v = nn.Sequential(nn.Linear(state_dim, embed_dim), nn.ReLU(), nn.Linear(embed_dim, 1))

    def forward(self, qs: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([states, qs], dim=-1)) + self.v(states)

    def layer_specs(self) -> list[LayerSpec]:
        return [
            LayerSpec("net.0.weight", "mixer", 0, 1),
            LayerSpec("net.2.weight", "mixer", 0, 1, ("net.0.weight",)),
            LayerSpec("net.4.weight", "mixer", 0, 1, ("net.2.weight",)),
            LayerSpec("v.0.weight", "mixer", 0, 1),
            LayerSpec("v.2.weight", "mixer", 0, 1, ("v.0.weight",)),
        ]


MIXERS: dict[str, type[nn.Module]] = {"vdn": VDNMixer, "qmix": QMixer}
"""Mixers of the monotonic value factorisation, by name."""
