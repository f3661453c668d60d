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

from hw.timing import BANK_GROUP, bank_groups, two_level

__all__ = [
    "BANK_GROUP",
    "KEPT",
    "SYNTH_KEEP_COPIES",
    "bank_groups",
    "group_words",
    "kept_copy",
    "pick",
    "two_level",
]

KEPT = "mast_kept"
"""Attribute of a register that synthesis must not merge with an identical one
(:func:`kept_copy`; ``hw.synth`` marks the flip-flops behind it ``keep``)."""

SYNTH_KEEP_COPIES = "\n".join(
    [
        "proc",
        f"select -set kept a:{KEPT} %ci1 t:$*dff* %i",
        "setattr -set keep 1 @kept",
    ]
)
"""Yosys commands, run before the family's synthesis command, that mark the flip-flops
driving a :data:`KEPT` wire ``keep`` (a ``keep`` on the wire alone does not stop
``opt_merge`` from merging identical flip-flops)."""


def kept_copy(m: Module, value: Value, name: str) -> Signal:
    """A register of ``value`` (set this cycle, read the next) that synthesis keeps apart
    from identical copies: one per group of PEs is placed by its group, so a signal that
    reaches every PE crosses the die once per group, register to register, instead of
    fanning out from one place (Yosys would otherwise merge the copies back into one).
    The register has ``value``'s shape, and a kept bit is never removed, used or not: an
    expression wider than its use (a shift, a sum) keeps its unused bits."""
    reg = Signal.like(value, name=name, attrs={KEPT: 1})
    m.d.sync += reg.eq(value)
    return reg


def pick(m: Module, sel: Value, words: Sequence[Value], name: str, shape=None) -> Signal:
    """``words[sel]`` as a one-hot multiplexer (a chain of ifs would be deep)."""
    out = Signal(shape or words[0].shape(), name=name)
    with m.Switch(sel):
        for i, word in enumerate(words):
            with m.Case(i):
                m.d.comb += out.eq(word)
    return out


def group_words(
    m: Module, local: Value | Sequence[Value], words: Sequence[Value], name: str
) -> tuple[list[Signal], list[Signal]]:
    """The first level of a tree: per group, ``words[group_start + local]`` and its
    register (set this cycle, read the next). Returns (selected words, registers).
    ``local`` is one select for every group or a sequence of one select per group."""
    picked, regs = [], []
    for g, banks in enumerate(bank_groups(len(words))):
        sel = local[g] if isinstance(local, Sequence) else local
        word = pick(m, sel, [words[q] for q in banks], f"{name}_grp{g}")
        word_q = Signal.like(word, name=f"{name}_grp{g}_q")
        m.d.sync += word_q.eq(word)
        picked.append(word)
        regs.append(word_q)
    return picked, regs
