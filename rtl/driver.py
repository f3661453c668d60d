"""cocotb back-end of the host-port protocol (:mod:`rtl.hostport`), and the scoreboard.

:class:`Host` runs the steps of :class:`~rtl.hostport.HostPort` on a cocotb ``dut``: pins
are the ``dut``'s signals, and each step awaits the next falling edge of the clock that
:meth:`Host.reset` starts (a step of several periods lets the simulator run them free).
What is written, in which order, and how cycles are counted is the protocol's, shared with
the pyverilator back-end (:class:`rtl.cosim.CosimModel`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge, Timer

from hw.profiles import HwProfile

from .hostport import HostPort, OpRun, Steps, reset_steps

__all__ = ["Host", "Scoreboard", "drive", "load_profile_from_env", "reset_dut"]

T = TypeVar("T")

PERIOD_NS = 10
"""Clock period of the testbenches."""


def load_profile_from_env() -> HwProfile:
    """The profile the harness wrote next to the Verilog (``MAST_PROFILE_JSON``)."""
    with open(os.environ["MAST_PROFILE_JSON"]) as fh:
        return HwProfile.from_dict(json.load(fh), source="profile.json")


class _Pins:
    """:class:`~rtl.hostport.Pins` of a cocotb ``dut`` (signals looked up on first use)."""

    def __init__(self, dut):
        self.dut = dut
        self._handles: dict[str, object] = {}

    def _handle(self, name: str):
        h = self._handles.get(name)
        if h is None:
            h = self._handles[name] = getattr(self.dut, name)
        return h

    def set(self, name: str, value: int) -> None:
        self._handle(name).value = value

    def get(self, name: str) -> int:
        return int(self._handle(name).value)


async def drive(clk, steps: Steps[T]) -> T:
    """Run protocol ``steps``, each period ending at a falling edge of ``clk``."""
    while True:
        try:
            periods = next(steps)
        except StopIteration as stop:
            return stop.value
        if periods is not None and periods > 1:
            # Free-running: the timer ends at a falling edge (which one of the edges at
            # that instant it precedes is the simulator's choice), so align on the next
            # rising edge before the falling edge that ends the step.
            await Timer(PERIOD_NS * (periods - 1), "ns")
            await RisingEdge(clk)
        await FallingEdge(clk)


async def reset_dut(dut, inputs: Iterable[str]) -> None:
    """Start the clock, zero the ``inputs`` (pin names) and hold ``rst`` for two cycles
    (:func:`rtl.hostport.reset_steps`); returns at the falling edge after reset."""
    Clock(dut.clk, PERIOD_NS, unit="ns").start()
    await drive(dut.clk, reset_steps(_Pins(dut), inputs))


class Host:
    """The host port of a ``mast_accel_*`` top level (or of a block with its host pins)."""

    def __init__(self, dut, profile: HwProfile):
        self.dut = dut
        self.port = HostPort(_Pins(dut), profile)

    async def reset(self) -> None:
        """Start the clock and reset the top (:meth:`~rtl.hostport.HostPort.reset`)."""
        Clock(self.dut.clk, PERIOD_NS, unit="ns").start()
        await drive(self.dut.clk, self.port.reset())

    async def read(self, memory: str, addresses: Sequence[int], bits: int) -> np.ndarray:
        """:meth:`~rtl.hostport.HostPort.read`."""
        return await drive(self.dut.clk, self.port.read(memory, addresses, bits))

    async def write(self, memory: str, addresses: Sequence[int], words: Sequence[int]) -> None:
        """:meth:`~rtl.hostport.HostPort.write`."""
        await drive(self.dut.clk, self.port.write(memory, addresses, words))

    async def set_registers(self, registers: Mapping[str, int]) -> None:
        """:meth:`~rtl.hostport.HostPort.set_registers`."""
        await drive(self.dut.clk, self.port.set_registers(registers))

    async def load(self, load) -> int:
        """:meth:`~rtl.hostport.HostPort.load` (an :class:`hw.export.OpLoad`)."""
        return await drive(self.dut.clk, self.port.load(load))

    async def run(
        self, limit: int, *, skip: int = 0, watch: Callable[[], None] | None = None
    ) -> int:
        """:meth:`~rtl.hostport.HostPort.run`."""
        return await drive(self.dut.clk, self.port.run(limit, skip=skip, watch=watch))

    async def run_op(self, load) -> OpRun:
        """:meth:`~rtl.hostport.HostPort.run_op` (an :class:`hw.export.OpLoad`)."""
        return await drive(self.dut.clk, self.port.run_op(load))


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
