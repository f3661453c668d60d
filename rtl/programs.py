"""Constrained-random programs and their ``sim`` reference, prepared outside the simulator.

:func:`random_case` draws a masked layer (sparsities 0 to 0.98), a shape that fits the
profile and integer operands (one draw in four spans the full operand range, so
saturation is exercised), and compiles one kernel with :func:`hw.compiler.compile_layer`.
:func:`make_jobs` turns cases into :class:`~rtl.ops.Job` records holding every op's host
load sequence (:func:`hw.export.op_load`, the same one ``mast-hw export`` and the
pyverilator co-simulation use) and ``sim``'s output and cycle count;
:func:`check_random` stores them in the build folder and runs ``rtl/tb_accel.py`` on them,
so the simulation process needs neither the compiler nor ``sim``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import numpy as np

from hw.compiler import compile_layer
from hw.compiler.balance import plan_for_threshold, plan_with_joins
from hw.compiler.build import row_shape
from hw.compiler.encode import encode_banks
from hw.export import op_load
from hw.fit import check_fit
from hw.profiles import HwProfile
from hw.program import Op, Program
from sim import simulate_op

from .harness import build, run_testbench
from .ops import Job, write_jobs

__all__ = ["Case", "check_random", "make_jobs", "random_case"]

SPARSITIES = (0.0, 0.5, 0.8, 0.9, 0.95, 0.98)
"""Sparsity levels drawn (plus one uniform draw in ``[0, 0.98)``)."""


@dataclass(frozen=True, eq=False)
class Case:
    """One random program (one layer, one kernel) and its integer operands."""

    program: Program
    x: np.ndarray
    """The layer's input, ``in x M``."""
    dy: np.ndarray
    """The layer's output gradient, ``out x M``."""

    def operands(self, op: Op) -> tuple[np.ndarray, np.ndarray | None]:
        """``(x, dy)`` in the op's orientation and sizes (``K x M``, ``N x M``; a
        sample-unrolled op gets its samples stacked, :meth:`hw.program.Op.fold_samples`;
        a sample tile its own samples, :meth:`hw.program.Op.tile_of`)."""
        if op.purpose == "input_grad":
            return op.fold_samples(op.tile_of(self.dy)), None
        if op.purpose == "forward":
            return op.fold_samples(op.tile_of(self.x)), None
        return self.x, self.dy


def _operands(rng: np.random.Generator, shape, profile: HwProfile) -> np.ndarray:
    if rng.random() < 0.25:
        return rng.integers(profile.operand_min, profile.operand_max + 1, size=shape)
    hi = min(profile.operand_max, 1 << (profile.frac_bits + 2))
    return rng.integers(-hi, hi + 1, size=shape)


def random_case(
    rng: np.random.Generator,
    profile: HwProfile,
    kernel: str,
    dataflow: str,
    max_dim: int,
    max_m: int,
) -> Case:
    """A random layer compiled for ``kernel`` (``forward`` ... ``dense_grad``).

    ``dataflow`` (``sample``, ``row``, ``split``, ``unrolled`` or ``narrow``) applies to
    SpMM on sparse profiles. Row-parallel draws favour few long rows and small batches so
    that the balancer splits rows; ``split`` is a row-parallel op whose rows are cut at a
    short random piece length (:func:`hw.compiler.balance.plan_for_threshold`) instead of
    the balancer's choice, so that many rows are split and the reduction unit walks long
    schedules; sample-unrolled draws have at least two samples; ``narrow`` is a
    sample-parallel op with ``K`` of 1 to 3, whose first step (the first tile's load) is
    shorter than the weight stream's latency, so the stream's first entries are addressed
    from ``start``; ``joined`` (``drain_join`` profiles) is a row-parallel op on one
    sample whose longest rows are joined at the drain
    (:func:`hw.compiler.balance.plan_with_joins` at a short random threshold); ``tiled``
    is an SpMM whose ``K M`` exceeds the PE's activation buffer, compiled by the
    compiler's own choice into sample tiles (:func:`hw.compiler.build.sample_tiles`).
    """
    if dataflow in ("split", "joined"):
        return _split_case(rng, profile, kernel, max_dim, max_m, joined=dataflow == "joined")
    if dataflow == "tiled":
        return _tiled_case(rng, profile, kernel)
    sparsity = float(rng.choice([*SPARSITIES, rng.random() * 0.98]))
    for _ in range(100):
        out_dim, in_dim = (int(v) for v in rng.integers(1, max_dim + 1, size=2))
        m = int(rng.integers(1, max_m + 1))
        mask = rng.random((out_dim, in_dim)) >= sparsity
        if dataflow in ("row", "unrolled") and rng.random() < 0.6:
            out_dim = int(rng.integers(1, profile.n_pe + 1))
            in_dim = int(rng.integers(max(1, max_dim // 2), 2 * max_dim + 1))
            m = int(rng.integers(1, 3))
            mask = rng.random((out_dim, in_dim)) >= min(sparsity, 0.5)
        if dataflow == "unrolled":
            m = max(2, min(m, 4))
        if dataflow == "narrow":
            k = int(rng.integers(1, 4))  # the op's K: the layer's input (forward) or output
            out_dim, in_dim = (out_dim, k) if kernel == "forward" else (k, in_dim)
            mask = rng.random((out_dim, in_dim)) >= min(sparsity, 0.5)
        w = _operands(rng, mask.shape, profile)
        w = np.where(w == 0, 1, w) * mask
        x = _operands(rng, (in_dim, m), profile)
        dy = _operands(rng, (out_dim, m), profile)
        flow = dataflow if profile.is_sparse and kernel in ("forward", "input_grad") else "auto"
        flow = "sample" if flow == "narrow" else flow
        try:
            program = compile_layer(w, kernel, profile, m, flow)
        except ValueError:
            continue
        return Case(program, x, dy)
    raise RuntimeError(f"no {kernel} case fits profile {profile.name!r} within max_dim={max_dim}")


def _split_case(
    rng: np.random.Generator,
    profile: HwProfile,
    kernel: str,
    max_dim: int,
    max_m: int,
    joined: bool = False,
) -> Case:
    for _ in range(100):
        out_dim, in_dim = (int(v) for v in rng.integers(1, max_dim + 1, size=2))
        m = 1 if joined else int(rng.integers(1, max_m + 1))
        mask = rng.random((out_dim, in_dim)) >= float(rng.choice([0.0, 0.3, 0.6, 0.9]))
        w = _operands(rng, mask.shape, profile)
        w = np.where(w == 0, 1, w) * mask
        x = _operands(rng, (in_dim, m), profile)
        dy = _operands(rng, (out_dim, m), profile)
        try:
            program = compile_layer(w, kernel, profile, m, "row")
        except ValueError:
            continue
        (op,) = program.ops
        wk = w.T if op.transpose else w
        mk = wk != 0
        cut = plan_with_joins if joined else plan_for_threshold
        plan = cut(mk.sum(axis=1), profile.n_pe, int(rng.integers(1, 4)))
        if joined and not plan.joined.any():
            continue
        arrays = encode_banks(mk, wk, plan)
        try:
            check_fit(profile, row_shape(op.n, op.k, m, plan), f"split case {op.name!r}")
        except ValueError:
            continue
        return Case(replace(program, ops=(replace(op, arrays=arrays),)), x, dy)
    raise RuntimeError(
        f"no {'joined' if joined else 'split'} {kernel} case fits profile {profile.name!r}"
    )


def _tiled_case(rng: np.random.Generator, profile: HwProfile, kernel: str) -> Case:
    """A layer whose op (``K`` inputs, ``M`` samples) has ``K M`` over the activation buffer
    and which the compiler's choice compiles into sample tiles."""
    buf = profile.act_buf_words
    for _ in range(200):
        k = int(rng.integers(max(2, buf // 8), buf // 2 + 1))
        n = int(rng.integers(1, 2 * profile.n_pe + 1))
        m = int(rng.integers(buf // k + 1, 3 * (buf // k) + 2))
        out_dim, in_dim = (n, k) if kernel == "forward" else (k, n)
        mask = rng.random((out_dim, in_dim)) >= float(rng.choice([0.3, 0.6, 0.8, 0.9]))
        w = _operands(rng, mask.shape, profile)
        w = np.where(w == 0, 1, w) * mask
        try:
            program = compile_layer(w, kernel, profile, m, "auto")
        except ValueError:
            continue
        if not any(op.layer_m for op in program.ops):
            continue
        x = _operands(rng, (in_dim, m), profile)
        dy = _operands(rng, (out_dim, m), profile)
        return Case(program, x, dy)
    raise RuntimeError(f"no tiled {kernel} case on profile {profile.name!r}")


def make_jobs(
    profile: HwProfile, kernel: str, dataflow: str, count: int, seed: int, max_dim: int, max_m: int
) -> list[Job]:
    """Every op of ``count`` random programs (program ``i`` drawn from seed ``[seed, i]``)."""
    jobs = []
    for i in range(count):
        case = random_case(
            np.random.default_rng([seed, i]), profile, kernel, dataflow, max_dim, max_m
        )
        for op in case.program.ops:
            x, dy = case.operands(op)
            ref = simulate_op(case.program, op, x, dy)
            label = (
                f"program {i} (seed=[{seed}, {i}]) op {op.name} {op.dataflow} "
                f"K={op.k} N={op.n} M={op.m}"
            )
            load = op_load(op, profile, x, dy)
            jobs.append(Job(label, load, np.asarray(ref.output), int(ref.cycles)))
    return jobs


def check_random(
    profile: HwProfile, cases: list[tuple[str, str, int, int]], max_dim: int = 16, max_m: int = 12
) -> dict[str, int]:
    """Run random programs of several kernels on ``profile``'s RTL in one simulation.

    ``cases`` are ``(kernel, dataflow, programs, seed)``. ``MAST_PROGRAMS`` scales the
    program counts; ``MAST_SEED`` is added to every seed. Returns the ops run per
    ``kernel/dataflow``; raises ``AssertionError`` (naming the failing programs and their
    seeds) on any mismatch against ``sim``.
    """
    scale = float(os.environ.get("MAST_PROGRAMS", "1"))
    shift = int(os.environ.get("MAST_SEED", "0"))
    jobs, counts = [], {}
    for kernel, dataflow, count, seed in cases:
        n = max(1, round(count * scale))
        new = make_jobs(profile, kernel, dataflow, n, seed + shift, max_dim, max_m)
        counts[f"{kernel}/{dataflow}"] = len(new)
        jobs += new
    directory = build(profile).directory
    tag = "-".join(str(seed + shift) for *_, seed in cases)
    path = write_jobs(directory / "jobs" / f"random-{tag}.pkl", jobs)
    run_testbench(profile, "tb_accel", run=path.stem, jobs=path, seed=tag)
    return counts
