"""Incremental buffer persistence: each save writes only new episodes; load is exact."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_buffer import episodes, make

from mast.buffer.persist import EpisodeStore
from mast.errors import UserError


def _same(a, b, rng_seed=7):
    """Both buffers hold the same episodes in the same order and sample alike."""
    assert (len(a), a.total_inserted) == (len(b), b.total_inserted)
    ga, gb = a.gather(a.newest_slots(len(a))), b.gather(b.newest_slots(len(b)))
    assert ga.keys() == gb.keys()
    for k in ga:
        assert torch.equal(ga[k], gb[k]), k
    sa = a.sample(3, np.random.default_rng(rng_seed))
    sb = b.sample(3, np.random.default_rng(rng_seed))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def _segment_ids(path):
    return torch.load(path, weights_only=True)["ids"].tolist()


def test_saves_write_only_new_episodes_and_restore_exactly(tmp_path):
    rng = np.random.default_rng(0)
    buf, store = make(capacity=10), EpisodeStore(tmp_path / "buffer")
    manifests = []
    for n, drop in [(4, 0), (5, 0), (6, 2), (13, 0), (1, 3)]:  # wraps the ring, drops oldest
        buf.insert(*episodes(rng, n))
        buf.drop_oldest(drop)
        before = set((tmp_path / "buffer").glob("*.pt")) if manifests else set()
        manifests.append(store.save(buf))
        store.prune()
        new = set((tmp_path / "buffer").glob("*.pt")) - before
        live = buf._ids[buf.newest_slots(len(buf))].tolist()
        # the new segment holds exactly the stored episodes inserted since the last save
        prev_total = buf.total_inserted - n
        (seg,) = new
        assert _segment_ids(seg) == [i for i in live if i >= prev_total]
        assert manifests[-1]["ids"].tolist() == live
        fresh = make(capacity=10)
        EpisodeStore(tmp_path / "buffer").load(fresh, manifests[-1])
        _same(buf, fresh)
        # and both continue alike: the slots a restored buffer reuses are the same
        more = episodes(np.random.default_rng(len(manifests)), 3)
        clone = make(capacity=10)
        EpisodeStore(tmp_path / "buffer").load(clone, manifests[-1])
        for b in (fresh, clone):
            b.insert(*more)
        _same(fresh, clone)
    # segments no longer referenced were deleted; those referenced hold every stored episode
    names = sorted(p.name for p in (tmp_path / "buffer").iterdir())
    assert names == sorted(s[0] for s in manifests[-1]["segments"])


def test_bytes_written_per_save_follow_new_episodes_not_the_buffer(tmp_path):
    rng = np.random.default_rng(1)
    buf, store = make(capacity=200, limit=20), EpisodeStore(tmp_path)
    buf.insert(*episodes(rng, 200, lengths=np.full(200, 20)))
    store.save(buf)
    full = sum(p.stat().st_size for p in tmp_path.iterdir())
    buf.insert(*episodes(rng, 10, lengths=np.full(10, 20)))
    store.save(buf)
    store.prune()
    newest = max(tmp_path.iterdir(), key=lambda p: p.name)
    assert _segment_ids(newest) == list(range(200, 210))
    per_episode = buf.bytes_per_episode(20)
    assert 10 * per_episode <= newest.stat().st_size < 10 * per_episode + 4096
    assert full > 19 * newest.stat().st_size


def test_missing_foreign_or_mismatched_segments_are_one_line_errors(tmp_path):
    rng = np.random.default_rng(2)
    buf, store = make(capacity=8), EpisodeStore(tmp_path)
    buf.insert(*episodes(rng, 5))
    manifest = store.save(buf)
    (seg,) = tmp_path.iterdir()
    with pytest.raises(UserError, match="does not match the buffer's scheme"):
        EpisodeStore(tmp_path).load(make(capacity=8, float_storage="float32"), manifest)
    data = seg.read_bytes()
    seg.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match=r"episodes_000000000-000000004\.pt' is unreadable"):
        EpisodeStore(tmp_path).load(make(capacity=8), manifest)
    seg.unlink()
    with pytest.raises(UserError, match=r"episodes_000000000-000000004\.pt' is missing"):
        EpisodeStore(tmp_path).load(make(capacity=8), manifest)
    with pytest.raises(UserError, match="manifest has format None, not mast-episodes/1"):
        EpisodeStore(tmp_path).load(make(capacity=8), {"ids": manifest["ids"]})
    with pytest.raises(UserError, match="holds 5 ids for size 5, next 5; .* capacity 4"):
        EpisodeStore(tmp_path).load(make(capacity=4), manifest)
