"""Typed training configuration: one frozen dataclass per group, every field documented.

Groups: ``env``, ``agent``, ``learner``, ``sparsity`` (:class:`mast.sparsity.SparsityConfig`),
``targets`` (:class:`mast.targets.TargetConfig`), ``buffer``, ``run``. Presets, overrides
and the resolution order live in :mod:`mast.presets`.

Every default says whether it is the paper's value ([paper]), PyMARL's ([pymarl]) or chosen
here so that the default run learns 3m in minutes on a CPU ([chosen]).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mast.errors import UserError
from mast.sparsity.config import SparsityConfig
from mast.targets.config import TargetConfig

__all__ = [
    "ALGS",
    "METHODS",
    "TOPOLOGIES",
    "EnvConfig",
    "AgentConfig",
    "LearnerConfig",
    "BufferConfig",
    "RunConfig",
    "TrainConfig",
    "SparsityConfig",
    "TargetConfig",
    "smac_flags",
]

ALGS: tuple[str, ...] = ("vdn", "qmix", "ow_qmix", "cw_qmix", "res")
"""Learner names accepted by ``--alg`` / ``learner.alg``."""
TOPOLOGIES: tuple[str, ...] = ("shared", "per_type", "per_agent")
"""Agent weight/mask layouts accepted by ``agent.topology``."""
METHODS: tuple[str, ...] = ("dense", "tiny", "static", "set", "rigl", "rlx2", "mast")
"""Sparse-training method names accepted by ``--method`` / ``sparsity.method``."""


MAX_STEPS = 10**10
"""Upper limit of step counts (``run.t_max`` and the intervals): 10 billion environment
steps, 5000x the paper's longest runs; beyond it a number is a typo."""
MAX_WIDTH = 1 << 14
"""Upper limit of a network width (16384: a 16384 x 16384 layer alone takes 1 GiB)."""
MAX_PARALLEL = 1 << 16
"""Upper limit of parallel environments, test episodes, batch size and updates per rollout."""


@dataclass(frozen=True)
class EnvConfig:
    """Which environment and how many copies run in parallel."""

    name: str = "builtin"
    """Environment family for ``mast.envs.make_batch_env`` (built-in SMAC simulator)."""
    map_name: str = "3m"
    """Scenario (SMAC map name)."""
    n_envs: int = 8
    """Parallel episodes per rollout [chosen; PyMARL runs 1 or 8]."""
    test_episodes: int = 32
    """Greedy episodes per evaluation [pymarl: 32]."""
    continuing_episode: bool = False
    """SMAC's flag: a time-out is not terminal and the learner bootstraps it. Off as in
    SMAC and the paper's runs, which store a time-out as a terminal step [smac]."""
    obs_last_action: bool = False
    """SMAC's flag: the observations carry every other ally's previous action (one-hot)
    in its ally features (SMAC environments only) [smac]."""

    def __post_init__(self) -> None:
        _positive(self, "n_envs", "test_episodes")
        _at_most(self, MAX_PARALLEL, "n_envs", "test_episodes")


@dataclass(frozen=True)
class AgentConfig:
    """The recurrent agent network and its inputs."""

    hidden_dim: int = 64
    """Width of fc1 and of the GRU state [paper/pymarl: 64]."""
    topology: str = "shared"
    """Weights and masks of the agents: ``shared`` by all agents [pymarl], one set per unit
    type (``per_type``) or per agent (``per_agent``), stacked so that a topology update
    ranks every type's or agent's connections together and the sparsity budget moves
    between them [paper: masks differ by agent type, Fig. 12]."""
    obs_last_action: bool = True
    """Append the agent's previous action (one-hot) to its input [pymarl]."""
    obs_agent_id: bool = True
    """Append the agent's index (one-hot) to its input [pymarl]."""

    def __post_init__(self) -> None:
        _positive(self, "hidden_dim")
        _at_most(self, MAX_WIDTH, "hidden_dim")
        _choice(self, "topology", TOPOLOGIES)


@dataclass(frozen=True)
class LearnerConfig:
    """Algorithm, optimiser and exploration."""

    alg: str = "qmix"
    """Value factorisation: vdn, qmix, ow_qmix, cw_qmix or res."""
    lr: float = 5e-4
    """RMSprop learning rate [paper/pymarl]."""
    optim_alpha: float = 0.99
    """RMSprop smoothing constant [pymarl]."""
    optim_eps: float = 1e-5
    """RMSprop epsilon [pymarl]."""
    grad_clip: float = 10.0
    """Global gradient-norm clip [pymarl]."""
    batch_size: int = 32
    """Episodes per training batch [paper/pymarl]."""
    updates_per_rollout: int = 4
    """Gradient steps after each rollout of ``env.n_envs`` episodes (4 x batch 32 per 8 new
    episodes: about PyMARL's one update per episode) [chosen]."""
    target_update_interval: int = 200
    """Episodes between hard target-network updates [paper/pymarl]."""
    epsilon_start: float = 1.0
    """Initial exploration rate [pymarl]."""
    epsilon_finish: float = 0.05
    """Final exploration rate [pymarl]."""
    epsilon_anneal_steps: int = 20_000
    """Environment steps of linear epsilon annealing [chosen for the short default run;
    pymarl/paper: 50k]."""
    mixing_embed_dim: int = 32
    """QMIX mixing width [pymarl]."""
    hypernet_embed: int = 64
    """QMIX hypernetwork hidden width [pymarl]."""
    central_mixing_embed_dim: int = 256
    """Weighted QMIX: width of the unrestricted central mixer [pymarl wqmix]."""
    wqmix_alpha: float = 0.75
    """Weighted QMIX: weight of the down-weighted transitions (alpha) [wqmix]."""
    central_loss: float = 1.0
    """Weighted QMIX: coefficient of the central ``Q*`` loss [pymarl wqmix]."""
    res_beta: float = 5.0
    """RES: inverse temperature of the softmax bootstrap over joint actions [chosen]."""
    res_lambda: float = 0.05
    """RES: weight of the regulariser pulling ``Q_tot`` toward the return baseline [chosen]."""

    def __post_init__(self) -> None:
        _choice(self, "alg", ALGS)
        _positive(
            self,
            "lr",
            "batch_size",
            "updates_per_rollout",
            "target_update_interval",
            "hypernet_embed",
            "mixing_embed_dim",
            "central_mixing_embed_dim",
        )
        _at_most(self, MAX_WIDTH, "hypernet_embed", "mixing_embed_dim", "central_mixing_embed_dim")
        _at_most(self, MAX_PARALLEL, "batch_size", "updates_per_rollout")
        if not 0.0 <= self.epsilon_finish <= self.epsilon_start <= 1.0:
            raise UserError(
                f"need 0 <= learner.epsilon_finish <= learner.epsilon_start <= 1, got "
                f"{self.epsilon_finish} and {self.epsilon_start}"
            )
        if not 0.0 < self.wqmix_alpha <= 1.0:
            raise UserError(f"learner.wqmix_alpha must be in (0, 1], got {self.wqmix_alpha}")


@dataclass(frozen=True)
class BufferConfig:
    """Episode replay (``mast.buffer.DualReplayBuffer``; ``on_fraction = 0``: one FIFO)."""

    capacity: int = 5000
    """Episodes of the (off-policy) FIFO [paper/pymarl: 5000]."""
    on_capacity: int = 64
    """Episodes of the on-policy FIFO of the newest episodes [chosen; paper: not given]."""
    on_fraction: float = 0.0
    """Share of each batch drawn from the on-policy FIFO (MAST preset: 0.5) [chosen]."""
    float_storage: str = "float16"
    """Storage of observations and states: float16 (compact) or float32 (exact)."""
    dynamic: bool = False
    """RLx2's dynamic capacity (rlx2 preset: on): every ``dynamic_interval`` episodes,
    discard the ``dynamic_oldest`` oldest episodes while the greedy policy disagrees with
    their actions in more than ``dynamic_threshold`` of their decisions [RLx2]."""
    dynamic_interval: int = 40
    """Episodes between two dynamic-capacity checks [chosen]."""
    dynamic_oldest: int = 32
    """Oldest episodes whose policy distance is measured, and dropped at a time [chosen]."""
    dynamic_threshold: float = 0.5
    """Policy distance (share of decisions with another greedy action) above which the
    oldest episodes are dropped; epsilon-greedy data sits near ``epsilon`` [chosen]."""
    dynamic_min: int = 256
    """Episodes the dynamic capacity never trims below [chosen]."""

    def __post_init__(self) -> None:
        _positive(self, "capacity", "on_capacity", "dynamic_interval", "dynamic_oldest")
        _choice(self, "float_storage", ("float16", "float32"))
        if not 0.0 <= self.on_fraction <= 1.0:
            raise UserError(f"buffer.on_fraction must be in [0, 1], got {self.on_fraction}")
        if not 0.0 <= self.dynamic_threshold <= 1.0:
            raise UserError(
                f"buffer.dynamic_threshold must be in [0, 1], got {self.dynamic_threshold}"
            )
        if self.dynamic_min < 1:
            raise UserError(f"buffer.dynamic_min must be >= 1, got {self.dynamic_min}")
        if self.on_capacity > self.capacity:
            raise UserError(
                f"buffer.on_capacity {self.on_capacity} exceeds buffer.capacity {self.capacity}"
            )


@dataclass(frozen=True)
class RunConfig:
    """Length, evaluation, logging and persistence of one run."""

    seed: int = 0
    """Seed of every random generator (torch, numpy, environments)."""
    t_max: int = 60_000
    """Environment steps to train for [chosen for 3m; paper ~2M]."""
    test_interval: int = 5_000
    """Environment steps between greedy evaluations [chosen; pymarl 10k]."""
    log_interval: int = 5_000
    """Environment steps between metrics rows [chosen]."""
    save_interval: int = 20_000
    """Environment steps between checkpoints (one is always written at the end)."""
    save_buffer: bool = True
    """Store the replay buffer in checkpoints (needed for an exact resume)."""
    device: str = "cpu"
    """Torch device for learning (``cpu``, ``cuda``); acting runs on the same device."""
    threads: int = 1
    """Torch intra-op threads; 1 is fastest for these small networks on a CPU (0: torch's
    default, which loses badly to thread synchronisation on a busy machine) [chosen]."""
    progress: bool = True
    """Show a progress bar."""
    tensorboard: bool = True
    """Write TensorBoard event files into the run folder."""

    def __post_init__(self) -> None:
        _positive(self, "t_max", "test_interval", "log_interval", "save_interval")
        _at_most(self, MAX_STEPS, "t_max", "test_interval", "log_interval", "save_interval")
        if self.threads < 0:
            raise UserError(f"run.threads must be >= 0, got {self.threads}")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on; written to ``config.yaml`` of the run."""

    env: EnvConfig = field(default_factory=EnvConfig)
    """Environment."""
    agent: AgentConfig = field(default_factory=AgentConfig)
    """Agent network."""
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    """Algorithm and optimiser."""
    sparsity: SparsityConfig = field(default_factory=SparsityConfig)
    """Sparse training method and schedule."""
    targets: TargetConfig = field(default_factory=TargetConfig)
    """Bootstrap operator and multi-step targets."""
    buffer: BufferConfig = field(default_factory=BufferConfig)
    """Replay buffer."""
    run: RunConfig = field(default_factory=RunConfig)
    """Run length, logging, checkpoints."""


SMAC_ENVS: tuple[str, ...] = ("builtin", "sc2")
"""Environment families that take SMAC's flags (``continuing_episode``, ``obs_last_action``)."""


def smac_flags(ec: EnvConfig) -> dict[str, bool]:
    """Keyword arguments of SMAC's flags for the environment family ``ec.name``.

    Families outside :data:`SMAC_ENVS` take none; asking one for a non-default SMAC flag
    raises :class:`UserError` naming the flag.
    """
    flags = {"continuing_episode": ec.continuing_episode, "obs_last_action": ec.obs_last_action}
    if ec.name in SMAC_ENVS:
        return flags
    for key, value in flags.items():
        if value:
            raise UserError(
                f"env.{key}=true applies to SMAC environments ({', '.join(SMAC_ENVS)}), "
                f"not to env {ec.name!r}"
            )
    return {}


def _positive(obj: Any, *names: str) -> None:
    group = _GROUP_OF.get(type(obj).__name__, type(obj).__name__)
    for n in names:
        v = getattr(obj, n)
        if v <= 0:
            raise UserError(f"{group}.{n} must be > 0, got {v!r}")


def _at_most(obj: Any, limit: int, *names: str) -> None:
    group = _GROUP_OF.get(type(obj).__name__, type(obj).__name__)
    for n in names:
        v = getattr(obj, n)
        if v > limit:
            raise UserError(f"{group}.{n} must be <= {limit:.0e}, got {v!r}")


def _choice(obj: Any, name: str, choices: Sequence[str]) -> None:
    v = getattr(obj, name)
    if v not in choices:
        group = _GROUP_OF.get(type(obj).__name__, type(obj).__name__)
        raise UserError(f"unknown {group}.{name} {v!r}; known: {', '.join(choices)}")


_GROUP_OF = {
    "EnvConfig": "env",
    "AgentConfig": "agent",
    "LearnerConfig": "learner",
    "RunConfig": "run",
    "BufferConfig": "buffer",
}


_PRESET_API = (
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
    "diff_configs",
    "load_preset",
    "preset_names",
    "resolve_config",
)


def __getattr__(name: str):
    """The resolution helpers live in :mod:`mast.presets`; they stay importable from here."""
    if name in _PRESET_API:
        from mast import presets

        return getattr(presets, name)
    raise AttributeError(f"module 'mast.config' has no attribute {name!r}")
