"""``python -m mast.envs``: play scripted policies on built-in maps and print win rates."""

from __future__ import annotations

import argparse

from mast.envs.maps import MAPS, get_map
from mast.envs.registry import make_batch_env
from mast.envs.scripted import POLICIES, run_episodes
from mast.errors import UserError, run_cli


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mast.envs",
        description="Run scripted policies in the built-in SMAC-compatible simulator.",
    )
    parser.add_argument("--maps", nargs="+", default=["3m"], help=f"maps ({', '.join(MAPS)})")
    parser.add_argument(
        "--policies", nargs="+", default=list(POLICIES), help=f"policies ({', '.join(POLICIES)})"
    )
    parser.add_argument("--episodes", type=int, default=100, help="episodes per map and policy")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.episodes < 1:
        raise UserError(f"--episodes must be >= 1, got {args.episodes}")
    for m in args.maps:
        get_map(m)  # fails early, listing the known maps
    for p in args.policies:
        if p not in POLICIES:
            raise UserError(f"unknown policy {p!r}; known policies: {', '.join(POLICIES)}")
    print(f"{'map':<12} {'policy':<11} {'episodes':>8} {'win rate':>9} {'return':>7} {'length':>7}")
    for m in args.maps:
        env = make_batch_env("builtin", map_name=m, n_envs=args.episodes, seed=args.seed)
        for p in args.policies:
            r = run_episodes(env, p, seed=args.seed)
            print(
                f"{m:<12} {p:<11} {args.episodes:>8} {r['win_rate']:>9.2f} "
                f"{r['mean_return']:>7.2f} {r['mean_length']:>7.1f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli("python -m mast.envs", main))
