"""Checks, before anything is loaded, that a program's ops fit a top level's memories.

The rules are :mod:`hw.fit`'s, the compiler's own. Errors are
:class:`hw.fit.ProgramFitError` (a ``ValueError``) naming the field.
"""

from __future__ import annotations

from hw.fit import ProgramFitError, check_fit
from hw.profiles import HwProfile
from hw.program import Op, Program

__all__ = ["check_fits", "check_program"]


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
    """Raise :class:`~hw.fit.ProgramFitError` naming the field an op exceeds, or for a
    resident-weight op (``Op.resident``: modelled in ``sim`` and ``cost_models`` only)."""
    if op.resident:
        raise ProgramFitError(
            f"op {op.name!r}: resident systolic weights are modelled in sim and cost_models "
            "only; the RTL runs cold ops (compile without dataflow='resident')"
        )
    check_fit(profile, op.fit_shape(), f"op {op.name!r}")
    if op.dataflow == "row":
        try:
            pairs = op.joined_pairs()
        except ValueError as e:
            raise ProgramFitError(str(e)) from None
        if pairs and not profile.drain_join:
            raise ProgramFitError(
                f"op {op.name!r}: joins rows at the drain; profile {profile.name!r} has no "
                "drain adders (drain_join)"
            )
        a = op.arrays
        for j, r in enumerate(a["red_row"].tolist()):
            pes = a["piece_pe"][a["red_piece"][a["red_ptr"][j] : a["red_ptr"][j + 1]]]
            if len(set(pes.tolist())) < len(pes):
                raise ProgramFitError(
                    f"op {op.name!r}: split row {r} has two pieces on one PE; the output "
                    "SRAM banks have one read port, so a row's pieces must be on distinct "
                    "PEs (as hw.compiler places them)"
                )
