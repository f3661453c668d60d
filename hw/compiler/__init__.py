"""Mask compiler: masked layers -> :class:`hw.program.Program` for one hardware profile.

Public API: :func:`compile_layer`, :func:`compile_network`, :func:`choose_dataflow`,
:func:`balance_rows` (row-parallel work assignment, also used by the cost model),
:class:`ProgramFitError`, :data:`KERNEL_NAMES`.
"""

from hw.compiler.balance import RowPlan, plan_cuts, plan_for_threshold, plan_with_joins
from hw.compiler.build import (
    KERNEL_NAMES,
    ProgramFitError,
    balance_rows,
    choose_dataflow,
    compile_layer,
    compile_network,
    row_plan_cycles,
    row_plan_phases,
    unroll_samples,
)
from hw.compiler.encode import encode_banks, encode_stream, split_chunks

__all__ = [
    "KERNEL_NAMES",
    "ProgramFitError",
    "RowPlan",
    "balance_rows",
    "choose_dataflow",
    "compile_layer",
    "compile_network",
    "encode_banks",
    "encode_stream",
    "plan_cuts",
    "plan_for_threshold",
    "plan_with_joins",
    "row_plan_cycles",
    "row_plan_phases",
    "split_chunks",
    "unroll_samples",
]
