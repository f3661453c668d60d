"""The grid of a sweep: maps x algorithms x methods x sparsities x seeds, and where runs go.

A :class:`SweepSpec` comes from ``mast-sweep`` flags or a YAML file with the same keys
(``maps``, ``methods``, ``algs``, ``sparsity``, ``seeds``, ``first_seed``, ``t_max``,
``overrides``, ``hw_profile``, ...); the sweep writes the spec it ran to
``<out>/sweep.yaml``, itself a valid grid file. Every run has a fixed slot in the sweep
tree, ``<out>/<alg>_<method>_<map>[_sp<sparsity>]/s<seed>/``, holding the one run folder
that :func:`mast.train.train` creates there (the same folder ``mast-train`` would write)
and the sweep's ``status.json`` (see :mod:`sweep.task`).

The dense method ignores the sparsity, so it has one cell per map and algorithm.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import yaml

from mast.config import ALGS, METHODS
from mast.errors import UserError

__all__ = [
    "Cell",
    "RunKey",
    "SweepSpec",
    "Variant",
    "load_spec_file",
    "schedule_flags",
    "SPEC_FILE",
]

SPEC_FILE = "sweep.yaml"
"""The spec a sweep ran, in its output folder."""
NO_SPARSITY = ("dense",)
"""Methods whose result does not depend on ``sparsity.sparsity`` (one cell per map)."""
_VARIANT_NAME = re.compile(r"[a-z0-9][a-z0-9_]*")


def schedule_flags(t_max: int) -> dict[str, int]:
    """The topology schedule scaled to the run length: ``delta_t = t_max / 12`` and
    ``t_end = 3/4 t_max`` (the presets' 5000 and 45000 for their 60k-step run); overrides
    in the spec take precedence."""
    return {"sparsity.delta_t": max(1, round(t_max / 12)), "sparsity.t_end": round(0.75 * t_max)}


@dataclass(frozen=True)
class Cell:
    """One configuration of the grid (everything but the seed)."""

    map_name: str
    alg: str
    method: str
    sparsity: float | None
    """``None`` for methods in :data:`NO_SPARSITY`."""
    variant: str | None = None
    """Name of the :class:`Variant` (``None``: the plain cell)."""

    @property
    def name(self) -> str:
        """Folder name of the cell, e.g. ``qmix_mast_3m_sp0.9``, ``qmix_dense_3m`` or
        ``qmix_dense_3m+mast_targets``."""
        sp = "" if self.sparsity is None else f"_sp{self.sparsity:g}"
        var = "" if self.variant is None else f"+{self.variant}"
        return f"{self.alg}_{self.method}_{self.map_name}{sp}{var}"


@dataclass(frozen=True)
class Variant:
    """Named extra cells: the grid's methods (or ``methods``) with more overrides."""

    name: str
    overrides: tuple[str, ...]
    """``group.field=value``, applied after the spec's overrides."""
    methods: tuple[str, ...] = ()
    """Methods that get this variant (empty: every method of the grid)."""

    def applies_to(self, method: str) -> bool:
        return not self.methods or method in self.methods


@dataclass(frozen=True)
class RunKey:
    """One run: a cell and a seed."""

    cell: Cell
    seed: int

    @property
    def name(self) -> str:
        """``<cell>/s<seed>``: the run's slot relative to the sweep folder."""
        return f"{self.cell.name}/s{self.seed}"


@dataclass(frozen=True)
class SweepSpec:
    """A sweep: the grid, the training settings shared by its runs and the resources."""

    out: str
    """Sweep folder (the run tree, ``sweep.yaml``, ``results.csv``, ``summary.md``)."""
    maps: tuple[str, ...] = ("3m",)
    """Scenarios of the built-in simulator."""
    methods: tuple[str, ...] = ("dense", "mast")
    """Sparse-training methods (``mast.config.METHODS``)."""
    algs: tuple[str, ...] = ("qmix",)
    """Learners (``mast.config.ALGS``)."""
    sparsity: tuple[float, ...] = (0.9,)
    """Sparsities of the sparse methods."""
    seeds: int = 3
    """Seeds per cell: ``first_seed .. first_seed + seeds - 1``."""
    first_seed: int = 0
    """First seed."""
    t_max: int = 60_000
    """Environment steps per run."""
    overrides: tuple[str, ...] = ()
    """Config overrides ``group.field=value`` applied to every run (after the grid's keys)."""
    variants: tuple[Variant, ...] = ()
    """Extra named cells beside the plain ones (see the module docstring)."""
    scale_schedule: bool = True
    """Scale the topology schedule to ``t_max`` (:func:`schedule_flags`)."""
    hw_profile: str = "none"
    """``--hw-profile`` of every run (``none``: no hardware trace)."""
    hw_baseline: str | None = None
    """``--hw-baseline`` of every run (default: the profile's systolic baseline)."""
    device: str = "cpu"
    """Torch device of every run (``cuda`` needs ``gpus_per_run`` > 0)."""
    cpus_per_run: float = 1.0
    """Ray CPUs reserved per run (also the run's torch threads, rounded up)."""
    gpus_per_run: float = 0.0
    """Ray GPUs (a fraction shares one GPU) reserved per run."""
    max_retries: int = 2
    """Times a run whose worker died is started again (it resumes from its checkpoint)."""

    def __post_init__(self) -> None:
        for name, values, known in (
            ("map", self.maps, None),
            ("method", self.methods, METHODS),
            ("algorithm", self.algs, ALGS),
        ):
            if not values:
                raise UserError(f"the sweep needs at least one {name}")
            for v in values:
                if known is not None and v not in known:
                    raise UserError(f"unknown {name} {v!r}; known: {', '.join(known)}")
        for s in self.sparsity:
            if not 0.0 <= s < 1.0:
                raise UserError(f"sparsity must be in [0, 1), got {s}")
        if self.seeds < 1 or self.first_seed < 0:
            raise UserError(
                f"seeds must be >= 1 and first_seed >= 0, got {self.seeds}, {self.first_seed}"
            )
        if self.t_max < 1:
            raise UserError(f"t_max must be >= 1, got {self.t_max}")
        if self.cpus_per_run <= 0 or self.gpus_per_run < 0 or self.max_retries < 0:
            raise UserError(
                f"cpus_per_run must be > 0, gpus_per_run and max_retries >= 0, got "
                f"{self.cpus_per_run}, {self.gpus_per_run}, {self.max_retries}"
            )
        if self.device.startswith("cuda") and self.gpus_per_run <= 0:
            raise UserError(f"device {self.device!r} needs gpus_per_run > 0")
        for o in (*self.overrides, *(o for v in self.variants for o in v.overrides)):
            if "=" not in o:
                raise UserError(f"override {o!r} is not of the form group.field=value")
        names = [v.name for v in self.variants]
        for v in self.variants:
            if not _VARIANT_NAME.fullmatch(v.name):
                raise UserError(
                    f"bad variant name {v.name!r}: lower-case letters, digits and _ only"
                )
            if names.count(v.name) > 1:
                raise UserError(f"variant {v.name!r} is given twice")
            for me in v.methods:
                if me not in self.methods:
                    raise UserError(
                        f"variant {v.name!r} names method {me!r}, which is not in the grid; "
                        f"the grid's methods: {', '.join(self.methods)}"
                    )

    # ------------------------------------------------------------------ the grid
    def cells(self) -> list[Cell]:
        """The grid's cells, maps outermost, then algorithms, methods, sparsities, and
        each plain cell followed by its variants."""
        out = []
        for m in self.maps:
            for a in self.algs:
                for me in self.methods:
                    sps = (None,) if me in NO_SPARSITY else self.sparsity
                    for sp in sps:
                        out.append(Cell(m, a, me, sp))
                        vs = [v for v in self.variants if v.applies_to(me)]
                        out += [Cell(m, a, me, sp, v.name) for v in vs]
        return out

    def variant(self, name: str | None) -> Variant | None:
        """The variant called ``name`` (``None`` for the plain cells)."""
        return next((v for v in self.variants if v.name == name), None)

    def runs(self) -> list[RunKey]:
        """Every run of the sweep, in submission order (all first seeds first)."""
        seeds = range(self.first_seed, self.first_seed + self.seeds)
        return [RunKey(c, s) for s in seeds for c in self.cells()]

    def slot(self, key: RunKey) -> Path:
        """The run's folder in the sweep tree."""
        return Path(self.out) / key.name

    def flags(self, key: RunKey) -> dict[str, Any]:
        """Dotted config keys of the run, before the spec's overrides."""
        flags: dict[str, Any] = {
            "env.map_name": key.cell.map_name,
            "run.seed": key.seed,
            "sparsity.seed": key.seed,
            "run.t_max": self.t_max,
            "run.device": self.device,
            "run.threads": max(1, int(-(-self.cpus_per_run // 1))),
            "run.progress": False,
        }
        if key.cell.sparsity is not None:
            flags["sparsity.sparsity"] = key.cell.sparsity
            if self.scale_schedule:
                flags.update(schedule_flags(self.t_max))
        return flags

    def train_config(self, key: RunKey):
        """The run's resolved :class:`mast.config.TrainConfig` (what ``mast-train`` with
        ``--alg --method --map --seed --sparsity --t-max`` and the overrides resolves)."""
        from mast.presets import resolve_config

        var = self.variant(key.cell.variant)
        return resolve_config(
            alg=key.cell.alg,
            method=key.cell.method,
            flags=self.flags(key),
            overrides=(*self.overrides, *(var.overrides if var else ())),
        )

    # ------------------------------------------------------------------ files
    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``sweep.yaml`` (lists, not tuples)."""
        d = asdict(self)
        d["variants"] = {
            v.name: {"methods": list(v.methods), "overrides": list(v.overrides)}
            for v in self.variants
        }
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], **given: Any) -> SweepSpec:
        """A spec from YAML data; ``given`` (non-``None`` values) takes precedence.

        List keys accept a list or a comma-separated string; ``seeds`` a count;
        ``overrides`` a list of ``key=value`` or a mapping.
        """
        merged = {**dict(data), **{k: v for k, v in given.items() if v is not None}}
        names = {f.name for f in fields(cls)}
        extra = sorted(k for k in merged if k not in names)
        if extra:
            raise UserError(f"unknown sweep key {extra[0]!r}; known: {', '.join(sorted(names))}")
        kw: dict[str, Any] = {k: v for k, v in merged.items() if k in names}
        if "out" not in kw:
            raise UserError("the sweep needs an output folder: --out or 'out:' in the grid file")
        for k in ("maps", "methods", "algs"):
            if k in kw:
                kw[k] = _str_list(k, kw[k])
        if "sparsity" in kw:
            kw["sparsity"] = tuple(
                _num(float, "sparsity", v) for v in _str_list("sparsity", kw["sparsity"])
            )
        if "overrides" in kw:
            kw["overrides"] = _overrides("overrides", kw["overrides"])
        if "variants" in kw:
            kw["variants"] = _variants(kw["variants"])
        for k, tp in (
            ("seeds", int),
            ("first_seed", int),
            ("t_max", int),
            ("max_retries", int),
            ("cpus_per_run", float),
            ("gpus_per_run", float),
        ):
            if k in kw:
                kw[k] = _num(tp, k, kw[k])
        kw["out"] = str(kw["out"])
        return cls(**kw)

    def with_out(self, out: str | Path) -> SweepSpec:
        """The same grid writing to ``out``."""
        return replace(self, out=str(out))


def load_spec_file(path: str | Path) -> dict[str, Any]:
    """Read a grid YAML file (a mapping of :class:`SweepSpec` keys)."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"grid file {str(path)!r} does not exist")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError:
        raise UserError(f"malformed YAML in {str(path)!r}") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise UserError(f"grid file {str(path)!r} must hold a mapping of sweep keys")
    return dict(data)


def _overrides(key: str, value: Any) -> tuple[str, ...]:
    """``key=value`` strings from a list of them or a mapping (YAML's two natural forms)."""
    if isinstance(value, Mapping):
        return tuple(f"{k}={v}" for k, v in value.items())
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise UserError(f"{key} must be a list of group.field=value or a mapping")
    return tuple(str(o) for o in value)


def _variants(value: Any) -> tuple[Variant, ...]:
    """Variants from ``{name: {overrides: ..., methods: ...}}``."""
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise UserError("variants must be a mapping of name: {overrides: ..., methods: ...}")
    out = []
    for name, body in value.items():
        body = body or {}
        if not isinstance(body, Mapping):
            raise UserError(f"variant {name!r} must be a mapping with overrides and methods")
        extra = sorted(k for k in body if k not in ("overrides", "methods"))
        if extra:
            raise UserError(
                f"unknown key {extra[0]!r} in variant {name!r}; known: methods, overrides"
            )
        out.append(
            Variant(
                name=str(name),
                overrides=_overrides(f"variant {name!r} overrides", body.get("overrides")),
                methods=_str_list(f"variant {name!r} methods", body.get("methods") or ()),
            )
        )
    return tuple(out)


def _str_list(key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",")]
    elif isinstance(value, Sequence):
        items = [str(v).strip() for v in value]
    else:
        items = [str(value)]
    return tuple(v for v in items if v)


def _num(tp: type, key: str, value: Any) -> Any:
    try:
        if tp is int and isinstance(value, float) and not value.is_integer():
            raise ValueError
        return tp(value)
    except (TypeError, ValueError):
        raise UserError(f"bad value {value!r} for {key}: expected a number") from None
