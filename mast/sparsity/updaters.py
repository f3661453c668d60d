"""Mask updaters: one drop/grow rule per tensor, methods differing only in their scores.

Every topology update of a tensor with mask ``m`` and ``k = floor(zeta_t * nnz)``:

1. drop the ``k`` active entries with the smallest drop score (``|w|`` for every method);
2. grow the ``k`` entries that were inactive *before* the drop with the largest grow score
   (uniform random for SET, ``|dense grad|`` for RigL / MAST); with ``regrow_dropped``
   (``rlx2``, as RLx2's reference ``DST_Scheduler``, itself RigL's PyTorch port) the
   candidates are the entries inactive *after* the drop, so a just-dropped connection with
   a large gradient is grown back and keeps its weight;
3. check that the entries that left and joined the mask are disjoint and that ``nnz`` is
   unchanged.

``k`` is capped by the number of inactive entries (not with ``regrow_dropped``, where the
dropped entries are candidates too). With ``row_balanced`` (hardware-aware
growth, ``SparsityConfig.hw_aware_growth``) step 2 only grows into rows whose count after
the drop is below ``ceil(nnz / rows)``: rows converge to equal lengths, so a row-parallel
accelerator assigns every processing element the same work (rows are the last-but-one
dimension; leading dimensions of stacked tensors count as more rows).
With ``constant_fan_in`` (``SparsityConfig.constant_fan_in``, the constraint of SRigL, Lasby
et al. 2024) every row keeps its own count: row ``r`` with ``n_r`` non-zeros drops its
``floor(zeta_t * n_r)`` smallest-scored entries and grows as many of its own best-scored
candidates, so the row lengths the initial mask gave (``floor`` or ``ceil`` of
``nnz / rows``) never change.
The manager (:mod:`.manager`) sets grown weights to exactly zero and resets the optimizer
state of changed entries.

Methods (:data:`mast.sparsity.methods.METHODS`) and what they take from where:

- ``dense``: no masks. ``tiny``: no masks; the learner narrows the network to the sparse
  target's parameter count (:func:`mast.sparsity.density.tiny_width`).
- ``static`` (SS): fixed random mask with the configured per-layer densities.
- ``set`` (Mocanu et al. 2018): drop smallest ``|w|``, grow uniformly at random; zeta 0.3.
- ``rigl`` (Evci et al. 2020): drop smallest ``|w|``, grow largest ``|dense grad|``,
  random initial mask, zeta 0.3 with cosine decay (RigL's defaults).
- ``rlx2`` (Tan et al. 2023, reference code ``DST_Scheduler``): the RigL rule with RLx2's
  choices: growth may regrow just-dropped connections (see above), Erdos-Renyi densities,
  initial mask keeping the largest ``|w|`` at initialisation, zeta 0.5 with cosine decay,
  growth scores from the dense gradient (optionally averaged over ``dense_grad_window``).
  RLx2's multi-step targets and dynamic buffer belong to the learner and the buffer
  (``buffer.dynamic``), not to this package.
- ``mast`` (Hu et al. 2024): the same gradient-based topology evolution, applied to every
  weight matrix including mixer and hypernetworks, zeta 0.5 cosine, initial mask by
  magnitude. MAST's other parts (Soft Mellowmax, hybrid TD(lambda), dual buffer) belong to
  the learner; its update rule is RigL's (growth only into entries inactive before the
  drop), the paper's description.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import torch

from mast.errors import UserError
from mast.sparsity.methods import MethodSpec

__all__ = [
    "UPDATERS",
    "MaskChange",
    "MaskUpdater",
    "GradientUpdater",
    "RandomGrowthUpdater",
    "first_per_row",
    "make_updater",
]


@dataclass(frozen=True, eq=False)
class MaskChange:
    """Result of one tensor's update: new mask and the flat indices that left / joined it
    (a regrown just-dropped entry is in neither)."""

    mask: torch.Tensor
    dropped: torch.Tensor
    grown: torch.Tensor


class MaskUpdater:
    """Base drop/grow rule; subclasses override :meth:`grow_scores` (and
    :meth:`drop_scores` if needed). Larger drop score = kept; larger grow score = grown first.
    """

    needs_grad: bool = False
    """Whether :meth:`grow_scores` reads the dense gradient."""

    def __init__(
        self,
        row_balanced: bool = False,
        regrow_dropped: bool = False,
        constant_fan_in: bool = False,
    ) -> None:
        self.row_balanced = row_balanced
        """Grow only into rows shorter than ``ceil(nnz / rows)`` (hardware-aware growth)."""
        self.regrow_dropped = regrow_dropped
        """Growth candidates include the entries just dropped (RLx2's scheduler)."""
        self.constant_fan_in = constant_fan_in
        """Drop and grow within each row: every row keeps its non-zero count."""

    def drop_scores(self, weight: torch.Tensor) -> torch.Tensor:
        """Keep-scores of the active entries: ``|w|``."""
        return weight.detach().abs()

    def grow_scores(
        self, weight: torch.Tensor, grad: torch.Tensor | None, generator: torch.Generator
    ) -> torch.Tensor:
        """Scores of the inactive entries (same shape as ``weight``)."""
        raise NotImplementedError

    @torch.no_grad()
    def update(
        self,
        weight: torch.Tensor,
        mask: torch.Tensor,
        drop_fraction: float,
        grad: torch.Tensor | None,
        generator: torch.Generator,
    ) -> MaskChange:
        """Swap ``floor(drop_fraction * nnz)`` active entries for inactive ones.

        Parameters
        ----------
        weight, mask:
            The tensor and its boolean mask (same shape, any number of dims).
        drop_fraction:
            ``zeta_t`` in [0, 1].
        grad:
            Dense gradient of ``weight`` (required when :attr:`needs_grad`).
        generator:
            CPU generator for random scores.

        Returns
        -------
        MaskChange
            The new mask (same nnz) and the disjoint flat indices that left / joined it.
        """
        if self.constant_fan_in and mask.dim() >= 2:
            return self._update_rows(weight, mask, drop_fraction, grad, generator)
        flat = mask.reshape(-1)
        n_active = int(flat.sum())
        k = int(drop_fraction * n_active)
        if not self.regrow_dropped:
            k = min(k, flat.numel() - n_active)
        empty = torch.zeros(0, dtype=torch.long, device=mask.device)
        if k <= 0:
            return MaskChange(mask.clone(), empty, empty)
        keep = self.drop_scores(weight).reshape(-1).float()
        keep = torch.where(flat, keep, torch.full_like(keep, float("inf")))
        dropped = torch.topk(keep, k, largest=False).indices
        after = flat.clone()
        after[dropped] = False
        taken = after if self.regrow_dropped else flat
        grow = self.grow_scores(weight, grad, generator).reshape(-1).float().to(flat.device)
        grow = torch.where(taken, torch.full_like(grow, float("-inf")), grow)
        if self.row_balanced and mask.dim() >= 2:
            grown = self._balanced_growth(grow, after, mask.shape[-1], n_active, k)
        else:
            grown = torch.topk(grow, k, largest=True).indices
        if bool(taken[grown].any()) or not bool(flat[dropped].all()):
            raise AssertionError("drop must pick active and grow inactive entries")
        new = after.clone()
        new[grown] = True
        if int(new.sum()) != n_active:
            raise AssertionError("topology update changed the number of non-zeros")
        left = torch.nonzero(flat & ~new).squeeze(1)
        joined = torch.nonzero(new & ~flat).squeeze(1)
        return MaskChange(new.reshape(mask.shape), left, joined)

    def _update_rows(self, weight, mask, drop_fraction, grad, generator) -> MaskChange:
        """:meth:`update` under the constant fan-in constraint (see the module docstring)."""
        n_in = mask.shape[-1]
        rows = mask.reshape(-1, n_in)
        counts = rows.sum(dim=1)
        k = (drop_fraction * counts.double()).floor().long()
        if not self.regrow_dropped:
            k = torch.minimum(k, n_in - counts)
        keep = self.drop_scores(weight).reshape(rows.shape).float()
        keep = torch.where(rows, keep, torch.full_like(keep, float("inf")))
        dropped = first_per_row(keep, k, largest=False)
        after = rows & ~dropped
        taken = after if self.regrow_dropped else rows
        grow = self.grow_scores(weight, grad, generator).reshape(rows.shape).float()
        grow = grow.to(rows.device)
        grow = torch.where(taken, torch.full_like(grow, float("-inf")), grow)
        grown = first_per_row(grow, k, largest=True)
        if bool((taken & grown).any()) or not bool(rows[dropped].all()):
            raise AssertionError("drop must pick active and grow inactive entries")
        new = after | grown
        if not torch.equal(new.sum(dim=1), counts):
            raise AssertionError("a constant fan-in update changed a row's number of non-zeros")
        flat, new = rows.reshape(-1), new.reshape(-1)
        left = torch.nonzero(flat & ~new).squeeze(1)
        joined = torch.nonzero(new & ~flat).squeeze(1)
        return MaskChange(new.reshape(mask.shape), left, joined)

    @staticmethod
    def _balanced_growth(
        grow: torch.Tensor,
        after: torch.Tensor,
        n_in: int,
        n_active: int,
        k: int,
    ) -> torch.Tensor:
        """The ``k`` best-scored candidates (finite ``grow``) such that no row of the mask
        ``after`` the drop exceeds the cap.

        Feasible because ``cap * rows >= nnz``: the rows below the cap after the drop have
        room for at least ``k`` entries.
        """
        n_rows = after.numel() // n_in
        cap = -(-n_active // n_rows)
        room = (cap - after.reshape(n_rows, n_in).sum(dim=1)).clamp(min=0)
        order = torch.argsort(grow, descending=True, stable=True)
        order = order[torch.isfinite(grow[order])]
        rows = order // n_in
        # rank of each candidate among the candidates of its row, in score order
        by_row = torch.argsort(rows, stable=True)
        counts = torch.bincount(rows, minlength=n_rows)
        starts = torch.cumsum(counts, 0) - counts
        rank = torch.empty_like(rows)
        rank[by_row] = torch.arange(rows.numel(), device=rows.device) - starts[rows[by_row]]
        accepted = order[rank < room[rows]]
        return accepted[:k]


def first_per_row(scores: torch.Tensor, k: torch.Tensor, largest: bool) -> torch.Tensor:
    """Boolean ``[rows, cols]``: the ``k[r]`` entries of each row ``r`` with the smallest
    (``largest=False``) or largest scores (ties: lowest column first)."""
    order = torch.argsort(scores, dim=1, descending=largest, stable=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(scores.shape[1], device=scores.device).expand_as(order))
    return rank < k.unsqueeze(1)


class RandomGrowthUpdater(MaskUpdater):
    """SET: grow uniformly at random among the inactive entries."""

    def grow_scores(self, weight, grad, generator):
        return torch.rand(weight.shape, generator=generator)


class GradientUpdater(MaskUpdater):
    """RigL / RLx2 / MAST: grow the inactive entries with the largest ``|dense grad|``."""

    needs_grad = True

    def grow_scores(self, weight, grad, generator):
        if grad is None:
            raise UserError("gradient-based growth needs a dense gradient; call backward() first")
        return grad.detach().abs()


UPDATERS: Mapping[str, type[MaskUpdater]] = MappingProxyType(
    {"random": RandomGrowthUpdater, "gradient": GradientUpdater}
)
"""Drop/grow rules by the name :attr:`mast.sparsity.methods.MethodSpec.updater` gives."""


def make_updater(
    spec: MethodSpec, row_balanced: bool = False, constant_fan_in: bool = False
) -> MaskUpdater | None:
    """The method's drop/grow rule (``None`` for a fixed topology)."""
    if spec.updater is None:
        return None
    return UPDATERS[spec.updater](
        row_balanced=row_balanced,
        regrow_dropped=spec.regrow_dropped,
        constant_fan_in=constant_fan_in,
    )
