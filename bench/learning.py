"""Learning benchmark: dense QMIX vs MAST-QMIX (and SS, SET, RigL), a front end to mast-sweep.

It runs the grid maps x methods x seeds with ``mast-sweep`` on a local Ray of ``--jobs``
CPUs (resumable: the same command again skips finished runs and resumes interrupted ones)
and prints the sweep's ``summary.md``: per map and method the median final test win, the
median / IQM / mean over seeds of the mean of each run's last ``--last-k`` evaluation
points with 95 % bootstrap CIs, % of dense, the probability of improvement over dense,
FLOPs(train) and FLOPs(test) relative to dense, wall time and env steps/s. It then prints
the training throughput of the default preset (env steps/s including learning), the peak
resident memory of the workers and the replay buffer's bytes per episode (full
5000-episode buffer on 2c_vs_64zg). The topology schedule of the sparse methods is scaled
to ``--t-max`` (:func:`sweep.spec.schedule_flags`).

Examples::

    python bench/learning.py                                  # 3m and 2s3z, 3 seeds
    python bench/learning.py --maps 3m --seeds 1 --t-max 30000 --methods dense,mast
    python bench/learning.py --device cuda --jobs 4 --t-max 200000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mast.config import METHODS
from mast.errors import UserError, run_cli


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
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel (local Ray CPUs)")
    p.add_argument("--last-k", type=int, default=5, help="evaluation points per score")
    p.add_argument(
        "--out",
        default=None,
        help="sweep folder (default sweeps/learning_<alg>_<t_max>_sp<sparsity>)",
    )
    p.add_argument("overrides", nargs="*", help="extra config overrides group.field=value")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_intermixed_args(argv)
    if args.jobs < 1:
        raise UserError(f"--jobs must be >= 1, got {args.jobs}")
    out = args.out or f"sweeps/learning_{args.alg}_{args.t_max}_sp{args.sparsity:g}"
    from sweep.cli import main as sweep_main

    sweep_argv = [
        "--maps", args.maps, "--methods", args.methods, "--algs", args.alg,
        "--sparsity", str(args.sparsity), "--seeds", str(args.seeds),
        "--first-seed", str(args.first_seed), "--t-max", str(args.t_max),
        "--device", str(args.device), "--num-cpus", str(args.jobs), "--out", out,
        "--last-k", str(args.last_k), *args.overrides,
    ]  # fmt: skip
    if args.device.startswith("cuda"):
        sweep_argv += ["--gpus-per-run", f"{1 / args.jobs:g}"]
    rc = sweep_main(sweep_argv)
    if rc == 2:
        return 2
    from sweep.results import read_sweep
    from sweep.task import read_status

    print(Path(out, "summary.md").read_text())
    records = [r for r in read_sweep(out) if r.state == "done"]
    default = [r for r in records if r.map_name == "3m" and r.method == "mast"]
    if default and args.alg == "qmix":
        fps = sum(r.t_env for r in default) / sum(r.wall_s for r in default)
        print(
            f"throughput of the default preset (MAST-QMIX 3m, {args.device}): "
            f"{fps:.0f} env steps/s including learning"
        )
    rss = [read_status(Path(out) / r.name)["result"]["peak_rss_mib"] for r in records]
    if rss:
        print(f"peak RSS of a worker: {max(rss):.0f} MiB")
    print(_buffer_line())
    return rc


if __name__ == "__main__":
    sys.exit(run_cli("bench/learning.py", main))
