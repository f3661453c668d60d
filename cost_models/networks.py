"""The MAST/QMIX network as :class:`~mast.sparsity.layer.SparseLayer` records.

Training runs export their masks as ``SparseLayer`` lists; for sweeps over sparsity levels
(and before a run exists) :func:`mast_network_layers` builds random masks of the same
shapes: PyMARL's recurrent agent (``fc1 -> ReLU -> GRU(64) -> fc2``, input = observation +
last action one-hot + agent id one-hot) and the QMIX mixer (embed 32, two-layer
hypernetworks with embed 64, state-value head ``V``), on the SMAC environment dimensions
in :data:`SMAC_MAPS`.

Per-layer densities and non-zero counts come from the training side
(:func:`mast.sparsity.density.layer_densities` and ``layer_nnz``, imported, not restated):
``uniform`` gives every matrix the same density; ``erdos_renyi`` makes density
proportional to ``(n_in + n_out) / (n_in * n_out)`` with one scale for the whole network
(agent and mixer together), so the kept weights total ``(1 - sparsity)`` of all weights; a
layer that would exceed density 1 is made dense and the scale re-solved over the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from mast.errors import UserError
from mast.sparsity.density import DISTRIBUTIONS, check_sparsity, layer_densities, layer_nnz
from mast.sparsity.layer import SparseLayer

__all__ = [
    "MapDims",
    "SMAC_MAPS",
    "DENSITY_RULES",
    "check_sparsity",
    "get_map",
    "mast_network_layers",
]


@dataclass(frozen=True)
class MapDims:
    """Environment dimensions of one SMAC map (``get_env_info()`` with SMAC defaults)."""

    obs: int
    """Per-agent observation length."""
    state: int
    """Global state length."""
    n_actions: int
    """Actions per agent."""
    n_agents: int
    """Controlled agents."""
    episode_limit: int
    """Maximum episode length in environment steps."""

    def __post_init__(self) -> None:
        for k in ("obs", "state", "n_actions", "n_agents", "episode_limit"):
            v = getattr(self, k)
            if not isinstance(v, int) or v < 1:
                raise UserError(f"map dimension {k} must be a positive integer, got {v!r}")


SMAC_MAPS: Mapping[str, MapDims] = {
    "3m": MapDims(30, 48, 9, 3, 60),
    "8m": MapDims(80, 168, 14, 8, 120),
    "5m_vs_6m": MapDims(55, 98, 12, 5, 70),
    "2s3z": MapDims(80, 120, 11, 5, 120),
    "3s5z": MapDims(128, 216, 14, 8, 150),
    "MMM": MapDims(160, 290, 16, 10, 150),
    "2c_vs_64zg": MapDims(332, 342, 70, 2, 400),
}
"""SMAC environment dimensions per map (obs, state, actions, agents, episode limit)."""

DENSITY_RULES: tuple[str, ...] = tuple(DISTRIBUTIONS)
"""Per-layer density allocations (the training side's)."""

RNN_HIDDEN = 64
"""PyMARL's agent GRU width (``rnn_hidden_dim``)."""
MIXER_EMBED = 32
"""QMIX ``mixing_embed_dim``."""
HYPERNET_EMBED = 64
"""QMIX ``hypernet_embed``."""


def get_map(name: str) -> MapDims:
    """The dimensions of SMAC map ``name``; unknown names list the known ones."""
    try:
        return SMAC_MAPS[name]
    except KeyError:
        raise UserError(f"unknown map {name!r}; known: {', '.join(SMAC_MAPS)}") from None


def _shapes(dims: MapDims) -> list[tuple[str, str, tuple[int, int], tuple[str, ...], bool]]:
    """``(name, role, (out, in), inputs, recurrent)`` of every weight matrix, PyMARL order."""
    n, h = dims.n_agents, RNN_HIDDEN
    d_in = dims.obs + dims.n_actions + n
    fc1, ih, hh = "agent.fc1.weight", "agent.gru.ih.weight", "agent.gru.hh.weight"
    w1a, wfa, va = "mixer.hyper_w1.0.weight", "mixer.hyper_w_final.0.weight", "mixer.v.0.weight"
    return [
        (fc1, "agent", (h, d_in), (), False),
        (ih, "agent", (3 * h, h), (fc1,), False),
        (hh, "agent", (3 * h, h), (), True),
        ("agent.fc2.weight", "agent", (dims.n_actions, h), (ih, hh), False),
        (w1a, "hypernet", (HYPERNET_EMBED, dims.state), (), False),
        ("mixer.hyper_w1.2.weight", "hypernet", (MIXER_EMBED * n, HYPERNET_EMBED), (w1a,), False),
        (wfa, "hypernet", (HYPERNET_EMBED, dims.state), (), False),
        ("mixer.hyper_w_final.2.weight", "hypernet", (MIXER_EMBED, HYPERNET_EMBED), (wfa,), False),
        ("mixer.hyper_b1.weight", "hypernet", (MIXER_EMBED, dims.state), (), False),
        (va, "mixer", (MIXER_EMBED, dims.state), (), False),
        ("mixer.v.2.weight", "mixer", (1, MIXER_EMBED), (va,), False),
    ]


def _random_mask(shape: tuple[int, int], keep: int, rng: np.random.Generator) -> np.ndarray:
    flat = np.zeros(shape[0] * shape[1], dtype=bool)
    flat[rng.choice(flat.size, size=keep, replace=False)] = True
    return flat.reshape(shape)


def _row_balanced_mask(shape: tuple[int, int], keep: int, rng: np.random.Generator) -> np.ndarray:
    rows, cols = shape
    per_row = np.full(rows, keep // rows)
    per_row[rng.choice(rows, size=keep % rows, replace=False)] += 1
    mask = np.zeros(shape, dtype=bool)
    for r, k in enumerate(per_row):
        mask[r, rng.choice(cols, size=k, replace=False)] = True
    return mask


MASK_LAYOUTS = {"random": _random_mask, "row_balanced": _row_balanced_mask}
"""Where a layer's non-zeros sit (the count per layer comes from the density rule)."""


def mast_network_layers(
    map_name: str | MapDims = "3m",
    sparsity: float = 0.9,
    density: str = "erdos_renyi",
    seed: int = 0,
    layout: str = "random",
) -> list[SparseLayer]:
    """Random masks of the MAST QMIX network on a SMAC map.

    Parameters
    ----------
    map_name:
        Key of :data:`SMAC_MAPS`, or explicit :class:`MapDims`.
    sparsity:
        Overall fraction of pruned weights, in ``[0, 1)``.
    density:
        ``"erdos_renyi"`` or ``"uniform"`` per-layer allocation.
    seed:
        Seed of the mask positions (each layer keeps exactly ``round(density * size)``
        weights, at least one).
    layout:
        ``"random"``: positions uniform over the matrix. ``"row_balanced"``: every row holds
        ``floor`` or ``ceil`` of ``nnz / rows`` weights at random columns, the shape
        hardware-aware growth (``SparsityConfig.hw_aware_growth``) converges to.

    Returns
    -------
    list of SparseLayer
        Agent layers (``uses_per_env_step = uses_per_sample = n_agents``) then mixer and
        hypernetwork layers (``uses_per_env_step = 0``, ``uses_per_sample = 1``).
    """
    dims = map_name if isinstance(map_name, MapDims) else get_map(map_name)
    specs = _shapes(dims)
    shapes = {s[0]: s[2] for s in specs}
    if density not in DENSITY_RULES:
        raise UserError(f"unknown density rule {density!r}; known: {', '.join(DENSITY_RULES)}")
    if layout not in MASK_LAYOUTS:
        raise UserError(f"unknown mask layout {layout!r}; known: {', '.join(MASK_LAYOUTS)}")
    nnz = layer_nnz(shapes, layer_densities(shapes, sparsity, density))
    rng = np.random.default_rng(seed)
    layers = []
    for name, role, shape, inputs, recurrent in specs:
        mask = MASK_LAYOUTS[layout](shape, nnz[name], rng)
        acting = dims.n_agents if role == "agent" else 0
        layers.append(
            SparseLayer(
                name=name,
                role=role,
                mask=mask,
                uses_per_env_step=acting,
                uses_per_sample=dims.n_agents if role == "agent" else 1,
                inputs=inputs,
                recurrent=recurrent,
            )
        )
    return layers
