"""PE utilisation, speedup over dense and energy per useful MAC of the MAST QMIX network.

For sparse_pe_16/64/256 at sparsity 0.5/0.8/0.9/0.95 on the MAST QMIX network of 3m and
3s5z (random masks, Erdos-Renyi allocation, B=32 episodes of episode_limit+1 steps, a
topology update every 200 iterations), prints:

- PE utilisation = ideal cycles ``ceil(M * nnz / P)`` / modelled cycles, for the compute
  phase (the PE array's op cycles) and end to end (the list-scheduled makespan), for a
  training iteration and for one acting step;
- the PE array's cycles beside their physical bound ``ceil(M * nnz / P)`` (summed over
  the array's kernels);
- speedup over the same hardware running the dense network (training includes every
  dynamic-sparse-training overhead: amortised dense gradient + top-k, optimizer), the
  PE-array-only speedup (ratio of PE op cycles) that separates the elementwise work, and
  the speedup over the dense network on the baseline (the weight-stationary systolic
  array of equal MAC count, weights resident across acting steps, ``docs/
  microarchitecture.md`` s.3.1), as wall time at each profile's clock;
- energy per useful MAC (pJ, 45 nm ASIC figures): all components, and on-chip only (MAC,
  SRAM, index, vector; no DRAM, no static), next to EIE's ~5.8 pJ per operation, which is
  ~11.6 pJ per MAC (a MAC is two operations; 45 nm, SRAM included);

then checks the targets on each of sparse_pe_64, sparse_pe_16_ecp5 (placed and routed
on an LFE5U-85F) and sparse_pe_64_xc7 (its memories resized for XC7A200T, with the FPGA
pipeline) among ``--profiles``, each with its clock's origin. Masks are random
(``--layout random``) or row-balanced (``row_balanced``: every row of a layer holds the
same number of weights, the shape ``mast-train --hw-aware-growth`` evolves toward); the
default prints both.
``--masks RUN_DIR,...`` adds one row per training run: its newest masks, costed with the
run's own workload settings (batch, episode length, update interval).
``--acting-ops`` adds, for each profile at 90 % (and each ``--masks`` run), the acting
step op by op: its dataflow (``tiled``: sample tiles, ``docs/microarchitecture.md``
s.2.6), cycles against ``ceil(M nnz / P)``, the split rows of its
row-parallel plan (and how many of them are joined at the drain), and the cycles its best
plan would take if split rows cost nothing (no reduction phase: a bound on what any
reduction unit, serial, tree or the drain's adders, could gain).
Usage: ``python bench/hw_utilisation.py [--layout random,row_balanced] [--masks RUN_DIR]
[--acting-ops]``.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from cost_models.networks import mast_network_layers
from cost_models.ops import spmm_op
from cost_models.rundir import load_run
from cost_models.sweep import compare, default_baseline, sparsity_sweep
from cost_models.workload import inference_graph
from hw.clocks import clock_origin
from hw.compiler import choose_dataflow, plan_cuts, row_plan_phases, unroll_samples
from hw.compiler.build import SampleTile
from hw.profiles import HwProfile, get_profile
from hw.timing import row_parallel_phase_cycles
from mast.errors import ArgumentParser, run_cli
from mast.run_folder import latest_snapshot

EIE_PJ_PER_OP = 5.8
EIE_PJ_PER_MAC = 2 * EIE_PJ_PER_OP  # a multiply-accumulate is two operations
PROFILES = ("sparse_pe_16", "sparse_pe_64", "sparse_pe_256")
MAPS = ("3m", "3s5z")
LEVELS = (0.5, 0.8, 0.9, 0.95)
ON_CHIP = ("mac", "vector", "sram", "index")
TARGET_PROFILES = ("sparse_pe_64", "sparse_pe_16_ecp5", "sparse_pe_64_xc7")
"""Profiles whose targets the bench checks: the 64-PE array of the 45 nm model, the
16-PE array placed and routed on an LFE5U-85F (its clock the routed Fmax), and the
64-PE array resized for XC7A200T (synthesised, not routed)."""
ACTING_TARGET = {"3m": 0.75}
"""Utilisation an acting step must reach at 90 % sparsity (other maps: 85 %)."""


def on_chip_pj_per_mac(totals) -> float:
    return sum(totals.energy_pj[c] for c in ON_CHIP) / totals.macs


def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", default=",".join(MAPS))
    parser.add_argument("--profiles", default=",".join(PROFILES))
    parser.add_argument("--layout", default="random,row_balanced")
    parser.add_argument("--masks", default="", help="training run folders, comma-separated")
    parser.add_argument(
        "--acting-ops",
        action="store_true",
        help="the acting step op by op on sparse_pe_64 at 90%% (split rows, reduction bound)",
    )
    args = parser.parse_args(argv)
    for run_dir in filter(None, args.masks.split(",")):
        latest_snapshot(run_dir)  # a bad folder fails here, before the tables run
    for layout in args.layout.split(","):
        print(f"\n=== masks: {layout} ===")
        table(args, layout)
    if args.masks:
        trained(args)
    if args.acting_ops:
        acting_tables(args)


def measure(c) -> dict[str, float]:
    """The table's figures of one :class:`~cost_models.sweep.Comparison`."""
    r, d, b = c.report, c.dense, c.baseline
    t, i = r.training, r.inference
    return {
        "train_util": t.utilisation_compute,
        "train_util_e2e": t.utilisation,
        "infer_util": i.utilisation_compute,
        "infer_util_e2e": i.utilisation,
        "train_speedup": d.training.cycles / t.cycles,
        "train_pe_speedup": d.training.pe_compute_cycles / t.pe_compute_cycles,
        "train_vs_base": b.training.time_s / t.time_s,
        "infer_speedup": d.inference.cycles / i.cycles,
        "infer_vs_base": b.inference.time_s / i.time_s,
    }


def line(prof: str, mp: str, c, row: dict[str, float]) -> str:
    r = c.report
    t, i = r.training, r.inference
    return (
        f"{prof:14s} {mp:5s} {r.sparsity:5.2f} | "
        f"{t.utilisation_compute:5.1%}/{t.utilisation:5.1%} "
        f"{t.pe_compute_cycles:9.0f} ({t.ideal_cycles:7.0f}) "
        f"{row['train_speedup']:6.2f}x {row['train_pe_speedup']:6.2f}x "
        f"{row['train_vs_base']:6.2f}x | "
        f"{i.utilisation_compute:5.1%}/{i.utilisation:5.1%} "
        f"{i.pe_compute_cycles:6.0f} ({i.ideal_cycles:6.0f}) "
        f"{row['infer_speedup']:6.2f}x {row['infer_vs_base']:6.2f}x | "
        f"{t.pj_per_mac:12.1f} {on_chip_pj_per_mac(t):7.1f} {i.pj_per_mac:12.1f} "
        f"{on_chip_pj_per_mac(i):7.1f}"
    )


HEAD = (
    f"{'profile':14s} {'map':5s} {'spars':>5s} | {'train util':>11s} "
    f"{'PE cyc (bound)':>19s} {'speedup':>7s} {'PE-only':>7s} {'vs base':>7s} | "
    f"{'infer util':>11s} {'cycles (bound)':>15s} {'speedup':>7s} {'vs base':>7s} | "
    f"{'pJ/MAC train':>12s} {'on-chip':>7s} {'pJ/MAC infer':>12s} {'on-chip':>7s}"
)


def trained(args: argparse.Namespace) -> None:
    """One row per training run: its newest masks with the run's own workload settings."""
    print("\n=== masks: trained (newest snapshot of each run, the run's workload) ===")
    print(HEAD)
    print("-" * len(HEAD))
    for prof in args.profiles.split(","):
        p = get_profile(prof)
        for run_dir in args.masks.split(","):
            rm = load_run(run_dir)
            c = compare(p, default_baseline(p), rm.layers, rm.run)
            print(line(prof, rm.map_name or "?", c, measure(c)) + f"  {run_dir}")


def _phase_one(mask: np.ndarray, m: int, plan, p: HwProfile) -> int:
    """The load, walk and drain phase of a row-parallel plan, with its handshake: the op's
    cycles without a reduction phase (s.2.4)."""
    return row_parallel_phase_cycles({**row_plan_phases(mask, plan, m, p), "reduction": 0})


def free_reduction_cycles(mask: np.ndarray, m: int, blocks: int, p: HwProfile) -> int:
    """The fewest cycles of a row-parallel op of ``mask`` on ``m`` samples if its split rows
    cost nothing: over every split threshold from 1 to the longest row (both piece orders
    of a sample-unrolled matrix of ``blocks`` samples), the load, walk and drain phase alone.
    A bound on any reduction unit, not a design."""
    row_nnz = mask.sum(axis=1)
    return min(
        _phase_one(mask, m, cut(row_nnz, p.n_pe, t, b), p)
        for t in range(1, max(1, int(row_nnz.max())) + 1)
        for b in sorted({1, blocks})
        for cut in plan_cuts(p, m)
    )


def acting_step_ops(p: HwProfile, layers) -> list[dict]:
    """The acting step's PE-array ops as the cost model runs them (``inference_graph``)."""
    out = []
    for _, k in inference_graph(p, layers).nodes(data="kernel"):
        if k.op != "spmm":
            continue
        mask = np.asarray(k.mask) != 0
        flow, plan = choose_dataflow(mask, k.m, p)
        row = {
            "layer": k.layer,
            "flow": flow,
            "cycles": spmm_op(p, mask, k.m).cycles,
            "bound": math.ceil(k.m * int(mask.sum()) / p.n_pe),
            "split": 0,
            "joined": 0,
            "free": None,
        }
        if plan is not None and flow != "sample":
            tiles = plan if flow == "tiled" else (SampleTile(0, k.m, flow, plan, 0),)
            row["free"] = 0
            for t in tiles:  # a sample-tiled op: its tiles' sums
                unrolled = t.flow == "unrolled"
                mm, ms = (unroll_samples(mask, t.m), 1) if unrolled else (mask, t.m)
                row["split"] += int((t.plan.row_pieces > 1).sum())
                row["joined"] += int(t.plan.joined.sum())
                row["free"] += free_reduction_cycles(mm, ms, t.m if unrolled else 1, p)
        out.append(row)
    return out


def print_acting(title: str, ops: list[dict]) -> None:
    print(f"  {title}")
    for r in ops:
        free = "-" if r["free"] is None else f"{r['free']:4d}"
        print(
            f"    {r['layer'][:58]:58s} {r['flow']:9s} {r['cycles']:5d} ({r['bound']:4d})  "
            f"split rows {r['split']:3d} (joined {r['joined']:3d})  free reduction {free}"
        )
    total, bound = sum(r["cycles"] for r in ops), sum(r["bound"] for r in ops)
    free_total = sum(r["cycles"] if r["free"] is None else r["free"] for r in ops)
    print(
        f"    step: {total} cycles (bound {bound}, {bound / total:.1%}); with a free "
        f"reduction {free_total} ({bound / free_total:.1%})"
    )


def acting_tables(args: argparse.Namespace) -> None:
    """The acting step op by op at 90 % on every profile of ``--profiles``: cycles
    (bound), split rows, and the cycles with a reduction that costs nothing."""
    for prof in args.profiles.split(","):
        p = get_profile(prof)
        print(f"\n=== acting step op by op, {prof}, 90 %: cycles (bound) ===")
        for layout in args.layout.split(","):
            for mp in args.maps.split(","):
                layers = mast_network_layers(mp, 0.9, "erdos_renyi", 0, layout)
                print_acting(f"{mp}, {layout} masks", acting_step_ops(p, layers))
        for run_dir in filter(None, args.masks.split(",")):
            rm = load_run(run_dir)
            title = f"{rm.map_name or '?'}, trained masks of {run_dir}"
            print_acting(title, acting_step_ops(p, rm.layers))


def table(args: argparse.Namespace, layout: str) -> None:
    print(HEAD)
    print("-" * len(HEAD))
    results = {}
    t0 = time.perf_counter()
    for prof in args.profiles.split(","):
        p = get_profile(prof)
        for mp in args.maps.split(","):
            sweep = sparsity_sweep(p, LEVELS, mp, layout=layout)
            for c in sweep.levels:
                row = measure(c)
                results[(prof, mp, round(c.report.sparsity, 2))] = row
                print(line(prof, mp, c, row))
        print(f"  (vs base: dense network on {sweep.baseline}, wall time at both clocks)")
    print(
        f"(util = compute phase / end to end; bound = ceil(M*nnz/P) summed over the PE "
        f"array's kernels; energy: 45 nm ASIC tables; EIE: ~{EIE_PJ_PER_MAC:.1f} pJ/MAC = "
        f"{EIE_PJ_PER_OP} pJ/op incl. SRAM, 45 nm; "
        f"{time.perf_counter() - t0:.1f} s)"
    )
    for prof in TARGET_PROFILES:
        if prof in args.profiles.split(","):
            print_targets(prof, args.maps.split(","), results, layout)


def print_targets(prof: str, maps: list[str], results: dict, layout: str) -> None:
    """The targets' checks on ``prof``, its clock's origin beside them."""
    origin = clock_origin(get_profile(prof))
    print(f"\nTargets on {prof} ({layout} masks; clock {origin.text}):")
    checks = []
    for mp in maps:
        rows = {s: results[(prof, mp, s)] for s in LEVELS}
        checks += [
            (
                f"{mp}: training utilisation >= 95% (all levels, compute phase)",
                min(r["train_util"] for r in rows.values()),
                0.95,
                "{:.1%}",
            ),
            (
                f"{mp}: inference utilisation >= 85% (all levels, compute phase)",
                min(r["infer_util"] for r in rows.values()),
                0.85,
                "{:.1%}",
            ),
            (
                f"{mp}: acting-step utilisation >= {ACTING_TARGET.get(mp, 0.85):.0%} at 90%",
                rows[0.9]["infer_util"],
                ACTING_TARGET.get(mp, 0.85),
                "{:.1%}",
            ),
            (f"{mp}: training speedup >= 9x at 90%", rows[0.9]["train_speedup"], 9.0, "{:.2f}x"),
            (f"{mp}: training speedup >= 17x at 95%", rows[0.95]["train_speedup"], 17.0, "{:.2f}x"),
        ]
    for name, value, target, fmt in checks:
        print(f"  {'met ' if value >= target else 'MISS'}  {name}: {fmt.format(value)}")


if __name__ == "__main__":
    raise SystemExit(run_cli("bench/hw_utilisation.py", main))
