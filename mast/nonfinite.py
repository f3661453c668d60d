"""The non-finite guard: a diverging run stops cleanly instead of training on NaN.

The learner checks its loss and ``Q_tot`` before the backward pass and the gradient norm
before the optimizer step (so a topology update never sees a non-finite gradient or
weight), the training loop checks every iteration's figures, and every weight and
optimizer state is checked before a checkpoint is written, so a good checkpoint is never
overwritten with non-finite state. ``mast-train`` then prints one line naming the
iteration and the last good checkpoint and exits with :data:`EXIT_NONFINITE`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

__all__ = ["EXIT_NONFINITE", "NonFiniteError", "first_nonfinite", "check_scalars"]

EXIT_NONFINITE = 3
"""Exit status of ``mast-train`` when the run stopped on a non-finite value (bad input: 2)."""


class NonFiniteError(RuntimeError):
    """Training produced a non-finite loss, Q-value, gradient norm or weight."""


def first_nonfinite(tree: object, prefix: str = "") -> str | None:
    """Dotted name of the first floating tensor in a nested dict/list with a NaN or inf."""
    if isinstance(tree, torch.Tensor):
        if tree.is_floating_point() and not bool(torch.isfinite(tree).all()):
            return prefix or "tensor"
        return None
    if isinstance(tree, Mapping):
        items = tree.items()
    elif isinstance(tree, list | tuple):
        items = enumerate(tree)
    else:
        return None
    for k, v in items:
        bad = first_nonfinite(v, f"{prefix}.{k}" if prefix else str(k))
        if bad is not None:
            return bad
    return None


def check_scalars(iteration: int, **values: float) -> None:
    """Raise :class:`NonFiniteError` naming the first of ``values`` that is not finite."""
    for name, v in values.items():
        if not math.isfinite(v):
            raise NonFiniteError(f"non-finite {name} ({v}) at iteration {iteration}")
