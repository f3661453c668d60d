"""``mast-hw report``: accelerator cost reports per sparsity level or for a run's masks.

Examples::

    mast-hw report --profile sparse_pe_64 --sparsity 0,0.5,0.8,0.9,0.95 --map 3m
    mast-hw report --profile sparse_pe_64 --masks runs/qmix_mast_3m_s0_... --out rep/

Writes ``report.md``, ``summary.csv``, ``layers.csv``, ``report.json`` and two PNG plots
into ``--out`` (default ``reports/<profile>_<map or run>/``); a non-empty existing folder
is refused unless ``--force``. On a training run's folder ``mast-hw``
(:mod:`codesign.hw_cli`) also regenerates the run's own report afterwards.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from cost_models.networks import DENSITY_RULES, SMAC_MAPS, get_map
from cost_models.render import markdown, write_report
from cost_models.rundir import load_run
from cost_models.sweep import (
    SweepResult,
    compare,
    default_baseline,
    parse_sparsities,
    sparsity_sweep,
)
from cost_models.workload import WorkloadConfig
from hw.clocks import basis_lines
from hw.profiles import load_profile
from mast.errors import UserError, int_in

__all__ = ["configure", "run"]

_RUN = WorkloadConfig()
"""The workload defaults the help texts quote."""


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``report`` options to ``parser``."""
    parser.add_argument(
        "--profile",
        default="sparse_pe_64",
        help="hardware profile name or YAML file (default: sparse_pe_64)",
    )
    parser.add_argument(
        "--sparsity",
        default="0,0.5,0.8,0.9,0.95",
        help="comma-separated overall sparsity levels in [0, 1) (default: 0,0.5,0.8,0.9,0.95)",
    )
    parser.add_argument(
        "--map",
        default="3m",
        dest="map_name",
        help=f"SMAC map of the network shapes ({', '.join(SMAC_MAPS)}; default: 3m)",
    )
    parser.add_argument(
        "--density",
        default="erdos_renyi",
        help=f"per-layer density rule ({', '.join(DENSITY_RULES)}; default: erdos_renyi)",
    )
    parser.add_argument(
        "--seed",
        type=int_in(0, 2**32 - 1),
        default=0,
        help="seed of the random masks (default: 0)",
    )
    parser.add_argument(
        "--baseline",
        default=None,
        help="dense baseline profile (default: the systolic array of equal MAC count)",
    )
    parser.add_argument(
        "--masks",
        default=None,
        metavar="RUN_DIR",
        help="cost the latest mask snapshot of a training run instead (batch size, "
        "t_max and topology interval then come from the run's config.yaml)",
    )
    parser.add_argument(
        "--batch-size",
        type=int_in(1, 1 << 16),
        default=None,
        help=f"episodes per batch B (default: {_RUN.batch_size})",
    )
    parser.add_argument(
        "--seq-len",
        type=int_in(2, 1 << 20),
        default=None,
        help="time steps T per episode (default: episode limit + 1)",
    )
    parser.add_argument(
        "--update-interval-iters",
        type=int_in(1, 10**10),
        default=None,
        help="training iterations between topology updates (default: "
        f"{_RUN.update_interval_iters}; training's sparsity.delta_t counts environment steps)",
    )
    parser.add_argument(
        "--episodes-per-iteration",
        type=int_in(1, 1 << 16),
        default=None,
        help=f"episodes collected per training iteration (default: {_RUN.episodes_per_iteration})",
    )
    parser.add_argument(
        "--t-max",
        type=int_in(1, 10**10),
        default=None,
        help=f"environment steps of the run the 'Whole run' table costs (default: "
        f"{_RUN.t_max:,}, the paper's run length; mast-train's default run is shorter)",
    )
    parser.add_argument(
        "--out",
        default=None,
        help="output folder (default: reports/<profile>_<map>, or reports/<profile>_<run "
        "folder name> with --masks)",
    )
    parser.add_argument("--force", action="store_true", help="write into a non-empty output folder")


def _overrides(args: argparse.Namespace, run: WorkloadConfig) -> WorkloadConfig:
    kw = {
        k: v
        for k, v in (
            ("batch_size", args.batch_size),
            ("seq_len", args.seq_len),
            ("update_interval_iters", args.update_interval_iters),
            ("t_max", args.t_max),
            ("episodes_per_iteration", args.episodes_per_iteration),
        )
        if v is not None
    }
    return dataclasses.replace(run, **kw)


def _out_dir(args: argparse.Namespace, default: str) -> Path:
    out = Path(args.out) if args.out else Path("reports") / default
    if out.exists() and not out.is_dir():
        raise UserError(f"output path {str(out)!r} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not args.force:
        raise UserError(f"output folder {str(out)!r} is not empty; pass --force to overwrite")
    # Created now, so an unwritable path fails before minutes of costing (an empty folder
    # is all a later failure leaves; the next run accepts it).
    out.mkdir(parents=True, exist_ok=True)
    return out


def build(args: argparse.Namespace) -> tuple[SweepResult, Path]:
    """Compute the report the arguments ask for; returns it and its output folder."""
    profile = load_profile(args.profile)
    baseline = load_profile(args.baseline) if args.baseline else default_baseline(profile)
    if args.density not in DENSITY_RULES:
        raise UserError(f"unknown density rule {args.density!r}; known: {', '.join(DENSITY_RULES)}")
    if args.masks:
        masks = load_run(args.masks)
        run = _overrides(args, masks.run)
        name = Path(args.masks).resolve().name
        out = _out_dir(args, f"{profile.name}_{name}")
        label = f"{name} ({masks.snapshot.name})"
        comp = compare(profile, baseline, masks.layers, run, label=label)
        notes = (*comp.report.notes, *masks.notes)
        comp = dataclasses.replace(comp, report=dataclasses.replace(comp.report, notes=notes))
        return SweepResult(profile.name, baseline.name, name, (comp,)), out
    dims = get_map(args.map_name)
    sparsities = parse_sparsities(args.sparsity)
    out = _out_dir(args, f"{profile.name}_{args.map_name}")
    run = _overrides(args, WorkloadConfig(episode_limit=dims.episode_limit))
    result = sparsity_sweep(
        profile,
        sparsities,
        args.map_name,
        baseline=baseline,
        density=args.density,
        seed=args.seed,
        run=run,
        progress=_progress,
    )
    return result, out


def _progress(levels):
    """A progress bar over the sparsity levels (on stderr; gone when done)."""
    from tqdm.std import tqdm

    return tqdm(levels, desc="costing sparsity levels", unit="level", leave=False)


def run(args: argparse.Namespace) -> int:
    """Compute, write and summarise the report."""
    result, out = build(args)
    result = dataclasses.replace(result, basis=basis_lines(load_profile(args.profile)))
    files = write_report(result, out)
    text = markdown(result)
    start = text.index("## Training")
    end = text.index("## Whole run")
    print("\n".join(result.basis) + "\n")
    print(text[start:end].rstrip())
    print(f"\nwrote {out / 'report.md'} and {', '.join(f.name for f in files[1:])} in {out}/")
    return 0
