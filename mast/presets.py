"""Presets, ``group.field=value`` overrides and the resolution of a training config.

Resolution order (later wins): dataclass defaults -> preset (``--config NAME_OR_FILE``;
without it the ``ALG_METHOD`` preset picked by ``--alg``/``--method``) -> the dedicated
flags (``--map``, ``--sparsity``, ...) -> ``group.field=value`` overrides. All flags and
overrides are applied together, so each group is validated once with all its changes.

Presets are YAML files of nested groups, ``{learner: {lr: 1e-3}, sparsity: {...}}``; a
``base:`` entry (a name or a list of names) loads other presets first. The preset
``ALG_METHOD`` (e.g. ``qmix_mast``) composes ``configs/alg/ALG.yaml`` and
``configs/method/METHOD.yaml``; other names are files in ``configs/``.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

import yaml

from mast.config import ALGS, METHODS, TrainConfig
from mast.errors import UserError

__all__ = [
    "CONFIG_DIR",
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
    "diff_configs",
    "DEFAULT_ALG",
    "DEFAULT_METHOD",
    "load_preset",
    "preset_names",
    "preset_value",
    "resolve_config",
]

CONFIG_DIR = Path(__file__).with_name("configs")
DEFAULT_ALG = "qmix"
"""Algorithm of the default preset (without ``--config`` / ``--alg``)."""
DEFAULT_METHOD = "mast"
"""Sparse method of the default preset (without ``--config`` / ``--method``)."""

# ---------------------------------------------------------------- dict <-> dataclass


def config_to_dict(cfg: Any) -> dict:
    """Nested plain dict of a config (tuples become lists), suitable for YAML."""
    out = {}
    for f in fields(cfg):
        v = getattr(cfg, f.name)
        if dataclasses.is_dataclass(v):
            out[f.name] = config_to_dict(v)
        elif isinstance(v, tuple):
            out[f.name] = list(v)
        else:
            out[f.name] = v
    return out


def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _coerce(key: str, tp: Any, value: Any) -> Any:
    """Convert a YAML / command-line value to the annotated type or fail naming ``key``."""
    origin = get_origin(tp)
    if origin is Literal:
        if value not in get_args(tp):
            known = ", ".join(map(str, get_args(tp)))
            raise UserError(f"bad value {value!r} for {key}; known: {known}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        return _coerce(key, args[0], value)
    if origin is tuple:
        if isinstance(value, str):
            value = _parse_yaml_value(key, value)
        if not isinstance(value, list | tuple):
            raise UserError(f"bad value {value!r} for {key}: expected a list")
        item = get_args(tp)[0] if get_args(tp) else str
        return tuple(_coerce(key, item, v) for v in value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        s = str(value).strip().lower()
        if s in ("true", "yes", "on", "1"):
            return True
        if s in ("false", "no", "off", "0"):
            return False
        raise UserError(f"bad value {value!r} for {key}: expected true or false")
    if tp is int:
        if isinstance(value, bool):
            raise UserError(f"bad value {value!r} for {key}: expected an integer")
        try:
            f = float(value)
        except (TypeError, ValueError, OverflowError):
            raise UserError(f"bad value {value!r} for {key}: expected an integer") from None
        if not f.is_integer():
            raise UserError(f"bad value {value!r} for {key}: expected an integer")
        if isinstance(value, int):
            return value  # exact, however large (the fields' own ranges bound it)
        if abs(f) > 2**53:
            raise UserError(f"bad value {value!r} for {key}: too large for an exact integer")
        return int(f)
    if tp is float:
        try:
            f = float(value)
        except (TypeError, ValueError):
            raise UserError(f"bad value {value!r} for {key}: expected a number") from None
        if not math.isfinite(f):
            raise UserError(f"bad value {value!r} for {key}: expected a finite number")
        return f
    if tp is str:
        if not isinstance(value, str | int | float):
            raise UserError(f"bad value {value!r} for {key}: expected a string")
        return str(value)
    return value


def _parse_yaml_value(key: str, text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        raise UserError(f"bad value {text!r} for {key}: not valid YAML") from None


def _update(cfg: Any, data: Mapping, prefix: str = "") -> Any:
    """Return ``cfg`` with the nested mapping ``data`` applied (keys checked)."""
    hints = _hints(type(cfg))
    changes = {}
    for k, v in data.items():
        key = f"{prefix}{k}"
        if k not in hints:
            known = ", ".join(f.name for f in fields(cfg))
            raise UserError(f"unknown config key {key!r}; known in this group: {known}")
        cur = getattr(cfg, k)
        if dataclasses.is_dataclass(cur):
            if not isinstance(v, Mapping):
                raise UserError(f"config key {key!r} is a group; expected a mapping, got {v!r}")
            changes[k] = _update(cur, v, f"{key}.")
        else:
            changes[k] = _coerce(key, hints[k], v)
    try:
        return replace(cfg, **changes)
    except TypeError as e:
        raise UserError(f"bad config under {prefix or 'top level'}: {e}") from None


def config_from_dict(data: Mapping) -> TrainConfig:
    """Build a :class:`TrainConfig` from a nested mapping (e.g. a run's ``config.yaml``).

    Run folders written before ``agent.topology`` hold ``agent.per_type`` (a bool); it is
    read as ``topology: per_type`` or ``shared``.
    """
    agent = data.get("agent")
    if isinstance(agent, Mapping) and "per_type" in agent:
        agent = dict(agent)
        per_type = _coerce("agent.per_type", bool, agent.pop("per_type"))
        agent.setdefault("topology", "per_type" if per_type else "shared")
        data = {**data, "agent": agent}
    return _update(TrainConfig(), data)


# ---------------------------------------------------------------- presets


def preset_names() -> list[str]:
    """All names ``--config`` accepts besides file paths."""
    combos = [f"{a}_{m}" for a in ALGS for m in METHODS]
    files = [p.stem for p in CONFIG_DIR.glob("*.yaml")]
    return sorted(set(combos) | set(files))


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" (line {where.line + 1})" if where is not None else ""
        raise UserError(
            f"malformed YAML in {str(path)!r}{at}: {getattr(e, 'problem', e)}"
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"config file {str(path)!r} must hold a mapping, got {type(data).__name__}")
    return data


def _merge(a: dict, b: Mapping) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), dict) else v
    return out


def _preset_data(name_or_file: str, _seen: tuple[str, ...] = ()) -> dict:
    if name_or_file in _seen:
        raise UserError(f"preset {name_or_file!r} includes itself through 'base'")
    path = Path(name_or_file)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise UserError(f"config file {name_or_file!r} does not exist")
        data = _read_yaml(path)
    elif (CONFIG_DIR / f"{name_or_file}.yaml").is_file():
        data = _read_yaml(CONFIG_DIR / f"{name_or_file}.yaml")
    elif name_or_file in preset_names():
        alg, method = name_or_file.rsplit("_", 1)
        data = {"base": [f"alg/{alg}", f"method/{method}"]}
    elif "/" in name_or_file and (CONFIG_DIR / f"{name_or_file}.yaml").is_file():
        data = _read_yaml(CONFIG_DIR / f"{name_or_file}.yaml")
    else:
        raise UserError(
            f"unknown preset {name_or_file!r}; known: {', '.join(preset_names())} "
            "(or a path to a .yaml file)"
        )
    bases = data.pop("base", [])
    bases = [bases] if isinstance(bases, str) else list(bases)
    merged: dict = {}
    for b in bases:
        merged = _merge(merged, _preset_data(str(b), (*_seen, name_or_file)))
    return _merge(merged, data)


def load_preset(name_or_file: str) -> TrainConfig:
    """The :class:`TrainConfig` of a preset name or YAML file (see module docstring)."""
    return config_from_dict(_preset_data(name_or_file))


def preset_value(key: str, preset: str = f"{DEFAULT_ALG}_{DEFAULT_METHOD}") -> Any:
    """The value of ``group.field`` in ``preset``: the preset's YAML entry, else the field's
    dataclass default. Builds no config (so no torch import: ``mast-train --help``)."""
    group, _, name = key.partition(".")
    data = _preset_data(preset).get(group) or {}
    if name in data:
        return data[name]
    cls = _hints(TrainConfig)[group]
    field = next(f for f in fields(cls) if f.name == name)
    return field.default


def apply_overrides(cfg: TrainConfig, overrides: Sequence[str]) -> TrainConfig:
    """Apply ``group.field=value`` strings together (later ones win); values are parsed to
    the field's type and each group is validated once with all its changes."""
    merged: dict = {}
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserError(f"bad override {item!r}: expected group.field=value")
        parts = key.split(".")
        nested: Any = text
        if _wants_structure(cfg, parts):
            nested = _parse_yaml_value(key, text)
        for p in reversed(parts):
            nested = {p: nested}
        merged = _merge(merged, nested)
    return _update(cfg, merged) if merged else cfg


def _wants_structure(cfg: Any, parts: Sequence[str]) -> bool:
    obj = cfg
    for p in parts[:-1]:
        obj = getattr(obj, p, None)
        if obj is None or not dataclasses.is_dataclass(obj):
            return False
    hints = _hints(type(obj)) if dataclasses.is_dataclass(obj) else {}
    return get_origin(hints.get(parts[-1])) is tuple


def diff_configs(a: TrainConfig, b: TrainConfig, ignore: Sequence[str] = ()) -> list[str]:
    """Dotted keys whose values differ between two configs (``ignore``: keys to skip)."""
    fa, fb = _flatten(config_to_dict(a)), _flatten(config_to_dict(b))
    return [k for k in fa if k not in ignore and fa[k] != fb.get(k)]


def _flatten(d: Mapping, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def resolve_config(
    preset: str | None = None,
    alg: str | None = None,
    method: str | None = None,
    flags: Mapping[str, Any] | None = None,
    overrides: Sequence[str] = (),
    base: TrainConfig | None = None,
) -> TrainConfig:
    """Defaults -> preset (or ``ALG_METHOD``) -> flags (dotted keys) -> overrides.

    ``base`` replaces the preset step (used when resuming from a saved config).
    """
    if alg is not None and alg not in ALGS:
        raise UserError(f"unknown algorithm {alg!r}; known: {', '.join(ALGS)}")
    if method is not None and method not in METHODS:
        raise UserError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    if base is not None:
        cfg = base
    elif preset is not None:
        cfg = load_preset(preset)
    else:
        cfg = load_preset(f"{alg or DEFAULT_ALG}_{method or DEFAULT_METHOD}")
    if preset is not None or base is not None:
        if alg is not None:
            cfg = replace(cfg, learner=replace(cfg.learner, alg=alg))
        if method is not None:
            cfg = apply_overrides(cfg, [f"sparsity.method={method}"])
    items = [f"{key}={value}" for key, value in (flags or {}).items() if value is not None]
    return apply_overrides(cfg, [*items, *overrides])
