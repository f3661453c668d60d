"""Environment steps per second of the built-in simulator, single and batched.

Every step draws a uniformly random available action per agent and reads observations,
state and available actions (what a training runner does). Batched runs reset finished
battles individually so every battle stays busy; the figure counts battle steps. Runs on
one core: thread pools of numerical libraries are limited to one thread. Two rates are
printed: per wall-clock second, and per CPU second of this process (the one-core rate
even when other jobs share the machine).

    python bench/env_throughput.py [--maps 3m 3s5z 2c_vs_64zg] [--seconds 3]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from mast.envs import make_batch_env, make_env  # noqa: E402
from mast.envs.scripted import random_actions  # noqa: E402

DEFAULT_N_ENVS = {"3m": 1024, "3s5z": 512, "2c_vs_64zg": 64}


def _rates(steps: int, wall0: float, cpu0: float) -> tuple[float, float]:
    """Steps per wall-clock second and per CPU second of this process."""
    return steps / (time.perf_counter() - wall0), steps / (time.process_time() - cpu0)


def bench_single(map_name: str, seconds: float) -> tuple[float, float]:
    env = make_env("builtin", map_name=map_name, seed=0)
    env.reset()
    rng = np.random.default_rng(0)
    steps = 0
    start, cpu = time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        avail = np.asarray(env.get_avail_actions())
        _, term, _ = env.step(random_actions(avail, rng))
        env.get_obs()
        env.get_state()
        steps += 1
        if term:
            env.reset()
    return _rates(steps, start, cpu)


def bench_batch(map_name: str, n_envs: int, seconds: float) -> tuple[float, float]:
    env = make_batch_env("builtin", map_name=map_name, n_envs=n_envs, seed=0)
    rng = np.random.default_rng(0)
    steps = 0
    start, cpu = time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        _, term, _ = env.step(random_actions(env.get_avail_actions(), rng))
        steps += n_envs
        if term.any():
            env.reset(term)
        env.get_obs()
        env.get_state()
    return _rates(steps, start, cpu)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", nargs="+", default=list(DEFAULT_N_ENVS))
    parser.add_argument(
        "--n-envs",
        type=int,
        default=None,
        help="battles per batch (default: per map, see DEFAULT_N_ENVS)",
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="wall time per figure")
    args = parser.parse_args(argv)
    print("one core (numerical thread pools limited to 1 thread)")
    print(f"{'map':<12} {'mode':<8} {'n_envs':>7} {'steps/s (wall)':>15} {'steps/s (cpu)':>14}")
    for m in args.maps:
        n = args.n_envs or DEFAULT_N_ENVS.get(m, 256)
        for mode, k, (wall, cpu) in (
            ("single", 1, bench_single(m, args.seconds)),
            ("batched", n, bench_batch(m, n, args.seconds)),
        ):
            print(f"{m:<12} {mode:<8} {k:>7} {wall:>15,.0f} {cpu:>14,.0f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
