"""``mast-sweep``: run a grid of training runs on Ray, or report on one.

Examples::

    mast-sweep --maps 3m,2s3z --methods dense,mast --seeds 5 --t-max 300000 --out sweeps/NAME
    mast-sweep grid.yaml run.test_interval=20000       # the same keys in a YAML file
    mast-sweep sweeps/NAME/sweep.yaml                  # re-run: skip finished, resume the rest
    mast-sweep grid.yaml --address auto                # on a running Ray cluster
    mast-sweep report sweeps/NAME --last-k 5

Flags override the grid file's keys; ``KEY=VALUE`` arguments are config overrides of every
run (appended to the file's ``overrides``). The exit status is 0 when every run finished,
1 when some failed (run the sweep again to retry them), 2 on bad input and 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mast.config import ALGS, MAX_STEPS, METHODS
from mast.errors import ArgumentParser, UserError, float_in, int_in, run_cli

__all__ = ["main"]


def _run_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="mast-sweep",
        description="Run a grid of mast-train runs on Ray (resumable; `mast-sweep report "
        "DIR` writes the statistics).",
    )
    p.add_argument(
        "items",
        nargs="*",
        metavar="GRID.yaml | KEY=VALUE",
        help="a grid file and/or config overrides of every run",
    )
    g = p.add_argument_group("grid (override the grid file)")
    g.add_argument("--maps", help="comma-separated maps, e.g. 3m,2s3z")
    g.add_argument("--methods", help=f"comma-separated methods ({', '.join(METHODS)})")
    g.add_argument("--algs", help=f"comma-separated algorithms ({', '.join(ALGS)})")
    g.add_argument("--sparsity", help="comma-separated sparsities of the sparse methods")
    g.add_argument("--seeds", type=int_in(1, 10_000), help="seeds per cell")
    g.add_argument("--first-seed", type=int_in(0, 2**31), help="first seed (default 0)")
    g.add_argument("--t-max", type=int_in(1, MAX_STEPS), help="environment steps per run")
    g.add_argument("--out", help="sweep folder, e.g. sweeps/NAME")
    g.add_argument("--hw-profile", help="accelerator profile of every run (mast-train's flag)")
    g.add_argument("--hw-baseline", help="dense baseline profile (mast-train's flag)")
    g.add_argument("--device", help="torch device of every run (cpu, cuda)")
    g.add_argument(
        "--no-scale-schedule",
        action="store_true",
        help="keep the preset's topology schedule instead of scaling it to t_max",
    )
    r = p.add_argument_group("resources")
    r.add_argument("--cpus-per-run", type=float_in(0, 1024), help="Ray CPUs per run (default 1)")
    r.add_argument("--gpus-per-run", type=float, help="Ray GPUs per run, e.g. 0.25 (default 0)")
    r.add_argument(
        "--max-retries", type=int_in(0, 100), help="restarts of a run whose worker died (2)"
    )
    r.add_argument("--address", help="join a Ray cluster: auto or HOST:PORT (default: local)")
    r.add_argument("--node-ip-address", help="this machine's address in the cluster")
    r.add_argument(
        "--num-cpus", type=int_in(1, 1 << 16), help="CPUs of the local Ray (default: all)"
    )
    p.add_argument("--no-report", action="store_true", help="skip the report at the end")
    p.add_argument(
        "--last-k", type=int_in(1, 10_000), default=5, help="evaluation points per score (5)"
    )
    return p


def _report_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="mast-sweep report", description="results.csv, summary.md and plots of a sweep"
    )
    p.add_argument("sweep_dir", help="the sweep folder")
    p.add_argument(
        "--last-k", type=int_in(1, 10_000), default=5, help="evaluation points per score (5)"
    )
    p.add_argument("--reps", type=int_in(1, 10**7), default=2000, help="bootstrap resamples (2000)")
    return p


def _spec(args: argparse.Namespace):
    from sweep.spec import SweepSpec, load_spec_file

    files = [a for a in args.items if "=" not in a]
    overrides = [a for a in args.items if "=" in a]
    if len(files) > 1:
        raise UserError(f"one grid file at most, got {', '.join(files)}")
    data = load_spec_file(files[0]) if files else {}
    if overrides:
        base = data.get("overrides") or []
        if isinstance(base, dict):
            base = [f"{k}={v}" for k, v in base.items()]
        data["overrides"] = [*base, *overrides]
    return SweepSpec.from_dict(
        data,
        out=args.out,
        maps=args.maps,
        methods=args.methods,
        algs=args.algs,
        sparsity=args.sparsity,
        seeds=args.seeds,
        first_seed=args.first_seed,
        t_max=args.t_max,
        hw_profile=args.hw_profile,
        hw_baseline=args.hw_baseline,
        device=args.device,
        scale_schedule=False if args.no_scale_schedule else None,
        cpus_per_run=args.cpus_per_run,
        gpus_per_run=args.gpus_per_run,
        max_retries=args.max_retries,
    )


def _report(argv: Sequence[str]) -> int:
    from sweep.report import write_report

    args = _report_parser().parse_args(argv)
    rep = write_report(args.sweep_dir, k=args.last_k, reps=args.reps)
    print(rep.summary_md.read_text())
    print(f"wrote {rep.results_csv}, {rep.summary_md} and {len(rep.plots)} plot(s)")
    return 0


def _main(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["report"]:
        return _report(argv[1:])
    args = _run_parser().parse_intermixed_args(argv)
    spec = _spec(args)
    from sweep.driver import run_sweep

    outcome = run_sweep(spec, args.address, args.num_cpus, args.node_ip_address)
    print(
        f"{len(outcome.done)} run(s) finished, {len(outcome.skipped)} skipped (finished "
        f"before), {len(outcome.failed)} failed in {outcome.wall_s:.0f} s"
    )
    for name, err in outcome.failed:
        print(f"  failed: {name}: {err}")
    if not args.no_report:
        from sweep.report import write_report

        rep = write_report(spec.out, k=args.last_k)
        print(f"report: {rep.summary_md}")
    return 1 if outcome.failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    """``mast-sweep``; returns the exit status (bad input: one line on stderr, 2)."""
    return run_cli("mast-sweep", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
