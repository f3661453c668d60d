"""The host port shared by every memory and the op-register file of a top level.

The host writes one word per cycle and reads one word per cycle (data one cycle after
the request); it may only use the port while the accelerator is not ``busy``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from amaranth.hdl import Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["HOST_ADDR_BITS", "HostSignature", "bank_split", "forward_host", "require_memories"]

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
