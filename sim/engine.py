"""``simulate(program, inputs)``: run every op of a program on the cycle-level model."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from hw.numerics import quantize
from hw.program import Op, Program
from sim.result import OpResult, SimResult
from sim.sparse import run_rp_spmm, run_sddmm, run_sp_spmm
from sim.systolic import run_gemm

__all__ = ["op_inputs", "simulate", "simulate_op", "layer_output"]


def _operand(a: np.ndarray, shape: tuple[int, int], what: str, op: Op, program: Program):
    a = np.asarray(a)
    prof = program.profile
    if a.shape != shape:
        raise ValueError(f"op {op.name!r}: input {what!r} has shape {a.shape}, expected {shape}")
    if a.dtype.kind in "iu":
        lo, hi = int(a.min(initial=0)), int(a.max(initial=0))
        if lo < prof.operand_min or hi > prof.operand_max:
            raise ValueError(
                f"op {op.name!r}: input {what!r} value {lo if lo < prof.operand_min else hi} "
                f"outside the operand range [{prof.operand_min}, {prof.operand_max}]"
            )
        return a.astype(np.int64)
    if a.dtype.kind != "f":
        raise ValueError(f"op {op.name!r}: input {what!r} must be integer or float, got {a.dtype}")
    return np.asarray(quantize(a, prof), dtype=np.int64)


def op_inputs(
    program: Program, op: Op, inputs: Mapping[str, Mapping[str, np.ndarray]]
) -> tuple[np.ndarray, np.ndarray | None]:
    """The op's integer operands ``(x, dy)`` from ``inputs``.

    ``inputs`` maps an op name, or a layer name (shared by the layer's ops; for a stacked
    layer, any of its parts' names, :mod:`hw.compiler.stack`), to
    ``{"x": X, "dy": dY}`` in the *layer's* orientation: ``X`` is ``in x M``, ``dY`` is
    ``out x M``. Forward ops read ``x``, input-gradient ops ``dy``, weight-gradient ops
    both. Float arrays are quantised with :func:`hw.numerics.quantize`; integer arrays are
    operand integers. A sample-unrolled op gets its samples stacked into one
    (:meth:`hw.program.Op.fold_samples`), and the tile of a sample-tiled SpMM its own
    samples of the layer's (:meth:`hw.program.Op.tile_of`).
    """
    blocks = program.blocks(op.layer)
    if blocks:
        return _merged_input(program, op, blocks, inputs), None
    keys = [op.name, op.layer] + [name for name, _, _ in program.parts(op.layer)]
    entry = next((inputs[key] for key in keys if key in inputs), None)
    if entry is None:
        tried = ", ".join(repr(key) for key in keys)
        raise ValueError(f"no inputs for op {op.name!r} (keys tried: {tried})")
    need = {"forward": ("x",), "input_grad": ("dy",)}.get(op.purpose, ("x", "dy"))
    missing = [key for key in need if key not in entry]
    if missing:
        raise ValueError(f"op {op.name!r}: inputs lack {missing[0]!r}")
    shapes = {"x": (op.in_width, op.layer_samples), "dy": (op.out_width, op.layer_samples)}
    got = {key: op.tile_of(_operand(entry[key], shapes[key], key, op, program)) for key in need}
    if op.purpose == "input_grad":
        return op.fold_samples(got["dy"]), None
    return op.fold_samples(got["x"]), got.get("dy")


def _merged_input(program: Program, op: Op, blocks, inputs) -> np.ndarray:
    """A merged acting op's one sample: every block's agents stacked, block after block."""
    if op.purpose != "forward":
        raise ValueError(f"op {op.name!r}: a merged acting op has only a forward kernel")
    words = []
    for block in blocks:
        keys = [block["name"]] + [name for name, _, _ in block["parts"]]
        entry = next((inputs[key] for key in keys if key in inputs), None)
        if entry is None or "x" not in entry:
            tried = ", ".join(repr(key) for key in keys)
            raise ValueError(f"op {op.name!r}: no input 'x' for block (keys tried: {tried})")
        m = int(block["samples"])
        k = (int(block["cols"][1]) - int(block["cols"][0])) // m
        words.append(_operand(entry["x"], (k, m), "x", op, program).T.reshape(-1))
    return np.concatenate(words)[:, None]


def simulate_op(program: Program, op: Op, x: np.ndarray, dy: np.ndarray | None) -> OpResult:
    """Run one op on integer operands (``x``: the op's ``K x M`` input; ``dy``: ``N x M``)."""
    prof = program.profile
    if op.kernel == "gemm":
        return run_gemm(op, x, dy, prof)
    if op.kernel == "sddmm":
        return run_sddmm(op, x, dy, prof)
    if op.dataflow == "row":
        return run_rp_spmm(op, x, prof)
    return run_sp_spmm(op, x, prof)


def simulate(program: Program, inputs: Mapping[str, Mapping[str, np.ndarray]]) -> SimResult:
    """Run ``program`` op by op (back to back) and collect outputs, cycles and counts.

    See :func:`op_inputs` for ``inputs``. Returns a :class:`sim.result.SimResult`.
    """
    results = []
    for op in program.ops:
        x, dy = op_inputs(program, op, inputs)
        results.append(simulate_op(program, op, x, dy))
    return SimResult(ops=tuple(results), n_pe=program.profile.n_pe)


def layer_output(program: Program, result: SimResult, layer: str, purpose: str) -> np.ndarray:
    """A layer's integer result of one kernel in dense form.

    ``forward``: ``(out, M)`` (a part of a stacked layer: its rows of the stack's output);
    ``input_grad``: ``(in, M)``; ``weight_grad`` / ``dense_grad``: ``(out, in)`` with SDDMM
    chunks scattered to their mask positions.
    """
    ops = program.ops_of(layer, purpose)
    found = program.block_of(layer) if not ops else None
    if found is not None and purpose == "forward":
        merged, block, part = found
        m = int(block["samples"])
        r0, r1 = (int(v) for v in block["rows"])
        y = result.op(program.ops_of(merged, purpose)[0].name).output[r0:r1]
        y = y.reshape(m, -1).T
        return y if part is None else y[part[0] : part[1]]
    stack = program.stack_of(layer) if not ops else None
    if stack is not None and purpose == "forward":
        name, begin, end = stack
        return layer_output(program, result, name, purpose)[begin:end]
    if not ops:
        raise KeyError(f"program has no {purpose!r} op of layer {layer!r}")
    if ops[0].kernel != "sddmm":
        # a sample-tiled SpMM's tiles hold consecutive samples, in program order
        tiles = sorted(ops, key=lambda o: o.sample0)
        return np.concatenate([o.unfold_samples(result.op(o.name).output) for o in tiles], axis=1)
    dw = np.zeros((ops[0].n, ops[0].k), dtype=np.int64)
    for op in ops:
        real = ~op.arrays["stream_token"].astype(bool)
        rows, cols = op.stream_rows()[real], op.arrays["stream_col"][real]
        dw[rows, cols] = result.op(op.name).output
    return dw
