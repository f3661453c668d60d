"""Memory-fit rules of the accelerator: what one op needs of a profile's memories.

Defined once, in the hardware core (``docs/microarchitecture.md`` section 5). The
compiler checks every op it emits (:mod:`hw.compiler`), the RTL loader checks every op
it is given (:mod:`hw.rtl.fit`) and the cost model cuts a kernel into ops until each one
fits (:mod:`cost_models.kernels`), all through :func:`fit_limits`.

An op's sizes are an :class:`OpShape`. ``n``, ``k``, ``m`` are the op's matrix sizes as
the datapath sees them: for SpMM / SDDMM ``W`` is ``n x k`` over ``m`` samples; for a
systolic GEMM the stationary matrix is ``n x k`` and the streamed one ``k x m`` (a weight
gradient keeps ``dY`` stationary, so there ``k`` is the sample count and ``m`` the
layer's input width).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hw.profiles import HwProfile
from hw.timing import tile_count

__all__ = [
    "COUNT_BITS",
    "Limit",
    "OpShape",
    "ProgramFitError",
    "check_fit",
    "fit_limits",
    "fits",
    "out_rows",
    "piece_capacity",
    "piece_word_fields",
]

COUNT_BITS = 24
"""Width of the controller's size and address counters (``M < 2**24``)."""


class ProgramFitError(ValueError):
    """An op does not fit the profile's memories; the message names field and values."""


@dataclass(frozen=True)
class OpShape:
    """The sizes of one accelerator op that its memories must hold."""

    kernel: Literal["spmm", "sddmm", "gemm"]
    """``spmm`` (``Y = W X``), ``sddmm`` (one chunk of ``dW = (dY X^T) .* mask``) or ``gemm``."""
    dataflow: Literal["sample", "row", "systolic"]
    """How the op runs: sample-parallel, row-parallel or on the systolic array."""
    n: int
    """Rows of ``W`` (systolic: of the stationary matrix)."""
    k: int
    """Columns of ``W`` (systolic: the reduction dimension)."""
    m: int
    """Samples (systolic: columns of the streamed matrix)."""
    stream_length: int = 0
    """Sample-parallel: entries ``S`` of the (chunk's) compressed weight stream."""
    chunk_nnz: int = 0
    """SDDMM: non-zeros of the chunk (its gradient-buffer words)."""
    bank_entries: int = 0
    """Row-parallel: the largest PE's weight-bank entries ``max n_p``."""
    pe_pieces: int = 0
    """Row-parallel: the largest PE's row pieces ``max q_p``."""
    pieces: int = 0
    """Row-parallel: row pieces over all PEs."""


@dataclass(frozen=True)
class Limit:
    """One rule: ``value`` (named ``what``) must not exceed ``limit`` (named ``field``)."""

    what: str
    value: int
    field: str
    limit: int

    @property
    def ok(self) -> bool:
        return self.value <= self.limit


def out_rows(profile: HwProfile) -> int:
    """Systolic output rows of ``cols`` words: ``ceil(N / cols) * M`` must fit."""
    return -(-profile.act_sram_words // profile.cols)


def piece_capacity(profile: HwProfile) -> int:
    """Row pieces a row-parallel op may have: ``max_pieces``, or ``n_pe * out_buf_words``
    when the profile leaves it 0."""
    if profile.max_pieces:
        return profile.max_pieces
    return profile.n_pe * profile.out_buf_words


def piece_word_fields(profile: HwProfile) -> tuple[tuple[str, int], ...]:
    """Bit fields, low bits first, of a word of the reduction unit's ``piece_pe`` memory
    (one word per row piece): the piece's PE, its slot in that PE and that PE's piece
    count ``q``. ``max q_p*M <= out_buf_words`` (:func:`fit_limits`) bounds the last two,
    and with them the unit addresses a partial at ``m * q + slot`` of its PE's output-SRAM
    bank from the word alone (``docs/microarchitecture.md`` s.2.4)."""

    def bits(v: int) -> int:
        return max(1, int(v).bit_length())

    return (
        ("pe", bits(profile.n_pe - 1)),
        ("slot", bits(profile.out_buf_words - 1)),
        ("q", bits(profile.out_buf_words)),
    )


def _sample(p: HwProfile, s: OpShape) -> list[Limit]:
    per_pe = p.act_sram_words // p.n_pe
    if s.kernel == "sddmm":  # X in the activation buffer, dY in the output buffer
        rules = [
            Limit("K", s.k, "act_buf_words", p.act_buf_words),
            Limit("N", s.n, "out_buf_words", p.out_buf_words),
            Limit("ceil(M/P)*(K+N)", tile_count(s.m, p) * (s.k + s.n), "act_sram_words/P", per_pe),
        ]
    else:
        rules = [
            Limit("K", s.k, "act_buf_words", p.act_buf_words),
            Limit("N", s.n, "out_buf_words", p.out_buf_words),
            Limit(
                "ceil(M/P)*max(K,N)",
                tile_count(s.m, p) * max(s.k, s.n),
                "act_sram_words/P",
                per_pe,
            ),
        ]
    rules += [
        Limit("S", s.stream_length, "weight_sram_words", p.weight_sram_words),
        Limit("K", s.k, "2**index_bits", 1 << p.index_bits),
    ]
    if s.kernel == "sddmm":
        rules.append(Limit("chunk non-zeros", s.chunk_nnz, "grad_buf_words", p.grad_buf_words))
    return rules


def _row(p: HwProfile, s: OpShape) -> list[Limit]:
    per_pe = p.act_sram_words // p.n_pe
    return [
        Limit("K*M", s.k * s.m, "act_buf_words", p.act_buf_words),
        Limit("max n_p", s.bank_entries, "weight_bank_words", p.weight_bank_words),
        Limit("max q_p*M", s.pe_pieces * s.m, "out_buf_words", p.out_buf_words),
        Limit("ceil(K*M/P)", -(-s.k * s.m // p.n_pe), "act_sram_words/P", per_pe),
        Limit("K", s.k, "2**index_bits", 1 << p.index_bits),
        Limit(
            "pieces",
            s.pieces,
            "max_pieces" if p.max_pieces else "n_pe*out_buf_words",
            piece_capacity(p),
        ),
    ]


def _systolic(p: HwProfile, s: OpShape) -> list[Limit]:
    tiles = -(-s.k // p.rows) * -(-s.n // p.cols) * p.rows * p.cols
    return [
        Limit("weight tile words", tiles, "weight_sram_words", p.weight_sram_words),
        Limit("K*M", s.k * s.m, "act_sram_words", p.act_sram_words),
        # outputs are written a fold of ``cols`` words wide: Y[nf*C + j, m] at (nf*M + m)*C + j
        Limit("ceil(N/cols)*M", -(-s.n // p.cols) * s.m, "act_sram_words/cols", out_rows(p)),
    ]


def fit_limits(profile: HwProfile, shape: OpShape) -> list[Limit]:
    """Every rule ``shape`` must meet on ``profile``, in the order they are reported.

    Raises :class:`ProgramFitError` when the op's dataflow does not run on the profile's
    kind (systolic ops on systolic profiles, sample / row ops on sparse ones).
    """
    if (shape.dataflow == "systolic") == profile.is_sparse:
        raise ProgramFitError(
            f"dataflow {shape.dataflow!r} does not run on profile {profile.name!r} "
            f"of kind {profile.kind!r}"
        )
    rules = {"sample": _sample, "row": _row, "systolic": _systolic}[shape.dataflow]
    m = shape.m if shape.dataflow != "systolic" else max(shape.k, shape.m)
    counter = Limit("M", m, "2**24-1 (counter width)", (1 << COUNT_BITS) - 1)
    return [*rules(profile, shape), counter]


def fits(profile: HwProfile, shape: OpShape) -> bool:
    """Whether ``shape`` meets every rule of :func:`fit_limits` on ``profile``."""
    return all(rule.ok for rule in fit_limits(profile, shape))


def check_fit(profile: HwProfile, shape: OpShape, where: str) -> None:
    """Raise :class:`ProgramFitError` naming the first rule ``shape`` breaks.

    ``where`` names the op in the message (``"layer 'agent.fc1' (forward)"``).
    """
    try:
        rules = fit_limits(profile, shape)
    except ProgramFitError as e:
        raise ProgramFitError(f"{where}: {e}") from None
    for r in rules:
        if not r.ok:
            raise ProgramFitError(
                f"{where}: {r.what}={r.value} exceeds {r.field}={r.limit} of profile "
                f"{profile.name!r}"
            )
