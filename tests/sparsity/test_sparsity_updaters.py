"""Drop/grow rule: exact choices, disjointness, nnz kept, zero-initialised growth."""

import pytest
import torch

from mast.sparsity import (
    GradientUpdater,
    RandomGrowthUpdater,
    SparsityConfig,
    SparsityManager,
)


def _case(shape=(6, 5), seed=0):
    g = torch.Generator().manual_seed(seed)
    n = shape[0] * shape[1]
    # distinct magnitudes so "smallest |w|" / "largest |grad|" are unique
    w = (torch.randperm(n, generator=g).float() + 1.0).reshape(shape)
    w *= torch.where(torch.rand(shape, generator=g) < 0.5, -1.0, 1.0)
    grad = (torch.randperm(n, generator=g).float() + 1.0).reshape(shape)
    grad *= torch.where(torch.rand(shape, generator=g) < 0.5, -1.0, 1.0)
    mask = torch.zeros(n, dtype=torch.bool)
    mask[torch.randperm(n, generator=g)[: n // 3]] = True
    return w * mask.reshape(shape), grad, mask.reshape(shape)


@pytest.mark.parametrize("seed", range(5))
def test_rigl_drops_smallest_weights_grows_largest_grads(seed):
    w, grad, mask = _case(seed=seed)
    nnz = int(mask.sum())
    k = int(0.3 * nnz)
    change = GradientUpdater().update(w, mask, 0.3, grad, torch.Generator())
    active = mask.reshape(-1).nonzero().squeeze(1)
    inactive = (~mask).reshape(-1).nonzero().squeeze(1)
    expect_drop = active[torch.argsort(w.reshape(-1)[active].abs())[:k]]
    expect_grow = inactive[torch.argsort(grad.reshape(-1)[inactive].abs(), descending=True)[:k]]
    assert set(change.dropped.tolist()) == set(expect_drop.tolist())
    assert set(change.grown.tolist()) == set(expect_grow.tolist())
    assert not set(change.dropped.tolist()) & set(change.grown.tolist())
    assert int(change.mask.sum()) == nnz
    expected = mask.reshape(-1).clone()
    expected[expect_drop] = False
    expected[expect_grow] = True
    assert torch.equal(change.mask.reshape(-1), expected)


def test_set_grows_only_inactive_and_keeps_nnz():
    w, grad, mask = _case(shape=(8, 8), seed=3)
    nnz = int(mask.sum())
    change = RandomGrowthUpdater().update(w, mask, 0.5, None, torch.Generator().manual_seed(1))
    assert change.grown.numel() == change.dropped.numel() == int(0.5 * nnz)
    assert not mask.reshape(-1)[change.grown].any()
    assert mask.reshape(-1)[change.dropped].all()
    assert int(change.mask.sum()) == nnz
    active = mask.reshape(-1).nonzero().squeeze(1)
    smallest = active[torch.argsort(w.reshape(-1)[active].abs())[: change.dropped.numel()]]
    assert set(change.dropped.tolist()) == set(smallest.tolist())


def test_rlx2_regrows_a_just_dropped_connection_with_its_weight():
    """RLx2's scheduler (RigL's PyTorch port): growth ranks every entry inactive after the
    drop, so a dropped connection with the largest gradient comes straight back, keeping
    its weight; RigL's rule grows only entries inactive before the drop."""
    w = torch.tensor([[0.1, 5.0, 0.0, 0.0], [4.0, 3.0, 0.0, 0.0]])
    mask = w != 0
    grad = torch.tensor([[9.0, 0.1, 1.0, 0.2], [0.1, 0.1, 0.3, 0.4]])
    rlx2 = GradientUpdater(regrow_dropped=True).update(w, mask, 0.5, grad, torch.Generator())
    # drop the two smallest |w| (0.1 at 0, 3.0 at 5); grow the two largest |grad| among
    # the rest: entry 0 (just dropped, 9.0) and entry 2 (1.0)
    assert rlx2.dropped.tolist() == [5] and rlx2.grown.tolist() == [2]
    assert rlx2.mask.reshape(-1).tolist() == [1, 1, 1, 0, 1, 0, 0, 0]
    rigl = GradientUpdater().update(w, mask, 0.5, grad, torch.Generator())
    assert sorted(rigl.dropped.tolist()) == [0, 5] and sorted(rigl.grown.tolist()) == [2, 7]
    p = torch.nn.Parameter(w.clone())
    cfg = dict(sparsity=0.5, distribution="uniform", init="magnitude", delta_t=1, t_end=9)
    mgr = SparsityManager(SparsityConfig(method="rlx2", zeta=0.5, decay="constant", **cfg))
    mgr.register("w", p)
    mgr.build()
    p.grad = grad.clone()
    mgr.step(1)
    assert p.detach().reshape(-1).tolist() == [
        pytest.approx(0.1),
        5.0,
        0.0,
        0.0,
        4.0,
        0.0,
        0.0,
        0.0,
    ]  # the regrown entry keeps 0.1; the new one starts at 0


def test_swap_capped_by_free_entries():
    mask = torch.ones(4, 4, dtype=torch.bool)
    mask[0, 0] = False
    w = torch.randn(4, 4) * mask
    change = GradientUpdater().update(w, mask, 0.5, torch.randn(4, 4), torch.Generator())
    assert change.grown.tolist() == [0]
    assert change.dropped.numel() == 1
    assert int(change.mask.sum()) == 15


def test_gradient_growth_needs_gradient():
    w, _, mask = _case()
    with pytest.raises(ValueError, match="dense gradient"):
        GradientUpdater().update(w, mask, 0.3, None, torch.Generator())


@pytest.mark.parametrize("method", ["rigl", "set", "mast", "rlx2"])
def test_manager_update_zero_inits_growth_and_resets_state(method):
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.randn(8, 6))
    cfg = SparsityConfig(
        method=method,
        sparsity=0.75,
        distribution="uniform",
        delta_t=1,
        t_end=100,
        zeta=0.5,
        decay="constant",
    )
    mgr = SparsityManager(cfg)
    mgr.register("w", p)
    mgr.build()
    opt = torch.optim.Adam([p], lr=0.1)
    for _ in range(3):  # build optimizer state on the active entries
        opt.zero_grad()
        (p * torch.randn(8, 6)).sum().backward()
        mgr.mask_grads_()
        opt.step()
    old = mgr.mask("w").clone()
    w_before = p.detach().clone()
    opt.zero_grad()
    (p.sum() ** 2 + (p * torch.randn(8, 6)).sum()).backward()
    res = mgr.step(1, opt)
    assert res.skip_optimizer_step and res.update is not None
    new = mgr.mask("w")
    grown, dropped = new & ~old, old & ~new
    swaps = int(0.5 * 12)
    if method == "rlx2":  # just-dropped entries may be grown back: at most k swaps
        swaps = int(grown.sum())
        assert swaps <= int(0.5 * 12)
    assert int(grown.sum()) == int(dropped.sum()) == swaps == res.update.swapped["w"]
    assert int(new.sum()) == 12
    assert torch.all(p[grown] == 0) and torch.all(p[~new] == 0)
    assert torch.equal(p[new & old], w_before[new & old])
    for key in ("exp_avg", "exp_avg_sq"):
        state = opt.state[p][key]
        assert torch.all(state[~new] == 0) and torch.all(state[grown] == 0)
        assert torch.any(state[new & old] != 0)
    assert torch.all(p.grad[~new] == 0) and torch.all(p.grad[grown] == 0)


def test_stacked_tensor_reallocates_across_types():
    # (types, out, in): one masked unit, so growth may move connections between types
    p = torch.nn.Parameter(torch.zeros(2, 2, 4))
    with torch.no_grad():
        p[0] = torch.tensor([[0.1, 0.2, 0.0, 0.0], [0.3, 0.4, 0.0, 0.0]])
        p[1] = torch.tensor([[5.0, 6.0, 0.0, 0.0], [7.0, 8.0, 0.0, 0.0]])
    cfg = SparsityConfig(
        method="rigl",
        sparsity=0.5,
        distribution="uniform",
        init="magnitude",
        delta_t=1,
        t_end=10,
        zeta=0.5,
        decay="constant",
    )
    mgr = SparsityManager(cfg)
    mgr.register("heads", p, uses_per_env_step=(1, 2))
    mgr.build()
    assert mgr.mask("heads")[0].sum() == 4 and mgr.mask("heads")[1].sum() == 4
    grad = torch.zeros(2, 2, 4)
    grad[1, :, 2:] = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    p.grad = grad
    mgr.step(1)
    m = mgr.mask("heads")
    assert int(m[0].sum()) == 0 and int(m[1].sum()) == 8 and int(m.sum()) == 8
    layers = mgr.export_layers()
    assert [(x.name, x.nnz, x.uses_per_env_step) for x in layers] == [
        ("heads[0]", 0, 1),
        ("heads[1]", 8, 2),
    ]


def test_hw_aware_growth_caps_row_lengths_and_keeps_nnz():
    g = torch.Generator().manual_seed(0)
    rows, cols = 16, 32
    mask = torch.zeros(rows, cols, dtype=torch.bool)
    mask[:4, :] = True  # 128 non-zeros crowded in four rows: cap = ceil(128/16) = 8
    weight = torch.randn(rows, cols, generator=g) * mask
    grad = torch.randn(rows, cols, generator=g)
    grad[:4] *= 100  # the unconstrained rule would regrow into the crowded rows
    upd = GradientUpdater(row_balanced=True)
    for _ in range(6):
        change = upd.update(weight, mask, 0.5, grad, g)
        assert int(change.mask.sum()) == 128
        grown_rows = change.grown // cols
        counts_after_drop = mask.clone().reshape(-1)
        counts_after_drop[change.dropped] = False
        before = counts_after_drop.reshape(rows, cols).sum(1)
        per_row = torch.bincount(grown_rows, minlength=rows)
        assert bool(((before + per_row)[per_row > 0] <= 8).all())
        mask = change.mask
        weight = torch.randn(rows, cols, generator=g) * mask
    assert int(mask.sum(1).max()) < 32  # crowded rows drained toward the cap
    free = GradientUpdater().update(weight, mask, 0.5, grad, g)
    assert int(free.mask.sum()) == 128


def test_constant_fan_in_drops_and_grows_within_each_row():
    g = torch.Generator().manual_seed(1)
    rows, cols = 12, 20
    w, grad, _ = _case((rows, cols), seed=3)
    counts = torch.tensor([7, 7, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6])
    mask = torch.rand(rows, cols, generator=g).argsort(1).argsort(1) < counts[:, None]
    w = w * mask
    grad[:2] *= 1000  # unconstrained growth would crowd the first two rows
    change = GradientUpdater(constant_fan_in=True).update(w, mask, 0.5, grad, g)
    assert torch.equal(change.mask.sum(1), counts)
    for r in range(rows):  # each row: its own floor(0.5 n_r) smallest |w| out, best |grad| in
        k = int(0.5 * int(counts[r]))
        act, inact = mask[r].nonzero().squeeze(1), (~mask[r]).nonzero().squeeze(1)
        drop = act[torch.argsort(w[r, act].abs())[:k]] + r * cols
        grow = inact[torch.argsort(grad[r, inact].abs(), descending=True)[:k]] + r * cols
        assert set(drop.tolist()) <= set(change.dropped.tolist())
        assert set(grow.tolist()) <= set(change.grown.tolist())
    assert change.dropped.numel() == change.grown.numel() == 2 * 3 + 10 * 3
    free = GradientUpdater().update(w, mask, 0.5, grad, g)
    assert int(free.mask[:2].sum()) > 14  # the constraint is what kept the rows


@pytest.mark.parametrize(("method", "init"), [("mast", "magnitude"), ("set", "random")])
def test_constant_fan_in_masks_stay_balanced_through_training(method, init):
    torch.manual_seed(0)
    fc = torch.nn.Parameter(torch.randn(10, 16))
    stacked = torch.nn.Parameter(torch.randn(2, 5, 16))  # per-type rows count as rows
    cfg = SparsityConfig(
        method=method, sparsity=0.8, distribution="uniform", init=init, delta_t=1, t_end=50,
        constant_fan_in=True,
    )  # fmt: skip
    mgr = SparsityManager(cfg)
    mgr.register("fc", fc)
    mgr.register("stacked", stacked)
    before = fc.detach().abs().clone()  # build() zeroes the weights it drops
    mgr.build()
    for name, n in (("fc", 32), ("stacked", 32)):
        lengths = mgr.mask(name).reshape(-1, 16).sum(1)
        assert int(lengths.sum()) == n and int(lengths.max() - lengths.min()) <= 1
    if init == "magnitude":  # the largest |w| of each row
        m, a = mgr.mask("fc"), before
        for r in range(10):
            assert float(a[r][m[r]].min()) > float(a[r][~m[r]].max())
    first = {n: mgr.mask(n).reshape(-1, 16).sum(1).clone() for n in ("fc", "stacked")}
    changed = 0
    for t in range(1, 6):
        (fc.sum() ** 2 + (stacked * torch.randn(2, 5, 16)).sum()).backward()
        old = mgr.mask("fc").clone()
        assert mgr.step(t).update is not None
        changed += int((mgr.mask("fc") != old).sum())
        for n in ("fc", "stacked"):
            assert torch.equal(mgr.mask(n).reshape(-1, 16).sum(1), first[n])
        fc.grad = stacked.grad = None
    assert changed > 0


def test_constant_fan_in_and_hw_aware_growth_exclude_each_other():
    with pytest.raises(ValueError, match="exclude each other"):
        SparsityConfig(hw_aware_growth=True, constant_fan_in=True)
