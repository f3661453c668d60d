"""Per-storage-kind conversion between inserted arrays and the buffer's stored arrays.

``CODECS[storage].encode(name, spec, x)`` checks one episode's values and returns them
in the stored dtype (raising :class:`~mast.errors.UserError` naming the field and the bad
value); ``CODECS[storage].decode(spec, a)`` turns gathered stored arrays into the tensors
a learner reads (float32, int64 or bool). What each kind keeps exactly is documented in
:mod:`mast.buffer.scheme`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import torch

from mast.buffer.scheme import FLOAT16_MAX, FieldSpec
from mast.errors import UserError

__all__ = ["CODECS", "Codec"]


@dataclass(frozen=True)
class Codec:
    """Encoder (checks and converts on insert) and decoder (to tensors on sampling)."""

    encode: Callable[[str, FieldSpec, np.ndarray], np.ndarray]
    """``(field name, spec, values) -> stored array``; raises ``UserError`` on bad values."""
    decode: Callable[[FieldSpec, np.ndarray], torch.Tensor]
    """``(spec, stored array) -> tensor`` (float32, int64 or bool)."""


def _numeric(name: str, x: np.ndarray) -> None:
    if not np.issubdtype(x.dtype, np.number) and x.dtype != np.bool_:
        raise UserError(f"field {name!r} must be numeric, got dtype {x.dtype}")


def _largest(x: np.ndarray) -> float:
    return float(np.max(np.abs(x))) if x.size else 0.0


def _encode_float32(name: str, spec: FieldSpec, x: np.ndarray) -> np.ndarray:
    _numeric(name, x)
    return x.astype(np.float32, copy=False)


def _encode_float16(name: str, spec: FieldSpec, x: np.ndarray) -> np.ndarray:
    _numeric(name, x)
    top = _largest(x)
    if top > FLOAT16_MAX:
        raise UserError(
            f"field {name!r} holds {top:g}, beyond float16's range (65504); store it as float32"
        )
    return x.astype(np.float16)


def _encode_snorm8(name: str, spec: FieldSpec, x: np.ndarray) -> np.ndarray:
    _numeric(name, x)
    top = _largest(x)
    if not top <= 1.0:  # also catches nan
        raise UserError(
            f"field {name!r} holds {top:g}, outside snorm8's range [-1, 1]; "
            f"store it as float16 or float32"
        )
    return np.rint(x * 127.0).astype(np.int8)


def _encode_index(name: str, spec: FieldSpec, x: np.ndarray) -> np.ndarray:
    if not np.issubdtype(x.dtype, np.integer) and x.size:
        if not np.issubdtype(x.dtype, np.floating) or not np.all(x == np.round(x)):
            raise UserError(f"field {name!r} must hold integers, got dtype {x.dtype}")
    if x.size and (x.min() < 0 or x.max() >= spec.num_values):
        bad = x.min() if x.min() < 0 else x.max()
        raise UserError(f"field {name!r} holds {int(bad)}, outside [0, {spec.num_values})")
    return x.astype(spec.dtype)


def _flags(name: str, x: np.ndarray) -> np.ndarray:
    if x.dtype != np.bool_ and x.size and not np.isin(x, (0, 1)).all():
        raise UserError(f"field {name!r} must hold booleans or 0/1 values")
    return x.astype(np.bool_, copy=False)


def _encode_bool(name: str, spec: FieldSpec, x: np.ndarray) -> np.ndarray:
    return _flags(name, x)


def _encode_bits(name: str, spec: FieldSpec, x: np.ndarray) -> np.ndarray:
    return np.packbits(_flags(name, x), axis=-1, bitorder="little")


def _decode_float(spec: FieldSpec, a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a.astype(np.float32, copy=False))


def _decode_snorm8(spec: FieldSpec, a: np.ndarray) -> torch.Tensor:
    # Division (not multiplication by 1/127) keeps -1, 0 and 1 exact.
    return torch.from_numpy(a.astype(np.float32) / np.float32(127.0))


def _decode_index(spec: FieldSpec, a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a.astype(np.int64))


def _decode_bool(spec: FieldSpec, a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a)


def _decode_bits(spec: FieldSpec, a: np.ndarray) -> torch.Tensor:
    flags = np.unpackbits(a, axis=-1, count=spec.shape[-1], bitorder="little")
    return torch.from_numpy(flags.astype(np.bool_))


CODECS: Mapping[str, Codec] = MappingProxyType(
    {
        "float32": Codec(_encode_float32, _decode_float),
        "float16": Codec(_encode_float16, _decode_float),
        "snorm8": Codec(_encode_snorm8, _decode_snorm8),
        "index": Codec(_encode_index, _decode_index),
        "bool": Codec(_encode_bool, _decode_bool),
        "bits": Codec(_encode_bits, _decode_bits),
    }
)
"""Codec per storage kind (keys equal :data:`mast.buffer.scheme.STORAGE_KINDS`)."""
