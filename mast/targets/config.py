"""``TargetConfig``: bootstrap choice and return schedule (plain data: no torch).

The functions that apply it to tensors are in :mod:`mast.targets.compute`.

Which defaults come from where (see ``shared/REFERENCE.md`` section 1):

- ``gamma = 0.99``: pymarl's and the paper's discount.
- ``sm_omega = 10``: the paper uses omega in {5, 10}.
- ``sm_alpha = 1``: not stated in the paper; chosen here.
- ``td_lambda = 0.8``, ``n_step = 3``, ``hybrid_switch_t = 500_000``,
  ``hybrid_order = "lambda_first"``, ``hybrid_blend_t = 0``: the paper does not give
  them; chosen here (lambda in the commonly used 0.6-0.8 range; the switch after a
  quarter of a 2M-step run: multi-step returns propagate rewards quickly while the
  bootstrap values of a young sparse network are still poor, one-step targets remove
  their off-policy bias later).
- ``kind = "one_step"``, ``bootstrap = "double_q"``: the dense pymarl baseline; MAST's
  own setting is the preset ``TARGET_PRESETS["mast"]`` (hybrid, Soft Mellowmax).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Real
from types import MappingProxyType
from typing import Literal

from mast.errors import UserError

__all__ = [
    "BOOTSTRAPS",
    "HYBRID_ORDERS",
    "TARGET_KINDS",
    "TARGET_PRESETS",
    "TargetConfig",
    "hybrid_one_step_weight",
]

TARGET_KINDS: tuple[str, ...] = ("one_step", "n_step", "td_lambda", "hybrid")
BOOTSTRAPS: tuple[str, ...] = ("max", "double_q", "soft_mellowmax")
HYBRID_ORDERS: tuple[str, ...] = ("lambda_first", "one_step_first")


def _choice(what: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UserError(f"unknown {what} {value!r}; choose from: {', '.join(choices)}")


@dataclass(frozen=True)
class TargetConfig:
    """How a learner turns target-network Q-values into regression targets."""

    kind: Literal["one_step", "n_step", "td_lambda", "hybrid"] = "one_step"
    """Return: one-step, n-step, TD(lambda), or the hybrid TD(lambda)/one-step schedule."""
    gamma: float = 0.99
    """Discount factor in [0, 1]."""
    n_step: int = 3
    """Reward steps of the n-step return (kind ``n_step``)."""
    td_lambda: float = 0.8
    """Trace decay lambda in [0, 1] of TD(lambda) (kinds ``td_lambda`` and ``hybrid``)."""
    hybrid_switch_t: int = 500_000
    """Environment step at which the hybrid schedule switches return (kind ``hybrid``)."""
    hybrid_order: Literal["lambda_first", "one_step_first"] = "lambda_first"
    """Hybrid order: TD(lambda) before the switch and one-step after, or the reverse."""
    hybrid_blend_t: int = 0
    """Width in env steps of a linear cross-fade centred on the switch (0: hard switch)."""
    bootstrap: Literal["max", "double_q", "soft_mellowmax"] = "double_q"
    """Per-agent reduction of next-state Q-values: max, double-Q or Soft Mellowmax."""
    sm_omega: float = 10.0
    """Soft Mellowmax inverse temperature omega > 0 (paper: 5 or 10)."""
    sm_alpha: float = 1.0
    """Soft Mellowmax softmax weighting alpha >= 0 (not given in the paper; chosen here)."""

    def __post_init__(self) -> None:
        _choice("target kind", self.kind, TARGET_KINDS)
        _choice("bootstrap", self.bootstrap, BOOTSTRAPS)
        _choice("hybrid order", self.hybrid_order, HYBRID_ORDERS)
        if not (isinstance(self.gamma, Real) and 0.0 <= self.gamma <= 1.0):
            raise UserError(f"discount gamma must be in [0, 1], got {self.gamma!r}")
        if isinstance(self.n_step, bool) or not isinstance(self.n_step, int) or self.n_step < 1:
            raise UserError(f"n_step must be an integer >= 1, got {self.n_step!r}")
        lam = self.td_lambda
        if not (isinstance(lam, Real) and 0.0 <= lam <= 1.0):
            raise UserError(f"td_lambda must be in [0, 1], got {lam!r}")
        for name in ("hybrid_switch_t", "hybrid_blend_t"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise UserError(f"{name} must be an integer >= 0, got {value!r}")
        om = self.sm_omega
        if not (isinstance(om, Real) and om > 0 and not math.isnan(om)):
            raise UserError(f"sm_omega must be > 0, got {om!r}")
        if not (
            isinstance(self.sm_alpha, Real) and math.isfinite(self.sm_alpha) and self.sm_alpha >= 0
        ):
            raise UserError(f"sm_alpha must be a finite number >= 0, got {self.sm_alpha!r}")


TARGET_PRESETS: Mapping[str, TargetConfig] = MappingProxyType(
    {
        "dense": TargetConfig(),
        "mast": TargetConfig(kind="hybrid", bootstrap="soft_mellowmax"),
    }
)
"""Named target settings: the dense pymarl baseline and MAST's."""


def hybrid_one_step_weight(cfg: TargetConfig, t_env: int) -> float:
    """Weight in [0, 1] of the one-step target in the hybrid mix at env step ``t_env``.

    With ``s = hybrid_switch_t`` and ``w = hybrid_blend_t`` the fraction of the schedule
    done is ``u = clip((t_env - s) / w + 1/2, 0, 1)`` (a step function at ``s`` when
    ``w = 0``: ``u = 1`` from ``t_env >= s`` on). ``lambda_first`` returns ``u``,
    ``one_step_first`` returns ``1 - u``. Kinds other than ``hybrid`` return 1 for
    ``one_step`` and 0 otherwise.
    """
    if cfg.kind != "hybrid":
        return 1.0 if cfg.kind == "one_step" else 0.0
    if cfg.hybrid_blend_t == 0:
        u = 1.0 if t_env >= cfg.hybrid_switch_t else 0.0
    else:
        u = min(1.0, max(0.0, (t_env - cfg.hybrid_switch_t) / cfg.hybrid_blend_t + 0.5))
    return u if cfg.hybrid_order == "lambda_first" else 1.0 - u
