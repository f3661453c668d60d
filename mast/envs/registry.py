"""Environment registry: names -> builders of single and batch environments."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from mast.envs.base import BatchEnv, MultiAgentEnv, VectorEnv
from mast.envs.builtin import BuiltinBatchEnv, BuiltinEnv
from mast.errors import UserError

__all__ = ["ENVS", "EnvEntry", "make_batch_env", "make_env"]


def _sc2(map_name: str = "3m", seed: int = 0, **kwargs) -> MultiAgentEnv:
    from mast.envs.sc2 import SC2Env

    return SC2Env(map_name=map_name, seed=seed, **kwargs)


def _mpe(map_name: str | None = None, seed: int = 0, **kwargs) -> MultiAgentEnv:
    from mast.envs.mpe import MPESpreadEnv

    return MPESpreadEnv(seed=seed, **kwargs)


def _vector(single: Callable[..., MultiAgentEnv]) -> Callable[..., BatchEnv]:
    def build(map_name=None, n_envs: int = 1, seed: int = 0, **kwargs) -> BatchEnv:
        if int(n_envs) < 1:
            raise UserError(f"n_envs must be >= 1, got {n_envs}")
        return VectorEnv(
            [single(map_name=map_name, seed=seed + i, **kwargs) for i in range(int(n_envs))]
        )

    return build


@dataclass(frozen=True)
class EnvEntry:
    """How to build one environment family, single and batched."""

    single: Callable[..., MultiAgentEnv]
    batch: Callable[..., BatchEnv]
    description: str


class _EnvRegistry(Mapping[str, EnvEntry]):
    def __init__(self, entries: dict[str, EnvEntry]) -> None:
        self._entries = dict(entries)

    def __getitem__(self, name: str) -> EnvEntry:
        try:
            return self._entries[name]
        except KeyError:
            raise UserError(f"unknown env {name!r}; known envs: {', '.join(self)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


ENVS: Mapping[str, EnvEntry] = _EnvRegistry(
    {
        "builtin": EnvEntry(
            BuiltinEnv,
            BuiltinBatchEnv,
            "built-in SMAC-compatible combat simulator (numpy, batched)",
        ),
        "sc2": EnvEntry(_sc2, _vector(_sc2), "real SMAC on StarCraft II (smac.env.StarCraft2Env)"),
        "mpe_spread": EnvEntry(_mpe, _vector(_mpe), "PettingZoo MPE simple_spread (extra 'mpe')"),
    }
)


def make_env(
    name: str = "builtin", map_name: str | None = "3m", seed: int = 0, **kwargs
) -> MultiAgentEnv:
    """One environment of family ``name`` (``ENVS``) with SMAC's single-env API."""
    entry = ENVS[name]
    if name == "mpe_spread":
        return entry.single(seed=seed, **kwargs)
    return entry.single(map_name=map_name, seed=seed, **kwargs)


def make_batch_env(
    name: str = "builtin", map_name: str | None = "3m", n_envs: int = 1, seed: int = 0, **kwargs
) -> BatchEnv:
    """``n_envs`` environments of family ``name`` stepped together (environment ``i``
    seeded ``seed + i``)."""
    entry = ENVS[name]
    return entry.batch(map_name=map_name, n_envs=n_envs, seed=seed, **kwargs)
