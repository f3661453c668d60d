"""Replay-buffer memory: bytes per episode on the paper's maps and peak RSS when full.

Prints the stored bytes of one padded (episode-limit long) episode for 3m, 3s5z and
2c_vs_64zg (with the state's last-action codes rebuilt from the stored actions, as training
stores them, and without), then fills a 5000-episode 2c_vs_64zg buffer with random
full-length episodes (``--length`` for shorter ones) and prints the buffer's reserved and
used bytes, the process's peak resident memory (``resource.getrusage``), the time to fill
and to sample a 32-episode batch. Last, on 8m and 2c_vs_64zg (``--checkpoint-maps``), the
bytes one checkpoint writes once the buffer is full: the previous format (the whole buffer
inside ``checkpoint.pt``) against the incremental one (``checkpoint.pt`` with the model,
optimizer and a manifest, plus one segment of the episodes added since the last checkpoint).

Usage: ``python bench/buffer_memory.py [--episodes 5000] [--float-storage float16|float32|snorm8]``
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from mast import run_dir as rd
from mast.buffer import FLOAT_STORAGES, DualReplayBuffer, EpisodeBuffer, smac_scheme
from mast.buffer.persist import EpisodeStore
from mast.config import TrainConfig
from mast.errors import run_cli
from mast.learners import make_learner
from mast.presets import resolve_config

# SMAC's get_env_info() of the maps (n_agents, n_actions, obs_shape, state_shape, limit).
MAPS: dict[str, tuple[int, int, int, int, int]] = {
    "3m": (3, 9, 30, 48, 60),
    "8m": (8, 14, 80, 168, 120),
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


def _files(folder: Path) -> dict[str, int]:
    return {str(p): p.stat().st_size for p in folder.rglob("*") if p.is_file()}


def checkpoint_bytes(map_name: str, episodes: int, float_storage: str) -> None:
    """Bytes one checkpoint writes in steady state, before and after incremental segments.

    A ``qmix_mast`` learner for ``map_name`` and a full buffer of ``episodes`` random
    full-length episodes; then the episodes one checkpoint interval adds
    (``run.save_interval`` env steps) are inserted and one checkpoint is written:

    - before: the previous format, ``checkpoint.pt`` holding the model, the optimizer and the
      whole buffer's written slots as tensors;
    - after: ``checkpoint.pt`` (model, optimizer, buffer manifest) plus the new segment.
    """
    n_agents, n_actions, obs, state, limit = MAPS[map_name]
    cfg: TrainConfig = resolve_config(
        "qmix_mast", None, None, {"env.map_name": map_name}, [f"buffer.capacity={episodes}"]
    )
    info = {
        "n_agents": n_agents,
        "n_actions": n_actions,
        "obs_shape": obs,
        "state_shape": state,
        "episode_limit": limit,
    }
    learner = make_learner(cfg, info)
    scheme = smac_scheme(n_agents, n_actions, obs, state, float_storage, True)
    buf = DualReplayBuffer(scheme, limit, off_capacity=episodes, on_capacity=64)
    rng = np.random.default_rng(0)
    per_interval = max(1, cfg.run.save_interval // limit)
    with tempfile.TemporaryDirectory(prefix="mast-ckpt-") as tmp:
        run = Path(tmp)
        store = EpisodeStore(run / rd.BUFFER_DIR)
        for phase, count in (("fill", episodes), ("interval", per_interval)):
            filled = 0
            while filled < count:
                n = min(CHUNK, count - filled)
                buf.insert(random_chunk(rng, n, MAPS[map_name]), np.full(n, limit))
                filled += n
            if phase == "fill":  # the checkpoint before: every episode already on disk
                rd.save_checkpoint(run, {"buffer": store.save(buf.store)})
                store.prune()
        model = len(rd_bytes({"learner": learner.state_dict()}))
        before_files = _files(run)
        start = time.perf_counter()
        manifest = store.save(buf.store)
        rd.save_checkpoint(run, {"learner": learner.state_dict(), "buffer": manifest})
        store.prune()
        after_s = time.perf_counter() - start
        after_files = _files(run)
        segment = sum(s for p, s in after_files.items() if p not in before_files)
        written = after_files[str(run / rd.CHECKPOINT_FILE)] + segment
        start = time.perf_counter()
        old = {
            "learner": learner.state_dict(),
            "buffer": {
                k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v
                for k, v in buf.state_dict(written_only=True).items()
            },
        }
        old_path = run / "old_checkpoint.pt"
        torch.save(old, old_path)
        before_s = time.perf_counter() - start
        before = old_path.stat().st_size
        old_path.unlink()
        fresh = DualReplayBuffer(scheme, limit, off_capacity=episodes, on_capacity=64)
        start = time.perf_counter()
        EpisodeStore(run / rd.BUFFER_DIR).load(
            fresh.store,
            torch.load(run / rd.CHECKPOINT_FILE, weights_only=True, mmap=True)["buffer"],
        )
        load_s = time.perf_counter() - start
    print(
        f"{map_name} checkpoint, buffer of {len(buf)} episodes of {limit} steps, "
        f"{per_interval} new per {cfg.run.save_interval} env steps:"
    )
    print(f"  before (whole buffer in checkpoint.pt) {before / 1e6:10.1f} MB in {before_s:.1f} s")
    print(
        f"  after  (checkpoint.pt + new segment)   {written / 1e6:10.1f} MB in {after_s:.1f} s "
        f"(model + optimizer {model / 1e6:.2f} MB, new episodes {segment / 1e6:.1f} MB, "
        f"{per_interval} x {buf.bytes_per_episode(limit) / 1e6:.3f} MB); "
        f"buffer read back in {load_s:.1f} s"
    )


def rd_bytes(state: dict) -> bytes:
    """``state`` as ``torch.save`` writes it."""
    import io

    fh = io.BytesIO()
    torch.save(state, fh)
    return fh.getvalue()


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
    parser.add_argument(
        "--checkpoint-maps",
        default="8m,2c_vs_64zg",
        help="maps whose bytes written per checkpoint are measured (comma-separated)",
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
    del buf, batch  # the checkpoint measurements fill their own buffers
    for name in args.checkpoint_maps.split(","):
        checkpoint_bytes(name, args.episodes, args.float_storage)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli("buffer_memory", main))
