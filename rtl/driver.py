"""cocotb driver and monitor of the host interface (``hw.rtl.top``), plus op loaders.

All stimulus is applied at falling clock edges and all outputs are sampled there, so
each value is stable around the rising edge that samples it. :meth:`Host.run` counts
cycles exactly as ``docs/microarchitecture.md`` defines them: the rising edges after the
one that samples ``start`` up to and including the first that samples ``done`` high.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

from hw.profiles import HwProfile
from hw.rtl import MEMORY_IDS, REGISTERS, host_data_bits

__all__ = ["Host", "Scoreboard", "load_profile_from_env", "to_signed"]


def load_profile_from_env() -> HwProfile:
    """The profile the harness wrote next to the Verilog (``MAST_PROFILE_JSON``)."""
    with open(os.environ["MAST_PROFILE_JSON"]) as fh:
        return HwProfile.from_dict(json.load(fh), source="profile.json")


def to_signed(values: Iterable[int], bits: int) -> np.ndarray:
    """Raw ``bits``-bit words (as read on ``host__rdata``) to signed integers."""
    a = np.array([int(v) & ((1 << bits) - 1) for v in values], dtype=object)
    a = np.where(a >= (1 << (bits - 1)), a - (1 << bits), a)
    return a.astype(np.int64)


async def reset_dut(dut, inputs) -> None:
    """Start the clock, zero ``inputs`` and hold ``rst`` for two cycles; returns at the
    falling edge after reset (stimulus is applied and outputs sampled at falling edges)."""
    Clock(dut.clk, 10, unit="ns").start()
    for sig in inputs:
        sig.value = 0
    dut.rst.value = 1
    for _ in range(2):
        await FallingEdge(dut.clk)
    dut.rst.value = 0
    await FallingEdge(dut.clk)


class Host:
    """Bus-functional model of the host port of a ``mast_accel_*`` top level."""

    def __init__(self, dut, profile: HwProfile):
        self.dut = dut
        self.profile = profile
        self.clk = dut.clk

    async def reset(self) -> None:
        """Start the clock and hold ``rst`` for two cycles."""
        d = self.dut
        await reset_dut(
            d, (d.host__we, d.host__re, d.start, d.host__sel, d.host__addr, d.host__wdata)
        )

    async def write(
        self, memory: str, words: Mapping[int, int] | Iterable[int], base: int = 0
    ) -> None:
        """Write ``words`` (address -> signed value, or a sequence from ``base``).

        Values go out two's complement at the port's width; the memory keeps its low bits.
        """
        d = self.dut
        items = words.items() if isinstance(words, Mapping) else enumerate(words, base)
        d.host__sel.value = MEMORY_IDS[memory]
        d.host__we.value = 1
        mask = (1 << host_data_bits(self.profile)) - 1
        for addr, value in items:
            d.host__addr.value = int(addr)
            d.host__wdata.value = int(value) & mask
            await FallingEdge(self.clk)
        d.host__we.value = 0

    async def read(self, memory: str, addrs: Iterable[int], bits: int) -> np.ndarray:
        """Read ``addrs`` of ``memory``; signed values of a ``bits``-bit format."""
        d = self.dut
        d.host__sel.value = MEMORY_IDS[memory]
        d.host__re.value = 1
        out = []
        for addr in addrs:
            d.host__addr.value = int(addr)
            await FallingEdge(self.clk)
            out.append(int(d.host__rdata.value))
        d.host__re.value = 0
        return to_signed(out, bits)

    async def set_registers(self, regs: Mapping[str, int]) -> None:
        """Write op registers by name (:data:`hw.rtl.REGISTERS`)."""
        await self.write("op", {REGISTERS[k]: v for k, v in regs.items()})

    async def run(self, limit: int) -> int:
        """Pulse ``start`` and return the op's cycle count (``-1`` past ``limit`` cycles)."""
        d = self.dut
        d.start.value = 1
        await FallingEdge(self.clk)
        d.start.value = 0
        for cycles in range(1, limit + 1):
            if int(d.done.value):
                await FallingEdge(self.clk)
                return cycles
            await FallingEdge(self.clk)
        return -1


@dataclass
class Scoreboard:
    """Counts programs and mismatches against the golden model; logs the first few."""

    log: object
    checked: int = 0
    mismatches: int = 0
    failures: list[str] = field(default_factory=list)

    def compare(
        self,
        what: str,
        got: np.ndarray,
        want: np.ndarray,
        got_cycles: int | None = None,
        want_cycles: int | None = None,
    ) -> bool:
        """Compare outputs bit for bit and cycles exactly; return whether both match.

        Cycle counts left out (``None``) are not compared.
        """
        self.checked += 1
        got, want = np.asarray(got), np.asarray(want)
        ok_out = got.shape == want.shape and np.array_equal(got, want)
        ok = ok_out and got_cycles == want_cycles
        if not ok:
            self.mismatches += 1
            msg = f"MISMATCH {what}"
            if got_cycles is not None or want_cycles is not None:
                msg += f": cycles rtl={got_cycles} sim={want_cycles}"
            if not ok_out:
                bad = np.argwhere(got != want) if got.shape == want.shape else []
                msg += f"; outputs differ at {len(bad)} of {want.size} words"
                if len(bad):
                    i = tuple(bad[0])
                    msg += f", first {i}: rtl={got[i]} sim={want[i]}"
                else:
                    msg += f", shapes rtl={got.shape} sim={want.shape}"
            self.failures.append(msg)
            if len(self.failures) <= 5:
                self.log.error(msg)
                if os.environ.get("MAST_VERBOSE"):
                    self.log.error("rtl:\n%s\nsim:\n%s", got, want)
        return ok
