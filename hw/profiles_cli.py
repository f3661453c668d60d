"""``mast-hw profiles``: list the built-in hardware profiles."""

from __future__ import annotations

import argparse

from hw.clocks import clock_origin, load_records
from hw.profiles import PROFILES, load_profile


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--show", metavar="PROFILE", help="print one profile (name or YAML) as JSON")


def run(args: argparse.Namespace) -> int:
    if args.show:
        print(load_profile(args.show).to_json())
        return 0
    records = load_records()
    for name, prof in sorted(PROFILES.items()):
        shape = f"{prof.rows}x{prof.cols}" if prof.kind == "systolic" else f"{prof.n_pe} PEs"
        origin = clock_origin(prof, records)
        print(
            f"{name:18s} {prof.kind:9s} {shape:9s} {prof.clock_hz / 1e6:6.1f} MHz "
            f"Q{prof.operand_bits - 1 - prof.frac_bits}.{prof.frac_bits} "
            f"{prof.part or 'ASIC':10s} clock {origin.kind}"
        )
    return 0
