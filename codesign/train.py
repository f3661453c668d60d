"""``mast-train``: MAST training, optionally with a live hardware cost trace.

``mast.cli`` owns the training flags; this module adds the hardware ones:

``--hw-profile P``
    Cost the masks on profile ``P`` (a built-in name or a YAML file) at the start and
    after every topology update: ``hw_trace.csv`` in the run folder, ``hw_speedup`` on the
    progress bar and in ``metrics.csv``, and ``report.md`` (+ ``report.json``, plots) at
    the end. ``none`` (the default for a new run) trains without hardware. ``--resume``
    without this flag keeps the profiles the run was traced with (``hw_meta.json``), so
    the trace never silently stops; ``--hw-profile none`` stops it explicitly.
    The README's main command passes ``sparse_pe_64``.
``--hw-baseline B``
    The dense baseline profile (default: the built-in systolic array with ``P``'s MAC
    count, e.g. ``systolic_8x8`` for ``sparse_pe_64``).
``--hw-verify``
    Replay one compiled layer per snapshot on the Verilated RTL and require its cycles
    and outputs to equal ``sim``'s (:mod:`codesign.verify`).

``--hw-aware-growth`` (regrowth keeps rows balanced) is a training flag of :mod:`mast.cli`:
it sets ``sparsity.hw_aware_growth``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mast.errors import UserError

__all__ = ["add_hw_arguments", "hw_callbacks", "main"]

NONE = "none"
"""``--hw-profile`` value that turns the hardware trace off (the default)."""


def add_hw_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the hardware flags to ``mast-train``'s parser."""
    g = parser.add_argument_group("hardware co-design")
    g.add_argument(
        "--hw-profile",
        default=None,
        metavar="P",
        help="cost the evolving masks on this accelerator profile (name or YAML; "
        "e.g. sparse_pe_64); 'none' disables the hardware trace (the default for a new "
        "run; --resume keeps the run's own profiles unless this flag is given)",
    )
    g.add_argument(
        "--hw-baseline",
        default=None,
        metavar="B",
        help="dense baseline profile (default: the systolic array with P's MAC "
        "count, e.g. systolic_8x8 for sparse_pe_64)",
    )
    g.add_argument(
        "--hw-verify",
        action="store_true",
        help="replay one compiled layer per topology update on the Verilated RTL "
        "and check its cycles against sim",
    )


def hw_callbacks(args: argparse.Namespace) -> list[object]:
    """The training callbacks the hardware flags ask for (validated before any run starts).

    Raises
    ------
    hw.profiles.ProfileError
        Unknown profile name or bad profile file (the message lists the known names).
    mast.errors.UserError
        ``--hw-baseline`` / ``--hw-verify`` without ``--hw-profile``, or no default baseline.
    """
    if args.hw_profile is None and getattr(args, "resume", None):
        traced = _resumed_trace(args)
        if traced is not None:
            return traced
    if args.hw_profile in (None, NONE):
        for flag, given in (
            ("--hw-baseline", args.hw_baseline is not None),
            ("--hw-verify", args.hw_verify),
        ):
            if given:
                raise UserError(f"{flag} needs --hw-profile (got --hw-profile {NONE})")
        return []
    from codesign.trace import HwTrace
    from cost_models.sweep import default_baseline
    from hw.profiles import load_profile

    profile = load_profile(args.hw_profile)
    baseline = (
        load_profile(args.hw_baseline)
        if args.hw_baseline
        else default_baseline(profile, "--hw-baseline")
    )
    return [HwTrace(profile, baseline, verify=args.hw_verify)]


def _resumed_trace(args: argparse.Namespace) -> list[object] | None:
    """The trace of the run folder being resumed, with the profiles it was started with
    (``hw_meta.json``), or ``None`` if it was not traced. ``--hw-baseline`` and
    ``--hw-verify`` may still be given; a different baseline is refused when the trace
    resumes."""
    from pathlib import Path

    from codesign.trace import META_FILE, HwTrace, read_meta
    from hw.profiles import HwProfile, load_profile

    if not (Path(args.resume) / META_FILE).is_file():
        return None
    meta = read_meta(args.resume)
    source = str(Path(args.resume) / META_FILE)
    profile = HwProfile.from_dict(meta["profile"], source=source)
    baseline = (
        load_profile(args.hw_baseline)
        if args.hw_baseline
        else HwProfile.from_dict(meta["baseline"], source=source)
    )
    verify = args.hw_verify or bool(meta.get("verify", False))
    return [HwTrace(profile, baseline, verify=verify)]


def main(argv: Sequence[str] | None = None) -> int:
    """``mast-train`` with the hardware flags; returns the exit status."""
    from mast.cli import main as mast_main

    return mast_main(argv, extra_args_hook=add_hw_arguments, post_parse=hw_callbacks)


if __name__ == "__main__":
    sys.exit(main())
