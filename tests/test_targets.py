"""Bootstrap operators and multi-step returns against direct float64 evaluations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mast.errors import UserError
from mast.targets import (
    TARGET_PRESETS,
    TargetConfig,
    bootstrap_values,
    greedy_bootstrap,
    hybrid_one_step_weight,
    make_targets,
    nstep_targets,
    one_step_targets,
    soft_mellowmax,
    td_lambda_targets,
)


def direct_sm(q: np.ndarray, avail: np.ndarray, omega: float, alpha: float) -> np.ndarray:
    """``(1/w) log(sum_a softmax(alpha q)_a exp(w q_a))`` row by row in float64."""
    flat_q, flat_a = q.reshape(-1, q.shape[-1]), avail.reshape(-1, q.shape[-1])
    out = []
    for row, ok in zip(flat_q.astype(np.float64), flat_a, strict=True):
        x = row[ok]
        p = np.exp(alpha * x) / np.exp(alpha * x).sum()
        out.append(math.log((p * np.exp(omega * x)).sum()) / omega)
    return np.array(out).reshape(q.shape[:-1])


def rand_q(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = 2.0 * torch.randn(*shape, generator=g)
    avail = torch.rand(*shape, generator=g) > 0.4
    avail[..., 0] = True  # at least one available action per row
    return q, avail


@pytest.mark.parametrize("omega,alpha", [(5.0, 1.0), (10.0, 1.0), (10.0, 0.0), (2.0, 3.0)])
def test_soft_mellowmax_matches_direct_float64(omega, alpha):
    q, avail = rand_q((4, 3, 9))
    got = soft_mellowmax(q, omega, alpha, avail)
    want = direct_sm(q.numpy(), avail.numpy(), omega, alpha)
    assert got.shape == (4, 3) and got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-5)


def test_soft_mellowmax_preserves_dtype_and_any_leading_shape():
    q, avail = rand_q((2, 3, 4, 6), seed=1)
    want = direct_sm(q.numpy(), avail.numpy(), 10.0, 1.0)
    got64 = soft_mellowmax(q.double(), 10.0, 1.0, avail)
    assert got64.dtype == torch.float64 and got64.shape == (2, 3, 4)
    np.testing.assert_allclose(got64.numpy(), want, rtol=1e-12, atol=1e-12)
    got16 = soft_mellowmax(q.half(), 10.0, 1.0, avail)
    assert got16.dtype == torch.float16
    np.testing.assert_allclose(got16.float().numpy(), want, rtol=1e-2, atol=1e-2)
    one_row = soft_mellowmax(q[0, 0, 0], 10.0)
    assert one_row.shape == ()
    assert float(one_row) == pytest.approx(direct_sm(q[0, 0, 0].numpy(), np.ones(6, bool), 10, 1))


def test_soft_mellowmax_large_omega_tends_to_max():
    q, avail = rand_q((5, 8), seed=2)
    masked_max = q.masked_fill(~avail, -1e9).amax(-1)
    assert torch.equal(soft_mellowmax(q, math.inf, 1.0, avail), masked_max)
    for omega in (1e2, 1e4, 1e6):
        gap = (masked_max - soft_mellowmax(q.double(), omega, 1.0, avail)).abs()
        assert float(gap.max()) <= math.log(8) / omega + 1e-9


def test_soft_mellowmax_small_omega_tends_to_softmax_weighted_mean():
    q, avail = rand_q((5, 8), seed=3)
    for alpha in (0.0, 1.0, 2.5):
        p = torch.softmax((alpha * q).masked_fill(~avail, -math.inf), dim=-1)
        mean = (p * q.masked_fill(~avail, 0.0)).sum(-1)
        got = soft_mellowmax(q, 1e-7, alpha, avail)
        np.testing.assert_allclose(got.numpy(), mean.numpy(), rtol=1e-5, atol=1e-5)


def test_soft_mellowmax_ignores_unavailable_actions_and_handles_empty_rows():
    q, avail = rand_q((6, 7), seed=4)
    spoiled = torch.where(avail, q, torch.full_like(q, 1e4))
    clean = soft_mellowmax(q, 10.0, 1.0, avail)
    assert torch.equal(soft_mellowmax(spoiled, 10.0, 1.0, avail), clean)
    none = torch.zeros(2, 7, dtype=torch.bool)
    out = soft_mellowmax(q[:2].clone().requires_grad_(True), 5.0, 1.0, none)
    assert torch.equal(out, torch.zeros(2))
    q_grad = q.clone().requires_grad_(True)
    soft_mellowmax(q_grad, 10.0, 1.0, avail).sum().backward()
    assert torch.isfinite(q_grad.grad).all()
    assert torch.equal(q_grad.grad[~avail], torch.zeros(int((~avail).sum())))


def test_greedy_bootstrap_max_and_double_q():
    q_t = torch.tensor([[1.0, 5.0, 3.0], [2.0, 0.0, 9.0], [4.0, 4.0, 4.0]])
    q_o = torch.tensor([[0.0, 1.0, 2.0], [7.0, 0.0, 8.0], [0.0, 0.0, 0.0]])
    avail = torch.tensor([[1, 1, 1], [1, 1, 0], [0, 0, 0]])
    assert greedy_bootstrap(q_t, None, avail, double_q=False).tolist() == [5.0, 2.0, 0.0]
    assert greedy_bootstrap(q_t, q_o, avail, double_q=True).tolist() == [3.0, 2.0, 0.0]
    cfg = TargetConfig(bootstrap="max")
    assert bootstrap_values(cfg, q_t, None, avail).tolist() == [5.0, 2.0, 0.0]
    sm = TargetConfig(bootstrap="soft_mellowmax", sm_omega=5.0, sm_alpha=2.0)
    assert torch.equal(bootstrap_values(sm, q_t, None, avail), soft_mellowmax(q_t, 5.0, 2.0, avail))


def random_episodes(seed: int, b: int = 8, t: int = 11):
    """Episodes with random lengths, terminated or truncated, and garbage in the padding."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, t + 1, size=b)
    lengths[0] = t
    r = rng.normal(size=(b, t))
    v = rng.normal(size=(b, t))
    d = (rng.random((b, t)) < 0.3).astype(np.float64)  # garbage, fixed below in valid part
    mask = (np.arange(t)[None] < lengths[:, None]).astype(np.float64)
    for i, n in enumerate(lengths):
        d[i, :n] = 0.0
        d[i, n - 1] = float(rng.random() < 0.5)
    return r, d, mask, v, lengths


def brute_nstep(r, d, v, lengths, gamma, n):
    out = np.zeros_like(r)
    for i, length in enumerate(lengths):
        for t in range(length):
            k = min(n, length - t)
            g = sum(gamma**j * r[i, t + j] for j in range(k))
            out[i, t] = g + gamma**k * (1 - d[i, t + k - 1]) * v[i, t + k - 1]
    return out


def brute_lambda(r, d, v, lengths, gamma, lam):
    out = np.zeros_like(r)
    for i, length in enumerate(lengths):
        for t in range(length):
            left = length - t
            g_n = [
                brute_nstep(r[i : i + 1], d[i : i + 1], v[i : i + 1], [length], gamma, k)[0, t]
                for k in range(1, left + 1)
            ]
            out[i, t] = (1 - lam) * sum(lam ** (k - 1) * g_n[k - 1] for k in range(1, left))
            out[i, t] += lam ** (left - 1) * g_n[-1]
    return out


def as_t(*xs):
    return [torch.from_numpy(x) for x in xs]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n", [1, 2, 3, 5, 20])
def test_nstep_against_brute_force(seed, n):
    r, d, mask, v, lengths = random_episodes(seed)
    got = nstep_targets(*as_t(r, d, mask, v), 0.9, n).numpy()
    np.testing.assert_allclose(got * mask, brute_nstep(r, d, v, lengths, 0.9, n), atol=1e-12)
    pad = mask == 0
    np.testing.assert_allclose(got[pad], (r + 0.9 * (1 - d) * v)[pad], atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("lam", [0.0, 0.3, 0.8, 1.0])
def test_td_lambda_against_weighted_sum_of_nstep_returns(seed, lam):
    r, d, mask, v, lengths = random_episodes(seed)
    got = td_lambda_targets(*as_t(r, d, mask, v), 0.95, lam).numpy()
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got * mask, brute_lambda(r, d, v, lengths, 0.95, lam), atol=1e-10)


def test_td_lambda_limits_one_step_and_monte_carlo():
    r, d, mask, v, lengths = random_episodes(7, b=16, t=15)
    r_, d_, m_, v_ = as_t(r, d, mask, v)
    one = one_step_targets(r_, d_, m_, v_, 0.99)
    assert torch.allclose(td_lambda_targets(r_, d_, m_, v_, 0.99, 0.0), one, atol=1e-12)
    assert torch.allclose(nstep_targets(r_, d_, m_, v_, 0.99, 1), one, atol=1e-12)
    mc = np.zeros_like(r)
    for i, length in enumerate(lengths):
        for t in range(length):
            steps = length - t
            mc[i, t] = sum(0.99**j * r[i, t + j] for j in range(steps))
            mc[i, t] += 0.99**steps * (1 - d[i, length - 1]) * v[i, length - 1]
    lam1 = td_lambda_targets(r_, d_, m_, v_, 0.99, 1.0).numpy()
    np.testing.assert_allclose(lam1 * mask, mc, atol=1e-10)
    long_n = nstep_targets(r_, d_, m_, v_, 0.99, 15).numpy()
    np.testing.assert_allclose(long_n * mask, mc, atol=1e-10)


def test_returns_broadcast_trailing_dims_and_keep_float32():
    r, d, mask, v, _ = random_episodes(3)
    r_, d_, m_, v_ = (x.float().unsqueeze(-1) for x in as_t(r, d, mask, v))
    got = td_lambda_targets(r_, d_, m_, v_, 0.99, 0.6)
    assert got.shape == (8, 11, 1) and got.dtype == torch.float32
    flat = td_lambda_targets(*as_t(r, d, mask, v), 0.99, 0.6)
    np.testing.assert_allclose(got.squeeze(-1).numpy(), flat.numpy(), rtol=1e-5, atol=1e-5)


def test_hybrid_schedule_switches_between_td_lambda_and_one_step():
    r, d, mask, v, _ = random_episodes(5)
    x = as_t(r, d, mask, v)
    cfg = TargetConfig(kind="hybrid", hybrid_switch_t=1000, td_lambda=0.7, gamma=0.9)
    lam = td_lambda_targets(*x, 0.9, 0.7)
    one = one_step_targets(*x, 0.9)
    assert torch.equal(make_targets(cfg, *x, t_env=999), lam)
    assert torch.equal(make_targets(cfg, *x, t_env=1000), one)
    rev = TargetConfig(
        kind="hybrid", hybrid_switch_t=1000, hybrid_order="one_step_first", td_lambda=0.7, gamma=0.9
    )
    assert torch.equal(make_targets(rev, *x, t_env=0), one)
    assert torch.equal(make_targets(rev, *x, t_env=5000), lam)
    blend = TargetConfig(
        kind="hybrid", hybrid_switch_t=1000, hybrid_blend_t=200, td_lambda=0.7, gamma=0.9
    )
    assert [hybrid_one_step_weight(blend, t) for t in (0, 900, 950, 1000, 1100, 9000)] == [
        0.0,
        0.0,
        0.25,
        0.5,
        1.0,
        1.0,
    ]
    assert torch.allclose(make_targets(blend, *x, t_env=1000), 0.5 * (lam + one))


def test_make_targets_dispatches_every_kind():
    r, d, mask, v, _ = random_episodes(6)
    x = as_t(r, d, mask, v)
    assert torch.equal(
        make_targets(TargetConfig(kind="one_step"), *x, t_env=0), one_step_targets(*x, 0.99)
    )
    assert torch.equal(
        make_targets(TargetConfig(kind="n_step", n_step=4), *x, t_env=0), nstep_targets(*x, 0.99, 4)
    )
    assert torch.equal(
        make_targets(TargetConfig(kind="td_lambda", td_lambda=0.5), *x, t_env=0),
        td_lambda_targets(*x, 0.99, 0.5),
    )
    mast = TARGET_PRESETS["mast"]
    assert (mast.kind, mast.bootstrap, mast.sm_omega) == ("hybrid", "soft_mellowmax", 10.0)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (
            {"kind": "sarsa"},
            "unknown target kind 'sarsa'; choose from: one_step, n_step, td_lambda, hybrid",
        ),
        (
            {"bootstrap": "min"},
            "unknown bootstrap 'min'; choose from: max, double_q, soft_mellowmax",
        ),
        (
            {"hybrid_order": "both"},
            "unknown hybrid order 'both'; choose from: lambda_first, one_step_first",
        ),
        ({"gamma": 1.5}, "discount gamma must be in [0, 1], got 1.5"),
        ({"n_step": 0}, "n_step must be an integer >= 1, got 0"),
        ({"td_lambda": -0.1}, "td_lambda must be in [0, 1], got -0.1"),
        ({"hybrid_switch_t": -5}, "hybrid_switch_t must be an integer >= 0, got -5"),
        ({"sm_omega": 0.0}, "sm_omega must be > 0, got 0.0"),
        ({"sm_alpha": math.inf}, "sm_alpha must be a finite number >= 0, got inf"),
        ({"sm_alpha": -1.0}, "sm_alpha must be a finite number >= 0, got -1.0"),
    ],
)
def test_target_config_rejects_bad_values(kwargs, message):
    with pytest.raises(UserError) as err:
        TargetConfig(**kwargs)
    assert str(err.value) == message


def test_functions_reject_bad_parameters():
    x = [torch.zeros(2, 3)] * 4
    with pytest.raises(UserError, match=r"^soft mellowmax omega must be > 0, got -1$"):
        soft_mellowmax(torch.zeros(3), -1)
    with pytest.raises(
        UserError, match=r"^soft mellowmax alpha must be a finite number >= 0, got -2$"
    ):
        soft_mellowmax(torch.zeros(3), 5.0, -2)
    with pytest.raises(UserError, match=r"^TD\(lambda\) lambda must be in \[0, 1\], got 2$"):
        td_lambda_targets(*x, 0.9, 2)
    with pytest.raises(UserError, match=r"^n-step length must be an integer >= 1, got 0$"):
        nstep_targets(*x, 0.9, 0)
    with pytest.raises(UserError, match=r"^discount gamma must be in \[0, 1\], got -0.5$"):
        one_step_targets(*x, -0.5)
