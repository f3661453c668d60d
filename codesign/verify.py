"""``--hw-verify``: replay one compiled layer of each mask snapshot on the Verilated RTL.

At every snapshot :class:`RtlCheck` compiles the acting forward pass of one agent layer
(``M`` = agents per environment step, the dataflow the RTL implements; the layers are
taken in turn, one per snapshot, skipping layers the profile's memories cannot hold),
runs it on :mod:`sim` and through the pyverilator model of the profile's top level
(:func:`rtl.cosim.check_against_sim`, built once per run and cached on disk under
``build/pyverilator``), and records the layer, both cycle counts and whether outputs and
cycles agree. Inputs are seeded uniform activations in ``[-1, 1)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hw.profiles import HwProfile
from mast.sparsity.layer import SparseLayer

__all__ = ["RtlCheck", "VerifyResult"]


@dataclass(frozen=True)
class VerifyResult:
    """One RTL-versus-``sim`` check."""

    layer: str
    """Layer replayed."""
    sim_cycles: int
    """Cycles ``sim`` counts for the layer's ops."""
    rtl_cycles: int
    """Cycles the Verilated RTL took (-1 when it failed before finishing)."""
    ok: bool
    """Outputs equal bit for bit and cycles equal."""
    error: str = ""
    """The mismatch message when ``ok`` is false."""

    def as_row(self) -> dict[str, object]:
        return {
            "verify_layer": self.layer,
            "verify_sim_cycles": self.sim_cycles,
            "verify_rtl_cycles": self.rtl_cycles,
            "verify_ok": int(self.ok),
        }

    def raise_if_failed(self) -> None:
        if not self.ok:
            from rtl.cosim import CosimMismatch

            raise CosimMismatch(f"--hw-verify: layer {self.layer!r}: {self.error}")


class RtlCheck:
    """Replays one agent layer per snapshot on the RTL (model built on first use)."""

    def __init__(self, profile: HwProfile, seed: int = 0) -> None:
        if profile.kind != "sparse":
            from mast.errors import UserError

            raise UserError(
                f"--hw-verify needs a sparse profile (the RTL is the sparse PE array), "
                f"got {profile.name!r} of kind {profile.kind!r}"
            )
        self.profile = profile
        self.rng = np.random.default_rng(seed)
        self.model = None

    def program(self, layer: SparseLayer):
        """The acting forward pass of ``layer`` in a dataflow the RTL runs.

        The compiler's choice is kept when the RTL has an op kind for it
        (:func:`hw.export.op_load` accepts the op), else the sample-parallel form is used.
        """
        from hw.compiler import compile_layer
        from hw.export import op_load
        from mast.errors import UserError

        m = max(1, layer.uses_per_env_step)
        prog = compile_layer(layer, "forward", self.profile, m)
        try:
            op_load(prog.ops[0], self.profile)
        except UserError:
            prog = compile_layer(layer, "forward", self.profile, m, "sample")
        return prog

    def check(self, layers: Sequence[SparseLayer], index: int) -> VerifyResult:
        """Replay agent layer ``index`` (in turn, among those the profile's memories fit).

        Raises
        ------
        hw.compiler.ProgramFitError
            No agent layer fits the profile (the first layer's error).
        """
        from hw.compiler import ProgramFitError
        from rtl.cosim import CosimMismatch, build_model, check_against_sim
        from sim import simulate

        agents = [lay for lay in layers if lay.role == "agent"]
        first_error = None
        for i in range(len(agents)):
            layer = agents[(index + i) % len(agents)]
            try:
                prog = self.program(layer)
                break
            except ProgramFitError as e:
                first_error = first_error or e
        else:
            raise first_error  # type: ignore[misc]
        x = self.rng.uniform(-1.0, 1.0, size=(layer.n_in, prog.ops[0].layer_samples))
        inputs = {layer.name: {"x": x}}
        sim_cycles = simulate(prog, inputs).cycles
        if self.model is None:
            self.model = build_model(self.profile)
        try:
            got = check_against_sim(prog, inputs, model=self.model)
        except CosimMismatch as e:
            return VerifyResult(layer.name, int(sim_cycles), -1, False, str(e))
        return VerifyResult(layer.name, int(sim_cycles), int(got.cycles), True)
