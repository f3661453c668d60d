"""Learning benchmark: dense QMIX vs MAST-QMIX (and SS, SET, RigL) on the built-in simulator.

For every map x method x seed it trains one run (``mast.train.train``) and prints, per map
and method: the final greedy test win rate (median and min-max over seeds), the same as a
percentage of the dense median, the median over seeds of the mean of the last three
evaluations (less noisy than one evaluation of 32 episodes), FLOPs(train) and FLOPs(test)
relative to dense, and the wall time per run. It then prints the training throughput of
the default preset (env steps/s including learning), the peak resident memory of the
worker processes and the replay buffer's bytes per episode (full 5000-episode buffer on
2c_vs_64zg). The topology schedule of the sparse methods is scaled to ``--t-max``
(:func:`schedule_flags`).

Examples::

    python bench/learning.py                                  # 3m and 2s3z, 3 seeds
    python bench/learning.py --maps 3m --seeds 1 --t-max 30000 --methods dense,mast
    python bench/learning.py --device cuda --jobs 4 --t-max 200000
"""

from __future__ import annotations

import argparse
import csv
import resource
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from mast.config import METHODS
from mast.errors import UserError, run_cli
from mast.presets import resolve_config


@dataclass(frozen=True)
class Outcome:
    """One finished run."""

    map_name: str
    method: str
    seed: int
    win_rate: float
    win_rate_last3: float
    flops_train: float
    flops_test: float
    t_env: int
    wall_s: float
    peak_rss_mib: float


def schedule_flags(t_max: int) -> dict[str, int]:
    """The topology schedule scaled to the run length: ``delta_t = t_max / 12`` and
    ``t_end = 3/4 t_max`` (the presets' 5000 and 45000 for their 60k-step run); config
    overrides on the command line take precedence."""
    return {"sparsity.delta_t": max(1, round(t_max / 12)), "sparsity.t_end": round(0.75 * t_max)}


def _one(job: tuple) -> Outcome:
    map_name, method, seed, args = job
    from mast.train import train

    cfg = resolve_config(
        alg=args.alg,
        method=method,
        flags={
            "env.map_name": map_name,
            "run.seed": seed,
            "sparsity.seed": seed,
            "run.t_max": args.t_max,
            "sparsity.sparsity": args.sparsity,
            **schedule_flags(args.t_max),
            "run.device": args.device,
            "run.progress": False,
            "run.tensorboard": False,
        },
        overrides=args.overrides,
    )
    res = train(cfg, out=args.out)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with open(res.run_dir / "metrics.csv", newline="") as fh:
        tests = [float(r["test_win_rate"]) for r in csv.DictReader(fh)]
    last3 = statistics.mean([w for w in tests if w == w][-3:])
    return Outcome(
        map_name,
        method,
        seed,
        res.test_win_rate,
        last3,
        res.flops_train,
        res.flops_test,
        res.t_env,
        res.wall_s,
        rss,
    )


def _buffer_line() -> str:
    from mast.buffer import DualReplayBuffer, smac_scheme
    from mast.envs import make_batch_env

    env = make_batch_env("builtin", map_name="2c_vs_64zg", n_envs=1, seed=0)
    info = env.get_env_info()
    scheme = smac_scheme(
        info["n_agents"],
        info["n_actions"],
        info["obs_shape"],
        info["state_shape"],
        state_last_action=env.state_last_action,
    )
    buf = DualReplayBuffer(scheme, info["episode_limit"], off_capacity=5000)
    per_ep = buf.bytes_per_episode()
    return (
        f"replay buffer, 2c_vs_64zg ({info['episode_limit']}-step episodes): "
        f"{per_ep / 1024:.1f} KiB per episode, full 5000-episode buffer "
        f"{buf.nbytes / 2**30:.2f} GiB (limit 4 GiB)"
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--maps", default="3m,2s3z", help="comma-separated maps")
    p.add_argument(
        "--methods",
        default="dense,mast,static,set,rigl",
        help=f"comma-separated methods ({', '.join(METHODS)})",
    )
    p.add_argument("--alg", default="qmix", help="algorithm (default qmix)")
    p.add_argument("--seeds", type=int, default=3, help="seeds per configuration")
    p.add_argument("--first-seed", type=int, default=0, help="first seed; seeds run upward from it")
    p.add_argument("--t-max", type=int, default=60_000, help="env steps per run")
    p.add_argument("--sparsity", type=float, default=0.9, help="sparsity of sparse methods")
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel (processes)")
    p.add_argument("--out", default=None, help="run folders root (default: a temp folder)")
    p.add_argument("overrides", nargs="*", help="extra config overrides group.field=value")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_intermixed_args(argv)
    maps = [m for m in args.maps.split(",") if m]
    methods = [m for m in args.methods.split(",") if m]
    for m in methods:
        if m not in METHODS:
            raise UserError(f"unknown method {m!r}; known: {', '.join(METHODS)}")
    if args.seeds < 1 or args.jobs < 1:
        raise UserError(f"--seeds and --jobs must be >= 1, got {args.seeds} and {args.jobs}")
    if args.first_seed < 0:
        raise UserError(f"--first-seed must be >= 0, got {args.first_seed}")
    tmp = None
    if args.out is None:
        tmp = tempfile.TemporaryDirectory(prefix="mast-bench-")
        args.out = tmp.name
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    jobs = [(mp, me, s, args) for mp in maps for me in methods for s in seeds]
    console = Console(width=140)
    console.print(f"{len(jobs)} runs of {args.t_max} env steps ({args.alg}, {args.device})")
    start = time.perf_counter()
    outcomes: list[Outcome] = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for o in pool.map(_one, jobs):
            console.print(
                f"  {o.map_name} {o.method} seed {o.seed}: win {o.win_rate:.3f} "
                f"(last-3 mean {o.win_rate_last3:.3f}) in {o.wall_s:.0f} s"
            )
            outcomes.append(o)
    table = Table(
        title=f"{args.alg.upper()} at sparsity {args.sparsity}, "
        f"{args.t_max} env steps, {args.seeds} seed(s)"
    )
    for col in (
        "map",
        "method",
        "test win median",
        "min-max",
        "% of dense",
        "last-3 evals mean",
        "FLOPs train",
        "FLOPs test",
        "wall s/run",
    ):
        table.add_column(col, justify="right")
    for mp in maps:
        dense = [o.win_rate for o in outcomes if o.map_name == mp and o.method == "dense"]
        ref = statistics.median(dense) if dense else None
        for me in methods:
            rows = [o for o in outcomes if o.map_name == mp and o.method == me]
            wins = [o.win_rate for o in rows]
            med = statistics.median(wins)
            pct = f"{100 * med / ref:.0f}%" if ref else "-"
            last3 = statistics.median(o.win_rate_last3 for o in rows)
            table.add_row(
                mp,
                me,
                f"{med:.3f}",
                f"{min(wins):.2f}-{max(wins):.2f}",
                pct,
                f"{last3:.3f}",
                f"{rows[0].flops_train:.4f}",
                f"{rows[0].flops_test:.4f}",
                f"{statistics.mean(o.wall_s for o in rows):.0f}",
            )
    console.print(table)
    default = [o for o in outcomes if o.map_name == "3m" and o.method == "mast"]
    if default and args.alg == "qmix":
        fps = sum(o.t_env for o in default) / sum(o.wall_s for o in default)
        console.print(
            f"throughput of the default preset (MAST-QMIX 3m, {args.device}): "
            f"{fps:.0f} env steps/s including learning"
        )
    console.print(
        f"peak RSS of a worker: {max(o.peak_rss_mib for o in outcomes):.0f} MiB; "
        f"total wall {time.perf_counter() - start:.0f} s"
    )
    console.print(_buffer_line())
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(run_cli("bench/learning.py", main))
