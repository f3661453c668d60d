"""``mast-hw eval RUN_DIR --profile P``: a trained policy in float and in fixed point.

Loads the run's ``config.yaml`` and ``checkpoint.pt``, then runs ``--episodes`` greedy
test episodes (one per parallel environment of the run's map, seeded by ``--seed``) twice
on identical environment seeds: (a) with the float policy, (b) with the agent network
executed in ``P``'s fixed-point arithmetic (:class:`codesign.fixed_agent.FixedPointAgent`:
matrix products compiled by :mod:`hw.compiler` and run by :mod:`sim`, bit-exact with the
RTL). It prints both win rates and returns side by side, their ratio, and how often the
fixed-point greedy action equals the float network's on the same inputs.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from hw.profiles import HwProfile, load_profile
from mast.controllers import AgentController
from mast.errors import UserError, int_in, reading

__all__ = ["EvalResult", "configure", "evaluate_run", "run"]

DEFAULT_PROFILE = "sparse_pe_64"
EVAL_SEED_OFFSET = 2_000_003
"""Added to ``--seed`` for the evaluation environments (apart from training and test)."""
MAX_EPISODES = 1 << 14
"""Most greedy episodes one evaluation runs (they run as one batch of environments)."""


@dataclass(frozen=True)
class EvalResult:
    """Float and fixed-point greedy evaluation of one trained run."""

    run_dir: str
    profile: str
    episodes: int
    float_win_rate: float
    fixed_win_rate: float
    float_return: float
    fixed_return: float
    action_agreement: float
    """Share of (step, agent) decisions of the fixed-point rollout where the float network,
    fed the same inputs and its own float hidden state, picks the same greedy action."""
    sim_cycles: int
    """``sim`` cycles of every matrix product of the fixed-point rollout."""

    @property
    def win_ratio(self) -> float:
        """Fixed-point over float win rate (1.0 when both are 0)."""
        if self.float_win_rate == 0:
            return 1.0 if self.fixed_win_rate == 0 else float("inf")
        return self.fixed_win_rate / self.float_win_rate


class _ShadowController(AgentController):
    """Acts with the fixed-point agent; the float agent shadows it to count agreement."""

    def __init__(self, base: AgentController, fixed) -> None:
        super().__init__(
            fixed, base.n_agents, base.n_actions, base.obs_last_action, base.obs_agent_id
        )
        self.float_agent = fixed.float_agent
        self.float_hidden: torch.Tensor | None = None
        self.agree = 0
        self.decisions = 0

    def init_hidden(self, batch: int) -> None:
        super().init_hidden(batch)
        self.float_hidden = self.float_agent.init_hidden(batch)

    @torch.no_grad()
    def act(self, obs, last_actions, avail, epsilon, generator):
        inputs = self.build_inputs(obs, last_actions)
        q_float, self.float_hidden = self.float_agent(inputs, self.float_hidden)
        actions = super().act(obs, last_actions, avail, epsilon, generator)
        live = avail[..., 1:].any(dim=-1)  # agents with a choice beyond the dead no-op
        greedy = q_float.masked_fill(~avail, -float("inf")).argmax(dim=-1)
        self.agree += int(((greedy == actions) & live).sum())
        self.decisions += int(live.sum())
        return actions


def evaluate_run(
    run_dir: str | Path,
    profile: HwProfile | str,
    episodes: int = 32,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> EvalResult:
    """Greedy episodes of the run's policy in float and in ``profile``'s fixed point.

    ``progress`` is called with a line before each of the two evaluations (after the run
    folder and its checkpoint were read).
    """
    say = progress if progress is not None else (lambda _msg: None)
    from codesign.fixed_agent import FixedPointAgent
    from mast import run_dir as rd
    from mast.envs import make_batch_env
    from mast.learners import make_learner
    from mast.runner import EpisodeRunner
    from mast.train import env_agent_types

    if not isinstance(episodes, int) or not 1 <= episodes <= MAX_EPISODES:
        raise UserError(f"--episodes must be an integer in [1, {MAX_EPISODES}], got {episodes!r}")
    profile = load_profile(profile)
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run folder {str(run_dir)!r} does not exist")
    cfg, state = rd.read_config(run_dir), rd.load_checkpoint(run_dir)

    def env():
        return make_batch_env(
            cfg.env.name, map_name=cfg.env.map_name, n_envs=episodes, seed=seed + EVAL_SEED_OFFSET
        )

    test_env = env()
    info = dict(test_env.get_env_info())
    if "agent_types" not in info and env_agent_types(test_env) is not None:
        info["agent_types"] = env_agent_types(test_env)  # as training builds the learner
    learner = make_learner(cfg, info)
    with reading(run_dir / "checkpoint.pt", "checkpoint"):
        learner.load_state_dict(state["learner"])
    gen = torch.Generator().manual_seed(seed)
    say(f"playing {episodes} greedy episodes with the float32 policy")
    _, _, f_stats = EpisodeRunner(test_env, learner.controller, gen).run(epsilon=0.0)
    layers = learner.sparsity.export_layers(with_values=True)
    fixed = FixedPointAgent(learner.controller.agent, layers, profile)
    ctl = _ShadowController(learner.controller, fixed)
    say(f"playing {episodes} greedy episodes in {profile.name}'s fixed point (sim)")
    _, _, q_stats = EpisodeRunner(env(), ctl, gen).run(epsilon=0.0)
    return EvalResult(
        run_dir=str(run_dir),
        profile=profile.name,
        episodes=episodes,
        float_win_rate=f_stats.win_rate,
        fixed_win_rate=q_stats.win_rate,
        float_return=f_stats.mean_return,
        fixed_return=q_stats.mean_return,
        action_agreement=ctl.agree / max(1, ctl.decisions),
        sim_cycles=fixed.sim_cycles,
    )


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR", help="training run folder (with checkpoint.pt)")
    p.add_argument(
        "--profile",
        default=None,
        help=f"profile name or YAML (default: the run's --hw-profile, else {DEFAULT_PROFILE})",
    )
    p.add_argument(
        "--episodes",
        type=int_in(1, MAX_EPISODES),
        default=32,
        help="greedy test episodes (default 32)",
    )
    p.add_argument(
        "--seed", type=int_in(0, 2**32 - 1), default=0, help="seed of the test episodes (default 0)"
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _default_profile(run_dir: Path) -> HwProfile | str:
    meta = run_dir / "hw_meta.json"
    if meta.is_file():
        with reading(meta, "hardware metadata", (OSError, ValueError, KeyError, TypeError)):
            data = json.loads(meta.read_text())["profile"]
            if not isinstance(data, dict):
                raise TypeError(f"'profile' is a {type(data).__name__}, not a mapping")
        return HwProfile.from_dict(data, source=str(meta))
    return DEFAULT_PROFILE


def run(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    profile = args.profile or _default_profile(run_dir)
    from mast.progress import StageLog

    r = evaluate_run(run_dir, profile, args.episodes, args.seed, StageLog("mast-hw eval"))
    if args.json:
        print(json.dumps({**asdict(r), "win_ratio": r.win_ratio}, indent=2))
        return 0
    print(f"run {r.run_dir}: {r.episodes} greedy episodes per policy")
    print(f"{'policy':<28}{'win rate':>10}{'return':>10}")
    print(f"{'float32':<28}{r.float_win_rate:>10.3f}{r.float_return:>10.2f}")
    print(
        f"{'fixed point (' + r.profile + ')':<28}{r.fixed_win_rate:>10.3f}{r.fixed_return:>10.2f}"
    )
    print(
        f"fixed/float win rate {r.win_ratio:.3f}; greedy actions equal to float "
        f"{100 * r.action_agreement:.1f}%; sim cycles of the matrix products {r.sim_cycles}"
    )
    return 0
