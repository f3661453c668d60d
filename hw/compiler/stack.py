"""Layers that share an input run as one op: the acting step's stacked matrices.

In the acting loop the GRU's hidden state ``h_t`` feeds two products: the output layer
``q_t = W_fc2 h_t`` of step ``t`` and the recurrent gate product ``W_hh h_t`` that step
``t + 1`` needs. Both are known at the end of step ``t``, so one SpMM of the stacked matrix
``[W_fc2; W_hh]`` computes them together: the small output layer (9-16 rows) shares the
PE array with the 192 gate rows instead of leaving most PEs idle in an op of its own, and
the step runs one op fewer. The first step's recurrent product is that of ``h_0 = 0``
(zero), so the loop needs nothing before it.

:func:`acting_groups` finds the groups in a network's records (one definition for the
program the compiler emits, :func:`hw.export.compile_inference`, and for the acting step
the cost model prices, :func:`cost_models.workload.inference_graph`); :func:`stack_layers`
builds the stacked record. A stacked record's name joins its parts' names with ``+``
and :func:`stack_parts` gives the rows of each part.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mast.sparsity.layer import SparseLayer

__all__ = ["STACK_SEP", "acting_groups", "stack_layers", "stack_parts"]

STACK_SEP = "+"
"""Joins the part names of a stacked record."""


def acting_groups(layers: Sequence[SparseLayer]) -> list[list[SparseLayer]]:
    """The acting step's ops: each recurrent agent layer with the layers fed by its cell.

    A recurrent layer ``R`` (``R.recurrent``) is stacked under every non-recurrent layer
    ``F`` that lists ``R`` among its inputs (``F`` reads the cell output ``h_t``, as ``R``
    does one step later) and has ``R``'s input width and uses per step; every other layer
    is a group of its own. Groups keep the order of ``layers`` (a stack sits where its first
    part was); a stack lists the consumers first, then ``R``.
    """
    by_name = {lay.name: lay for lay in layers}
    stacked: dict[str, list[SparseLayer]] = {}
    for rec in layers:
        if not rec.recurrent:
            continue
        feeds = [
            lay
            for lay in layers
            if not lay.recurrent
            and rec.name in lay.inputs
            and lay.n_in == rec.n_in
            and lay.uses_per_env_step == rec.uses_per_env_step
            and lay.name not in stacked
        ]
        if feeds:
            stacked[feeds[0].name] = [*feeds, rec]
            for lay in feeds[1:] + [rec]:
                stacked[lay.name] = []
    groups = []
    for lay in layers:
        group = stacked.get(lay.name, [by_name[lay.name]])
        if group:
            groups.append(group)
    return groups


def stack_layers(group: Sequence[SparseLayer]) -> SparseLayer:
    """One record of ``group``'s matrices stacked by rows (a single layer is returned as is).

    The parts must share the input width and the uses per step; the stack is not
    recurrent and reads the union of the parts' other inputs.
    """
    if len(group) == 1:
        return group[0]
    n_in = {lay.n_in for lay in group}
    uses = {lay.uses_per_env_step for lay in group}
    if len(n_in) != 1 or len(uses) != 1:
        names = ", ".join(lay.name for lay in group)
        raise ValueError(f"layers {names} differ in input width or uses per step; cannot stack")
    names = [lay.name for lay in group]
    with_values = all(lay.values is not None for lay in group)
    inputs = [i for lay in group for i in lay.inputs if i not in names]
    return SparseLayer(
        name=STACK_SEP.join(names),
        role=group[0].role,
        mask=np.concatenate([lay.mask for lay in group], axis=0),
        values=np.concatenate([lay.values for lay in group], axis=0) if with_values else None,
        uses_per_env_step=group[0].uses_per_env_step,
        uses_per_sample=group[0].uses_per_sample,
        inputs=tuple(dict.fromkeys(inputs)),
        recurrent=False,
    )


def stack_parts(group: Sequence[SparseLayer]) -> list[list]:
    """``[[name, first row, end row], ...]`` of each part of a stack."""
    parts, row = [], 0
    for lay in group:
        parts.append([lay.name, row, row + lay.n_out])
        row += lay.n_out
    return parts
