"""``Program``: what the mask compiler emits and what ``sim`` and the RTL testbenches run.

A :class:`Program` is the embedded :class:`~hw.profiles.HwProfile`, an ordered tuple of
:class:`Op` (one kernel each, see ``docs/microarchitecture.md``) and the metadata of the
layers they came from. Every op carries its memory contents as integer numpy arrays;
:meth:`Op.memory_images` lays them out word by word as the RTL memories are addressed.

Memory images (``P = n_pe``; all images are flat integer arrays, address = index):

Compressed weight stream (``dataflow="sample"``: kernels ``spmm`` and ``sddmm``), one
entry per address ``i = 0..S-1`` of the global weight SRAM, one memory per field:

- ``weight_val``: ``operand_bits`` signed value (0 for tokens; 0 everywhere for SDDMM);
- ``weight_col``: ``index_bits`` unsigned column (input index ``k``; 0 for tokens);
- ``weight_last``: 1 bit, the entry ends its row;
- ``weight_token``: 1 bit, the entry is the token of an empty row (no non-zero).

Row-parallel banks (``dataflow="row"``): the weight SRAM split in ``P`` banks of
``weight_bank_words``; PE ``p``'s ``i``-th entry at ``p * weight_bank_words + i``:

- ``bank_val`` / ``bank_col`` / ``bank_end`` (end of a piece); unused words are 0;
  ``bank_col`` is the broadcast position of the entry's input column (below);
  ``bank_ptr`` (``P + 1`` offsets: PE ``p`` holds ``n_p = bank_ptr[p+1] - bank_ptr[p]``);
- ``bcast_pos`` (``K`` entries, not a hardware memory): the position of input column
  ``k`` in the op's broadcast order within a sample, chosen by the compiler
  (:func:`hw.compiler.encode.broadcast_positions`); absent means the identity;
- piece table, PE-major (``piece_ptr[p] .. piece_ptr[p+1]-1`` are PE ``p``'s pieces in
  bank order; its ``j``-th piece is *slot* ``j``): ``piece_row``, ``piece_split``
  (1 if the row has several pieces), ``piece_red`` (index into the reduction schedule of
  the split row, -1 if unsplit), ``piece_pe``, ``piece_len``; the ``piece_pe`` *image*
  (the reduction unit's memory) packs per piece its PE, its slot and its PE's piece
  count (:func:`piece_words`, fields :func:`hw.fit.piece_word_fields`);
- reduction schedule, one record per split row in row order: ``red_row``, ``red_ptr``
  (offsets into ``red_piece``), ``red_piece`` (piece-table indices in piece order);
- ``piece_join`` (optional; absent means none): 1 on the second piece of a row joined at
  the drain (``drain_join`` profiles, one sample: :meth:`Op.joined_pairs`); such a row
  has no reduction record. The ``piece_split`` *image* (each PE's table) then holds
  ``piece_split | piece_join << 1``.

Sample-unrolled row-parallel op (``unroll = U > 1``, ``docs/microarchitecture.md``
s.2.5): the op computes the block-diagonal matrix ``I_U (x) W`` (``U N x U K``) on one
sample, the layer's ``U`` samples stacked sample-major (``x'[u K + k] = X[k, u]``,
``Y[r, u] = y'[u N + r]``). Its ``n``, ``k``, ``m`` are the datapath's (``U N``, ``U K``,
1), and its activation SRAM image is the one the ``U``-sample row-parallel op reads.

Sample tiles (``docs/microarchitecture.md`` s.2.6): an SpMM on more samples than a
row-parallel op's buffers hold may be compiled as several ops, each on the layer's
samples ``sample0 .. sample0 + samples - 1`` of ``layer_m`` (its images are those of
an op on its own samples; ``Op.tile_of`` takes them from the layer's operand).

Dense systolic tiles (``dataflow="systolic"``): ``weight_tiles`` with fold
``f = nf * ceil(K/R) + kf`` (``n``-fold outer, ``k``-fold inner) and cell ``(i, j)`` at
``(f * R + i) * C + j`` holding ``W[nf*C + j, kf*R + i]`` (0 outside ``W``). An op with
``resident=True`` has the same tiles, held in the cells' banks and streamed ``k``-fold
outer (``docs/microarchitecture.md`` s.3.1).

Activation SRAM (``act_sram``, ``P`` banks of ``act_sram_words // P`` operand words,
bank ``b`` offset ``o`` at ``b * (act_sram_words // P) + o``):

- SP SpMM: ``X[k, m]`` in bank ``m % P`` at ``(m // P) * K + k``;
- SDDMM: bank ``m % P`` at ``(m // P) * (K + N) + j`` holding ``X[j, m]`` for ``j < K``
  and ``dY[j - K, m]`` for ``K <= j < K + N``;
- RP: broadcast order ``i = m * K + bcast_pos[k]`` (sample-major, as the PEs walk it)
  holding ``X[k, m]``, in bank ``i % P`` at ``i // P``: ``bcast_words <= P`` consecutive
  words come from distinct banks;
- systolic: one bank, ``X[k, m]`` at ``k * M + m``; for a weight gradient the streamed
  operand is ``X^T``: ``X[k, m]`` at ``m * K + k``, and ``weight_tiles`` are the tiles of
  ``dY`` (``N x M``), made from the run-time ``dy``.

Output SRAM (``out_sram``, same banking as ``act_sram``):

- SP SpMM: ``Y[n, m]`` in bank ``m % P`` at ``(m // P) * N + n``;
- RP: PE ``p`` writes bank ``p`` at ``m * q_p + j`` for its slot ``j`` (raw accumulator
  for a split piece, ``requant`` otherwise); the reduction writes a split row's result
  over its first piece's word, so ``Y[r, m]`` is at the slot of row ``r``'s first piece;
  a joined row's result is at its second piece's slot (PE ``2i + 1``), its first piece's
  word the raw partial;
- SDDMM: ``grad_out`` holds ``requant(g[e])`` at ``e`` (the chunk's ``e``-th non-zero);
- systolic: one bank, ``Y[nf * C + j, m]`` at ``(nf * M + m) * C + j`` (output fold ``nf``,
  column ``j`` of the ``C``-wide array).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from hw import timing
from hw.fit import OpShape, piece_word_fields
from hw.profiles import HwProfile

__all__ = ["KERNELS", "DATAFLOWS", "PURPOSES", "Op", "Program", "concat_programs", "encode_tiles"]

KERNELS: tuple[str, ...] = ("spmm", "sddmm", "gemm")
DATAFLOWS: tuple[str, ...] = ("sample", "row", "systolic")
PURPOSES: tuple[str, ...] = ("forward", "input_grad", "weight_grad", "dense_grad")
FORMAT_VERSION = 1

_STREAM = ("stream_val", "stream_col", "stream_last", "stream_token")
_ROW = (
    "bank_val",
    "bank_col",
    "bank_end",
    "bank_ptr",
    "piece_pe",
    "piece_row",
    "piece_split",
    "piece_red",
    "piece_len",
    "piece_ptr",
    "red_row",
    "red_ptr",
    "red_piece",
)
_REQUIRED = {"sample": _STREAM, "row": _ROW, "systolic": ()}


@dataclass(frozen=True, eq=False)
class Op:
    """One kernel of a program: its dimensions and its encoded weights.

    ``W`` is ``N x K`` (``N`` outputs, ``K`` inputs) *after* transposition: an
    ``input_grad`` op of a layer of shape ``(out, in)`` has ``N = in``, ``K = out`` and
    ``transpose=True`` (its stream is the CSR of ``W^T``, i.e. the CSC of ``W``).
    ``M`` is the number of samples (columns of ``X``). A sample-unrolled op
    (``unroll > 1``) has the datapath's sizes; :attr:`samples`, :attr:`in_width` and
    :attr:`out_width` give the layer's.
    """

    name: str
    """Unique within a program: ``<layer>:<purpose>`` plus ``[chunk]`` for SDDMM chunks and
    ``[samples a:b]`` for the tiles of a sample-tiled SpMM."""
    layer: str
    """Name of the source layer."""
    purpose: Literal["forward", "input_grad", "weight_grad", "dense_grad"]
    """Which training kernel of the layer this op computes."""
    kernel: Literal["spmm", "sddmm", "gemm"]
    dataflow: Literal["sample", "row", "systolic"]
    transpose: bool
    n: int
    k: int
    m: int
    arrays: Mapping[str, np.ndarray] = field(repr=False)
    """Encoded weights, names in the module docstring (``stream_*``, ``bank_*`` ...)."""
    row0: int = 0
    """SDDMM: row of the chunk's first stream entry."""
    nz_begin: int = 0
    """SDDMM: the chunk covers the mask's non-zeros ``nz_begin .. nz_end-1`` (CSR order)."""
    nz_end: int = 0
    nnz: int = 0
    """Mask non-zeros this op computes with (SDDMM: the chunk's); useful MACs = ``M * nnz``."""
    resident: bool = False
    """Systolic ``forward`` / ``input_grad``: every cell keeps all of the op's tiles in its
    bank (loaded when the weights last changed), so folds stream back to back without
    shifting weights in (``docs/microarchitecture.md`` s.3.1). Modelled in ``sim`` and
    ``cost_models``; the RTL runs cold ops only."""
    unroll: int = 1
    """Row-parallel SpMM: the layer's samples folded into the rows (module docstring):
    ``n``, ``k`` are ``unroll`` times the layer's and ``m`` is 1."""
    sample0: int = 0
    """Sample-tiled SpMM (``docs/microarchitecture.md`` s.2.6): the first of the layer's
    samples this op computes; it computes :attr:`samples` of them."""
    layer_m: int = 0
    """Sample-tiled SpMM: the layer's samples, of which this op computes a tile (0: the
    op computes them all; :attr:`layer_samples`)."""

    def __post_init__(self) -> None:
        if not isinstance(self.unroll, int) or self.unroll < 1:
            raise ValueError(
                f"op {self.name!r}: unroll must be an integer >= 1, got {self.unroll!r}"
            )
        if self.unroll > 1 and (
            self.dataflow != "row" or self.m != 1 or self.n % self.unroll or self.k % self.unroll
        ):
            raise ValueError(
                f"op {self.name!r}: unroll={self.unroll} needs a row-parallel op with m=1 and "
                f"n, k divisible by it, got dataflow {self.dataflow!r} n={self.n} k={self.k} "
                f"m={self.m}"
            )
        if self.layer_m or self.sample0:
            if self.kernel != "spmm" or not (
                0 <= self.sample0 < self.sample0 + self.samples <= self.layer_m
            ):
                raise ValueError(
                    f"op {self.name!r}: a sample tile needs an SpMM whose samples "
                    f"{self.sample0}..{self.sample0 + self.samples - 1} lie within the "
                    f"layer's 0..{self.layer_m - 1}, got kernel {self.kernel!r}"
                )
        if self.resident and (self.dataflow != "systolic" or "weight_tiles" not in self.arrays):
            raise ValueError(
                f"op {self.name!r}: resident weights need a systolic forward or input_grad "
                f"op, got dataflow {self.dataflow!r} purpose {self.purpose!r}"
            )
        for attr, known in (("kernel", KERNELS), ("dataflow", DATAFLOWS), ("purpose", PURPOSES)):
            if getattr(self, attr) not in known:
                raise ValueError(
                    f"op {self.name!r}: unknown {attr} {getattr(self, attr)!r}; "
                    f"known: {', '.join(known)}"
                )
        missing = [a for a in _REQUIRED[self.dataflow] if a not in self.arrays]
        if missing:
            raise ValueError(f"op {self.name!r}: missing array {missing[0]!r}")
        frozen = {}
        for key, a in self.arrays.items():
            a = np.asarray(a)
            if a.dtype.kind not in "iub":
                raise ValueError(f"op {self.name!r}: array {key!r} must be integer, got {a.dtype}")
            a = a.astype(np.int64)
            a.flags.writeable = False
            frozen[key] = a
        object.__setattr__(self, "arrays", frozen)
        pos = frozen.get("bcast_pos")
        if pos is not None and not np.array_equal(np.sort(pos), np.arange(self.k)):
            raise ValueError(
                f"op {self.name!r}: bcast_pos must be a permutation of 0..{self.k - 1}"
            )

    # ---- derived ---------------------------------------------------------------------
    @property
    def samples(self) -> int:
        """The layer's samples: ``m * unroll``."""
        return self.m * self.unroll

    @property
    def layer_samples(self) -> int:
        """The layer's samples: :attr:`layer_m` for a sample tile, else :attr:`samples`."""
        return self.layer_m or self.samples

    def tile_of(self, x: np.ndarray) -> np.ndarray:
        """This op's samples (columns ``sample0 ..``) of a layer-orientation operand."""
        x = np.asarray(x)
        return x[:, self.sample0 : self.sample0 + self.samples] if self.layer_m else x

    @property
    def in_width(self) -> int:
        """Rows of the layer-orientation input (``X``, or ``dY`` of an input gradient)."""
        return (self.n if self.transpose else self.k) // self.unroll

    @property
    def out_width(self) -> int:
        """Rows of the layer-orientation ``dY`` (the layer's outputs)."""
        return (self.k if self.transpose else self.n) // self.unroll

    def fold_samples(self, x: np.ndarray) -> np.ndarray:
        """The op's ``K x M`` operand from its ``K/U x U`` samples (identity if ``U = 1``)."""
        x = np.asarray(x)
        return x.T.reshape(-1, 1) if self.unroll > 1 else x

    def unfold_samples(self, y: np.ndarray) -> np.ndarray:
        """The ``N/U x U`` result from the op's ``N x 1`` output (identity if ``U = 1``)."""
        y = np.asarray(y)
        return y.reshape(self.unroll, -1).T if self.unroll > 1 else y

    @property
    def stream_length(self) -> int:
        """``S``: entries of the compressed stream (sample-parallel ops)."""
        return len(self.arrays["stream_last"])

    def stream_rows(self) -> np.ndarray:
        """Row index of every stream entry (``row0`` plus the ``last`` flags before it)."""
        last = self.arrays["stream_last"]
        return self.row0 + np.concatenate(([0], np.cumsum(last)[:-1])).astype(np.int64)

    def row_splits(self) -> dict[int, list[int]]:
        """Row-parallel: for every split row, the columns at which its pieces 2.. start.

        The form :func:`hw.numerics.reference_spmm` takes as ``splits``.
        """
        a = self.arrays
        if self.dataflow != "row":
            return {}
        piece_start = np.concatenate(([0], np.flatnonzero(a["bank_end"])[:-1] + 1))
        column = np.argsort(self.bcast_pos)  # input column at each broadcast position
        out = {}
        for j, r in enumerate(a["red_row"].tolist()):
            idx = a["red_piece"][a["red_ptr"][j] : a["red_ptr"][j + 1]]
            out[r] = [int(column[a["bank_col"][piece_start[i]]]) for i in idx[1:]]
        for _, second in self.joined_pairs():
            out[int(a["piece_row"][second])] = [int(column[a["bank_col"][piece_start[second]]])]
        return out

    def joined_pairs(self) -> list[tuple[int, int]]:
        """Row-parallel: the ``(first, second)`` piece indices of every row joined at the
        drain (``piece_join``), checked against the rule the drain's adders need (s.2.4):
        one sample, the second piece on an odd PE ``2i + 1`` and the first on PE ``2i``,
        each its PE's last piece and a raw partial (``piece_split``), the row's only two
        pieces. A :class:`ValueError` names the first piece that breaks it."""
        a = self.arrays
        if self.dataflow != "row" or "piece_join" not in a or not a["piece_join"].any():
            return []
        if self.m != 1:
            raise ValueError(f"op {self.name!r}: rows are joined at the drain on one sample only")
        pe, row, ptr = a["piece_pe"], a["piece_row"], a["piece_ptr"]
        out = []
        for second in np.flatnonzero(a["piece_join"]).tolist():
            p = int(pe[second])
            first = int(ptr[p]) - 1 if p % 2 else -1
            ok = (
                p % 2 == 1
                and second == ptr[p + 1] - 1
                and first >= ptr[p - 1]
                and row[first] == row[second]
                and int((row == row[second]).sum()) == 2
                and a["piece_red"][second] < 0
                and bool(a["piece_split"][first] and a["piece_split"][second])
            )
            if not ok:
                raise ValueError(
                    f"op {self.name!r}: joined piece {second} (row {int(row[second])}, PE {p}) "
                    "must be the last piece of an odd PE 2i+1 whose row's only other piece is "
                    "the last piece of PE 2i, both raw partials (piece_split)"
                )
            out.append((first, second))
        return out

    @property
    def bcast_pos(self) -> np.ndarray:
        """Row-parallel: the broadcast position of every input column (module docstring)."""
        if self.dataflow != "row":
            raise ValueError(f"op {self.name!r}: bcast_pos is for row-parallel ops")
        pos = self.arrays.get("bcast_pos")
        return np.arange(self.k, dtype=np.int64) if pos is None else pos

    def formula_cycles(self, profile: HwProfile) -> int:
        """The op's cycles by the closed forms of :mod:`hw.timing`."""
        if self.kernel == "gemm":
            if self.resident:
                return timing.systolic_resident_cycles(self.k, self.n, self.m, profile)
            if "weight_tiles" in self.arrays:
                return timing.systolic_cycles(self.k, self.n, self.m, profile)
            return timing.systolic_cycles(self.m, self.n, self.k, profile)
        if self.kernel == "sddmm":
            return timing.sddmm_cycles(self.k, self.n, self.m, self.stream_length, profile)
        if self.dataflow == "sample":
            return timing.spmm_sample_parallel_cycles(
                self.k, self.n, self.m, self.stream_length, profile
            )
        a = self.arrays
        split_adds = int(np.sum(np.diff(a["red_ptr"]) - 1))
        max_entries = int(np.diff(a["bank_ptr"]).max())
        max_pieces = int(np.diff(a["piece_ptr"]).max())
        return timing.row_parallel_cycles(
            self.k,
            self.m,
            max_entries,
            max_pieces,
            split_adds,
            profile,
            self.walk_delay(profile),
            self.drain_delay(profile),
        )

    def walk_delay(self, profile: HwProfile) -> int:
        """Row-parallel: the cycle the bank walk starts in, during the broadcast load
        (:func:`hw.timing.row_parallel_walk_delay`; the ``rp_delay`` op register)."""
        if self.dataflow != "row":
            raise ValueError(f"op {self.name!r}: walk_delay is for row-parallel ops")
        a = self.arrays
        return timing.row_parallel_walk_delay(a["bank_col"], a["bank_ptr"], self.k, self.m, profile)

    def drain_delay(self, profile: HwProfile) -> int:
        """Row-parallel: the cycle the drain starts in, during the walk
        (:func:`hw.timing.row_parallel_drain_delay`; the ``rp_drain`` op register)."""
        a = self.arrays
        return timing.row_parallel_drain_delay(
            a["bank_end"], a["bank_ptr"], self.m, self.walk_delay(profile), profile
        )

    def fit_shape(self) -> OpShape:
        """The sizes :mod:`hw.fit` checks against a profile's memories."""
        a = self.arrays
        if self.kernel == "gemm":
            k, m = (self.k, self.m) if "weight_tiles" in a else (self.m, self.k)
            return OpShape("gemm", "systolic", self.n, k, m)
        if self.dataflow == "row":
            return OpShape(
                "spmm",
                "row",
                self.n,
                self.k,
                self.m,
                bank_entries=int(np.diff(a["bank_ptr"]).max()),
                pe_pieces=int(np.diff(a["piece_ptr"]).max()),
                pieces=len(a["piece_pe"]),
            )
        chunk = self.nz_end - self.nz_begin if self.kernel == "sddmm" else 0
        return OpShape(
            self.kernel,
            "sample",
            self.n,
            self.k,
            self.m,
            stream_length=self.stream_length,
            chunk_nnz=chunk,
        )

    def meta(self) -> dict[str, Any]:
        keys = ("name", "layer", "purpose", "kernel", "dataflow", "transpose", "n", "k", "m")
        d = {key: getattr(self, key) for key in keys}
        d.update(row0=self.row0, nz_begin=self.nz_begin, nz_end=self.nz_end, nnz=self.nnz)
        if self.resident:
            d["resident"] = True
        if self.unroll > 1:
            d["unroll"] = self.unroll
        if self.layer_m:
            d.update(sample0=self.sample0, layer_m=self.layer_m)
        d["arrays"] = sorted(self.arrays)
        return d

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Op) or self.meta() != other.meta():
            return False
        return all(np.array_equal(self.arrays[a], other.arrays[a]) for a in self.arrays)

    __hash__ = None  # type: ignore[assignment]

    # ---- memory images ---------------------------------------------------------------
    def memory_images(
        self,
        profile: HwProfile,
        x: np.ndarray | None = None,
        dy: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """Flat integer images of the op's memories (layouts in the module docstring).

        Weight memories are always present; ``act_sram`` is added when the op's integer
        inputs are given (``x``: ``K x M``; ``dy``: ``N x M`` for SDDMM).
        """
        a = self.arrays
        if self.dataflow == "sample":
            images = {
                "weight_val": a["stream_val"].copy(),
                "weight_col": a["stream_col"].copy(),
                "weight_last": a["stream_last"].copy(),
                "weight_token": a["stream_token"].copy(),
            }
        elif self.dataflow == "row":
            depth = profile.weight_bank_words
            ptr = a["bank_ptr"]
            images = {}
            for key, src in (
                ("bank_val", "bank_val"),
                ("bank_col", "bank_col"),
                ("bank_end", "bank_end"),
            ):
                img = np.zeros(profile.n_pe * depth, dtype=np.int64)
                for p in range(profile.n_pe):
                    img[p * depth : p * depth + ptr[p + 1] - ptr[p]] = a[src][ptr[p] : ptr[p + 1]]
                images[key] = img
            for key in _ROW[3:]:
                images[key] = a[key].copy()
            images["piece_pe"] = piece_words(profile, a)
            if "piece_join" in a:
                images["piece_split"] = a["piece_split"] | (a["piece_join"] << 1)
        else:
            images = {key: a[key].reshape(-1).copy() for key in ("weight_tiles",) if key in a}
            if "weight_tiles" not in a and dy is not None:
                images["weight_tiles"] = encode_tiles(np.asarray(dy), profile).reshape(-1)
        if x is not None:
            images["act_sram"] = self.act_sram_image(profile, x, dy)
        return images

    def act_sram_image(
        self, profile: HwProfile, x: np.ndarray, dy: np.ndarray | None = None
    ) -> np.ndarray:
        """The activation SRAM as the op's load stage reads it (module docstring)."""
        x = np.asarray(x, dtype=np.int64)
        p = profile.n_pe
        if self.dataflow == "systolic":
            return (x if "weight_tiles" in self.arrays else x.T).reshape(-1).copy()
        depth = profile.act_sram_words // p
        banks = np.zeros((p, depth), dtype=np.int64)
        m_idx = np.arange(self.m)
        if self.dataflow == "row":
            words = np.zeros(self.k * self.m, dtype=np.int64)
            words[(m_idx[:, None] * self.k + self.bcast_pos[None, :]).reshape(-1)] = x.T.reshape(-1)
            i = np.arange(len(words))
            banks[i % p, i // p] = words
        else:
            cols = x if self.kernel == "spmm" else np.concatenate([x, np.asarray(dy)], axis=0)
            height = cols.shape[0]
            j = np.arange(height)
            banks[(m_idx % p)[None, :], ((m_idx // p) * height)[None, :] + j[:, None]] = cols
        return banks.reshape(-1)


@dataclass(frozen=True, eq=False)
class Program:
    """A profile, the ordered ops to run on it, and the source layers' metadata."""

    profile: HwProfile
    ops: tuple[Op, ...]
    layers: tuple[Mapping[str, Any], ...] = ()
    """``SparseLayer.meta()`` of every compiled layer (plus its ``nnz``)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "ops", tuple(self.ops))
        object.__setattr__(self, "layers", tuple(dict(m) for m in self.layers))
        names = [op.name for op in self.ops]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"program: duplicate op name {sorted(dup)[0]!r}")

    def op(self, name: str) -> Op:
        """The op called ``name``; unknown names list the known ones."""
        for op in self.ops:
            if op.name == name:
                return op
        raise KeyError(f"unknown op {name!r}; known: {', '.join(o.name for o in self.ops)}")

    def ops_of(self, layer: str, purpose: str | None = None) -> list[Op]:
        """Ops of ``layer`` (optionally of one purpose), in program order."""
        return [o for o in self.ops if o.layer == layer and purpose in (None, o.purpose)]

    def parts(self, layer: str) -> list[tuple[str, int, int]]:
        """The parts ``(name, first row, end row)`` of a stacked layer
        (:mod:`hw.compiler.stack`); empty for a layer compiled on its own."""
        for meta in self.layers:
            if meta.get("name") == layer:
                return [(str(n), int(a), int(b)) for n, a, b in meta.get("parts", ())]
        return []

    def blocks(self, layer: str) -> list[dict[str, Any]]:
        """The blocks of a merged acting op (:class:`hw.compiler.stack.ActingOp`): each
        ``{"name", "parts", "samples", "rows", "cols"}``; empty for any other layer."""
        for meta in self.layers:
            if meta.get("name") == layer:
                return [dict(b) for b in meta.get("blocks", ())]
        return []

    def block_of(self, name: str) -> tuple[str, dict[str, Any], tuple[int, int] | None] | None:
        """``(merged op layer, block, part rows or None)`` of a block or part name."""
        for meta in self.layers:
            for block in meta.get("blocks", ()):
                if block["name"] == name:
                    return str(meta["name"]), dict(block), None
                for n, a, b in block["parts"]:
                    if n == name:
                        return str(meta["name"]), dict(block), (int(a), int(b))
        return None

    def stack_of(self, part: str) -> tuple[str, int, int] | None:
        """``(stacked layer, first row, end row)`` of a layer compiled as part of a stack."""
        for meta in self.layers:
            for n, a, b in meta.get("parts", ()):
                if n == part:
                    return str(meta["name"]), int(a), int(b)
        return None

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Program)
            and self.profile == other.profile
            and self.layers == other.layers
            and len(self.ops) == len(other.ops)
            and all(a == b for a, b in zip(self.ops, other.ops, strict=True))
        )

    __hash__ = None  # type: ignore[assignment]

    def save(self, path: str | Path) -> Path:
        """Write one ``.npz``: op arrays as ``op<i>/<name>`` plus a JSON ``meta`` entry."""
        path = Path(path)
        arrays: dict[str, np.ndarray] = {}
        for i, op in enumerate(self.ops):
            for key, a in op.arrays.items():
                arrays[f"op{i}/{key}"] = a
        meta = {
            "format": FORMAT_VERSION,
            "profile": json.loads(self.profile.to_json()),
            "ops": [op.meta() for op in self.ops],
            "layers": list(self.layers),
        }
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Program:
        """Read a program written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"program file {str(path)!r} does not exist")
        with np.load(path, allow_pickle=False) as z:  # never unpickle
            meta = json.loads(bytes(z["meta"]).decode())
            if meta.get("format") != FORMAT_VERSION:
                raise ValueError(
                    f"program file {str(path)!r}: format {meta.get('format')!r} is not "
                    f"{FORMAT_VERSION}"
                )
            ops = []
            for i, om in enumerate(meta["ops"]):
                om = dict(om)
                keys = om.pop("arrays")
                ops.append(Op(**om, arrays={key: z[f"op{i}/{key}"] for key in keys}))
        profile = HwProfile.from_dict(meta["profile"], source=f"program file {str(path)!r}")
        return cls(profile=profile, ops=tuple(ops), layers=tuple(meta["layers"]))


def piece_words(profile: HwProfile, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    """The reduction unit's ``piece_pe`` memory of a row-parallel op: per piece its PE,
    its slot in the PE and the PE's piece count, packed as :func:`hw.fit.piece_word_fields`."""
    pe = np.asarray(arrays["piece_pe"], dtype=np.int64)
    ptr = np.asarray(arrays["piece_ptr"], dtype=np.int64)
    values = (pe, np.arange(len(pe)) - ptr[pe], np.diff(ptr)[pe])
    word, shift = np.zeros(len(pe), dtype=np.int64), 0
    for (name, bits), v in zip(piece_word_fields(profile), values, strict=True):
        if len(v) and (v.min() < 0 or v.max() >= 1 << bits):
            worst = int(v.max())
            raise ValueError(f"piece table: a piece's {name} {worst} needs more than {bits} bits")
        word |= v << shift
        shift += bits
    return word


def concat_programs(programs: Sequence[Program]) -> Program:
    """Join programs compiled for the same profile (ops and layers in order)."""
    if not programs:
        raise ValueError("concat_programs: no programs given")
    prof = programs[0].profile
    for p in programs[1:]:
        if p.profile != prof:
            raise ValueError(
                f"concat_programs: profile {p.profile.name!r} differs from {prof.name!r}"
            )
    layers: list[Mapping[str, Any]] = []
    for p in programs:
        layers += [m for m in p.layers if m not in layers]
    return Program(prof, tuple(o for p in programs for o in p.ops), tuple(layers))


def encode_tiles(w: np.ndarray, profile: HwProfile) -> np.ndarray:
    """Dense weight tiles ``(F, R, C)``: fold ``nf * KF + kf``, cell ``(i, j)`` =
    ``W[nf*C + j, kf*R + i]`` (zero padded)."""
    n, k = w.shape
    r, c = profile.rows, profile.cols
    kf, nf = math.ceil(k / r), math.ceil(n / c)
    padded = np.zeros((nf * c, kf * r), dtype=np.int64)
    padded[:n, :k] = w
    # (nf, C, kf, R) -> (nf, kf, R, C)
    return padded.reshape(nf, c, kf, r).transpose(0, 2, 3, 1).reshape(nf * kf, r, c)
