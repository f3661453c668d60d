"""``mast-hw profiles``: list the built-in hardware profiles."""

from __future__ import annotations

import argparse
import re

from hw.clocks import clock_origin, load_records
from hw.profiles import PROFILES, load_profile


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--show", metavar="PROFILE", help="print one profile (name or YAML) as JSON")


def natural_key(name: str) -> list[object]:
    """Sort key ordering the numbers inside names by value (``sparse_pe_4`` < ``_16``)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def profile_table() -> list[str]:
    """The listing: a header, then one line per built-in profile in natural order."""
    w = max(len("profile"), *(len(n) for n in PROFILES))
    lines = [
        f"{'profile':{w}s} {'kind':9s} {'array':9s} {'clock':>10s} operands "
        f"{'part':10s} clock origin"
    ]
    records = load_records()
    for name in sorted(PROFILES, key=natural_key):
        prof = PROFILES[name]
        shape = f"{prof.rows}x{prof.cols}" if prof.kind == "systolic" else f"{prof.n_pe} PEs"
        fmt = f"Q{prof.operand_bits - 1 - prof.frac_bits}.{prof.frac_bits}"
        lines.append(
            f"{name:{w}s} {prof.kind:9s} {shape:9s} {prof.clock_hz / 1e6:6.1f} MHz "
            f"{fmt:8s} {prof.part or 'ASIC':10s} {clock_origin(prof, records).kind}"
        )
    return lines


def run(args: argparse.Namespace) -> int:
    if args.show:
        print(load_profile(args.show).to_json())
        return 0
    print("\n".join(profile_table()))
    return 0
