"""A short training run with ``--hw-profile`` shared by the co-design tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from codesign.train import main

# Tiny network, batches and intervals: a few hundred env steps, several topology updates.
SHORT_ARGS = [
    "--t-max",
    "240",
    "--no-progress",
    "agent.hidden_dim=16",
    "env.n_envs=4",
    "env.test_episodes=4",
    "learner.batch_size=4",
    "sparsity.delta_t=60",
    "sparsity.t_end=100000",
    "run.test_interval=120",
    "run.log_interval=60",
    "run.tensorboard=false",
    "run.save_buffer=false",
    "run.threads=1",
]


def train_short(out: Path, *extra: str) -> Path:
    """Run ``mast-train`` with :data:`SHORT_ARGS` and ``extra``; return the run folder."""
    before = torch.get_num_threads()
    try:
        rc = main([*SHORT_ARGS, "--out", str(out), *extra])
    finally:
        torch.set_num_threads(before)
    assert rc == 0
    (run_dir,) = out.iterdir()
    return run_dir


@pytest.fixture(scope="session")
def short_trainer():
    """:func:`train_short`, for tests that need their own run."""
    return train_short


@pytest.fixture(scope="session")
def short_run(tmp_path_factory) -> Path:
    """``mast-train --hw-profile sparse_pe_64`` for ~240 env steps."""
    return train_short(tmp_path_factory.mktemp("hw_run"), "--hw-profile", "sparse_pe_64")
