"""Per-layer density allocation (uniform, Erdos-Renyi) and the equal-size ``tiny`` width.

Both distributions solve one equation over the masked tensors ``l`` (RigL / RLx2
convention): ``sum_l d_l * N_l = (1 - S) * sum_l N_l`` with ``d_l = eps * raw_l`` for the
free layers and ``d_l = 1`` for the dense ones, where ``N_l`` is the tensor's element count
and ``S`` the target overall sparsity. ``raw_l`` is 1 for ``uniform`` and
``(n_in + n_out) / (n_in * n_out)`` for ``erdos_renyi`` (the last two dimensions of the
tensor are ``(out, in)``; a stacked per-agent-type tensor ``(n_types, out, in)`` has the
density of one of its matrices). A free layer whose ``eps * raw_l`` would exceed 1 becomes
dense and ``eps`` is re-solved over the rest until every density is at most 1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from math import prod

from mast.errors import UserError

__all__ = [
    "DISTRIBUTIONS",
    "check_sparsity",
    "layer_densities",
    "layer_nnz",
    "sparse_param_count",
    "tiny_width",
]


def _uniform_raw(shape: tuple[int, ...]) -> float:
    return 1.0


def _erdos_renyi_raw(shape: tuple[int, ...]) -> float:
    n_out, n_in = shape[-2], shape[-1]
    return (n_in + n_out) / (n_in * n_out)


DISTRIBUTIONS: Mapping[str, Callable[[tuple[int, ...]], float]] = {
    "uniform": _uniform_raw,
    "erdos_renyi": _erdos_renyi_raw,
}
"""Density distributions by name: each maps a tensor shape to its raw (unscaled) density."""


def check_sparsity(sparsity: float) -> float:
    """Return ``sparsity`` as a float, or raise :class:`UserError` unless it is in [0, 1)."""
    try:
        value = float(sparsity)
    except (TypeError, ValueError):
        raise UserError(f"sparsity must be a number in [0, 1), got {sparsity!r}") from None
    if not 0.0 <= value < 1.0:
        raise UserError(f"sparsity must be in [0, 1), got {sparsity!r}")
    return value


def layer_densities(
    shapes: Mapping[str, tuple[int, ...]],
    sparsity: float,
    distribution: str = "erdos_renyi",
    dense: Iterable[str] = (),
) -> dict[str, float]:
    """Density of every tensor so that the overall density is ``1 - sparsity``.

    Parameters
    ----------
    shapes:
        Tensor name -> shape (at least 2-D; the last two dimensions are ``(out, in)``).
    sparsity:
        Target overall sparsity in [0, 1), counted over all tensors in ``shapes``
        (dense ones included, so they consume part of the budget).
    distribution:
        A key of :data:`DISTRIBUTIONS`.
    dense:
        Names kept fully dense.

    Returns
    -------
    dict
        Name -> density in (0, 1], in the order of ``shapes``.

    Raises
    ------
    UserError
        Unknown distribution, sparsity outside [0, 1), a shape below 2-D, an unknown dense
        name, or dense tensors that alone exceed the parameter budget.
    """
    if distribution not in DISTRIBUTIONS:
        raise UserError(
            f"unknown density distribution {distribution!r}; known: {', '.join(DISTRIBUTIONS)}"
        )
    sparsity = check_sparsity(sparsity)
    for name, shape in shapes.items():
        if len(shape) < 2 or 0 in shape:
            raise UserError(f"tensor {name!r}: need a non-empty shape of >= 2 dims, got {shape}")
    dense_set = set(dense)
    unknown = sorted(dense_set - set(shapes))
    if unknown:
        raise UserError(f"dense layer {unknown[0]!r} is not a masked tensor")
    if sparsity == 0.0:
        return {name: 1.0 for name in shapes}
    raw_fn = DISTRIBUTIONS[distribution]
    numel = {name: prod(shape) for name, shape in shapes.items()}
    raw = {name: raw_fn(tuple(shape)) for name, shape in shapes.items()}
    budget = (1.0 - sparsity) * sum(numel.values())
    while True:
        free = [n for n in shapes if n not in dense_set]
        rhs = budget - sum(numel[n] for n in dense_set)
        if rhs <= 0 or not free:
            raise UserError(
                f"dense layers hold {sum(numel[n] for n in dense_set)} parameters, more than "
                f"the {budget:.0f} allowed at sparsity {sparsity}"
            )
        eps = rhs / sum(raw[n] * numel[n] for n in free)
        over = [n for n in free if eps * raw[n] > 1.0]
        if not over:
            break
        dense_set.update(over)
    return {n: 1.0 if n in dense_set else eps * raw[n] for n in shapes}


def layer_nnz(shapes: Mapping[str, tuple[int, ...]], densities: Mapping[str, float]) -> dict:
    """Non-zeros per tensor: ``round(density * numel)``, at least 1 and at most ``numel``."""
    out = {}
    for name, shape in shapes.items():
        n = prod(shape)
        out[name] = min(n, max(1, round(densities[name] * n)))
    return out


def sparse_param_count(
    shapes: Mapping[str, tuple[int, ...]],
    sparsity: float,
    distribution: str = "erdos_renyi",
    dense: Iterable[str] = (),
) -> int:
    """Total non-zeros the masks of ``shapes`` hold at ``sparsity`` (the ``tiny`` target)."""
    return sum(layer_nnz(shapes, layer_densities(shapes, sparsity, distribution, dense)).values())


def tiny_width(count_params: Callable[[int], int], target: int, max_width: int = 1 << 16) -> int:
    """Hidden width of a dense network with as many weights as a sparse target.

    Parameters
    ----------
    count_params:
        Width -> number of weights of the dense network at that width; must be
        non-decreasing in the width (e.g. ``lambda h: d_in*h + 3*h*h + 3*h*h + h*n_act``).
    target:
        Number of weights to match (the sparse network's non-zeros).
    max_width:
        Largest width considered.

    Returns
    -------
    int
        The width in ``[1, max_width]`` whose count is closest to ``target`` (the smaller
        width on a tie).
    """
    if target < 1:
        raise UserError(f"tiny target parameter count must be >= 1, got {target}")
    lo, hi = 1, max_width
    while lo < hi:  # largest width with count <= target (or 1)
        mid = (lo + hi + 1) // 2
        if count_params(mid) <= target:
            lo = mid
        else:
            hi = mid - 1
    if lo < max_width and abs(count_params(lo + 1) - target) < abs(count_params(lo) - target):
        return lo + 1
    return lo
