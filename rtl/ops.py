"""Host-side loading of one op into the RTL (runs inside the cocotb simulation).

:func:`execute` writes the op's memory images (:meth:`hw.program.Op.memory_images`) and
registers through the host port, runs it, and reads the output back in the layout of
``sim``'s :class:`~sim.result.OpResult` ``output``. Only light modules are imported here
(no compiler), so a simulation starts quickly.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hw.profiles import HwProfile
from hw.program import Op
from hw.rtl import OP_KINDS, check_fits
from hw.timing import tile_count

from .driver import Host

__all__ = ["Job", "execute", "read_jobs", "write_jobs"]


@dataclass(frozen=True, eq=False)
class Job:
    """One op to run on the RTL with ``sim``'s answer."""

    label: str
    """Names the program, its seed and the op (printed on a mismatch)."""
    op: Op
    x: np.ndarray
    dy: np.ndarray | None
    tiles: np.ndarray | None
    """Stationary tiles of ``dY`` for a systolic weight-gradient op, else ``None``."""
    want: np.ndarray
    """``sim``'s integer output."""
    want_cycles: int
    """``sim``'s cycle count."""


def write_jobs(path: str | Path, jobs: list[Job]) -> Path:
    """Store jobs for the testbench (a generated file in the build folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        pickle.dump(jobs, fh)
    return path


def read_jobs(path: str | Path) -> list[Job]:
    """Jobs written by :func:`write_jobs` in this session."""
    with open(path, "rb") as fh:
        return pickle.load(fh)


def _bank_words(profile: HwProfile) -> int:
    return profile.act_sram_words // profile.n_pe


async def execute(
    host: Host, op: Op, x: np.ndarray, dy: np.ndarray | None, tiles: np.ndarray | None = None
) -> tuple[np.ndarray, int]:
    """Load, run and read back one op; returns ``(output, cycles)`` as ``sim`` shapes them.

    ``tiles``: for a systolic weight-gradient op, the stationary tiles of ``dY``
    (:func:`hw.compiler.encode_tiles`).
    """
    check_fits(host.profile, op)
    if op.dataflow == "systolic":
        return await _execute_gemm(host, op, x, dy, tiles)
    if op.dataflow == "row":
        return await _execute_row(host, op, x)
    return await _execute_sample(host, op, x, dy)


async def _execute_sample(host: Host, op: Op, x: np.ndarray, dy: np.ndarray | None):
    p = host.profile
    images = op.memory_images(p, x, dy)
    bits = {"weight_val": p.operand_bits, "weight_col": p.index_bits, "weight_last": 1,
            "weight_token": 1}  # fmt: skip
    for name, b in bits.items():
        await host.write(name, images[name], b)
    sddmm = op.kernel == "sddmm"
    height = op.k + op.n if sddmm else op.k
    depth = _bank_words(p)
    # Only the samples' columns: PEs without a sample never write a result.
    ms = np.arange(op.m)
    act = images["act_sram"]
    addrs = ((ms % p.n_pe) * depth + (ms // p.n_pe) * height)[:, None] + np.arange(height)
    addrs = addrs.reshape(-1)
    await host.write("act_sram", dict(zip(addrs.tolist(), act[addrs].tolist(), strict=True)),
                     p.operand_bits)  # fmt: skip
    await host.set_registers(
        {
            "kind": OP_KINDS["sddmm" if sddmm else "sp_spmm"], "k": op.k, "n": op.n, "m": op.m,
            "s_len": op.stream_length, "w_base": 0, "x_base": 0, "x_stride": height,
            "dy_base": op.k, "dy_stride": height, "y_base": 0, "y_stride": op.n,
            "row0": op.row0,
        }
    )  # fmt: skip
    cycles = await host.run(limit=_limit(op, p))
    if sddmm:
        nnz = op.nz_end - op.nz_begin
        out = await host.read("grad_out", range(nnz), p.operand_bits)
        return out, cycles
    ms = np.arange(op.m)
    addrs = (ms % p.n_pe)[None, :] * depth + (ms // p.n_pe)[None, :] * op.n
    addrs = addrs + np.arange(op.n)[:, None]
    out = await host.read("out_sram", addrs.reshape(-1).tolist(), p.acc_bits)
    return out.reshape(op.n, op.m), cycles


async def _execute_row(host: Host, op: Op, x: np.ndarray):
    p = host.profile
    a = op.arrays
    images = op.memory_images(p, x)
    n_p, q_p = np.diff(a["bank_ptr"]), np.diff(a["piece_ptr"])
    words = np.concatenate([b * p.weight_bank_words + np.arange(n) for b, n in enumerate(n_p)])
    for name, bits in (("bank_val", p.operand_bits), ("bank_col", p.index_bits),
                       ("bank_end", 1)):  # fmt: skip
        img = images[name]
        await host.write(name, dict(zip(words.tolist(), img[words].tolist(), strict=True)), bits)
    for name in ("bank_ptr", "piece_ptr", "piece_split", "piece_pe", "red_ptr", "red_piece"):
        await host.write(name, images[name], 32)
    i = np.arange(op.k * op.m)
    depth = _bank_words(p)
    addrs = (i % p.n_pe) * depth + i // p.n_pe
    act = images["act_sram"]
    await host.write("act_sram", dict(zip(addrs.tolist(), act[addrs].tolist(), strict=True)),
                     p.operand_bits)  # fmt: skip
    await host.set_registers(
        {
            "kind": OP_KINDS["rp_spmm"], "k": op.k, "n": op.n, "m": op.m,
            "nmax": int(n_p.max()), "qmax": int(q_p.max()),
            "red_adds": len(a["red_piece"]) - len(a["red_row"]),
        }
    )  # fmt: skip
    limit = op.k * op.m + op.m * (int(n_p.max()) + int(q_p.max()) + len(a["red_piece"]))
    cycles = await host.run(limit=limit + p.pipeline_depth + 100)
    # Y[r, m] is at the slot of row r's first piece (its only one when unsplit).
    first = a["piece_red"] < 0
    first[a["red_piece"][a["red_ptr"][:-1]]] = True
    g = np.flatnonzero(first)
    pe = a["piece_pe"][g]
    slot = g - a["piece_ptr"][pe]
    ms = np.arange(op.m)
    addr = pe[:, None] * depth + ms[None, :] * q_p[pe][:, None] + slot[:, None]
    vals = await host.read("out_sram", addr.reshape(-1).tolist(), p.acc_bits)
    out = np.zeros((op.n, op.m), dtype=np.int64)
    out[a["piece_row"][g]] = vals.reshape(len(g), op.m)
    return out, cycles


def _limit(op: Op, p: HwProfile) -> int:
    t = tile_count(op.m, p)
    return (t + 2) * (op.stream_length + op.k + op.n + p.pipeline_depth + 16) + 100


async def _execute_gemm(host: Host, op: Op, x: np.ndarray, dy, tiles: np.ndarray | None):
    # Weight gradients keep dY stationary and stream X^T: the GEMM (N x M)(M x K); the
    # host keeps the mask's words of the N x K result.
    p = host.profile
    if "weight_tiles" in op.arrays:
        tiles, xs, n, k, m = op.arrays["weight_tiles"], np.asarray(x), op.n, op.k, op.m
    elif tiles is None:
        raise ValueError(f"op {op.name!r}: a systolic weight gradient needs the tiles of dY")
    else:
        xs, n, k, m = np.asarray(x).T, op.n, op.m, op.k
    tiles = np.asarray(tiles).reshape(-1)
    await host.write("weight_tiles", tiles, p.operand_bits)
    await host.write("act_sram", xs.reshape(-1), p.operand_bits)
    await host.set_registers({"k": k, "n": n, "m": m})
    limit = -(-k // p.rows) * -(-n // p.cols) * (2 * p.rows + p.cols + m) + 100
    cycles = await host.run(limit=limit)
    rows = np.arange(n)
    addr = (((rows // p.cols) * m)[:, None] + np.arange(m)[None, :]) * p.cols
    addr = addr + (rows % p.cols)[:, None]
    keep = np.ones((n, m), dtype=bool)
    if "mask" in op.arrays:
        keep = op.arrays["mask"].reshape(n, m).astype(bool)
    out = np.zeros((n, m), dtype=np.int64)
    out[keep] = await host.read("out_sram", addr[keep].tolist(), p.operand_bits)
    return out, cycles
