"""Throughput of a sweep on local Ray against plain worker processes, and Ray's overhead.

The same runs (MAST-QMIX on 3m, seeds 0..N-1, ``--t-max`` steps each) are trained twice:
by a ``ProcessPoolExecutor`` of ``--jobs`` processes calling :func:`mast.train.train` (what
``bench/learning.py --jobs`` did before it became a front end to ``mast-sweep``) and by
:func:`sweep.driver.run_sweep` on an embedded Ray with ``--jobs`` CPUs. It prints, for
each, the wall time and runs/hour, and for Ray: the start-up and shut-down of the embedded
Ray, the resident memory of Ray's own processes (GCS, raylet, idle workers) before the
first task, the per-run difference in wall time (sweep minus process pool, divided by the
number of runs) and the per-run time a task spends outside training (``task_s - wall_s``,
imports and set-up included, which the process pool pays too). Linux only (/proc).

Example::

    nice python bench/sweep_overhead.py --runs 4 --jobs 2 --t-max 10000
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from mast.errors import run_cli
from sweep.spec import SweepSpec


def _spec(out: Path, runs: int, t_max: int) -> SweepSpec:
    return SweepSpec(
        out=str(out),
        maps=("3m",),
        methods=("mast",),
        seeds=runs,
        t_max=t_max,
        overrides=("run.tensorboard=false",),
    )


def _plain(job: tuple[SweepSpec, int]) -> tuple[float, float]:
    """One run in a pool process: (training wall s, time in the process for the job)."""
    start = time.perf_counter()
    from mast.train import train

    spec, i = job
    key = spec.runs()[i]
    res = train(spec.train_config(key), out=spec.slot(key))
    return res.wall_s, time.perf_counter() - start


def _rss_mib(root: int) -> float:
    """Resident memory of the descendants of ``root`` (from /proc)."""
    parent: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parent[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    kids, frontier = set(), {root}
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier} - kids
        kids |= frontier
    total = 0
    for p in kids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=4, help="runs (seeds) per mode")
    p.add_argument("--jobs", type=int, default=2, help="processes / Ray CPUs")
    p.add_argument("--t-max", type=int, default=10_000, help="env steps per run")
    args = p.parse_args(argv)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    tmp = Path(tempfile.mkdtemp(prefix="mast-sweep-bench-"))

    spec = _spec(tmp / "plain", args.runs, args.t_max)
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        plain = list(pool.map(_plain, [(spec, i) for i in range(args.runs)]))
    plain_s = time.perf_counter() - start
    print(
        f"process pool: {args.runs} runs of {args.t_max} steps, {args.jobs} jobs: "
        f"{plain_s:.1f} s, {3600 * args.runs / plain_s:.1f} runs/hour; per run: training "
        f"{statistics.mean(w for w, _ in plain):.1f} s, outside training "
        f"{statistics.mean(t - w for w, t in plain):.1f} s"
    )

    import ray

    from sweep.driver import _submit_and_wait, ray_session
    from sweep.task import read_status

    spec = _spec(tmp / "ray", args.runs, args.t_max)
    Path(spec.out).mkdir()
    from rich.console import Console

    start = time.perf_counter()
    with ray_session(num_cpus=args.jobs):
        init_s = time.perf_counter() - start
        time.sleep(2.0)
        daemons = _rss_mib(os.getpid())
        t0 = time.perf_counter()
        _submit_and_wait(ray, spec, spec.runs(), Console(file=open(os.devnull, "w")))
        runs_s = time.perf_counter() - t0
        t1 = time.perf_counter()
    shutdown_s = time.perf_counter() - t1
    ray_s = time.perf_counter() - start - 2.0
    results = [read_status(spec.slot(k))["result"] for k in spec.runs()]
    train_s = statistics.mean(r["wall_s"] for r in results)
    outside_s = statistics.mean(r["task_s"] - r["wall_s"] for r in results)
    print(
        f"mast-sweep on local Ray: {ray_s:.1f} s ({runs_s:.1f} s running tasks), "
        f"{3600 * args.runs / ray_s:.1f} runs/hour; per run: training {train_s:.1f} s, "
        f"outside training in the task {outside_s:.1f} s"
    )
    print(
        f"Ray start-up {init_s:.1f} s, shut-down {shutdown_s:.1f} s (once per sweep); "
        f"Ray's processes before the first task: {daemons:.0f} MiB resident; worker peak RSS "
        f"{max(r['peak_rss_mib'] for r in results):.0f} MiB (process pool worker: "
        f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MiB)"
    )
    per_run = (ray_s - plain_s) / args.runs
    print(
        f"Ray's overhead per run (sweep wall - process pool wall) / runs: {per_run:+.1f} s "
        f"(sweep {ray_s:.1f} s vs pool {plain_s:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(run_cli("bench/sweep_overhead.py", main))
