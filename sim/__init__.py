"""Bit-exact numerics and cycle-level model of the accelerator: the RTL's golden model.

``simulate(program, inputs) -> SimResult`` runs a :class:`hw.program.Program`; the
numerics live in :mod:`hw.numerics`; ``sim/README.md`` states how the model reads
``docs/microarchitecture.md`` where that page leaves a choice open.
"""

from sim.engine import layer_output, op_inputs, simulate, simulate_op
from sim.result import MemoryAccesses, OpResult, PhaseCycles, SimResult

__all__ = [
    "MemoryAccesses",
    "OpResult",
    "PhaseCycles",
    "SimResult",
    "layer_output",
    "op_inputs",
    "simulate",
    "simulate_op",
]
