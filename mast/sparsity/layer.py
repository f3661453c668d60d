"""``SparseLayer``: the one record that crosses from training to the hardware side.

A training run exports its current masks (and optionally weight values) as a list of
``SparseLayer`` records; the mask compiler, the cycle-level model and the cost model read
nothing else of the network. Records serialise to a single ``.npz`` file per snapshot.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

__all__ = ["SparseLayer", "Role", "save_layers", "load_layers"]

Role = Literal["agent", "mixer", "hypernet"]
ROLES: tuple[str, ...] = ("agent", "mixer", "hypernet")


@dataclass(frozen=True, eq=False)
class SparseLayer:
    """One masked weight matrix ``W`` of shape ``(out, in)`` used as ``Y = W X``.

    Attributes
    ----------
    name:
        Parameter name in the training network (e.g. ``agent.gru.w_ih``).
    role:
        ``agent`` (runs at every environment step, decentralised), ``mixer`` or
        ``hypernet`` (training only).
    mask:
        Boolean array of shape ``(out, in)``; ``True`` marks a kept connection.
    values:
        Optional float32 weights of the same shape (zero where the mask is ``False``).
    uses_per_env_step:
        How many matrix-vector products of this layer one environment step needs for
        acting (agent layers: ``n_agents``, 0 for mixer/hypernet layers).
    uses_per_sample:
        How many matrix-vector products one training sample (one episode time step of one
        batch element) needs in a forward pass, counting agents, GRU gates and targets'
        separate networks not included (the workload builder adds target passes).
    inputs:
        Names of the layers whose output this layer consumes within one time step
        (dataflow dependencies); empty for layers fed by observations or state.
    recurrent:
        ``True`` for matrices applied to the previous time step's hidden state (the GRU
        hidden-to-hidden matrix), which chain over time steps.
    """

    name: str
    role: Role
    mask: np.ndarray
    values: np.ndarray | None = None
    uses_per_env_step: int = 1
    uses_per_sample: int = 1
    inputs: tuple[str, ...] = field(default=())
    recurrent: bool = False

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("SparseLayer name must be non-empty")
        if self.role not in ROLES:
            raise ValueError(
                f"SparseLayer {self.name!r}: unknown role {self.role!r}; known: {', '.join(ROLES)}"
            )
        mask = np.asarray(self.mask)
        if mask.ndim != 2 or 0 in mask.shape:
            raise ValueError(
                f"SparseLayer {self.name!r}: mask must be a non-empty 2-D (out, in) array, "
                f"got shape {mask.shape}"
            )
        object.__setattr__(self, "mask", mask.astype(bool, copy=False))
        if self.values is not None:
            v = np.asarray(self.values, dtype=np.float32)
            if v.shape != mask.shape:
                raise ValueError(
                    f"SparseLayer {self.name!r}: values shape {v.shape} != mask shape {mask.shape}"
                )
            object.__setattr__(self, "values", np.where(self.mask, v, np.float32(0)))
        for f in ("uses_per_env_step", "uses_per_sample"):
            if getattr(self, f) < 0:
                raise ValueError(f"SparseLayer {self.name!r}: {f} must be >= 0")
        object.__setattr__(self, "inputs", tuple(self.inputs))

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.mask.shape)  # type: ignore[return-value]

    @property
    def n_out(self) -> int:
        return self.mask.shape[0]

    @property
    def n_in(self) -> int:
        return self.mask.shape[1]

    @property
    def nnz(self) -> int:
        return int(self.mask.sum())

    @property
    def density(self) -> float:
        return self.nnz / self.mask.size

    @property
    def sparsity(self) -> float:
        return 1.0 - self.density

    def meta(self) -> dict:
        return {
            "name": self.name,
            "role": self.role,
            "shape": list(self.shape),
            "uses_per_env_step": self.uses_per_env_step,
            "uses_per_sample": self.uses_per_sample,
            "inputs": list(self.inputs),
            "recurrent": self.recurrent,
            "has_values": self.values is not None,
        }


def save_layers(path: str | Path, layers: Sequence[SparseLayer]) -> Path:
    """Write records to one ``.npz`` (masks bit-packed, values float32, metadata JSON)."""
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    for i, layer in enumerate(layers):
        arrays[f"mask_{i}"] = np.packbits(layer.mask, axis=None)
        if layer.values is not None:
            arrays[f"values_{i}"] = layer.values
    arrays["meta"] = np.frombuffer(
        json.dumps([layer.meta() for layer in layers]).encode(), dtype=np.uint8
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    return path


def load_layers(path: str | Path) -> list[SparseLayer]:
    """Read records written by :func:`save_layers`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mask snapshot {str(path)!r} does not exist")
    with np.load(path) as z:
        metas = json.loads(bytes(z["meta"]).decode())
        out = []
        for i, m in enumerate(metas):
            n = m["shape"][0] * m["shape"][1]
            mask = np.unpackbits(z[f"mask_{i}"], count=n).astype(bool).reshape(m["shape"])
            values = z[f"values_{i}"] if m["has_values"] else None
            out.append(
                SparseLayer(
                    name=m["name"],
                    role=m["role"],
                    mask=mask,
                    values=values,
                    uses_per_env_step=m["uses_per_env_step"],
                    uses_per_sample=m["uses_per_sample"],
                    inputs=tuple(m["inputs"]),
                    recurrent=m["recurrent"],
                )
            )
    return out
