"""The vectorised runner's episode layout and the epsilon-greedy controller."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fake_env import FakeBatchEnv

from mast.agents import RNNAgent
from mast.controllers import AgentController, epsilon_greedy
from mast.presets import resolve_config
from mast.runner import EpisodeRunner
from mast.train import epsilon_at


def _runner(seed=0, continuing_episode=True):
    env = FakeBatchEnv(
        n_envs=6,
        n_agents=2,
        n_actions=4,
        episode_limit=5,
        seed=seed,
        continuing_episode=continuing_episode,
    )
    info = env.get_env_info()
    d_in = AgentController.input_dim(info["obs_shape"], 2, 4)
    torch.manual_seed(seed)
    ctrl = AgentController(RNNAgent(d_in, 4, 2, hidden_dim=8), 2, 4)
    return EpisodeRunner(env, ctrl, torch.Generator().manual_seed(seed))


def test_episode_layout_matches_the_environment():
    batch, lengths, stats = _runner().run(epsilon=1.0)
    assert batch["obs"].shape[:2] == (6, 6) and lengths.min() >= 1 and lengths.max() <= 5
    assert stats.steps == lengths.sum() and stats.n_episodes == 6
    for i, n in enumerate(lengths):
        assert batch["filled"][i, :n].all() and not batch["filled"][i, n:].any()
        assert batch["avail_actions"][i, : n + 1].any(-1).all()  # states 0..n stored
        assert not batch["avail_actions"][i, : n + 1, :, 0].any()  # action 0 never legal
        won = batch["reward"][i, n - 1] > 0
        assert batch["terminated"][i, n - 1] == won  # a continuing time-out is not terminal
        assert not batch["terminated"][i, : n - 1].any()
        assert stats.win_rate == np.mean(batch["reward"][np.arange(6), lengths - 1] > 0)


def test_time_outs_are_terminal_without_continuing_episode():
    """SMAC's default: the time-out carries no episode_limit flag and is stored terminal."""
    batch, lengths, _ = _runner(continuing_episode=False).run(epsilon=1.0)
    assert (lengths == 5).any()  # some episodes time out
    for i, n in enumerate(lengths):
        assert batch["terminated"][i, n - 1]
        assert not batch["terminated"][i, : n - 1].any()


def test_greedy_rollouts_are_reproducible():
    a = _runner(1).run(epsilon=0.0)[0]
    b = _runner(1).run(epsilon=0.0)[0]
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_epsilon_greedy_respects_availability_and_rate():
    g = torch.Generator().manual_seed(0)
    q = torch.zeros(20000, 4)
    q[:, 3] = 1.0
    avail = torch.ones(20000, 4, dtype=torch.bool)
    avail[:, 0] = False
    acts = epsilon_greedy(q, avail, 0.3, g)
    assert (acts != 0).all()
    # greedy w.p. 0.7 plus 1/3 of the random picks
    assert float((acts == 3).float().mean()) == pytest.approx(0.8, abs=0.02)
    q[:, 3] = -1.0
    avail[:, 3] = False
    assert (epsilon_greedy(q, avail, 0.0, g) != 3).all()


def test_epsilon_schedule_is_linear():
    cfg = resolve_config(overrides=["learner.epsilon_anneal_steps=1000"])
    assert epsilon_at(cfg, 0) == 1.0
    assert epsilon_at(cfg, 500) == pytest.approx(0.525)
    assert epsilon_at(cfg, 10**6) == cfg.learner.epsilon_finish


def test_checkpointed_buffer_state_is_compact_and_exact():
    from mast.buffer import DualReplayBuffer, smac_scheme

    runner = _runner()
    info = runner.env.get_env_info()
    scheme = smac_scheme(2, 4, info["obs_shape"], info["state_shape"])
    buf = DualReplayBuffer(scheme, info["episode_limit"], off_capacity=50, on_capacity=4)
    batch, lengths, _ = runner.run(epsilon=1.0)
    batch.pop("filled")
    buf.insert(batch, lengths)
    state = buf.state_dict()
    small = {
        k: torch.from_numpy(v.copy()) if isinstance(v, np.ndarray) else v
        for k, v in buf.state_dict(written_only=True).items()
    }
    assert small["data.obs"].shape[0] == 6 and state["data.obs"].shape[0] == 50
    restored = DualReplayBuffer(scheme, info["episode_limit"], off_capacity=50, on_capacity=4)
    restored.load_state_dict(small)
    for k, v in restored.state_dict().items():
        assert np.array_equal(v, state[k]), k
