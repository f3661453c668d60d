"""``mast-train``: MAST training, optionally with a live hardware cost trace.

``mast.cli`` owns the training flags; this module adds the hardware ones:

``--hw-profile P``
    Cost the masks on profile ``P`` (a built-in name or a YAML file) at the start and
    after every topology update: ``hw_trace.csv`` in the run folder, ``hw_speedup`` on the
    progress bar and in ``metrics.csv``, and ``report.md`` (+ ``report.json``, plots) at
    the end. ``none`` (the default when the flag is omitted) trains without hardware.
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
        default=NONE,
        metavar="P",
        help="cost the evolving masks on this accelerator profile (name or YAML; "
        "e.g. sparse_pe_64); 'none' (default) disables the hardware trace",
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
    if args.hw_profile == NONE:
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


def main(argv: Sequence[str] | None = None) -> int:
    """``mast-train`` with the hardware flags; returns the exit status."""
    from mast.cli import main as mast_main

    return mast_main(argv, extra_args_hook=add_hw_arguments, post_parse=hw_callbacks)


if __name__ == "__main__":
    sys.exit(main())
