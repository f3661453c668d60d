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

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hw.compiler.build import ProgramFitError, choose_dataflow, unroll_samples
from hw.profiles import HwProfile
from mast.sparsity.layer import SparseLayer

__all__ = [
    "BLOCK_SEP",
    "STACK_SEP",
    "ActingOp",
    "acting_groups",
    "acting_ops",
    "stack_layers",
    "stack_parts",
]

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
        group = stacked.get(lay.name, [lay])
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


@dataclass(frozen=True, eq=False)
class ActingOp:
    """One op of the acting step: blocks of stacked layers, each block on its own agents.

    A single block is a (possibly stacked) layer run on its ``M`` agents like any layer.
    Several blocks (one per unit type with ``per_type`` masks) run as one row-parallel op
    on one sample: the block-diagonal of ``I_{M_b} (x) W_b`` over the blocks, its input
    every block's agents stacked sample-major, block after block (each block as a
    sample-unrolled op reads it, ``docs/microarchitecture.md`` s.2.5).
    """

    blocks: tuple[SparseLayer, ...]
    """Each block's (stacked) record; its ``uses_per_env_step`` is its agent count."""
    groups: tuple[tuple[SparseLayer, ...], ...]
    """The parts of each block (one layer, or the stacked layers)."""

    @property
    def name(self) -> str:
        return BLOCK_SEP.join(b.name for b in self.blocks)

    @property
    def mask(self) -> np.ndarray:
        """The op's matrix pattern (the block's own for a single block)."""
        if len(self.blocks) == 1:
            return self.blocks[0].mask
        return _block_diag([unroll_samples(b.mask, b.uses_per_env_step) for b in self.blocks])

    def layer(self) -> SparseLayer:
        """The record the compiler compiles: the block, or the merged block-diagonal."""
        if len(self.blocks) == 1:
            return self.blocks[0]
        with_values = all(b.values is not None for b in self.blocks)
        values = None
        if with_values:
            values = _block_diag(
                [unroll_samples(b.values, b.uses_per_env_step) for b in self.blocks]
            )
        return SparseLayer(
            name=self.name,
            role=self.blocks[0].role,
            mask=self.mask,
            values=values,
            uses_per_env_step=1,
            uses_per_sample=1,
        )

    def meta(self) -> list[dict]:
        """``Program.layers`` metadata of the merged op's blocks (see :meth:`layer`)."""
        out, row, col = [], 0, 0
        for block, group in zip(self.blocks, self.groups, strict=True):
            m = block.uses_per_env_step
            out.append(
                {
                    "name": block.name,
                    "parts": stack_parts(group),
                    "samples": m,
                    "rows": [row, row + m * block.n_out],
                    "cols": [col, col + m * block.n_in],
                }
            )
            row += m * block.n_out
            col += m * block.n_in
        return out


BLOCK_SEP = "|"
"""Joins the block names of a merged acting op."""


def _block_diag(blocks: Sequence[np.ndarray]) -> np.ndarray:
    rows = sum(b.shape[0] for b in blocks)
    cols = sum(b.shape[1] for b in blocks)
    out = np.zeros((rows, cols), dtype=blocks[0].dtype)
    r = c = 0
    for b in blocks:
        out[r : r + b.shape[0], c : c + b.shape[1]] = b
        r, c = r + b.shape[0], c + b.shape[1]
    return out


def _type_key(name: str) -> str:
    """A record name without its per-matrix index (``fc1.weight[2]`` -> ``fc1.weight``)."""
    return re.sub(r"\[[0-9,]+\]", "", name)


def acting_ops(layers: Sequence[SparseLayer], profile: HwProfile) -> list[ActingOp]:
    """The acting step's ops on ``profile``: :func:`acting_groups`, and on a sparse profile
    the same group of every unit type merged into one op when the merged matrix compiles
    row-parallel (:func:`hw.compiler.build.choose_dataflow` on one sample); otherwise each
    type's group is an op of its own. In the order of the groups' first appearance."""
    groups = acting_groups(layers)
    by_key: dict[str, list[list[SparseLayer]]] = {}
    for g in groups:
        by_key.setdefault(_type_key(stack_layers(g).name), []).append(g)
    ops: list[ActingOp] = []
    for same in by_key.values():
        blocks = tuple(stack_layers(g) for g in same)
        merged = ActingOp(blocks, tuple(tuple(g) for g in same))
        if len(same) > 1 and profile.is_sparse:
            try:
                flow, _ = choose_dataflow(merged.mask, 1, profile, name=merged.name)
            except ProgramFitError:
                flow = "sample"
            if flow == "row":
                ops.append(merged)
                continue
        ops += [ActingOp((b,), (tuple(g),)) for b, g in zip(blocks, same, strict=True)]
    return ops
