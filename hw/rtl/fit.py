"""Checks, before anything is loaded, that a program's ops fit a top level's memories.

Errors are :class:`hw.fit.ProgramFitError` (a ``ValueError``) naming the field.
"""

from __future__ import annotations

import numpy as np

from hw.fit import ProgramFitError
from hw.profiles import HwProfile
from hw.program import Op, Program
from hw.timing import tile_count

from .controller import COUNT_BITS

__all__ = ["check_fits", "check_program"]


def _need(op: Op, profile: HwProfile, what: str, value: int, field: str, limit: int) -> None:
    if value > limit:
        raise ProgramFitError(
            f"op {op.name!r}: {what}={value} exceeds {field}={limit} of the RTL of profile "
            f"{profile.name!r}"
        )


def check_program(profile: HwProfile, program: Program) -> None:
    """Raise :class:`~hw.fit.ProgramFitError` unless every op of ``program`` fits."""
    if program.profile != profile:
        raise ProgramFitError(
            f"program compiled for profile {program.profile.name!r} cannot run on the RTL of "
            f"profile {profile.name!r}"
        )
    for op in program.ops:
        check_fits(profile, op)


def check_fits(profile: HwProfile, op: Op) -> None:
    """Raise :class:`~hw.fit.ProgramFitError` naming the field an op exceeds."""
    if (op.dataflow == "systolic") == profile.is_sparse:
        raise ProgramFitError(
            f"op {op.name!r}: dataflow {op.dataflow!r} does not run on profile "
            f"{profile.name!r} of kind {profile.kind!r}"
        )
    _need(op, profile, "M", op.m, "2**24 (counter width)", (1 << COUNT_BITS) - 1)
    if op.dataflow == "systolic":
        from .systolic_top import out_rows

        k, m = (op.k, op.m) if "weight_tiles" in op.arrays else (op.m, op.k)
        tiles = -(-k // profile.rows) * -(-op.n // profile.cols) * profile.n_pe
        _need(
            op, profile, "weight tile words", tiles, "weight_sram_words", profile.weight_sram_words
        )
        _need(op, profile, "K*M", k * m, "act_sram_words", profile.act_sram_words)
        _need(
            op,
            profile,
            "ceil(N/cols)*M",
            -(-op.n // profile.cols) * m,
            "out_sram rows",
            out_rows(profile),
        )
        return
    _need(op, profile, "K", op.k, "2**index_bits", 1 << profile.index_bits)
    if op.dataflow == "row":
        _check_row(profile, op)
        return
    sddmm = op.kernel == "sddmm"
    height = op.k + op.n if sddmm else op.k
    _need(op, profile, "K+N" if sddmm else "K", height, "act_buf_words", profile.act_buf_words)
    if not sddmm:
        _need(op, profile, "N", op.n, "out_buf_words", profile.out_buf_words)
    _need(op, profile, "S", op.stream_length, "weight_sram_words", profile.weight_sram_words)
    _need(
        op,
        profile,
        "ceil(M/P)*height",
        tile_count(op.m, profile) * height,
        "act_sram_words/P",
        profile.act_sram_words // profile.n_pe,
    )
    if sddmm:
        _need(
            op,
            profile,
            "chunk non-zeros",
            op.nz_end - op.nz_begin,
            "grad_buf_words",
            profile.grad_buf_words,
        )


def _check_row(profile: HwProfile, op: Op) -> None:
    from .reduce import piece_capacity

    a = op.arrays
    n_p, q_p = np.diff(a["bank_ptr"]), np.diff(a["piece_ptr"])
    _need(op, profile, "K*M", op.k * op.m, "act_buf_words", profile.act_buf_words)
    _need(
        op,
        profile,
        "ceil(K*M/P)",
        -(-op.k * op.m // profile.n_pe),
        "act_sram_words/P",
        profile.act_sram_words // profile.n_pe,
    )
    _need(op, profile, "max n_p", int(n_p.max()), "weight_bank_words", profile.weight_bank_words)
    _need(op, profile, "max q_p*M", int(q_p.max()) * op.m, "out_buf_words", profile.out_buf_words)
    _need(op, profile, "pieces", len(a["piece_pe"]), "n_pe*out_buf_words", piece_capacity(profile))
