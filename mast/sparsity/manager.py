"""``SparsityManager``: masks keyed by parameter name, their invariants and their evolution.

Invariants kept for every masked tensor (checked by ``tests/sparsity``): entries outside
the mask have weight, gradient (after :meth:`SparsityManager.step`) and optimizer state
exactly zero; every topology update keeps each tensor's non-zero count; grown weights start
at exactly zero; the optimizer step is skipped on an update step.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import torch

from mast.errors import UserError
from mast.sparsity.config import SparsityConfig
from mast.sparsity.density import layer_densities, layer_nnz
from mast.sparsity.export import TensorInfo, export_tensor, matrix_name
from mast.sparsity.flops import FlopsReport, flops_report
from mast.sparsity.layer import SparseLayer
from mast.sparsity.updaters import first_per_row, make_updater

__all__ = ["SparsityManager", "StepResult", "TopologyUpdate", "weight_matrices"]


@dataclass(frozen=True)
class TopologyUpdate:
    """What one topology update did."""

    t: int
    """Time of the update."""
    drop_fraction: float
    """``zeta_t`` used."""
    swapped: Mapping[str, int] = field(default_factory=dict)
    """Tensor name -> number of entries dropped (= grown)."""


@dataclass(frozen=True)
class StepResult:
    """Outcome of :meth:`SparsityManager.step` for the learner."""

    skip_optimizer_step: bool
    """True on a topology-update step: the learner must not call ``optimizer.step()``."""
    update: TopologyUpdate | None = None
    """The update performed, if any."""


class SparsityManager:
    """Masks over registered weight tensors, with RigL-style topology evolution.

    Usage by a learner::

        mgr = SparsityManager(SparsityConfig(method="mast", sparsity=0.9))
        for name, p in matrices:                       # every >= 2-D weight tensor
            mgr.register(name, p, role="agent", uses_per_env_step=n_agents, ...)
        mgr.build()                                    # densities, initial masks, apply
        ...
        loss.backward()                                # dense grads (weights are masked)
        res = mgr.step(t_env, optimizer)               # masks grads or evolves topology
        if not res.skip_optimizer_step:
            clip_grad_norm_(params, 10); optimizer.step()
        mgr.apply_()                                   # cheap; keeps weights exact zero
        mgr.apply_to_(target_net)                      # target shares the online masks

    Methods ``dense`` and ``tiny`` hold no masks: every masking call is a no-op and the
    export reports full masks.
    """

    def __init__(self, config: SparsityConfig | None = None) -> None:
        self.config = config if config is not None else SparsityConfig()
        self.spec = self.config.spec
        self.schedule = self.config.schedule
        self.updater = make_updater(
            self.spec,
            row_balanced=self.config.hw_aware_growth,
            constant_fan_in=self.config.constant_fan_in,
        )
        self._infos: dict[str, TensorInfo] = {}
        self._masks: dict[str, torch.Tensor] = {}
        self._built = False
        self._generator = torch.Generator().manual_seed(self.config.seed)
        self.last_update_t = 0
        self.n_updates = 0
        self._grad_sum: dict[str, torch.Tensor] = {}
        self._grad_count = 0

    # ---------------------------------------------------------------- registration
    def register(
        self,
        name: str,
        param: torch.nn.Parameter,
        *,
        role: str = "agent",
        uses_per_env_step: int | Sequence[int] = 1,
        uses_per_sample: int | Sequence[int] = 1,
        inputs: Iterable[str] = (),
        recurrent: bool = False,
        dense: bool = False,
    ) -> None:
        """Add a weight tensor of shape ``(*lead, out, in)`` under ``name``.

        ``uses_*`` are per matrix (an int for all, or one per leading index); ``dense`` keeps
        it unmasked while its parameters still count in the sparsity budget.
        """
        if self._built:
            raise UserError(f"cannot register {name!r}: masks are already built")
        if name in self._infos:
            raise UserError(f"tensor {name!r} is registered twice")
        if param.dim() < 2 or 0 in param.shape:
            raise UserError(
                f"tensor {name!r}: need a non-empty (..., out, in) tensor, got {tuple(param.shape)}"
            )
        n = 1
        for d in param.shape[:-2]:
            n *= d
        self._infos[name] = TensorInfo(
            name=name,
            param=param,
            role=TensorInfo.check_role(name, role),
            uses_per_env_step=TensorInfo.per_matrix(
                name, "uses_per_env_step", uses_per_env_step, n
            ),
            uses_per_sample=TensorInfo.per_matrix(name, "uses_per_sample", uses_per_sample, n),
            inputs=tuple(inputs),
            recurrent=bool(recurrent),
            dense=bool(dense),
        )

    def _dense_names(self) -> set[str]:
        names = {n for n, info in self._infos.items() if info.dense}
        for pattern in self.config.dense_layers:
            hit = fnmatch.filter(self._infos, pattern)
            if not hit:
                raise UserError(
                    f"dense layer pattern {pattern!r} matches no registered tensor; "
                    f"registered: {', '.join(self._infos)}"
                )
            names.update(hit)
        return names

    @torch.no_grad()
    def build(self) -> None:
        """Allocate per-tensor densities, draw the initial masks and apply them."""
        if self._built:
            raise UserError("masks are already built")
        if not self._infos:
            raise UserError("no tensors registered")
        self._built = True
        dense = self._dense_names()
        if not self.spec.masked:
            return
        shapes = {n: tuple(i.param.shape) for n, i in self._infos.items()}
        nnz = layer_nnz(
            shapes, layer_densities(shapes, self.config.sparsity, self.config.distribution, dense)
        )
        for name, info in self._infos.items():
            p = info.param
            if self.config.constant_fan_in and p.dim() >= 2:
                self._masks[name] = self._fan_in_mask(p, nnz[name])
                continue
            if self.config.init_mode == "magnitude":
                chosen = torch.topk(p.detach().abs().reshape(-1), nnz[name]).indices
            else:
                chosen = torch.randperm(p.numel(), generator=self._generator)[: nnz[name]]
            flat = torch.zeros(p.numel(), dtype=torch.bool)
            flat[chosen] = True
            self._masks[name] = flat.reshape(p.shape).to(p.device)
        self.apply_()

    def _fan_in_mask(self, p: torch.Tensor, nnz: int) -> torch.Tensor:
        """Initial mask with ``floor`` or ``ceil`` of ``nnz / rows`` entries per row (the
        first ``nnz % rows`` rows get one more), chosen by ``|w|`` or at random."""
        rows = p.detach().reshape(-1, p.shape[-1])
        n_rows = rows.shape[0]
        counts = torch.full((n_rows,), nnz // n_rows, dtype=torch.long)
        counts[: nnz % n_rows] += 1
        if self.config.init_mode == "magnitude":
            scores = rows.abs().float().cpu()
        else:
            scores = torch.rand(rows.shape, generator=self._generator)
        return first_per_row(scores, counts, largest=True).reshape(p.shape).to(p.device)

    def _check_built(self) -> None:
        if not self._built:
            raise UserError("call build() after registering tensors")

    # ---------------------------------------------------------------- queries
    @property
    def names(self) -> tuple[str, ...]:
        """Registered tensor names, in registration order."""
        return tuple(self._infos)

    @property
    def infos(self) -> Mapping[str, TensorInfo]:
        """Registration records by name."""
        return MappingProxyType(self._infos)

    @property
    def masks(self) -> Mapping[str, torch.Tensor]:
        """Boolean masks by name (empty for ``dense`` / ``tiny``)."""
        return MappingProxyType(self._masks)

    def mask(self, name: str) -> torch.Tensor:
        """Mask of ``name`` (all True when the method holds no masks)."""
        self._check_built()
        if name not in self._infos:
            raise UserError(f"unknown tensor {name!r}; registered: {', '.join(self._infos)}")
        if name in self._masks:
            return self._masks[name]
        p = self._infos[name].param
        return torch.ones(p.shape, dtype=torch.bool, device=p.device)

    def nnz(self, name: str | None = None) -> int:
        """Non-zero count of one tensor's mask, or of all tensors."""
        names = self.names if name is None else (name,)
        return sum(int(self.mask(n).sum()) for n in names)

    def numel(self, name: str | None = None) -> int:
        """Element count of one tensor, or of all tensors."""
        names = self.names if name is None else (name,)
        return sum(self._infos[n].param.numel() for n in names)

    def densities(self) -> dict[str, float]:
        """Current density of every tensor."""
        return {n: self.nnz(n) / self.numel(n) for n in self.names}

    def allocation(self, roles: Iterable[str] = ("agent",)) -> dict[str, int]:
        """Non-zeros of every ``(out, in)`` matrix of the tensors of ``roles``, keyed
        ``"nnz:" + record name`` (``nnz:agent.fc1.weight[1]``: type or agent 1 of a stacked
        tensor, as :meth:`export_layers` names it); how the budget is split between agent
        types or agents."""
        wanted = set(roles)
        out: dict[str, int] = {}
        for name, info in self._infos.items():
            if info.role not in wanted:
                continue
            m = self.mask(name)
            lead = tuple(m.shape[:-2])
            counts = m.reshape(-1, *m.shape[-2:]).sum(dim=(-2, -1)).tolist()
            for index, c in zip(np.ndindex(*lead) if lead else [()], counts, strict=True):
                out[f"nnz:{matrix_name(name, index)}"] = int(c)
        return out

    @property
    def sparsity(self) -> float:
        """Current overall sparsity of the registered tensors."""
        return 1.0 - self.nnz() / self.numel()

    # ---------------------------------------------------------------- masking
    @torch.no_grad()
    def apply_(self) -> None:
        """Zero the weights outside the masks (in place)."""
        for name, m in self._masks.items():
            self._infos[name].param.mul_(m)

    @torch.no_grad()
    def mask_grads_(self) -> None:
        """Zero the gradients outside the masks (in place; missing grads are skipped)."""
        for name, m in self._masks.items():
            g = self._infos[name].param.grad
            if g is not None:
                g.mul_(m)

    @torch.no_grad()
    def mask_optimizer_state_(self, optimizer: torch.optim.Optimizer) -> None:
        """Zero every per-element optimizer state tensor outside the masks (RMSprop
        ``square_avg``, Adam ``exp_avg`` / ``exp_avg_sq``, momentum buffers, ...)."""
        for name, m in self._masks.items():
            for value in optimizer.state.get(self._infos[name].param, {}).values():
                if torch.is_tensor(value) and value.shape == m.shape:
                    value.mul_(m)

    @torch.no_grad()
    def apply_to_(
        self,
        target: torch.nn.Module | Mapping[str, torch.Tensor],
        name_map: Mapping[str, str] | Callable[[str], str] | None = None,
    ) -> None:
        """Apply the online masks to another network's tensors (e.g. the target network).

        ``target`` is a module (its ``named_parameters()``) or a name -> tensor mapping;
        ``name_map`` maps an online name to the target name (identity by default).
        """
        tensors = dict(target.named_parameters()) if isinstance(target, torch.nn.Module) else target
        for name, m in self._masks.items():
            other = name_map(name) if callable(name_map) else (name_map or {}).get(name, name)
            if other not in tensors:
                raise UserError(f"target network has no tensor {other!r} for mask {name!r}")
            t = tensors[other]
            if tuple(t.shape) != tuple(m.shape):
                raise UserError(
                    f"target tensor {other!r} has shape {tuple(t.shape)}, "
                    f"mask {name!r} has {tuple(m.shape)}"
                )
            t.mul_(m.to(t.device))

    # ---------------------------------------------------------------- evolution
    def needs_dense_grad(self, t: int) -> bool:
        """Whether the gradient at ``t`` feeds growth scores (do not mask it before
        :meth:`step`)."""
        return (
            self._built
            and self.updater is not None
            and self.updater.needs_grad
            and self.schedule.in_grad_window(t, self.last_update_t)
        )

    def is_update_step(self, t: int) -> bool:
        """Whether :meth:`step` at ``t`` performs a topology update."""
        return (
            self._built and self.updater is not None and self.schedule.is_due(t, self.last_update_t)
        )

    @torch.no_grad()
    def step(self, t: int, optimizer: torch.optim.Optimizer | None = None) -> StepResult:
        """Call once per training iteration after ``backward()``.

        Masks the gradients, or on an update step evolves the topology (using the dense
        gradients), resets the optimizer state of changed entries and tells the learner to
        skip the optimizer step.
        """
        self._check_built()
        if self.needs_dense_grad(t) and self.schedule.dense_grad_window > 0:
            for name in self._masks:
                g = self._infos[name].param.grad
                if g is not None:
                    acc = self._grad_sum.get(name)
                    self._grad_sum[name] = g.detach().clone() if acc is None else acc.add_(g)
            self._grad_count += 1
        update = self.update(t, optimizer)
        if update is None:
            self.mask_grads_()
        return StepResult(skip_optimizer_step=update is not None, update=update)

    @torch.no_grad()
    def update(
        self, t: int, optimizer: torch.optim.Optimizer | None = None
    ) -> TopologyUpdate | None:
        """Evolve every mask if an update is due at ``t``; otherwise return ``None``.

        Scores use ``param.grad`` (dense) or the window average; afterwards weights,
        gradients and optimizer state outside the new masks, and at grown entries, are zero.
        """
        self._check_built()
        if not self.is_update_step(t):
            return None
        zeta_t = self.schedule.drop_fraction(t)
        swapped = {}
        for name, mask in self._masks.items():
            p = self._infos[name].param
            grad = p.grad
            if name in self._grad_sum and self._grad_count > 0:
                grad = self._grad_sum[name] / self._grad_count
            if self.updater.needs_grad and grad is None:
                raise UserError(
                    f"tensor {name!r} has no gradient at topology update t={t}; "
                    "call backward() before step()"
                )
            change = self.updater.update(p, mask, zeta_t, grad, self._generator)
            keep = change.mask.clone()
            keep.reshape(-1)[change.grown] = False  # grown entries restart from zero
            p.mul_(keep)
            if p.grad is not None:
                p.grad.mul_(keep)
            if optimizer is not None:
                for value in optimizer.state.get(p, {}).values():
                    if torch.is_tensor(value) and value.shape == keep.shape:
                        value.mul_(keep)
            self._masks[name] = change.mask
            swapped[name] = int(change.grown.numel())
        self.last_update_t = int(t)
        self.n_updates += 1
        self._grad_sum.clear()
        self._grad_count = 0
        return TopologyUpdate(t=int(t), drop_fraction=zeta_t, swapped=swapped)

    # ---------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        """Masks (CPU bool tensors), schedule position and RNG state."""
        return {
            "method": self.config.method,
            "masks": {n: m.detach().cpu().clone() for n, m in self._masks.items()},
            "last_update_t": self.last_update_t,
            "n_updates": self.n_updates,
            "generator": self._generator.get_state(),
        }

    @torch.no_grad()
    def load_state_dict(self, state: Mapping) -> None:
        """Restore :meth:`state_dict` output of a manager over the same tensors, then apply
        the masks. Raises :class:`UserError` naming the first mismatching tensor."""
        self._check_built()
        if state.get("method") != self.config.method:
            raise UserError(
                f"mask checkpoint is for method {state.get('method')!r}, not {self.config.method!r}"
            )
        masks = state["masks"]
        for name in masks:
            if name not in self._masks:
                raise UserError(f"mask checkpoint has tensor {name!r} that is not masked here")
        for name, mine in self._masks.items():
            if name not in masks:
                raise UserError(f"mask checkpoint lacks tensor {name!r}")
            if tuple(masks[name].shape) != tuple(mine.shape):
                raise UserError(
                    f"mask checkpoint tensor {name!r} has shape {tuple(masks[name].shape)}, "
                    f"expected {tuple(mine.shape)}"
                )
        for name, m in masks.items():
            self._masks[name] = m.to(dtype=torch.bool, device=self._masks[name].device).clone()
        self.last_update_t = int(state["last_update_t"])
        self.n_updates = int(state["n_updates"])
        self._generator.set_state(state["generator"])
        self._grad_sum.clear()
        self._grad_count = 0
        self.apply_()

    # ---------------------------------------------------------------- export
    def export_layers(
        self, roles: Iterable[str] | None = None, with_values: bool = False
    ) -> list[SparseLayer]:
        """The current masks as :class:`SparseLayer` records, one per ``(out, in)`` matrix
        (a stacked tensor ``(n, out, in)`` gives ``name[0] .. name[n-1]``)."""
        self._check_built()
        wanted = None if roles is None else set(roles)
        leads = {n: tuple(i.param.shape[:-2]) for n, i in self._infos.items()}
        out: list[SparseLayer] = []
        for name, info in self._infos.items():
            if wanted is None or info.role in wanted:
                out.extend(export_tensor(info, self.mask(name), with_values, leads))
        return out

    def flops_report(
        self,
        samples_per_iteration: int = 1,
        update_interval_iters: float | None = None,
        target_network: bool = True,
        reference: Sequence[SparseLayer] | None = None,
    ) -> FlopsReport:
        """:func:`mast.sparsity.flops.flops_report` of the current masks; pass
        ``update_interval_iters`` (training iterations between topology updates) for
        dynamic methods so the dense-gradient cost is amortised."""
        return flops_report(
            self.export_layers(),
            samples_per_iteration=samples_per_iteration,
            update_interval_iters=update_interval_iters,
            target_network=target_network,
            reference=reference,
        )


def weight_matrices(
    module: torch.nn.Module, prefix: str = ""
) -> list[tuple[str, torch.nn.Parameter]]:
    """``(prefix + name, param)`` of every parameter with >= 2 dims (biases excluded)."""
    return [(prefix + n, p) for n, p in module.named_parameters() if p.dim() >= 2]
