"""Turn a registered tensor and its mask into :class:`SparseLayer` records."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from mast.sparsity.config import TensorInfo
from mast.sparsity.layer import SparseLayer

__all__ = ["export_tensor", "matrix_name"]


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
