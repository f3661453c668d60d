"""Print the profile x part table of place-and-route results (README, "Place and route").

Reads every ``pnr.json`` that ``mast-hw pnr`` wrote under ``--root`` (default
``build/pnr``) and prints one Markdown row per run: LUT / FF / DSP / block RAM with their
share of the part's data-sheet capacity (nextpnr's placed counts when routed, Yosys' counts
otherwise), the routed Fmax (or why it did not route), the tool versions, the wall time
and the command that reproduces the row. Run the routes first, e.g.
``mast-hw pnr --profile sparse_pe_4 --part LFE5U-25F``.

Usage: ``python bench/pnr_table.py [--root build/pnr]``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hw.parts import get_part
from hw.pnr import _router_option

# nextpnr bel type of each data-sheet resource class, per family.
_BELS = {
    "ecp5": {"lut": "TRELLIS_COMB", "ff": "TRELLIS_FF", "dsp": "MULT18X18D", "bram": "DP16KD"},
    "ice40": {"lut": "ICESTORM_LC", "ff": "ICESTORM_LC", "dsp": "SB_MAC16", "bram": "ICESTORM_RAM"},
}


def row(run: dict, folder: Path) -> str:
    part = get_part(run["part"])
    cells = []
    for cls, bel in _BELS[part.family].items():
        cap = getattr(part, cls)
        used = run["utilisation"].get(bel, {}).get("used") if run["routed"] else None
        used = run["synthesis"][cls] if used is None else used
        pct = f" ({100 * used / cap:.0f} %)" if cap else ""
        cells.append(f"{used:,.0f}{pct}")
    if run["routed"]:
        fmax = f"{run['fmax']:.2f} MHz"
    else:
        fmax = f"not routed: {run['error'][:80]}"
    tools = ", ".join(f"{k} {v}" for k, v in run["tools"].items())
    wall = f"{run['synth_s']:.0f} + {run['pnr_s']:.0f} s"
    cmd = (
        f"`mast-hw pnr --profile {run['profile']} --part {run['part']} "
        f"--freq {run['target_mhz']:g} --seed {run['seed']}"
        f"{_router_option(run.get('flow', ''), part)}`"
    )
    return (
        f"| {run['profile']} | {run['part']} {run['package']}-{run['speed']} | "
        + " | ".join(cells)
        + f" | {fmax} | {tools} | {wall} | {cmd} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("build") / "pnr")
    args = parser.parse_args()
    print(
        "| profile | part | LUT | FF | DSP | BRAM | routed Fmax | tools | wall (synth + pnr) "
        "| command |"
    )
    print("|---|---|---:|---:|---:|---:|---|---|---:|---|")
    for path in sorted(args.root.glob("*/pnr.json")):
        print(row(json.loads(path.read_text()), path.parent))


if __name__ == "__main__":
    main()
