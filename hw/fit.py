"""Memory-fit rules of the accelerator: what an op needs of a profile's memories.

Defined once, in the hardware core, for the compiler, the RTL loader and the cost model.
"""

from __future__ import annotations

__all__ = ["ProgramFitError"]


class ProgramFitError(ValueError):
    """An op does not fit the profile's memories; the message names field and values."""
