"""The sparse training methods by name: whether they mask, how they update, defaults.

A plain registry (no torch), read by the typed configuration and by the hardware side;
the drop/grow rules it names live in :mod:`mast.sparsity.updaters`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from mast.errors import UserError

__all__ = ["INITS", "METHODS", "MethodSpec", "get_method"]


@dataclass(frozen=True)
class MethodSpec:
    """A sparse training method: whether it masks, how it updates, and its defaults."""

    name: str
    """Registry key."""
    masked: bool
    """False for ``dense`` and ``tiny`` (no masks at all)."""
    updater: Literal["random", "gradient"] | None
    """Drop/grow rule (a key of :data:`mast.sparsity.updaters.UPDATERS`): grow at random
    or by ``|dense grad|``; ``None`` for a fixed topology."""
    zeta: float = 0.3
    """Default initial drop fraction."""
    decay: str = "cosine"
    """Default drop-fraction decay (key of :data:`mast.sparsity.schedule.DECAYS`)."""
    init: str = "random"
    """Default initial mask: ``random`` or ``magnitude`` (largest ``|w|`` at init)."""
    regrow_dropped: bool = False
    """Whether growth may pick the entries just dropped (RLx2's scheduler)."""

    @property
    def dynamic(self) -> bool:
        """Whether the topology changes during training."""
        return self.updater is not None


METHODS: Mapping[str, MethodSpec] = MappingProxyType(
    {
        "dense": MethodSpec("dense", masked=False, updater=None),
        "tiny": MethodSpec("tiny", masked=False, updater=None),
        "static": MethodSpec("static", masked=True, updater=None),
        "set": MethodSpec("set", masked=True, updater="random", zeta=0.3),
        "rigl": MethodSpec("rigl", masked=True, updater="gradient", zeta=0.3),
        "rlx2": MethodSpec(
            "rlx2",
            masked=True,
            updater="gradient",
            zeta=0.5,
            init="magnitude",
            regrow_dropped=True,
        ),
        "mast": MethodSpec("mast", masked=True, updater="gradient", zeta=0.5, init="magnitude"),
    }
)
"""Sparse training methods by name."""

INITS: tuple[str, ...] = ("random", "magnitude")


def get_method(name: str) -> MethodSpec:
    """Look up a method, raising :class:`UserError` with the known names if unknown."""
    try:
        return METHODS[name]
    except KeyError:
        raise UserError(f"unknown sparse method {name!r}; known: {', '.join(METHODS)}") from None
