"""``mast-hw export``: synthesizable Verilog of a profile, and a trained policy's memories.

``mast-hw export --profile P --out DIR`` writes ``DIR/mast_accel_<P>.v`` and
``DIR/profile.json`` (:func:`hw.rtl.generate_verilog`). Given a training run's masks
(``--masks RUN_DIR``: its newest ``masks/masks_*.npz``) or one mask snapshot
(``--checkpoint FILE.npz``), the agents' inference program (every agent layer's forward
op, ``M = n_agents`` samples) is compiled with :func:`hw.compiler.compile_network` and its
weights are written as ``$readmemh`` files, one per op and memory
(``op<i>_<memory>.hex``: :meth:`hw.program.Op.memory_images`, word ``i`` at host address
``i``), next to ``program.npz`` (:meth:`hw.program.Program.save`) and ``manifest.json``:
per op its register values and, per memory, the host ``sel`` value, word count, width and
file (the host load sequence of :mod:`hw.rtl.top`).

The translation of an op into host-port writes (:func:`op_load`) is what the RTL
verification loads too: the cocotb testbenches and the pyverilator co-simulation
(:mod:`rtl.cosim`) both run it through the host-port protocol of :mod:`rtl.hostport`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hw.profiles import HwProfile, load_profile
from hw.program import Op, Program, concat_programs
from mast.errors import UserError, reading
from mast.run_folder import latest_snapshot
from mast.sparsity.layer import SparseLayer, load_layers

__all__ = [
    "ExportResult",
    "OpLoad",
    "compile_inference",
    "export",
    "export_verilog",
    "host_word_bits",
    "op_load",
    "write_hex",
]

_OP_KIND = {
    ("spmm", "sample"): "sp_spmm",
    ("sddmm", "sample"): "sddmm",
    ("spmm", "row"): "rp_spmm",
    ("gemm", "systolic"): "gemm",
}
"""RTL op kind per (kernel, dataflow) of a :class:`~hw.program.Op` (``gemm``: systolic top)."""


def export_verilog(profile: HwProfile | str, out_dir: Path) -> Path:
    """Write the top level's Verilog and ``profile.json`` to ``out_dir``; return the ``.v``."""
    from hw.rtl import generate_verilog

    return generate_verilog(load_profile(profile), out_dir)


# ---- op -> host port -------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class OpLoad:
    """What the host writes before ``start`` of one op, and where it reads the result.

    All addresses are word addresses of the host port (``host__addr``) inside the memory
    selected by ``host__sel = MEMORY_IDS[name]``.
    """

    kind: str
    """RTL op kind: a key of :data:`hw.rtl.OP_KINDS`, or ``gemm`` on a systolic top."""
    registers: Mapping[str, int]
    """Value of every op register the op uses (names of :data:`hw.rtl.REGISTERS`)."""
    writes: Mapping[str, tuple[np.ndarray, np.ndarray]]
    """Memory name -> (addresses, words) to write; words are signed integers."""
    output_memory: str
    """Memory holding the result."""
    output_addresses: np.ndarray
    """Address of every result word, shaped like the op's output in ``sim``."""
    output_bits: int
    """Width of a result word (read data is sign-extended from it)."""
    cycle_limit: int
    """A bound well above the op's cycle count (a run past it is a hang)."""
    output_valid: np.ndarray | None = None
    """Where given, only these result words are read; the others are 0 (masked GEMM)."""


def _host_ids() -> Mapping[str, int]:
    from hw.rtl import MEMORY_IDS

    return MEMORY_IDS


def _dense(words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.arange(len(words), dtype=np.int64), np.asarray(words)


def _sample_load(op: Op, profile: HwProfile, x, dy, kinds) -> OpLoad:
    p, k, n, m = profile.n_pe, op.k, op.n, op.m
    sddmm = op.kernel == "sddmm"
    height = k + n if sddmm else k
    registers = {
        "kind": kinds["sddmm" if sddmm else "sp_spmm"],
        "k": k,
        "n": n,
        "m": m,
        "s_len": op.stream_length,
        "w_base": 0,
        "x_base": 0,
        "x_stride": height,
        "dy_base": k if sddmm else 0,
        "dy_stride": height if sddmm else 0,
        "y_base": 0,
        "y_stride": 0 if sddmm else n,
        "row0": op.row0,
    }
    writes = {name: _dense(w) for name, w in op.memory_images(profile).items()}
    depth = profile.act_sram_words // p
    tiles = -(-m // p)
    if x is not None:
        image = op.act_sram_image(profile, x, dy)
        used = (np.arange(p)[:, None] * depth + np.arange(tiles * height)[None, :]).reshape(-1)
        writes["act_sram"] = (used, image[used])
    if sddmm:
        out_mem, out_addr = "grad_out", np.arange(op.nz_end - op.nz_begin, dtype=np.int64)
    else:
        ms = np.arange(m)
        out_addr = (ms % p)[None, :] * depth + ((ms // p) * n)[None, :] + np.arange(n)[:, None]
        out_mem = "out_sram"
    limit = (tiles + 2) * (op.stream_length + k + n + profile.pipeline_depth + p + 16) + 100
    return OpLoad(
        "sddmm" if sddmm else "sp_spmm",
        registers,
        writes,
        out_mem,
        out_addr,
        profile.operand_bits,
        limit,
    )


def _row_load(op: Op, profile: HwProfile, x, kinds) -> OpLoad:
    p, a = profile, op.arrays
    depth = p.act_sram_words // p.n_pe
    images = op.memory_images(p)
    n_p, q_p = np.diff(a["bank_ptr"]), np.diff(a["piece_ptr"])
    words = np.concatenate([b * p.weight_bank_words + np.arange(c) for b, c in enumerate(n_p)])
    writes = {name: (words, images[name][words]) for name in ("bank_val", "bank_col", "bank_end")}
    for name in ("bank_ptr", "piece_ptr", "piece_split", "piece_pe", "red_ptr", "red_piece"):
        writes[name] = _dense(images[name])
    if x is not None:
        i = np.arange(op.k * op.m)
        addrs = (i % p.n_pe) * depth + i // p.n_pe
        writes["act_sram"] = (addrs, op.act_sram_image(p, x)[addrs])
    registers = {
        "kind": kinds["rp_spmm"],
        "k": op.k,
        "n": op.n,
        "m": op.m,
        "nmax": int(n_p.max()),
        "qmax": int(q_p.max()),
        "red_adds": len(a["red_piece"]) - len(a["red_row"]),
        "rp_delay": op.walk_delay(p),
        "rp_drain": op.drain_delay(p),
    }
    # Y[r, m] is at the slot of row r's first piece (its only one when unsplit).
    first = a["piece_red"] < 0
    first[a["red_piece"][a["red_ptr"][:-1]]] = True
    g = np.flatnonzero(first)
    pe = a["piece_pe"][g]
    slot = g - a["piece_ptr"][pe]
    ms = np.arange(op.m)
    out_addr = np.zeros((op.n, op.m), dtype=np.int64)
    words_of_first = pe[:, None] * depth + ms[None, :] * q_p[pe][:, None] + slot[:, None]
    out_addr[a["piece_row"][g]] = words_of_first
    limit = op.k * op.m + op.m * (int(n_p.max()) + int(q_p.max()) + len(a["red_piece"]))
    return OpLoad(
        "rp_spmm",
        registers,
        writes,
        "out_sram",
        out_addr,
        p.acc_bits,
        limit + p.pipeline_depth + 100,
    )


def _gemm_load(op: Op, profile: HwProfile, x, dy) -> OpLoad:
    from hw.program import encode_tiles

    p = profile
    if "weight_tiles" in op.arrays:
        tiles, n, k, m = op.arrays["weight_tiles"].reshape(-1), op.n, op.k, op.m
        stream = None if x is None else np.asarray(x)
    else:
        # Weight gradient: dY stationary, X^T streamed; the GEMM is (N x M)(M x K).
        n, k, m = op.n, op.m, op.k
        tiles = None if dy is None else encode_tiles(np.asarray(dy), p).reshape(-1)
        stream = None if x is None else np.asarray(x).T
    writes = {}
    if tiles is not None:
        writes["weight_tiles"] = _dense(tiles)
    if stream is not None:
        writes["act_sram"] = _dense(stream.reshape(-1))
    rows = np.arange(n)
    addr = (((rows // p.cols) * m)[:, None] + np.arange(m)[None, :]) * p.cols
    addr = addr + (rows % p.cols)[:, None]
    valid = op.arrays["mask"].reshape(n, m).astype(bool) if "mask" in op.arrays else None
    limit = -(-k // p.rows) * -(-n // p.cols) * (2 * p.rows + p.cols + m) + 100
    return OpLoad(
        "gemm", {"k": k, "n": n, "m": m}, writes, "out_sram", addr, p.operand_bits, limit, valid
    )


def op_load(
    op: Op, profile: HwProfile, x: np.ndarray | None = None, dy: np.ndarray | None = None
) -> OpLoad:
    """Translate ``op`` (and its integer inputs, when given) into host-port writes.

    ``x`` / ``dy`` are the op's operands as :func:`sim.op_inputs` returns them. Without
    them only the weight memories are written (memory images of an exported program).

    Raises
    ------
    UserError
        The RTL has no op kind for the op's kernel and dataflow, or a memory it needs is
        not on the host port.
    hw.compiler.ProgramFitError
        The op does not fit the RTL's memories (:func:`hw.rtl.check_fits`).
    """
    from hw.rtl import OP_KINDS, check_fits

    kind = _OP_KIND.get((op.kernel, op.dataflow))
    known = [*OP_KINDS, "gemm"] if not profile.is_sparse else list(OP_KINDS)
    if kind is None or kind not in known or (kind == "gemm") == profile.is_sparse:
        raise UserError(
            f"op {op.name!r}: the RTL of profile {profile.name!r} does not run {op.kernel} ops "
            f"with the {op.dataflow!r} dataflow (RTL op kinds: "
            f"{'gemm' if not profile.is_sparse else ', '.join(OP_KINDS)})"
        )
    check_fits(profile, op)
    if kind == "gemm":
        load = _gemm_load(op, profile, x, dy)
    elif kind == "rp_spmm":
        load = _row_load(op, profile, x, OP_KINDS)
    else:
        load = _sample_load(op, profile, x, dy, OP_KINDS)
    ids = _host_ids()
    for name in [*load.writes, load.output_memory]:
        if name not in ids:
            raise UserError(
                f"op {op.name!r}: memory {name!r} is not on the host port of profile "
                f"{profile.name!r} (host memories: {', '.join(ids)})"
            )
    return load


# ---- masks -> program ------------------------------------------------------------------
def compile_inference(layers: Sequence[SparseLayer], profile: HwProfile) -> Program:
    """The agents' greedy-action forward pass: one ``forward`` op per acting group.

    Each op's ``M`` is the number of agents acting with it per environment step (its
    layer's ``uses_per_env_step``: all agents, or one type's with ``per_type`` masks).
    The output layer and the next step's recurrent gate product, which read the same
    hidden state, run as one op of their stacked matrices (:mod:`hw.compiler.stack`;
    ``Program.parts`` gives each part's rows); every other agent layer is an op of its
    own. With ``per_type`` masks the same op of every type runs as one merged op
    (:class:`hw.compiler.stack.ActingOp`, ``Program.blocks``) when it compiles
    row-parallel. The dataflow is the one the RTL runs (sample-parallel unless the RTL
    has a row-parallel op kind).

    Raises
    ------
    UserError
        No agent layer among ``layers``.
    hw.compiler.ProgramFitError
        A layer does not fit the profile's memories (the message names field and values).
    """
    from hw.compiler import compile_network
    from hw.compiler.stack import acting_ops, stack_parts
    from hw.rtl import OP_KINDS

    agents = [layer for layer in layers if layer.role == "agent"]
    if not agents:
        roles = sorted({layer.role for layer in layers})
        raise UserError(f"the masks hold no agent layer (roles: {', '.join(roles) or 'none'})")
    dataflow = "auto" if "rp_spmm" in OP_KINDS else "sample"
    programs = []
    for act in acting_ops(agents, profile):
        layer = act.layer()
        prog = compile_network(
            [layer], "forward", profile, max(1, layer.uses_per_env_step), dataflow
        )
        (meta,) = prog.layers
        if len(act.blocks) > 1:
            meta = {**meta, "blocks": act.meta()}
        elif len(act.groups[0]) > 1:
            meta = {**meta, "parts": stack_parts(act.groups[0])}
        programs.append(Program(prog.profile, prog.ops, (meta,)))
    return concat_programs(programs)


def write_hex(path: Path, words: np.ndarray, bits: int) -> Path:
    """A ``$readmemh`` file: one ``bits``-wide two's-complement word per line."""
    digits = max(1, -(-bits // 4))
    mask = (1 << bits) - 1
    path.write_text("".join(f"{int(w) & mask:0{digits}x}\n" for w in np.asarray(words)))
    return path


def host_word_bits(name: str, profile: HwProfile) -> int:
    """Width of a memory word on the host port (piece and reduction tables: 32 bits)."""
    ob, ib = profile.operand_bits, profile.index_bits
    return {
        "weight_val": ob,
        "weight_col": ib,
        "weight_last": 1,
        "weight_token": 1,
        "bank_val": ob,
        "bank_col": ib,
        "bank_end": 1,
        "weight_tiles": ob,
        "act_sram": ob,
    }.get(name, 32)


# ---- the command -----------------------------------------------------------------------
@dataclass(frozen=True)
class ExportResult:
    """Files written by :func:`export`."""

    verilog: Path
    profile_json: Path
    manifest: Path | None = None
    """``manifest.json`` (only with masks)."""
    program: Path | None = None
    """``program.npz`` (only with masks)."""
    hex_files: tuple[Path, ...] = ()


def _during(progress, message: str):
    """``progress.during(message)`` when ``progress`` has it (a ``StageLog``), else one line."""
    during = getattr(progress, "during", None)
    if during is not None:
        return during(message)
    if progress is not None:
        progress(message)
    return contextlib.nullcontext()


def export(
    profile: HwProfile | str,
    out_dir: Path,
    *,
    layers: Sequence[SparseLayer] | None = None,
    source: str = "",
    force: bool = False,
    progress: Callable[[str], None] | None = None,
) -> ExportResult:
    """Write Verilog + ``profile.json`` and, given ``layers``, the inference memories.

    ``progress`` is called with a line before each long stage (elaboration, images),
    after the inputs are checked and the program compiled.

    Raises
    ------
    UserError
        ``out_dir`` is a non-empty folder and ``force`` is false.
    """
    profile = load_profile(profile)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"output path {str(out_dir)!r} exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        raise UserError(
            f"output folder {str(out_dir)!r} is not empty; pass --force to overwrite it"
        )
    # Compiling is quick and is where bad masks fail: no progress line before it, so a
    # bad input gives exactly one line (the error).
    program = compile_inference(layers, profile) if layers is not None else None
    # Created before the long stages, so an unwritable path fails first.
    out_dir.mkdir(parents=True, exist_ok=True)
    # --force: files of an earlier export must not outlive it (e.g. more ops' images).
    stale = [*out_dir.glob("op*_*.hex"), out_dir / "manifest.json", out_dir / "program.npz"]
    for path in stale:
        path.unlink(missing_ok=True)
    with _during(progress, f"elaborating {profile.name} to Verilog (minutes for large profiles)"):
        verilog = export_verilog(profile, out_dir)
    result = ExportResult(verilog=verilog, profile_json=out_dir / "profile.json")
    if program is None:
        return result
    if progress is not None:
        progress(f"writing the memory images of {len(program.ops)} operations")
    from hw.rtl import MEMORY_IDS, REGISTERS

    hex_files: list[Path] = []
    ops = []
    for i, op in enumerate(program.ops):
        load = op_load(op, profile)
        memories = []
        for name, words in op.memory_images(profile).items():
            if name not in MEMORY_IDS:
                continue  # compiler bookkeeping the host reads, not an RTL memory
            bits = host_word_bits(name, profile)
            path = write_hex(out_dir / f"op{i}_{name}.hex", words, bits)
            hex_files.append(path)
            memories.append(
                {
                    "memory": name,
                    "sel": MEMORY_IDS[name],
                    "words": len(words),
                    "bits": bits,
                    "file": path.name,
                }
            )
        meta = {k: v for k, v in op.meta().items() if k != "arrays"}
        output = {
            "memory": load.output_memory,
            "sel": MEMORY_IDS[load.output_memory],
            "bits": load.output_bits,
            "shape": list(load.output_addresses.shape),
        }
        ops.append(
            {
                **meta,
                "kind": load.kind,
                "registers": load.registers,
                "memories": memories,
                "output": output,
            }
        )
    prog_path = program.save(out_dir / "program.npz")
    manifest = {
        "profile": profile.name,
        "top": verilog.stem,
        "verilog": verilog.name,
        "source": source,
        "host_memory_ids": dict(MEMORY_IDS),
        "op_registers": dict(REGISTERS),
        "layers": list(program.layers),
        "ops": ops,
    }
    man_path = out_dir / "manifest.json"
    man_path.write_text(json.dumps(manifest, indent=2, default=_json_default) + "\n")
    return ExportResult(verilog, out_dir / "profile.json", man_path, prog_path, tuple(hex_files))


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", required=True, help="profile name or YAML file")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--masks",
        type=Path,
        metavar="RUN_DIR",
        help="training run folder: export its newest masks/masks_*.npz",
    )
    src.add_argument(
        "--checkpoint",
        type=Path,
        metavar="FILE",
        help="a mask snapshot (.npz of SparseLayer records)",
    )
    p.add_argument("--force", action="store_true", help="overwrite a non-empty output folder")


def run(args: argparse.Namespace) -> int:
    profile = load_profile(args.profile)
    layers, source = None, ""
    if args.masks is not None:
        snap = latest_snapshot(args.masks)
        with reading(snap, "mask snapshot"):
            layers, source = load_layers(snap), str(snap)
    elif args.checkpoint is not None:
        ckpt = Path(args.checkpoint)
        if not ckpt.is_file():
            raise UserError(f"checkpoint {str(ckpt)!r} does not exist")
        if ckpt.suffix != ".npz":
            raise UserError(
                f"checkpoint {str(ckpt)!r} is not a mask snapshot (.npz of SparseLayer records)"
            )
        with reading(ckpt, "mask snapshot"):
            layers, source = load_layers(ckpt), str(ckpt)
    from mast.progress import StageLog

    res = export(
        profile,
        args.out,
        layers=layers,
        source=source,
        force=args.force,
        progress=StageLog("mast-hw export"),
    )
    print(f"wrote {res.verilog} and {res.profile_json}")
    if res.manifest is not None:
        print(f"wrote {res.manifest}, {res.program} and {len(res.hex_files)} memory images")
    return 0
