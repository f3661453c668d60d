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

from mast import atomicio

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
    return atomicio.save_with(path, lambda fh: np.savez_compressed(fh, **arrays))


def _bad(path: Path, what: str) -> ValueError:
    from mast.errors import UserError

    return UserError(f"mask snapshot {str(path)!r}: {what}")


def _array(z, path: Path, key: str, shape: tuple[int, ...], kinds: str) -> np.ndarray:
    """``z[key]`` checked to have exactly ``shape`` and a dtype kind in ``kinds``."""
    if key not in z.files:
        raise _bad(path, f"array {key!r} is missing")
    a = z[key]  # allow_pickle=False: an object array raises here, nothing is unpickled
    if a.shape != shape or a.dtype.kind not in kinds:
        raise _bad(path, f"array {key!r} is {a.dtype}{list(a.shape)}, expected shape {shape}")
    return a


def _meta_list(z, path: Path) -> list[dict]:
    if "meta" not in z.files:
        raise _bad(path, "array 'meta' is missing")
    raw = z["meta"]
    if raw.ndim != 1 or raw.dtype != np.uint8:
        raise _bad(path, f"array 'meta' is {raw.dtype}{list(raw.shape)}, expected uint8 bytes")
    try:
        metas = json.loads(bytes(raw).decode())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _bad(path, "its metadata is not valid JSON") from None
    keys = {"name", "role", "shape", "uses_per_env_step", "uses_per_sample", "inputs"}
    keys |= {"recurrent", "has_values"}
    if not isinstance(metas, list) or not all(
        isinstance(m, dict) and keys <= set(m) for m in metas
    ):
        raise _bad(path, f"its metadata is not a list of layer records with keys {sorted(keys)}")
    for m in metas:
        shp = m["shape"]
        if not (isinstance(shp, list) and len(shp) == 2 and all(isinstance(v, int) for v in shp)):
            raise _bad(path, f"layer {m['name']!r} has shape {shp!r}, expected [out, in]")
    return metas


def load_layers(path: str | Path) -> list[SparseLayer]:
    """Read records written by :func:`save_layers`.

    Loading never executes code (``allow_pickle=False``) and every array must have exactly
    the shape its record implies: a truncated or resized mask is an error, not padding.

    Raises
    ------
    FileNotFoundError
        No such file.
    mast.errors.UserError
        Not a readable snapshot (truncated, not a zip, object arrays, wrong shapes), naming
        the file and the array.
    """
    import zipfile
    import zlib

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mask snapshot {str(path)!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            metas = _meta_list(z, path)
            out = []
            for i, m in enumerate(metas):
                rows, cols = m["shape"]
                n = rows * cols
                packed = _array(z, path, f"mask_{i}", ((n + 7) // 8,), "u")
                mask = np.unpackbits(packed, count=n).astype(bool).reshape(rows, cols)
                values = (
                    _array(z, path, f"values_{i}", (rows, cols), "f") if m["has_values"] else None
                )
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
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise _bad(path, f"not a readable .npz file ({type(e).__name__}: {e})") from None
    except ValueError as e:
        from mast.errors import UserError

        if isinstance(e, UserError):
            raise
        raise _bad(path, str(e).splitlines()[0] if str(e) else type(e).__name__) from None
    return out
