"""The training loop: rollouts -> replay -> learner iterations -> evaluation -> logging.

``train(cfg, callbacks=())`` runs one configuration end to end in a new run folder (see
:mod:`mast.run_dir`); ``train(cfg, resume=RUN_DIR)`` continues a run from its checkpoint.
Callbacks (:class:`TrainCallback`) let other packages observe the run without ``mast``
knowing them: they see the masks at the start and after every topology update and may add
columns to every metrics row.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from mast import run_dir as rd
from mast.buffer import DualReplayBuffer, smac_scheme
from mast.buffer.persist import EpisodeStore
from mast.config import EnvConfig, TrainConfig, smac_flags
from mast.errors import UserError, reading
from mast.learners import ValueLearner, make_learner
from mast.nonfinite import NonFiniteError, check_scalars, first_nonfinite
from mast.presets import config_from_dict, config_to_dict
from mast.runner import EpisodeRunner, RolloutStats
from mast.sparsity import FlopsReport, SparseLayer

__all__ = ["Run", "RunResult", "TrainCallback", "train", "epsilon_at"]

TEST_SEED_OFFSET = 1_000_003


@runtime_checkable
class TrainCallback(Protocol):
    """Observer of a training run; every method is optional in practice (see ``_call``)."""

    def on_start(self, run: Run) -> None: ...

    def on_topology_update(self, run: Run, t_env: int, layers: list[SparseLayer]) -> None: ...

    def on_log(self, run: Run, t_env: int, metrics: dict) -> dict: ...

    def on_end(self, run: Run) -> Sequence[str] | None:
        """May return lines for the end-of-run summary (e.g. figures, a report's path)."""


@dataclass(frozen=True)
class RunResult:
    """Outcome of :func:`train`."""

    run_dir: Path
    """The run folder."""
    t_env: int
    """Environment steps taken."""
    episodes: int
    """Training episodes run."""
    test_win_rate: float
    """Win rate of the final greedy evaluation."""
    test_return: float
    """Mean return of the final greedy evaluation."""
    flops_train: float
    """Training FLOPs per iteration relative to the dense network."""
    flops_test: float
    """Inference FLOPs relative to the dense network."""
    sparsity: float
    """Final overall sparsity of the masked weights."""
    wall_s: float
    """Wall time of this call."""
    last_row: dict
    """The final metrics row."""
    summary: tuple[str, ...] = ()
    """Lines the callbacks' ``on_end`` returned for the end-of-run summary."""


class Run:
    """What callbacks see of a run in progress."""

    def __init__(self, cfg: TrainConfig, run_dir: Path, learner: ValueLearner) -> None:
        self.cfg = cfg
        self.run_dir = run_dir
        self.learner = learner
        self.t_env = 0
        self.episode = 0
        self.resumed_at: int | None = None
        """``t_env`` of the checkpoint a resumed run continues from (``None``: a new run)."""

    def export_layers(self, with_values: bool = True) -> list[SparseLayer]:
        """Current masks (and weights) of every registered matrix."""
        return self.learner.sparsity.export_layers(with_values=with_values)


def make_env(ec: EnvConfig, n_envs: int, seed: int):
    """A batch environment (``mast.envs.make_batch_env``) with the SMAC flags of ``ec``."""
    from mast.envs import make_batch_env

    return make_batch_env(ec.name, map_name=ec.map_name, n_envs=n_envs, seed=seed, **smac_flags(ec))


def env_agent_types(env) -> list[int] | None:
    """Unit-type index of every agent (first-appearance order), if the env has a map spec."""
    allies = getattr(getattr(env, "spec", None), "allies", None)
    if allies is None:
        return None
    names = list(dict.fromkeys(allies))
    return [names.index(a) for a in allies]


def epsilon_at(cfg: TrainConfig, t_env: int) -> float:
    """Linearly annealed exploration rate at ``t_env``."""
    lc = cfg.learner
    frac = min(1.0, t_env / max(1, lc.epsilon_anneal_steps))
    return (1.0 - frac) * lc.epsilon_start + frac * lc.epsilon_finish


def _state_key(callback: object) -> str:
    """Where a callback's ``state_dict()`` goes in the checkpoint."""
    return str(getattr(callback, "state_key", type(callback).__name__))


def _call(callbacks: Sequence[object], name: str, *args) -> list:
    return [getattr(cb, name)(*args) for cb in callbacks if hasattr(cb, name)]


class _Trainer:
    """State of one training run (kept together for checkpoints)."""

    def __init__(self, cfg: TrainConfig, run_dir: Path, callbacks: Sequence[object]) -> None:
        self.cfg, self.callbacks = cfg, list(callbacks)
        rc = cfg.run
        if rc.threads:
            torch.set_num_threads(rc.threads)
        torch.manual_seed(rc.seed)
        self.np_rng = np.random.default_rng(rc.seed)
        self.act_gen = torch.Generator(device=rc.device).manual_seed(rc.seed)
        self.test_gen = torch.Generator(device=rc.device).manual_seed(rc.seed + 1)
        ec = cfg.env
        self.env = make_env(ec, ec.n_envs, rc.seed)
        self.test_env = make_env(ec, ec.test_episodes, rc.seed + TEST_SEED_OFFSET)
        info = dict(self.env.get_env_info())
        if "agent_types" not in info and env_agent_types(self.env) is not None:
            info["agent_types"] = env_agent_types(self.env)
        self.learner = make_learner(cfg, info)
        self.runner = EpisodeRunner(self.env, self.learner.controller, self.act_gen)
        self.test_runner = EpisodeRunner(self.test_env, self.learner.controller, self.test_gen)
        bc = cfg.buffer
        self.scheme = smac_scheme(
            info["n_agents"],
            info["n_actions"],
            info["obs_shape"],
            info["state_shape"],
            bc.float_storage,
            state_last_action=self.env.state_last_action,
        )
        self.buffer = DualReplayBuffer(
            self.scheme, info["episode_limit"], bc.capacity, bc.on_capacity, bc.on_fraction
        )
        self.reference = self.learner.reference_layers()
        self.run = Run(cfg, run_dir, self.learner)
        self.last = {"test": -1, "log": 0, "save": 0}
        self.train_stats: list[RolloutStats] = []
        self.test_stats: RolloutStats | None = None
        self.loss = float("nan")
        self.td = float("nan")
        self.wall_before = 0.0

    # ------------------------------------------------------------------ measurements
    def flops(self) -> FlopsReport:
        lr, mgr = self.learner, self.learner.sparsity
        iters_per_step = lr.train_steps / max(1, self.run.t_env)
        interval = None
        if mgr.spec.dynamic:
            interval = (
                max(1.0, self.cfg.sparsity.delta_t * iters_per_step)
                if lr.train_steps
                else (float(self.cfg.sparsity.delta_t))
            )
        return mgr.flops_report(
            samples_per_iteration=self.cfg.learner.batch_size,
            update_interval_iters=interval,
            reference=self.reference,
        )

    def test(self) -> None:
        _, _, self.test_stats = self.test_runner.run(epsilon=0.0)
        self.last["test"] = self.run.t_env

    def snapshot_masks(self) -> None:
        layers = self.run.export_layers(with_values=True)
        rd.save_masks(self.run.run_dir, self.run.t_env, layers)
        _call(self.callbacks, "on_topology_update", self.run, self.run.t_env, layers)

    def trim_buffer(self, before: int, after: int) -> None:
        """RLx2's dynamic capacity, checked whenever the episode count passes a multiple of
        ``buffer.dynamic_interval`` (stateless, so a resumed run checks at the same times)."""
        bc = self.cfg.buffer
        if bc.dynamic and after // bc.dynamic_interval > before // bc.dynamic_interval:
            self.buffer.trim(
                self.learner.policy_distance,
                bc.dynamic_oldest,
                bc.dynamic_threshold,
                bc.dynamic_min,
            )

    def row(self, fps: float) -> dict:
        f = self.flops()
        tr = self.train_stats
        ts = self.test_stats
        row = {
            "t_env": self.run.t_env,
            "episode": self.run.episode,
            "train_return": float(np.mean([s.mean_return for s in tr])) if tr else float("nan"),
            "train_win_rate": float(np.mean([s.win_rate for s in tr])) if tr else float("nan"),
            "test_win_rate": ts.win_rate if ts else float("nan"),
            "test_return": ts.mean_return if ts else float("nan"),
            "test_t_env": self.last["test"] if ts else -1,
            "loss": self.loss,
            "td_error_abs": self.td,
            "epsilon": epsilon_at(self.cfg, self.run.t_env),
            "sparsity": self.learner.sparsity.sparsity,
            "size_ratio": f.size_ratio,
            "flops_train_ratio": f.train_ratio,
            "flops_test_ratio": f.test_ratio,
            "topology_updates": self.learner.sparsity.n_updates,
            "buffer_episodes": len(self.buffer),
            "fps": fps,
            **self.learner.sparsity.allocation(),
        }
        for extra in _call(self.callbacks, "on_log", self.run, self.run.t_env, dict(row)):
            row.update(extra or {})
        self.train_stats = []
        return row

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self, wall: float) -> dict:
        """The checkpoint less the replay buffer's manifest (see :meth:`save`)."""
        envs = [self.env.rng_state(), self.test_env.rng_state()]
        return {
            "config": config_to_dict(self.cfg),
            "t_env": self.run.t_env,
            "episode": self.run.episode,
            "learner": self.learner.state_dict(),
            "buffer": None,
            "rng": {
                "torch": torch.get_rng_state(),
                "numpy": self.np_rng.bit_generator.state,
                "act": self.act_gen.get_state(),
                "test": self.test_gen.get_state(),
            },
            "envs": envs,
            "last": dict(self.last),
            "wall_s": wall,
            "loss": self.loss,
            "td": self.td,
            "test_stats": dataclasses.asdict(self.test_stats) if self.test_stats else None,
            "callbacks": {
                _state_key(cb): cb.state_dict()
                for cb in self.callbacks
                if hasattr(cb, "state_dict")
            },
        }

    def load_state_dict(self, state: dict) -> None:
        self.run.t_env, self.run.episode = int(state["t_env"]), int(state["episode"])
        self.learner.load_state_dict(state["learner"])
        if state["buffer"] is not None:
            self.episodes.load(self.buffer.store, state["buffer"])
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        self.np_rng.bit_generator.state = rng["numpy"]
        self.act_gen.set_state(rng["act"])
        self.test_gen.set_state(rng["test"])
        self.env.set_rng_state(state["envs"][0])
        self.test_env.set_rng_state(state["envs"][1])
        self.last = dict(state["last"])
        self.wall_before = float(state["wall_s"])
        self.loss, self.td = state["loss"], state["td"]
        ts = state["test_stats"]
        self.test_stats = RolloutStats(**ts) if ts is not None else None
        saved = state["callbacks"]
        for cb in self.callbacks:
            if hasattr(cb, "load_state_dict") and _state_key(cb) in saved:
                cb.load_state_dict(saved[_state_key(cb)])
        self.run.resumed_at = self.run.t_env

    @property
    def episodes(self) -> EpisodeStore:
        """The replay buffer's segment files in ``RUN_DIR/buffer/``."""
        folder = Path(self.run.run_dir) / rd.BUFFER_DIR
        if getattr(self, "_episodes", None) is None or self._episodes.folder != folder:
            self._episodes = EpisodeStore(folder)
        return self._episodes

    def check_finite(self, what: str) -> None:
        """Raise :class:`NonFiniteError` if a weight or optimizer state is not finite."""
        bad = first_nonfinite(self.learner.state_dict())
        if bad is not None:
            raise NonFiniteError(
                f"non-finite {bad} {what} at t_env {self.run.t_env} "
                f"(iteration {self.learner.train_steps})"
            )

    def save(self, wall: float) -> None:
        """Write a checkpoint: the buffer's new episodes, then ``checkpoint.pt``, then drop
        segments no checkpoint references. Non-finite state is never written."""
        self.check_finite("before a checkpoint")
        self.last["save"] = self.run.t_env
        state = self.state_dict(wall)
        if self.cfg.run.save_buffer:
            state["buffer"] = self.episodes.save(self.buffer.store)
        rd.save_checkpoint(self.run.run_dir, state)
        if self.cfg.run.save_buffer:
            self.episodes.prune()

    # ------------------------------------------------------------------ the loop
    def loop(self, log: rd.MetricsLog, resumed: bool) -> RunResult:
        cfg, run = self.cfg, self.run
        start = time.perf_counter()
        _call(self.callbacks, "on_start", run)
        if not resumed:
            self.snapshot_masks()
            self.save(0.0)  # every later kill can be resumed
        bar = _progress(cfg, run.t_env)
        steps_since, t_since = 0, time.perf_counter()
        try:
            return self._loop(log, bar, start, steps_since, t_since)
        except NonFiniteError as e:
            msg = f"training stopped: {e} (t_env {run.t_env}); {self._last_good()}"
            raise NonFiniteError(msg) from None

    def _last_good(self) -> str:
        path = Path(self.run.run_dir) / rd.CHECKPOINT_FILE
        if not path.is_file():
            return "no checkpoint was written"
        return f"last good checkpoint: {str(path)!r} at t_env {self.last['save']}"

    def _loop(self, log, bar, start, steps_since, t_since) -> RunResult:
        cfg, run, learner = self.cfg, self.run, self.learner
        try:
            while run.t_env < cfg.run.t_max:
                # --- act: one rollout of n_envs parallel episodes
                batch, lengths, stats = self.runner.run(epsilon_at(cfg, run.t_env))
                batch.pop("filled")
                self.buffer.insert(batch, lengths)
                run.t_env += stats.steps
                run.episode += stats.n_episodes
                self.trim_buffer(run.episode - stats.n_episodes, run.episode)
                self.train_stats.append(stats)
                steps_since += stats.steps
                bar.update(stats.steps)
                # --- learn
                if self.buffer.can_sample(cfg.learner.batch_size):
                    for _ in range(cfg.learner.updates_per_rollout):
                        sample = self.buffer.sample(cfg.learner.batch_size, self.np_rng)
                        ts = learner.train(sample, run.t_env, run.episode)
                        self.loss, self.td = ts.loss, ts.td_error_abs
                        check_scalars(
                            learner.train_steps,
                            **{"loss": ts.loss, "Q-value": ts.q_taken_mean},
                            **{"target": ts.target_mean, "gradient norm": ts.grad_norm},
                        )
                        if ts.update is not None:
                            self.snapshot_masks()
                # --- evaluate, log, save
                if run.t_env - max(self.last["test"], 0) >= cfg.run.test_interval:
                    self.test()
                if run.t_env - self.last["log"] >= cfg.run.log_interval:
                    fps = steps_since / max(1e-9, time.perf_counter() - t_since)
                    row = self.row(fps)
                    log.write(row)
                    self.last["log"] = run.t_env
                    steps_since, t_since = 0, time.perf_counter()
                    bar.show(row)
                if run.t_env - self.last["save"] >= cfg.run.save_interval:
                    self.save(self.wall_before + time.perf_counter() - start)
            # --- final evaluation, row and checkpoint
            if self.last["test"] != run.t_env:
                self.test()
            fps = steps_since / max(1e-9, time.perf_counter() - t_since)
            row = self.row(fps)
            if self.last["log"] != run.t_env or not log.path.is_file():
                log.write(row)
                self.last["log"] = run.t_env
            bar.show(row)
        finally:
            bar.close()
        wall = self.wall_before + time.perf_counter() - start
        self.save(wall)
        notes = [line for out in _call(self.callbacks, "on_end", run) for line in out or ()]
        return RunResult(
            run_dir=run.run_dir,
            t_env=run.t_env,
            episodes=run.episode,
            test_win_rate=float(row["test_win_rate"]),
            test_return=float(row["test_return"]),
            flops_train=float(row["flops_train_ratio"]),
            flops_test=float(row["flops_test_ratio"]),
            sparsity=float(row["sparsity"]),
            wall_s=wall,
            last_row=row,
            summary=tuple(notes),
        )


def _progress(cfg: TrainConfig, initial: int):
    from mast.progress import ProgressBar

    return ProgressBar(
        total=cfg.run.t_max,
        initial=initial,
        unit="step",
        disable=not cfg.run.progress,
        dynamic_ncols=True,
        desc=f"{cfg.learner.alg}-{cfg.sparsity.method}",
    )


def train(
    cfg: TrainConfig,
    callbacks: Sequence[object] = (),
    out: str | Path = "runs",
    resume: str | Path | None = None,
) -> RunResult:
    """Train ``cfg`` in a new folder under ``out``, or continue the run folder ``resume``.

    A resumed run must have the same configuration except :data:`mast.run_dir.RESUMABLE_KEYS`
    (else :class:`mast.errors.UserError` naming the first differing key); nothing in the
    folder is touched before that check. It then continues exactly as if it had never
    stopped: files written after the checkpoint (metrics rows, TensorBoard events, mask
    snapshots, buffer segments, temporary files) are cut back first.

    Raises
    ------
    mast.nonfinite.NonFiniteError
        A loss, Q-value, gradient norm or weight became NaN or infinite; the message names
        the iteration and the last good checkpoint, which is left untouched.
    """
    if resume is not None:
        run_dir = Path(resume)
        saved = rd.read_config(run_dir)
        rd.check_same_config(saved, cfg, f"run folder {str(run_dir)!r}")
        state = rd.load_checkpoint(run_dir)
        ckpt = run_dir / rd.CHECKPOINT_FILE
        with reading(ckpt, "checkpoint", (KeyError, TypeError, AttributeError)):
            saved_cfg = config_from_dict(state["config"])
        rd.check_same_config(saved_cfg, cfg, "its checkpoint")
        trainer = _Trainer(cfg, run_dir, callbacks)
        try:
            trainer.load_state_dict(state)
        except UserError:
            raise
        except (RuntimeError, KeyError, TypeError, ValueError, IndexError) as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise UserError(
                f"checkpoint of {str(run_dir)!r} does not fit its configuration: {first}"
            ) from None
        rd.cut_back(run_dir, trainer.run.t_env)
        if state["buffer"] is not None:
            trainer.episodes.prune()  # segments written after the checkpoint
        rd.write_config(run_dir, cfg)
    else:
        trainer = _Trainer(cfg, Path(out), callbacks)  # bad maps etc. fail before any write
        run_dir = rd.create_run_dir(out, cfg)
        trainer.run.run_dir = run_dir
        rd.write_config(run_dir, cfg)
    log = rd.MetricsLog(run_dir, cfg.run.tensorboard, resume_at=trainer.run.resumed_at)
    try:
        return trainer.loop(log, resumed=resume is not None)
    finally:
        log.close()
