"""FLOPs accounting of sparse training and inference, as the MAST paper reports it.

Convention (RigL): a matrix-vector product with a ``(out, in)`` matrix costs
``2 * nnz`` FLOPs (one multiply-accumulate = 2 FLOPs; a dense matrix has
``nnz = out * in``). Biases, activations, the GRU's element-wise gate arithmetic, Soft
Mellowmax and TD(lambda) are O(width) or O(|A|) per step and are ignored, as in RigL and
MAST. Ratios to the dense model are what the paper reports; the factor 2 cancels in them.

Per training sample (one episode step of one batch element), with ``f_S`` the sparse
forward cost ``sum_l 2 * nnz_l * uses_per_sample_l`` and ``f_D`` the same with
``nnz_l = out_l * in_l``:

- forward ``f_S``; backward ``2 f_S`` (input gradient + masked weight gradient);
- a topology update every ``dT`` iterations replaces the masked weight gradient by a dense
  one, amortised as RigL: ``(3 f_S dT + 2 f_S + f_D) / (dT + 1)``;
- the target network (same masks) adds one forward ``f_S``;
- dense training costs ``3 f_D + f_D`` (target).

Test FLOPs are the decentralised agents' forwards for one environment step:
``sum_{agent layers} 2 * nnz_l * uses_per_env_step_l`` (no mixer, no hypernetworks).
Size is ``sum nnz / sum (out * in)`` over all layers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mast.errors import UserError
from mast.sparsity.layer import SparseLayer

__all__ = ["FlopsReport", "flops_report"]


@dataclass(frozen=True)
class FlopsReport:
    """Absolute FLOPs of a sparse network and of its dense reference, with ratios."""

    forward_per_sample: float
    """Sparse online forward FLOPs per training sample (``f_S``)."""
    dense_forward_per_sample: float
    """Dense reference forward FLOPs per training sample (``f_D``)."""
    train: float
    """Sparse training FLOPs per iteration."""
    dense_train: float
    """Dense reference training FLOPs per iteration."""
    test: float
    """Sparse inference FLOPs per environment step (agent layers only)."""
    dense_test: float
    """Dense reference inference FLOPs per environment step."""
    nnz: int
    """Non-zero weights over all layers."""
    dense_params: int
    """Weights of the dense reference over all layers."""

    @property
    def train_ratio(self) -> float:
        """Training FLOPs normalised to dense (the paper's FLOPs(train))."""
        return self.train / self.dense_train if self.dense_train else 1.0

    @property
    def test_ratio(self) -> float:
        """Inference FLOPs normalised to dense (the paper's FLOPs(test))."""
        return self.test / self.dense_test if self.dense_test else 1.0

    @property
    def size_ratio(self) -> float:
        """Non-zeros normalised to the dense parameter count (the paper's total size)."""
        return self.nnz / self.dense_params if self.dense_params else 1.0


def _forward(layers: Sequence[SparseLayer], dense: bool) -> float:
    return sum(2.0 * (l.mask.size if dense else l.nnz) * l.uses_per_sample for l in layers)


def _test(layers: Sequence[SparseLayer], dense: bool) -> float:
    return sum(
        2.0 * (l.mask.size if dense else l.nnz) * l.uses_per_env_step
        for l in layers
        if l.role == "agent"
    )


def flops_report(
    layers: Sequence[SparseLayer],
    *,
    samples_per_iteration: int = 1,
    update_interval_iters: float | None = None,
    target_network: bool = True,
    reference: Sequence[SparseLayer] | None = None,
) -> FlopsReport:
    """Training and test FLOPs of ``layers`` and of the dense reference.

    Parameters
    ----------
    layers:
        The network's matrices with their current masks and use counts.
    samples_per_iteration:
        Training samples per iteration (batch episodes x episode steps).
    update_interval_iters:
        Iterations between topology updates (``dT``); ``None`` for a fixed topology.
    target_network:
        Count one target-network forward per sample.
    reference:
        Dense reference network (default: ``layers`` at full density). Pass the full-width
        network when ``layers`` describe a narrowed ``tiny`` network.

    Returns
    -------
    FlopsReport
    """
    if samples_per_iteration < 1:
        raise UserError(f"samples_per_iteration must be >= 1, got {samples_per_iteration}")
    if update_interval_iters is not None and update_interval_iters < 0:
        raise UserError(f"update_interval_iters must be >= 0, got {update_interval_iters}")
    if not layers:
        raise UserError("FLOPs need at least one layer")
    ref = layers if reference is None else reference
    f_s = _forward(layers, dense=False)
    f_d_self = _forward(layers, dense=True)
    f_d = _forward(ref, dense=True)
    if update_interval_iters is None:
        train = 3.0 * f_s
    else:
        d_t = float(update_interval_iters)
        train = (3.0 * f_s * d_t + 2.0 * f_s + f_d_self) / (d_t + 1.0)
    dense_train = 3.0 * f_d
    if target_network:
        train += f_s
        dense_train += f_d
    return FlopsReport(
        forward_per_sample=f_s,
        dense_forward_per_sample=f_d,
        train=train * samples_per_iteration,
        dense_train=dense_train * samples_per_iteration,
        test=_test(layers, dense=False),
        dense_test=_test(ref, dense=True),
        nnz=sum(l.nnz for l in layers),
        dense_params=sum(l.mask.size for l in ref),
    )
