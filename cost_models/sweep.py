"""Cost reports over sparsity levels, compared with dense references.

Each level is compared with two references, both running the *dense* network of the
same shapes without topology updates: the same hardware (``dense``) and a dense
baseline profile (``baseline``, e.g. the systolic array of equal MAC count). Speedups and
energy gains are ``reference / this`` (time, energy), so ``> 1`` means better; training
figures of the sparse network include every dynamic-sparse-training overhead (amortised
dense gradient + top-k, optimizer over the non-zeros).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cost_models.networks import MapDims, check_sparsity, get_map, mast_network_layers
from cost_models.report import CostReport, evaluate
from cost_models.workload import WorkloadConfig
from hw.profiles import PROFILES, HwProfile
from mast.errors import UserError
from mast.sparsity.layer import SparseLayer

__all__ = [
    "Comparison",
    "SweepResult",
    "compare",
    "default_baseline",
    "dense_layers",
    "parse_sparsities",
    "sparsity_sweep",
]


@dataclass(frozen=True)
class Comparison:
    """One sparse report next to its dense references."""

    report: CostReport
    dense: CostReport
    """The dense network on the same profile."""
    baseline: CostReport
    """The dense network on the baseline profile."""

    def figures(self) -> dict[str, Any]:
        r, d, b = self.report, self.dense, self.baseline
        out = r.summary()
        for tag, ref in (("dense", d), ("baseline", b)):
            for wl in ("training", "inference"):
                mine, theirs = getattr(r, wl), getattr(ref, wl)
                short = "train" if wl == "training" else "infer"
                out[f"{short}_speedup_vs_{tag}"] = theirs.time_s / mine.time_s
                out[f"{short}_energy_gain_vs_{tag}"] = theirs.energy_j / mine.energy_j
        out["baseline"] = b.profile
        return out


@dataclass(frozen=True)
class SweepResult:
    """Reports of one profile over several sparsity levels (or one run's masks)."""

    profile: str
    baseline: str
    workload: str
    """Map name or run directory."""
    levels: tuple[Comparison, ...]
    basis: tuple[str, ...] = ()
    """Lines stating the clock's origin and the energy table's technology
    (:func:`hw.clocks.basis_lines`)."""

    def table(self) -> list[dict[str, Any]]:
        return [c.figures() for c in self.levels]


def parse_sparsities(text: str) -> list[float]:
    """``"0,0.5,0.9"`` -> floats in ``[0, 1)``; a bad item raises naming it."""
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items:
        raise UserError(f"--sparsity needs at least one value, got {text!r}")
    out = []
    for t in items:
        try:
            v = float(t)
        except ValueError:
            raise UserError(f"sparsity must be a number in [0, 1), got {t!r}") from None
        out.append(check_sparsity(v))
    return out


def dense_layers(layers: Sequence[SparseLayer]) -> list[SparseLayer]:
    """The same records with all-ones masks (values dropped)."""
    return [
        dataclasses.replace(lay, mask=np.ones(lay.shape, dtype=bool), values=None) for lay in layers
    ]


def default_baseline(profile: HwProfile, flag: str = "--baseline") -> HwProfile:
    """The built-in systolic profile with ``profile``'s MAC count (itself if systolic).

    Of several, the squarest. Raises :class:`UserError` naming ``flag`` (the option that
    picks a baseline instead) when no built-in systolic profile has ``profile.n_pe`` cells.
    """
    if profile.kind == "systolic":
        return profile
    same = [p for p in PROFILES.values() if p.kind == "systolic" and p.n_pe == profile.n_pe]
    if not same:
        names = ", ".join(p.name for p in PROFILES.values() if p.kind == "systolic")
        raise UserError(
            f"no built-in systolic profile has n_pe={profile.n_pe} like {profile.name!r}; "
            f"pass {flag} (systolic profiles: {names})"
        )
    return min(same, key=lambda p: abs(p.rows - p.cols))


def compare(
    profile: HwProfile,
    baseline: HwProfile,
    layers: Sequence[SparseLayer],
    run: WorkloadConfig,
    *,
    label: str = "",
    refs: tuple[CostReport, CostReport] | None = None,
) -> Comparison:
    """Cost ``layers`` and (unless given in ``refs``) the two dense references."""
    rep = evaluate(profile, layers, run, label=label)
    if refs is None:
        refs = dense_references(profile, baseline, layers, run)
    return Comparison(rep, *refs)


def dense_references(
    profile: HwProfile, baseline: HwProfile, layers: Sequence[SparseLayer], run: WorkloadConfig
) -> tuple[CostReport, CostReport]:
    """The dense network, no topology updates, on ``profile`` and on ``baseline``."""
    dense = dense_layers(layers)
    drun = dataclasses.replace(run, topology_updates=False)
    return (
        evaluate(profile, dense, drun, label="dense"),
        evaluate(baseline, dense, drun, label="dense"),
    )


def sparsity_sweep(
    profile: HwProfile,
    sparsities: Sequence[float],
    map_name: str | MapDims = "3m",
    *,
    baseline: HwProfile | None = None,
    density: str = "erdos_renyi",
    seed: int = 0,
    run: WorkloadConfig | None = None,
    layout: str = "random",
    progress: Callable[[Sequence[float]], Iterable[float]] | None = None,
) -> SweepResult:
    """Reports of the MAST QMIX network of ``map_name`` at every sparsity level.

    ``progress`` wraps the levels while they are costed (e.g. a ``tqdm`` bar).
    """
    dims = map_name if isinstance(map_name, MapDims) else get_map(map_name)
    run = run or WorkloadConfig(episode_limit=dims.episode_limit)
    baseline = baseline or default_baseline(profile)
    levels, refs = [], None
    for s in progress(sparsities) if progress is not None else sparsities:
        layers = mast_network_layers(dims, check_sparsity(s), density, seed, layout)
        if refs is None:
            refs = dense_references(profile, baseline, layers, run)
        label = f"{map_name if isinstance(map_name, str) else 'custom'} s={s:g} {density} {layout}"
        levels.append(compare(profile, baseline, layers, run, label=label, refs=refs))
    name = map_name if isinstance(map_name, str) else "custom"
    return SweepResult(profile.name, baseline.name, name, tuple(levels))
