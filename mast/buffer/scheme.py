"""Field schemes of the episode replay buffer: what is stored, how compactly, how exactly.

A scheme is a mapping ``name -> FieldSpec``. Every field has a per-step shape, a storage
kind and a step kind:

``steps="state"``
    one value per visited state: ``length + 1`` slots (observations, state and
    available actions, including those of the final state, needed for bootstrapping).
``steps="transition"``
    one value per transition: ``length`` slots (actions, reward, terminated).

Storage kinds and exactness (``x`` the inserted value, ``y`` the sampled one):

``"float32"``
    exact for float32 inputs (float64 inputs are rounded to float32). Sampled as float32.
``"float16"``
    lossy: ``y = float16(x)``, relative error <= 2**-11 for ``6.1e-5 <= |x| <= 65504``,
    absolute error <= 2**-25 below; exact for integers up to 2048 in magnitude and for
    0, +-1, +-0.5, ... Values beyond +-65504 are rejected. Sampled as float32.
``"snorm8"``
    lossy, for features normalised to ``[-1, 1]`` (SMAC's observations and state):
    ``y = round(127 x) / 127`` stored in int8, absolute error <= 1/254; exact for -1, 0
    and 1 (flags, one-hot codes). Values outside ``[-1, 1]`` are rejected. Sampled as
    float32.
``"index"``
    exact: integers in ``[0, num_values)`` kept in the smallest signed integer type
    (int8 up to 128 values, int16 up to 32768, int32 beyond). Sampled as int64.
``"bool"``
    exact: 0/1 or boolean values, one byte each. Sampled as bool.
``"bits"``
    exact: 0/1 or boolean values packed 8 per byte along the last dimension. Sampled as
    bool.

Rebuilt features: a 1-D state field may name an ``index`` transition field in
``onehot_tail``: its last ``tail_size`` features are then the one-hot codes of that
field's values at the previous transition (all zero in the first state), as in SMAC's
state, which ends with every agent's last action. They are checked on insert (a mismatch
is an error), not stored, and rebuilt exactly on sampling: for 2c_vs_64zg they are 140 of
the state's 342 features.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from mast.errors import UserError

__all__ = ["FLOAT_STORAGES", "STORAGE_KINDS", "STEP_KINDS", "FieldSpec", "Scheme", "smac_scheme"]

STORAGE_KINDS: tuple[str, ...] = ("float32", "float16", "snorm8", "index", "bool", "bits")
FLOAT_STORAGES: tuple[str, ...] = ("float16", "float32", "snorm8")
STEP_KINDS: tuple[str, ...] = ("state", "transition")
RESERVED_NAMES: tuple[str, ...] = ("filled", "episode_id")
FLOAT16_MAX = float(np.finfo(np.float16).max)


@dataclass(frozen=True)
class FieldSpec:
    """Storage of one per-step field of an episode."""

    shape: tuple[int, ...]
    """Per-step shape, e.g. ``(n_agents, obs_dim)``; ``()`` for a scalar per step."""
    storage: Literal["float32", "float16", "snorm8", "index", "bool", "bits"]
    """Storage kind (see the module docstring for what is exact)."""
    steps: Literal["state", "transition"] = "state"
    """``state``: ``length + 1`` slots per episode; ``transition``: ``length`` slots."""
    num_values: int = 0
    """For ``index`` fields: values lie in ``[0, num_values)``; unused otherwise."""
    onehot_tail: str = ""
    """For 1-D state fields: the ``index`` transition field whose previous values, one-hot
    coded, are this field's last :attr:`tail_size` features (rebuilt, not stored)."""
    tail_size: int = 0
    """Number of rebuilt features (``onehot_tail``'s per-step size x its ``num_values``)."""

    def __post_init__(self) -> None:
        if self.storage not in STORAGE_KINDS:
            raise UserError(
                f"unknown storage {self.storage!r}; choose from: {', '.join(STORAGE_KINDS)}"
            )
        if self.steps not in STEP_KINDS:
            raise UserError(f"unknown steps {self.steps!r}; choose from: {', '.join(STEP_KINDS)}")
        shape = tuple(self.shape)
        if any(isinstance(s, bool) or not isinstance(s, int | np.integer) or s < 1 for s in shape):
            raise UserError(f"field shape must be positive integers, got {self.shape!r}")
        object.__setattr__(self, "shape", tuple(int(s) for s in shape))
        if self.storage == "index" and not (
            isinstance(self.num_values, int) and self.num_values >= 1
        ):
            raise UserError(f"index field needs num_values >= 1, got {self.num_values!r}")
        if self.storage == "bits" and not shape:
            raise UserError("bits field needs at least one dimension to pack along")
        if self.onehot_tail and not (
            len(shape) == 1
            and self.steps == "state"
            and self.storage in FLOAT_STORAGES
            and isinstance(self.tail_size, int)
            and 1 <= self.tail_size <= shape[0]
        ):
            raise UserError(
                f"a one-hot tail needs a 1-D float state field with 1 <= tail_size <= "
                f"{shape[0] if len(shape) == 1 else 'its size'}, got shape {shape}, "
                f"storage {self.storage!r}, steps {self.steps!r}, tail_size {self.tail_size!r}"
            )

    @property
    def dtype(self) -> np.dtype:
        """Numpy dtype of the stored array."""
        if self.storage == "index":
            for dt in (np.int8, np.int16, np.int32):
                if self.num_values - 1 <= np.iinfo(dt).max:
                    return np.dtype(dt)
            return np.dtype(np.int64)
        if self.storage in ("bool", "bits"):
            return np.dtype(np.bool_ if self.storage == "bool" else np.uint8)
        if self.storage == "snorm8":
            return np.dtype(np.int8)
        return np.dtype(self.storage)

    @property
    def stored_shape(self) -> tuple[int, ...]:
        """Per-step shape of the stored array (``bits`` packs the last dimension, a one-hot
        tail is not stored)."""
        if self.onehot_tail:
            return (self.shape[0] - self.tail_size,)
        if self.storage == "bits":
            return (*self.shape[:-1], -(-self.shape[-1] // 8))
        return self.shape

    @property
    def bytes_per_step(self) -> int:
        """Stored bytes per slot."""
        return int(np.prod(self.stored_shape, dtype=np.int64)) * self.dtype.itemsize

    def slots(self, episode_len: int) -> int:
        """Slots an episode of ``episode_len`` transitions occupies in this field."""
        return episode_len + 1 if self.steps == "state" else episode_len


Scheme = Mapping[str, FieldSpec]


def validate_scheme(scheme: Scheme) -> dict[str, FieldSpec]:
    """Check a scheme's names and types; returns it as a plain dict."""
    if not scheme:
        raise UserError("a buffer scheme needs at least one field")
    out: dict[str, FieldSpec] = {}
    for name, spec in scheme.items():
        if name in RESERVED_NAMES:
            raise UserError(f"field name {name!r} is reserved ({', '.join(RESERVED_NAMES)})")
        if not isinstance(spec, FieldSpec):
            raise UserError(f"field {name!r} must be a FieldSpec, got {type(spec).__name__}")
        out[name] = spec
    for name, spec in out.items():
        if not spec.onehot_tail:
            continue
        src = out.get(spec.onehot_tail)
        if src is None or src.storage != "index" or src.steps != "transition":
            raise UserError(
                f"field {name!r}: one-hot tail source {spec.onehot_tail!r} must be an index "
                f"transition field of the scheme"
            )
        width = int(np.prod(src.shape, dtype=np.int64)) * src.num_values
        if spec.tail_size != width:
            raise UserError(
                f"field {name!r}: tail_size {spec.tail_size} != {width}, the one-hot size of "
                f"{spec.onehot_tail!r}"
            )
    return out


def smac_scheme(
    n_agents: int,
    n_actions: int,
    obs_shape: int,
    state_shape: int,
    float_storage: Literal["float16", "float32", "snorm8"] = "float16",
    state_last_action: bool = False,
) -> dict[str, FieldSpec]:
    """The PyMARL/SMAC episode scheme.

    Fields: ``obs [n_agents, obs_shape]``, ``state [state_shape]`` (both ``float_storage``),
    ``avail_actions [n_agents, n_actions]`` (bits) per state; ``actions [n_agents]``
    (index), ``reward []`` (float32), ``terminated []`` (bool) per transition.
    ``state_last_action``: the state ends with the one-hot codes of every agent's last
    action (SMAC's default, :attr:`mast.envs.BatchEnv.state_last_action`); they are
    rebuilt from ``actions`` instead of stored.
    """
    if float_storage not in FLOAT_STORAGES:
        raise UserError(
            f"unknown float storage {float_storage!r}; choose from: {', '.join(FLOAT_STORAGES)}"
        )
    return {
        "obs": FieldSpec((n_agents, obs_shape), float_storage),
        "state": FieldSpec(
            (state_shape,),
            float_storage,
            onehot_tail="actions" if state_last_action else "",
            tail_size=n_agents * n_actions if state_last_action else 0,
        ),
        "avail_actions": FieldSpec((n_agents, n_actions), "bits"),
        "actions": FieldSpec((n_agents,), "index", "transition", num_values=n_actions),
        "reward": FieldSpec((), "float32", "transition"),
        "terminated": FieldSpec((), "bool", "transition"),
    }
