"""Effect of hardware-aware regrowth on row-parallel utilisation and on the win rate.

Trains MAST-QMIX on a map once per seed and growth rule (``--modes``): ``plain``,
``hw_aware`` (``--hw-aware-growth``, ``sparsity.hw_aware_growth``: regrowth only into rows
shorter than ``ceil(nnz/rows)``) and ``constant_fan_in`` (``--constant-fan-in``: every row
keeps ``floor`` or ``ceil`` of ``nnz/rows`` from the initial mask on), and prints for the
final masks of each run:

- the row-parallel utilisation of acting (batch = the agents of one environment step):
  every agent layer's ``forward`` compiled by :mod:`hw.compiler` with the row-parallel
  dataflow and run by :mod:`sim`; utilisation = useful MACs / (``P`` x compute cycles),
  and the total cycles of the four agent layers;
- the row-length spread (max row nnz / ceil(nnz/rows)) averaged over the agent layers;
- the cost model's acting cycles with the compiler's own dataflow choice;
- the test win rate: final, mean of the last three evaluations and best, and the final
  return (single evaluations of 32 episodes are noisy: compare several seeds).

The defaults are reduced for a CPU (20k environment steps, topology updates every 2k);
``--t-max 2000000 --delta-t 10000`` is the paper's schedule.

Usage: ``python bench/hw_aware_growth.py [--t-max N] [--delta-t N] [--seeds 0 1]
[--map 3m] [--profile sparse_pe_64] [--sparsity 0.9] [--modes plain,hw_aware,constant_fan_in]
[--out runs/bench_hw_growth]``
"""

from __future__ import annotations

import argparse
import csv
import math
import time
from pathlib import Path

import numpy as np

from codesign.costing import snapshot_costs
from cost_models.rundir import workload_config
from hw.compiler import compile_layer
from hw.profiles import HwProfile, load_profile
from mast.envs import make_batch_env
from mast.errors import UserError, run_cli
from mast.presets import resolve_config
from mast.run_folder import mask_snapshots
from mast.sparsity import load_layers
from mast.sparsity.layer import SparseLayer
from mast.train import train
from sim import simulate


def row_parallel_figures(layers: list[SparseLayer], profile: HwProfile) -> dict[str, float]:
    """Row-parallel acting utilisation and cycles of the agent layers (through ``sim``)."""
    useful = compute = cycles = 0
    spread = []
    rng = np.random.default_rng(0)
    for lay in (lay for lay in layers if lay.role == "agent"):
        m = max(1, lay.uses_per_env_step)
        prog = compile_layer(lay, "forward", profile, m, "row")
        res = simulate(prog, {lay.name: {"x": rng.uniform(-1, 1, (lay.n_in, m))}})
        useful += res.useful_macs
        compute += res.compute_cycles
        cycles += res.cycles
        rows = lay.mask.sum(axis=1)
        spread.append(rows.max() / math.ceil(rows.sum() / len(rows)))
    return {
        "rp_util": useful / (profile.n_pe * compute),
        "rp_cycles": cycles,
        "row_spread": float(np.mean(spread)),
    }


MODES = ("plain", "hw_aware", "constant_fan_in")


def one_run(args: argparse.Namespace, seed: int, mode: str, profile: HwProfile) -> dict:
    overrides = [
        f"env.map_name={args.map}",
        f"sparsity.sparsity={args.sparsity}",
        f"sparsity.delta_t={args.delta_t}",
        f"run.t_max={args.t_max}",
        f"run.seed={seed}",
        f"sparsity.seed={seed}",
        f"sparsity.hw_aware_growth={str(mode == 'hw_aware').lower()}",
        f"sparsity.constant_fan_in={str(mode == 'constant_fan_in').lower()}",
        "run.progress=false",
        "run.tensorboard=false",
        "run.save_buffer=false",
        f"run.test_interval={max(1000, args.t_max // 10)}",
        f"run.log_interval={max(1000, args.t_max // 10)}",
    ]
    cfg = resolve_config(None, "qmix", "mast", {}, overrides)
    t0 = time.perf_counter()
    result = train(cfg, out=Path(args.out))
    wall = time.perf_counter() - t0
    snaps = mask_snapshots(result.run_dir)
    first, last = load_layers(snaps[0]), load_layers(snaps[-1])
    env = make_batch_env(cfg.env.name, map_name=cfg.env.map_name, n_envs=1, seed=seed)
    episode_limit = int(env.get_env_info()["episode_limit"])
    cost = snapshot_costs(profile, last, workload_config(cfg, episode_limit))
    with open(result.run_dir / "metrics.csv", newline="") as fh:
        wins = [float(r["test_win_rate"]) for r in csv.DictReader(fh)]
    wins = [w for w in wins if not math.isnan(w)]
    return {
        "win_last3": float(np.mean(wins[-3:])),
        "win_best": max(wins),
        "seed": seed,
        "mode": mode,
        "updates": len(snaps) - 1,
        "init": row_parallel_figures(first, profile),
        "final": row_parallel_figures(last, profile),
        "infer_cycles": cost.infer_cycles,
        "infer_util": cost.infer_util,
        "win": result.test_win_rate,
        "ret": result.test_return,
        "wall_s": wall,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--t-max", type=int, default=20_000, help="env steps per run (default 20k)")
    p.add_argument("--delta-t", type=int, default=2_000, help="env steps between updates")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds (default 0)")
    p.add_argument("--map", default="3m", help="built-in map (default 3m)")
    p.add_argument("--profile", default="sparse_pe_64", help="accelerator profile")
    p.add_argument("--sparsity", type=float, default=0.9, help="target sparsity (default 0.9)")
    p.add_argument("--out", default="runs/bench_hw_growth", help="root of the run folders")
    p.add_argument(
        "--modes",
        default=",".join(MODES),
        help=f"growth rules, comma-separated ({', '.join(MODES)})",
    )
    args = p.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for m in modes:
        if m not in MODES:
            raise UserError(f"unknown mode {m!r}; known: {', '.join(MODES)}")
    profile = load_profile(args.profile)
    head = (
        f"{'growth':<16}{'seed':>5}{'upd':>5}{'RP util 0':>11}{'RP util':>9}"
        f"{'RP cycles':>11}{'row spread':>12}{'act cycles':>12}{'win':>7}{'last3':>7}"
        f"{'best':>7}{'return':>8}"
        f"{'wall s':>8}"
    )
    print(
        f"MAST-QMIX on {args.map}, sparsity {args.sparsity}, {args.t_max} env steps, "
        f"updates every {args.delta_t}; row-parallel acting on {profile.name}"
    )
    print(head)
    results = []
    for seed in args.seeds:
        for mode in modes:
            r = one_run(args, seed, mode, profile)
            results.append(r)
            i, f = r["init"], r["final"]
            print(
                f"{mode:<16}{seed:>5}{r['updates']:>5}"
                f"{i['rp_util']:>11.3f}{f['rp_util']:>9.3f}{f['rp_cycles']:>11d}"
                f"{f['row_spread']:>12.2f}{r['infer_cycles']:>12.0f}{r['win']:>7.2f}"
                f"{r['win_last3']:>7.2f}{r['win_best']:>7.2f}"
                f"{r['ret']:>8.2f}{r['wall_s']:>8.0f}",
                flush=True,
            )
    for mode in modes:
        sel = [r for r in results if r["mode"] == mode]
        print(
            f"mean {mode:<16} RP util "
            f"{np.mean([r['final']['rp_util'] for r in sel]):.3f}, RP cycles "
            f"{np.mean([r['final']['rp_cycles'] for r in sel]):.0f}, win rate final "
            f"{np.mean([r['win'] for r in sel]):.3f} / last three "
            f"{np.mean([r['win_last3'] for r in sel]):.3f} / best "
            f"{np.mean([r['win_best'] for r in sel]):.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli("hw_aware_growth", main))
