"""Multiplexers over banked memories: one-hot selects and registered two-level trees.

A bank's word that fans in from ``P`` banks spread over the die (the broadcast lanes'
activation words, the reduction's partials, the sample-parallel weight stream) crosses the
chip twice when a ``P``-way multiplexer picks it from a register per bank. With more than
one group of :data:`BANK_GROUP` banks, :func:`group_words` picks within each group in the
cycle the words leave the SRAMs (the bank within the group from a register) and
registers one candidate per group; the caller selects the group the next cycle. That is
the cycle timing of the register per bank it replaces, with a quarter of the wires into
the last multiplexer.
"""

from __future__ import annotations

from collections.abc import Sequence

from amaranth.hdl import Module, Signal, Value

__all__ = ["BANK_GROUP", "bank_groups", "group_words", "pick", "two_level"]

BANK_GROUP = 4
"""Banks per first-level multiplexer of a two-level tree: four, one row of PEs in the
LFE5U-85F floorplan (:mod:`hw.floorplan`)."""


def bank_groups(n_banks: int) -> list[range]:
    """The banks of each group of :data:`BANK_GROUP`, in order."""
    return [range(lo, min(lo + BANK_GROUP, n_banks)) for lo in range(0, n_banks, BANK_GROUP)]


def two_level(n_banks: int) -> bool:
    """Whether ``n_banks`` make more than one group, so that a fan-in from them goes
    through a two-level tree (with ``PD >= 4``; one group keeps a register per bank)."""
    return len(bank_groups(n_banks)) > 1


def pick(m: Module, sel: Value, words: Sequence[Value], name: str, shape=None) -> Signal:
    """``words[sel]`` as a one-hot multiplexer (a chain of ifs would be deep)."""
    out = Signal(shape or words[0].shape(), name=name)
    with m.Switch(sel):
        for i, word in enumerate(words):
            with m.Case(i):
                m.d.comb += out.eq(word)
    return out


def group_words(
    m: Module, local: Value, words: Sequence[Value], name: str
) -> tuple[list[Signal], list[Signal]]:
    """The first level of a tree: per group, ``words[group_start + local]`` and its
    register (set this cycle, read the next). Returns (selected words, registers)."""
    picked, regs = [], []
    for g, banks in enumerate(bank_groups(len(words))):
        word = pick(m, local, [words[q] for q in banks], f"{name}_grp{g}")
        word_q = Signal.like(word, name=f"{name}_grp{g}_q")
        m.d.sync += word_q.eq(word)
        picked.append(word)
        regs.append(word_q)
    return picked, regs
