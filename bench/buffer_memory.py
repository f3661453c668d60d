"""Replay-buffer memory: bytes per episode on the paper's maps and peak RSS when full.

Prints the stored bytes of one padded (episode-limit long) episode for 3m, 3s5z and
2c_vs_64zg (with the state's last-action codes rebuilt from the stored actions, as training
stores them, and without), then fills a 5000-episode 2c_vs_64zg buffer with random
full-length episodes (``--length`` for shorter ones) and prints the buffer's reserved and
used bytes, the process's peak resident memory (``resource.getrusage``), the time to fill
and to sample a 32-episode batch, and the size, time and memory of checkpointing it as
training does (``mast.train.buffer_checkpoint``).

Usage: ``python bench/buffer_memory.py [--episodes 5000] [--float-storage float16|float32|snorm8]``
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from mast.buffer import FLOAT_STORAGES, DualReplayBuffer, EpisodeBuffer, smac_scheme
from mast.errors import run_cli
from mast.run_dir import load_checkpoint, save_checkpoint
from mast.train import buffer_checkpoint

# SMAC's get_env_info() of the maps (n_agents, n_actions, obs_shape, state_shape, limit).
MAPS: dict[str, tuple[int, int, int, int, int]] = {
    "3m": (3, 9, 30, 48, 60),
    "3s5z": (8, 14, 128, 216, 150),
    "2c_vs_64zg": (2, 70, 332, 342, 400),
}
CHUNK = 8
GIB = 2**30


def peak_rss_bytes() -> int:
    """Peak resident set size of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def random_chunk(rng: np.random.Generator, n: int, shape: tuple[int, ...]) -> dict:
    """``n`` random episodes whose state ends with the previous actions' one-hot codes."""
    n_agents, n_actions, obs, state, limit = shape
    t = limit + 1
    actions = rng.integers(0, n_actions, size=(n, t, n_agents), dtype=np.int64)
    states = rng.random((n, t, state), dtype=np.float32) * 2 - 1
    tail = n_agents * n_actions
    states[:, 0, -tail:] = 0.0
    states[:, 1:, -tail:] = np.eye(n_actions, dtype=np.float32)[actions[:, :-1]].reshape(
        n, t - 1, tail
    )
    return {
        "obs": rng.random((n, t, n_agents, obs), dtype=np.float32) * 2 - 1,
        "state": states,
        "avail_actions": rng.random((n, t, n_agents, n_actions), dtype=np.float32) < 0.5,
        "actions": actions,
        "reward": rng.random((n, t), dtype=np.float32),
        "terminated": np.zeros((n, t), dtype=bool),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=5000, help="buffer capacity to fill")
    parser.add_argument(
        "--float-storage",
        default="float16",
        choices=FLOAT_STORAGES,
        help="storage of observations and state",
    )
    parser.add_argument(
        "--length",
        type=int,
        default=400,
        help="transitions per inserted episode (the episode limit, 400, is the worst case)",
    )
    args = parser.parse_args(argv)

    print(
        "bytes per padded episode by obs/state storage (5000 episodes in GiB), last actions "
        "rebuilt / stored in the state:"
    )
    for name, (n_agents, n_actions, obs, state, limit) in MAPS.items():
        cells = []
        for storage in FLOAT_STORAGES:
            per_ep = [
                EpisodeBuffer(
                    smac_scheme(n_agents, n_actions, obs, state, storage, rebuilt), 1, limit
                ).bytes_per_episode()
                for rebuilt in (True, False)
            ]
            cells.append(
                f"{storage} {per_ep[0]:>7,d} / {per_ep[1]:>7,d} B "
                f"({5000 * per_ep[0] / GIB:4.2f} / {5000 * per_ep[1] / GIB:4.2f} GiB)"
            )
        print(f"  {name:<10} limit {limit:>3}: " + ", ".join(cells))

    shape = MAPS["2c_vs_64zg"]
    n_agents, n_actions, obs, state, limit = shape
    scheme = smac_scheme(n_agents, n_actions, obs, state, args.float_storage, True)
    print("2c_vs_64zg bytes per padded episode by field:")
    for name, spec in scheme.items():
        dt = f"{spec.storage} ({spec.dtype})"
        print(
            f"  {name:<13} {dt:<18} {spec.slots(limit):>3} x {spec.bytes_per_step:>5,d} B "
            f"= {spec.slots(limit) * spec.bytes_per_step:>9,d} B"
        )
    rss_before = peak_rss_bytes()
    buf = DualReplayBuffer(
        scheme, limit, off_capacity=args.episodes, on_capacity=min(64, max(1, args.episodes))
    )
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    filled = 0
    while filled < args.episodes:
        n = min(CHUNK, args.episodes - filled)
        buf.insert(random_chunk(rng, n, shape), np.full(n, args.length))
        filled += n
    fill_s = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(5):
        batch = buf.sample(min(32, len(buf)), rng)
    sample_ms = (time.perf_counter() - start) / 5 * 1e3
    rss = peak_rss_bytes()
    print(
        f"2c_vs_64zg buffer of {len(buf)} episodes of {args.length} steps ({args.float_storage}):"
    )
    print(f"  reserved      {buf.nbytes / 1e9:7.3f} GB ({buf.nbytes / GIB:6.3f} GiB)")
    used = len(buf) * buf.bytes_per_episode(args.length)
    print(f"  episode bytes {used / 1e9:7.3f} GB ({used / GIB:6.3f} GiB)")
    print(
        f"  peak RSS      {rss / 1e9:7.3f} GB ({rss / GIB:6.3f} GiB), "
        f"{rss_before / 1e9:.3f} GB before the buffer"
    )
    print(
        f"  fill          {fill_s:7.1f} s ({args.episodes / fill_s:.0f} episodes/s incl. "
        f"random data)"
    )
    print(f"  sample        {sample_ms:7.1f} ms per batch (obs {tuple(batch['obs'].shape)})")
    with tempfile.TemporaryDirectory(prefix="mast-buffer-") as tmp:
        start = time.perf_counter()
        path = save_checkpoint(Path(tmp), {"buffer": buffer_checkpoint(buf)})
        save_s = time.perf_counter() - start
        rss = peak_rss_bytes()
        start = time.perf_counter()
        buf.load_state_dict(load_checkpoint(Path(tmp))["buffer"])
        load_s = time.perf_counter() - start
        print(
            f"  checkpoint    {path.stat().st_size / 1e9:7.3f} GB written in {save_s:.1f} s, "
            f"peak RSS after it {rss / 1e9:.3f} GB; read back in {load_s:.1f} s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli("buffer_memory", main))
