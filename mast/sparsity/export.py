"""A registered tensor (:class:`TensorInfo`) and its mask -> :class:`SparseLayer` records."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from mast.errors import UserError
from mast.sparsity.layer import ROLES, SparseLayer

__all__ = ["TensorInfo", "export_tensor", "matrix_name"]


@dataclass(frozen=True, eq=False)
class TensorInfo:
    """A registered weight tensor and how the network uses it (for export and FLOPs).

    A tensor of shape ``(*lead, out, in)`` holds ``prod(lead)`` matrices (e.g. one per agent
    type); ``uses_per_env_step`` / ``uses_per_sample`` hold one count per matrix.
    """

    name: str
    param: torch.nn.Parameter
    role: str
    uses_per_env_step: tuple[int, ...]
    uses_per_sample: tuple[int, ...]
    inputs: tuple[str, ...]
    recurrent: bool
    dense: bool

    @property
    def n_matrices(self) -> int:
        """Number of ``(out, in)`` matrices in the tensor."""
        n = 1
        for d in self.param.shape[:-2]:
            n *= d
        return n

    @staticmethod
    def per_matrix(name: str, field: str, value, n: int) -> tuple[int, ...]:
        """Broadcast an int (or check a sequence) to one non-negative count per matrix."""
        values = (int(value),) * n if isinstance(value, int) else tuple(int(v) for v in value)
        if len(values) != n:
            raise UserError(f"tensor {name!r}: {field} needs {n} values, got {len(values)}")
        if any(v < 0 for v in values):
            raise UserError(f"tensor {name!r}: {field} must be >= 0, got {value!r}")
        return values

    @staticmethod
    def check_role(name: str, role: str) -> str:
        """Return ``role`` or raise :class:`UserError` listing the known roles."""
        if role not in ROLES:
            raise UserError(f"tensor {name!r}: unknown role {role!r}; known: {', '.join(ROLES)}")
        return role


def matrix_name(name: str, index: tuple[int, ...]) -> str:
    """Record name of matrix ``index`` of a stacked tensor: ``name[i]`` or ``name[i,j]``."""
    return name if not index else f"{name}[{','.join(str(i) for i in index)}]"


def export_tensor(
    info: TensorInfo,
    mask: torch.Tensor,
    with_values: bool = False,
    lead_shapes: Mapping[str, tuple[int, ...]] | None = None,
) -> list[SparseLayer]:
    """One record per ``(out, in)`` matrix of ``info.param`` (row-major leading order).

    Parameters
    ----------
    info:
        The registration record (role, uses per matrix, inputs, recurrent flag).
    mask:
        Boolean mask of the tensor's shape.
    with_values:
        Attach float32 weights (zero outside the mask).
    lead_shapes:
        Leading shape of every registered tensor; an input whose leading shape equals this
        tensor's is referenced per matrix (``fc1[2]`` feeds ``gru.w_ih[2]``).

    Returns
    -------
    list of SparseLayer
    """
    lead = tuple(info.param.shape[:-2])
    mask_np = mask.detach().cpu().numpy().astype(bool)
    values_np = info.param.detach().float().cpu().numpy() if with_values else None
    lead_shapes = lead_shapes or {}
    out = []
    for k, index in enumerate(np.ndindex(*lead) if lead else [()]):
        inputs = tuple(
            matrix_name(i, index) if lead and lead_shapes.get(i) == lead else i for i in info.inputs
        )
        out.append(
            SparseLayer(
                name=matrix_name(info.name, index),
                role=info.role,  # type: ignore[arg-type]
                mask=mask_np[index],
                values=None if values_np is None else values_np[index],
                uses_per_env_step=info.uses_per_env_step[k],
                uses_per_sample=info.uses_per_sample[k],
                inputs=inputs,
                recurrent=info.recurrent,
            )
        )
    return out
