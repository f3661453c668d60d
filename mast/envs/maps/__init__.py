"""Unit types and combat maps of the built-in simulator, read from YAML data.

``units.yaml`` holds every unit type; every other ``*.yaml`` file in this folder is one map,
named after the file. A user adds a map by dropping a file here or by calling
:func:`register_map` with a path; the engine reads nothing but the records defined below.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np
import yaml

from mast.errors import UserError

__all__ = [
    "HealSpec",
    "MAPS",
    "MapSpec",
    "SplashSpec",
    "UNIT_TYPES",
    "UnitType",
    "get_map",
    "load_map",
    "register_map",
]

_DIR = Path(__file__).resolve().parent

ENEMY_ORDERS: tuple[str, ...] = ("attack_move", "attack_units")
"""The scripted opponent's orders (:attr:`MapSpec.enemy_order`)."""


@dataclass(frozen=True)
class HealSpec:
    """Healing ability (medivac): hit points restored per second, paid with energy."""

    hp_per_s: float
    hp_per_energy: float
    energy_max: float
    energy_start: float
    energy_regen_per_s: float
    targets: tuple[str, ...]


@dataclass(frozen=True)
class SplashSpec:
    """Line splash (colossus): a ``width`` x ``depth`` bar centred on the target,
    perpendicular to the line of fire; every enemy whose circle touches it is hit."""

    width: float
    depth: float


@dataclass(frozen=True)
class UnitType:
    """One SC2 unit type; times and speeds in faster-speed seconds (22.4 loops/s)."""

    name: str
    race: str
    hp: float
    armor: float
    damage: float
    cooldown_s: float
    speed: float
    range: float
    radius: float
    cooldown_norm: float
    shield: float = 0.0
    attacks: int = 1
    bonus: Mapping[str, float] = field(default_factory=dict)
    attributes: tuple[str, ...] = ()
    air: bool = False
    targets_air: bool = True
    cliff_walk: bool = False
    scan_range: float = 5.0
    heal: HealSpec | None = None
    splash: SplashSpec | None = None

    @classmethod
    def from_dict(cls, name: str, d: Mapping) -> UnitType:
        """Build from a ``units.yaml`` entry; unknown keys fail naming the key."""
        d = dict(d)
        known = set(cls.__dataclass_fields__) - {"name"}
        bad = sorted(set(d) - known)
        if bad:
            raise UserError(f"unit type {name!r}: unknown field(s) {bad}; known: {sorted(known)}")
        if d.get("heal") is not None:
            d["heal"] = HealSpec(**{**d["heal"], "targets": tuple(d["heal"]["targets"])})
        if d.get("splash") is not None:
            d["splash"] = SplashSpec(**d["splash"])
        d["attributes"] = tuple(d.get("attributes", ()))
        d["bonus"] = MappingProxyType(dict(d.get("bonus", {})))
        return cls(name=name, **d)


@dataclass(frozen=True)
class MapSpec:
    """One combat scenario.

    Attributes
    ----------
    name:
        Map name (the file stem).
    episode_limit:
        Environment steps before the episode times out.
    allies, enemies:
        Unit type name of every slot, in agent / enemy id order.
    size:
        Map width and height in map units (the playable area).
    ally_start, enemy_start:
        Centre of each side's starting formation.
    attack_point:
        Where the scripted opponent attack-moves to.
    ally_type_ids, enemy_type_ids:
        Unit-type one-hot index per type name for each side; empty on maps where SMAC
        uses no type bits.
    ground:
        Pathable ground as ``(x0, y0, x1, y1, level)`` rectangles (half-open, map units,
        painted in order, later ones over earlier ones) at a cliff level (SMAC's maps: 64
        low ground, 128 a plateau, ramps between). Cells no rectangle covers are not
        pathable; an empty tuple makes the whole map pathable at one level. Ground units
        cross between cells whose levels differ by at most ``terrain.MAX_STEP``; colossi
        cross cliffs.
    enemy_order:
        The scripted opponent's order: ``attack_move`` to ``attack_point`` (engaging what
        it meets), or ``attack_units``: attack the allied units as a group (each enemy
        goes for the nearest living ally wherever it is, as 2c_vs_64zg's zerglings).
    """

    name: str
    episode_limit: int
    allies: tuple[str, ...]
    enemies: tuple[str, ...]
    size: tuple[int, int] = (32, 32)
    ally_start: tuple[float, float] = (9.0, 16.0)
    enemy_start: tuple[float, float] = (23.0, 16.0)
    attack_point: tuple[float, float] | None = None
    ally_type_ids: Mapping[str, int] = field(default_factory=dict)
    enemy_type_ids: Mapping[str, int] = field(default_factory=dict)
    ground: tuple[tuple[float, float, float, float, float], ...] = ()
    enemy_order: str = "attack_move"

    def __post_init__(self) -> None:
        for name in self.allies + self.enemies:
            if name not in UNIT_TYPES:
                raise UserError(
                    f"map {self.name!r}: unknown unit type {name!r}; known: {sorted(UNIT_TYPES)}"
                )
        for side, ids, units in (
            ("allies", self.ally_type_ids, self.allies),
            ("enemies", self.enemy_type_ids, self.enemies),
        ):
            missing = sorted(set(units) - set(ids)) if ids else []
            if missing:
                raise UserError(f"map {self.name!r}: {side} unit_type_ids lack {missing}")
        if self.enemy_order not in ENEMY_ORDERS:
            raise UserError(
                f"map {self.name!r}: unknown enemy_order {self.enemy_order!r}; "
                f"known: {', '.join(ENEMY_ORDERS)}"
            )
        for rect in self.ground:
            if len(rect) != 5:
                raise UserError(
                    f"map {self.name!r}: ground rectangle {list(rect)} needs 5 numbers "
                    "[x0, y0, x1, y1, level]"
                )
        if self.episode_limit <= 0:
            raise UserError(
                f"map {self.name!r}: episode_limit must be > 0, got {self.episode_limit}"
            )

    @property
    def n_agents(self) -> int:
        return len(self.allies)

    @property
    def n_enemies(self) -> int:
        return len(self.enemies)

    @property
    def unit_type_bits(self) -> int:
        """Length of the unit-type one-hot (0 on single-type maps, as in SMAC)."""
        ids = list(self.ally_type_ids.values()) + list(self.enemy_type_ids.values())
        return max(ids) + 1 if ids else 0

    @property
    def shield_bits_ally(self) -> int:
        return int(any(UNIT_TYPES[u].race == "protoss" for u in self.allies))

    @property
    def shield_bits_enemy(self) -> int:
        return int(any(UNIT_TYPES[u].race == "protoss" for u in self.enemies))

    def ground_levels(self) -> np.ndarray:
        """Int ``(width, height)`` grid indexed ``[x, y]``: the cliff level of every cell,
        ``-1`` where there is no pathable ground."""
        w, h = self.size
        if not self.ground:
            return np.full((w, h), 64, dtype=np.int64)
        grid = np.full((w, h), -1, dtype=np.int64)
        for x0, y0, x1, y1, level in self.ground:
            grid[int(x0) : int(np.ceil(x1)), int(y0) : int(np.ceil(y1))] = int(level)
        return grid

    def pathing_grid(self) -> np.ndarray:
        """Boolean ``(width, height)`` grid indexed ``[x, y]``; ``True`` is pathable."""
        return self.ground_levels() >= 0


def _expand(counts: Mapping[str, int]) -> tuple[str, ...]:
    return tuple(name for name, n in counts.items() for _ in range(int(n)))


def load_map(path: str | Path) -> MapSpec:
    """Read one map file (YAML; see the files in this folder for the format)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"map file not found: {path}")
    d = yaml.safe_load(path.read_text()) or {}
    known = set(MapSpec.__dataclass_fields__) - {"name", "ally_type_ids", "enemy_type_ids"}
    known |= {"unit_type_ids"}
    bad = sorted(set(d) - known)
    if bad:
        raise UserError(f"map file {path}: unknown key(s) {bad}; known: {sorted(known)}")
    ids = d.pop("unit_type_ids", {}) or {}
    kw = {k: tuple(v) for k, v in d.items() if k in ("size", "ally_start", "enemy_start")}
    if d.get("attack_point") is not None:
        kw["attack_point"] = tuple(d["attack_point"])
    return MapSpec(
        name=path.stem,
        episode_limit=int(d["episode_limit"]),
        allies=_expand(d["allies"]),
        enemies=_expand(d["enemies"]),
        ally_type_ids=MappingProxyType(dict(ids.get("allies", {}))),
        enemy_type_ids=MappingProxyType(dict(ids.get("enemies", {}))),
        ground=tuple(tuple(float(v) for v in r) for r in d.get("ground", ())),
        enemy_order=str(d.get("enemy_order", "attack_move")),
        **kw,
    )


class _MapRegistry(Mapping[str, MapSpec]):
    """Name -> :class:`MapSpec`; lookups of unknown names list the known ones."""

    def __init__(self) -> None:
        self._maps: dict[str, MapSpec] = {}

    def __getitem__(self, name: str) -> MapSpec:
        try:
            return self._maps[name]
        except KeyError:
            raise UserError(f"unknown map {name!r}; known maps: {', '.join(self)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._maps))

    def __len__(self) -> int:
        return len(self._maps)

    def add(self, spec: MapSpec) -> None:
        self._maps[spec.name] = spec


def _load_units() -> Mapping[str, UnitType]:
    raw = yaml.safe_load((_DIR / "units.yaml").read_text())
    return MappingProxyType({k: UnitType.from_dict(k, v) for k, v in raw.items()})


UNIT_TYPES: Mapping[str, UnitType] = _load_units()
MAPS = _MapRegistry()
for _p in sorted(_DIR.glob("*.yaml")):
    if _p.name != "units.yaml":
        MAPS.add(load_map(_p))


def register_map(path: str | Path) -> MapSpec:
    """Load a user's map file and add it to :data:`MAPS` under its file stem."""
    spec = load_map(path)
    MAPS.add(spec)
    return spec


def get_map(name: str) -> MapSpec:
    """The registered map ``name``; unknown names raise :class:`UserError` listing maps."""
    return MAPS[name]
