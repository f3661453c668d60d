"""Typed configuration of sparse training (plain data: no torch)."""

from __future__ import annotations

from dataclasses import dataclass

from mast.errors import UserError
from mast.sparsity.density import DISTRIBUTIONS, check_sparsity
from mast.sparsity.methods import INITS, MethodSpec, get_method
from mast.sparsity.schedule import DECAYS, TopologySchedule

__all__ = ["SparsityConfig"]


@dataclass(frozen=True)
class SparsityConfig:
    """How a network is sparsified and how its topology evolves.

    ``None`` fields take the method's default (:data:`mast.sparsity.methods.METHODS`).
    Times (``delta_t``, ``t_end``, ``dense_grad_window``) are in the unit of the ``t``
    passed to :meth:`SparsityManager.step` (environment steps in the training loop).
    """

    method: str = "mast"
    """Sparse training method: dense, tiny, static, set, rigl, rlx2 or mast."""
    sparsity: float = 0.9
    """Target overall sparsity of all masked tensors, in [0, 1)."""
    distribution: str = "erdos_renyi"
    """Per-layer density allocation: ``uniform`` or ``erdos_renyi``."""
    dense_layers: tuple[str, ...] = ()
    """Shell-style patterns (``fnmatch``) of tensor names kept dense, e.g. ``agent.fc1.*``."""
    init: str | None = None
    """Initial mask: ``random`` or ``magnitude`` (largest ``|w|`` at initialisation)."""
    zeta: float | None = None
    """Initial drop fraction of a topology update, in (0, 1]."""
    decay: str | None = None
    """Drop-fraction decay: ``cosine`` or ``constant``."""
    delta_t: int = 10_000
    """Time between topology updates (MAST: 200 episodes, about 10k env steps)."""
    t_end: int = 1_500_000
    """No topology updates at or after this time (75% of a 2M-step run)."""
    dense_grad_window: int = 0
    """Average dense gradients over this much time before an update (0: last one only)."""
    seed: int = 0
    """Seed of the random initial masks and of SET's random growth."""
    hw_aware_growth: bool = False
    """Grow only into rows shorter than ``ceil(nnz/rows)`` so row-parallel accelerator
    loads stay balanced (an option of the dynamic methods; off in the paper)."""
    constant_fan_in: bool = False
    """Every row of a masked matrix holds ``floor`` or ``ceil`` of ``nnz/rows`` non-zeros
    from the initial mask on, and topology updates drop and grow within each row (SRigL's
    constraint, Lasby et al. ICLR 2024): row-parallel loads balance exactly (off in the
    paper)."""

    def __post_init__(self) -> None:
        get_method(self.method)
        object.__setattr__(self, "sparsity", check_sparsity(self.sparsity))
        if self.distribution not in DISTRIBUTIONS:
            raise UserError(
                f"unknown density distribution {self.distribution!r}; "
                f"known: {', '.join(DISTRIBUTIONS)}"
            )
        if self.init is not None and self.init not in INITS:
            raise UserError(f"unknown initial mask {self.init!r}; known: {', '.join(INITS)}")
        if self.decay is not None and self.decay not in DECAYS:
            raise UserError(f"unknown drop decay {self.decay!r}; known: {', '.join(DECAYS)}")
        if self.hw_aware_growth and self.constant_fan_in:
            raise UserError(
                "sparsity.hw_aware_growth and sparsity.constant_fan_in exclude each other: "
                "constant fan-in keeps every row's length fixed; choose one"
            )
        object.__setattr__(self, "dense_layers", tuple(self.dense_layers))
        self.schedule  # noqa: B018 - validates zeta, delta_t, t_end, dense_grad_window

    @property
    def spec(self) -> MethodSpec:
        """The method's registry entry."""
        return get_method(self.method)

    @property
    def init_mode(self) -> str:
        """Initial mask mode after applying the method default."""
        return self.init if self.init is not None else self.spec.init

    @property
    def schedule(self) -> TopologySchedule:
        """Topology update schedule after applying the method defaults."""
        spec = self.spec
        return TopologySchedule(
            zeta=self.zeta if self.zeta is not None else spec.zeta,
            delta_t=self.delta_t,
            t_end=self.t_end,
            decay=self.decay if self.decay is not None else spec.decay,
            dense_grad_window=self.dense_grad_window,
        )
