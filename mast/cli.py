"""``mast-train``: train a value-based MARL learner with (dynamic) sparse training.

Examples::

    mast-train                                   # MAST-QMIX, 90 % sparse, built-in 3m
    mast-train --alg vdn --method rigl --map 2s3z --sparsity 0.95
    mast-train --config qmix_dense learner.lr=1e-3 run.t_max=200000
    mast-train --resume runs/qmix_mast_3m_s0_20260101-120000 run.t_max=120000

Wrappers add flags and callbacks through :func:`main`'s ``extra_args_hook`` and
``callbacks`` (e.g. a hardware cost trace) without this module knowing them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from mast.config import ALGS, MAX_STEPS, METHODS, TrainConfig
from mast.errors import ArgumentParser, UserError, first_line, int_in, run_cli
from mast.presets import (
    DEFAULT_ALG,
    DEFAULT_METHOD,
    preset_names,
    preset_value,
    resolve_config,
)

__all__ = ["build_parser", "check_device", "config_from_args", "main"]

# Dedicated flags -> dotted config keys.
FLAG_KEYS = {
    "map": "env.map_name",
    "sparsity": "sparsity.sparsity",
    "t_max": "run.t_max",
    "device": "run.device",
    "hw_aware_growth": "sparsity.hw_aware_growth",
    "constant_fan_in": "sparsity.constant_fan_in",
}


def build_parser() -> argparse.ArgumentParser:
    """The ``mast-train`` argument parser (wrappers may add their own arguments)."""
    p = ArgumentParser(
        prog="mast-train",
        description="Train VDN/QMIX/WQMIX/RES agents with dense or sparse (MAST) training.",
        epilog="Overrides: any config field as group.field=value, e.g. learner.lr=1e-3 "
        "sparsity.delta_t=5000 targets.kind=td_lambda. Groups: env, agent, learner, "
        "sparsity, targets, buffer, run. Exit status: 0 done, 2 bad input (one line), "
        "3 stopped on a non-finite loss, Q-value, gradient or weight (the last good "
        "checkpoint is kept).",
    )
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    p.add_argument(
        "--config",
        metavar="NAME_OR_FILE",
        help="preset name (ALG_METHOD, e.g. qmix_mast; or one of mast/configs) "
        "or a YAML file; default: the --alg/--method preset",
    )
    from mast.envs.maps import MAPS

    p.add_argument("--alg", help=f"algorithm ({', '.join(ALGS)}); default {DEFAULT_ALG}")
    p.add_argument(
        "--method", help=f"sparse method ({', '.join(METHODS)}); default {DEFAULT_METHOD}"
    )
    p.add_argument(
        "--map",
        help=f"scenario of the built-in simulator ({', '.join(MAPS)}); "
        f"default {preset_value('env.map_name')}",
    )
    p.add_argument(
        "--sparsity",
        type=float,
        help=f"overall weight sparsity in [0, 1); default {preset_value('sparsity.sparsity')} "
        "(the preset's)",
    )
    p.add_argument(
        "--t-max",
        type=int_in(1, MAX_STEPS),
        help=f"environment steps to train for; default {preset_value('run.t_max'):,} "
        "(the preset's)",
    )
    p.add_argument(
        "--seed",
        type=int_in(0, 2**32 - 1),
        help=f"seed of everything (default {preset_value('run.seed')})",
    )
    p.add_argument("--device", help="torch device, e.g. cpu or cuda")
    p.add_argument("--out", default="runs", help="root of run folders (default runs/)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR")
    p.add_argument(
        "--hw-aware-growth",
        action="store_const",
        const=True,
        help="regrow only into rows shorter than ceil(nnz/rows), so row-parallel "
        "accelerator loads stay balanced (sparsity.hw_aware_growth=true)",
    )
    p.add_argument(
        "--constant-fan-in",
        action="store_const",
        const=True,
        help="every output row keeps the same number of non-zeros, within one, from the "
        "initial mask on (SRigL's constraint; sparsity.constant_fan_in=true)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--list-presets", action="store_true", help="print preset names and exit")
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Resolve the configuration the parsed arguments describe."""
    flags = {key: getattr(args, name) for name, key in FLAG_KEYS.items()}
    if args.seed is not None:
        flags.update({"run.seed": args.seed, "sparsity.seed": args.seed})
    if args.no_progress:
        flags["run.progress"] = False
    base = None
    if args.resume is not None and args.config is None:
        from mast.run_dir import read_config

        base = read_config(args.resume)
    return resolve_config(args.config, args.alg, args.method, flags, args.overrides, base=base)


def check_device(device: str) -> None:
    """Raise :class:`UserError` unless ``device`` names a torch device present here."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as e:
        raise UserError(
            f"unknown device {device!r} (--device / run.device): {first_line(e)}; "
            f"expected cpu, cuda or cuda:N"
        ) from None
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise UserError(f"device {device!r}: no CUDA GPU is available here; use --device cpu")
        if dev.index is not None and dev.index >= n:
            raise UserError(f"device {device!r}: only cuda:0 to cuda:{n - 1} exist here")
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise UserError(f"device {device!r}: MPS is not available here; use --device cpu")
    elif dev.type != "cpu":
        raise UserError(f"device {device!r} is not supported; expected cpu, cuda or cuda:N")


def _main(
    argv: Sequence[str] | None,
    callbacks: Sequence[object],
    extra_args_hook: Callable[[argparse.ArgumentParser], None] | None,
    post_parse: Callable[[argparse.Namespace], Sequence[object]] | None,
) -> int:
    parser = build_parser()
    if extra_args_hook is not None:
        extra_args_hook(parser)
    args = parser.parse_intermixed_args(argv)
    if args.list_presets:
        print("\n".join(preset_names()))
        return 0
    cfg = config_from_args(args)
    check_device(cfg.run.device)
    extra = list(post_parse(args)) if post_parse is not None else []
    from mast.nonfinite import EXIT_NONFINITE, NonFiniteError
    from mast.train import train

    try:
        result = train(cfg, [*callbacks, *extra], out=args.out, resume=args.resume)
    except NonFiniteError as e:
        print(f"mast-train: {e}", file=sys.stderr)
        return EXIT_NONFINITE
    from mast.progress import run_summary_lines

    print("\n".join(run_summary_lines(result)))
    return 0


def main(
    argv: Sequence[str] | None = None,
    callbacks: Sequence[object] = (),
    extra_args_hook: Callable[[argparse.ArgumentParser], None] | None = None,
    post_parse: Callable[[argparse.Namespace], Sequence[object]] | None = None,
) -> int:
    """Run ``mast-train``; bad input prints one line and returns 2, a run stopped on a
    non-finite loss, Q-value, gradient norm or weight prints one line and returns
    :data:`mast.nonfinite.EXIT_NONFINITE` (3).

    Parameters
    ----------
    argv:
        Arguments (default: ``sys.argv[1:]``).
    callbacks:
        :class:`mast.train.TrainCallback` objects.
    extra_args_hook:
        Called with the parser before parsing (to add flags).
    post_parse:
        Called with the parsed arguments; returns more callbacks (built from added flags).
    """
    return run_cli("mast-train", lambda a: _main(a, callbacks, extra_args_hook, post_parse), argv)


if __name__ == "__main__":
    raise SystemExit(main())
