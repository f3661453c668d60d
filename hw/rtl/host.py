"""The host port shared by every memory and the op-register file of a top level.

The host writes one word per cycle or reads one word per cycle (data one cycle after
the request); it may only use the port while the accelerator is not ``busy``. A memory's
read address follows the host's address while the accelerator is idle, so the word
returned after a cycle that writes is undefined: a read is a cycle with ``re`` and
without ``we``.

Read-during-write: no synchronous read port of the accelerator uses a word read in the
cycle that word is written. During an op, every write precedes every read of the same
word by at least a cycle (the load before the walk, the walk before the drain, the drain
before the reduction, a gradient accumulate before the next tile's, a systolic partial
sum before the next fold's; ``docs/microarchitecture.md``); outside one, only the host
writes, under the rule above. So synthesis may give such a collision any value:
:data:`SYNTH_READ_COLLISIONS` says so, and block RAM needs no soft logic to emulate
the old word on a collision. Elaborated under :func:`read_collisions` ``("new")``, every
synchronous read port returns the new word on a collision instead of the old one
(:func:`collision_ports`); the RTL must then still match ``sim`` exactly (a test does
so), which it could not if any collided word were used.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterable, Iterator, Mapping

from amaranth.hdl import Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = [
    "COLLISIONS",
    "HOST_ADDR_BITS",
    "SYNTH_READ_COLLISIONS",
    "collision_ports",
    "read_collisions",
    "HostSignature",
    "bank_split",
    "forward_host",
    "require_memories",
]

SYNTH_READ_COLLISIONS = "setparam -set COLLISION_X_MASK 1 t:$memrd_v2 r:CLK_ENABLE=1 %i"
"""Yosys command run on the design before synthesis (:func:`hw.synth.synthesize`): every
synchronous read port returns an undefined word when the word is written in the same
cycle (Amaranth's default is the old word, which block RAM gives only on its own port;
Yosys emulates it elsewhere with a delayed write, an address comparison and a bypass
multiplexer behind the RAM's output)."""

COLLISIONS: tuple[str, ...] = ("old", "new")
"""What a synchronous read returns on a same-cycle write of its word: the old word
(Amaranth's default, the RTL as generated) or the new one (the other outcome the synthesised
block RAM may give)."""

_collisions: contextvars.ContextVar[str] = contextvars.ContextVar("collisions", default="old")


@contextlib.contextmanager
def read_collisions(mode: str) -> Iterator[None]:
    """Elaborate the designs converted inside with read collisions returning ``mode``'s word
    (:data:`COLLISIONS`); the conversion, which elaborates, must happen inside."""
    if mode not in COLLISIONS:
        raise ValueError(f"read collisions {mode!r}: expected one of {', '.join(COLLISIONS)}")
    token = _collisions.set(mode)
    try:
        yield
    finally:
        _collisions.reset(token)


def collision_ports(*writes) -> tuple:
    """``transparent_for`` of a synchronous read port of a memory written by ``writes``."""
    return tuple(writes) if _collisions.get() == "new" else ()


HOST_ADDR_BITS = 32
"""Width of the host address (a flat word address inside the selected memory)."""


class HostSignature(wiring.Signature):
    """The port as seen by the host (``Out`` = driven by the host); components take ``In(...)``.

    Parameters
    ----------
    sel_bits:
        Width of the memory select.
    data_bits:
        Width of ``wdata`` / ``rdata`` (the widest memory word, at least 32 bits).
    """

    def __init__(self, sel_bits: int, data_bits: int):
        if sel_bits < 1 or data_bits < 32:
            raise ValueError(
                f"host port needs sel_bits >= 1 and data_bits >= 32, got {sel_bits}, {data_bits}"
            )
        super().__init__(
            {
                "sel": Out(sel_bits),
                "addr": Out(HOST_ADDR_BITS),
                "wdata": Out(data_bits),
                "we": Out(1),
                "re": Out(1),
                "rdata": In(data_bits),
            }
        )


def bank_split(m: Module, addr: Value, depth: int, n_banks: int, name: str):
    """Split a flat bank-major host address into ``(bank, offset)`` signals."""
    bank = Signal(range(max(2, n_banks)), name=f"{name}_bank")
    offset = Signal(range(max(2, depth)), name=f"{name}_offset")
    m.d.comb += [bank.eq(addr // depth), offset.eq(addr % depth)]
    return bank, offset


def require_memories(owner: str, host_ids: Mapping[str, int], names: Iterable[str]) -> None:
    """Raise ``ValueError`` naming the first of ``names`` that ``host_ids`` lacks."""
    missing = [n for n in names if n not in host_ids]
    if missing:
        raise ValueError(f"{owner}: host_ids lacks memory {missing[0]!r}")


def forward_host(m: Module, src, *dsts) -> None:
    """Drive every host-driven member of the ports ``dsts`` from the port ``src``.

    ``src`` and ``dsts`` are host ports (:class:`HostSignature` interfaces) of one shape;
    the members are the signature's host-driven ones (all but ``rdata``), so a member added
    to the signature is forwarded everywhere.
    """
    sig = HostSignature(len(src.sel), len(src.wdata))
    names = [name for name, member in sig.members.items() if member.flow == wiring.Out]
    for dst in dsts:
        m.d.comb += [getattr(dst, name).eq(getattr(src, name)) for name in names]
