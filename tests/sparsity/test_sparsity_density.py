"""Per-layer densities (uniform, Erdos-Renyi with dense capping), tiny width, config errors."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mast.errors import UserError
from mast.sparsity import (
    SparsityConfig,
    layer_densities,
    layer_nnz,
    sparse_param_count,
    tiny_width,
)


def test_erdos_renyi_hand_computed():
    # raw: a = (4+4)/16 = 0.5, b = (8+2)/16 = 0.625; eps * (0.5*16 + 0.625*16) = 16 -> 8/9.
    shapes = {"a": (4, 4), "b": (2, 8)}
    d = layer_densities(shapes, 0.5, "erdos_renyi")
    assert d["a"] == pytest.approx(4 / 9)
    assert d["b"] == pytest.approx(5 / 9)
    assert d["a"] * 16 + d["b"] * 16 == pytest.approx(16)


def test_erdos_renyi_caps_dense_and_resolves():
    # raw: small = 1 (would get 2.17), big = 0.2; small becomes dense, big takes 48/100.
    shapes = {"small": (2, 2), "big": (10, 10)}
    d = layer_densities(shapes, 0.5, "erdos_renyi")
    assert d == {"small": 1.0, "big": pytest.approx(0.48)}
    assert layer_nnz(shapes, d) == {"small": 4, "big": 48}


def test_erdos_renyi_stacked_tensor_uses_matrix_shape():
    shapes = {"stack": (3, 4, 4), "b": (2, 8)}
    d = layer_densities(shapes, 0.5, "erdos_renyi")
    # eps * (0.5*48 + 0.625*16) = 32 -> eps = 32/34
    assert d["stack"] == pytest.approx(0.5 * 32 / 34)
    assert d["b"] == pytest.approx(0.625 * 32 / 34)


def test_uniform_with_dense_layer_keeps_overall_budget():
    shapes = {"first": (4, 4), "rest": (8, 8)}
    assert layer_densities(shapes, 0.9, "uniform") == {
        "first": pytest.approx(0.1),
        "rest": pytest.approx(0.1),
    }
    d = layer_densities(shapes, 0.5, "uniform", dense=["first"])
    assert d["first"] == 1.0
    assert d["rest"] == pytest.approx((40 - 16) / 64)


def test_zero_sparsity_is_dense():
    assert layer_densities({"a": (3, 5)}, 0.0) == {"a": 1.0}


def test_dense_layers_over_budget():
    with pytest.raises(UserError, match=r"dense layers hold 64 parameters, more than the 8 "):
        layer_densities({"a": (8, 8), "b": (4, 4)}, 0.9, dense=["a"])


def test_unknown_distribution_and_dense_name():
    with pytest.raises(
        UserError, match=r"^unknown density distribution 'erk'; known: uniform, erdos_renyi$"
    ):
        layer_densities({"a": (2, 2)}, 0.5, "erk")
    with pytest.raises(UserError, match=r"^dense layer 'x' is not a masked tensor$"):
        layer_densities({"a": (2, 2)}, 0.5, dense=["x"])


@pytest.mark.parametrize("bad", [1.0, -0.1, 1.5])
def test_sparsity_outside_unit_interval(bad):
    with pytest.raises(UserError, match=rf"^sparsity must be in \[0, 1\), got {bad}$"):
        SparsityConfig(sparsity=bad)
    with pytest.raises(ValueError):
        layer_densities({"a": (2, 2)}, bad)


def test_config_names():
    with pytest.raises(
        UserError,
        match=r"^unknown sparse method 'foo'; known: dense, tiny, static, set, rigl, rlx2, mast$",
    ):
        SparsityConfig(method="foo")
    with pytest.raises(UserError, match=r"^unknown density distribution 'er'; known: "):
        SparsityConfig(distribution="er")
    with pytest.raises(UserError, match=r"^unknown initial mask 'lottery'; known: random, "):
        SparsityConfig(init="lottery")
    with pytest.raises(UserError, match=r"^unknown drop decay 'linear'; known: cosine, constant$"):
        SparsityConfig(decay="linear")
    with pytest.raises(UserError, match=r"^drop fraction zeta must be in \(0, 1\], got 1.5$"):
        SparsityConfig(zeta=1.5)


def test_config_method_defaults():
    assert SparsityConfig(method="mast").schedule.zeta == 0.5
    assert SparsityConfig(method="rigl").schedule.zeta == 0.3
    assert SparsityConfig(method="mast").init_mode == "magnitude"
    assert SparsityConfig(method="set", init="magnitude", zeta=0.2).schedule.zeta == 0.2


def test_tiny_width_matches_parameter_count():
    def count(h):
        return 10 * h + h * h

    assert tiny_width(count, 200) == 10
    assert tiny_width(count, 210) == 10
    assert tiny_width(count, 225) == 11
    assert tiny_width(count, 5) == 1

    # agent fc(30->h) + GRU(3 gates, ih and hh) + fc(h->9) at 10% of width 64
    def agent(h):
        return 30 * h + 6 * h * h + 9 * h

    w = tiny_width(agent, round(0.1 * agent(64)))
    assert abs(agent(w) - 0.1 * agent(64)) <= abs(agent(w + 1) - 0.1 * agent(64))
    assert abs(agent(w) - 0.1 * agent(64)) <= abs(agent(w - 1) - 0.1 * agent(64))


@settings(max_examples=60, deadline=None)
@given(
    shapes=st.lists(st.tuples(st.integers(1, 40), st.integers(1, 40)), min_size=1, max_size=6),
    sparsity=st.floats(0.0, 0.99),
    distribution=st.sampled_from(["uniform", "erdos_renyi"]),
)
def test_densities_meet_budget(shapes, sparsity, distribution):
    named = {f"l{i}": s for i, s in enumerate(shapes)}
    d = layer_densities(named, sparsity, distribution)
    total = sum(a * b for a, b in shapes)
    assert all(0 < v <= 1 for v in d.values())
    assert sum(d[f"l{i}"] * a * b for i, (a, b) in enumerate(shapes)) == pytest.approx(
        (1 - sparsity) * total
    )


def test_sparse_param_count_feeds_tiny_width():
    def agent(h):
        return 30 * h + 6 * h * h + 9 * h

    shapes = {"fc1": (64, 30), "w_ih": (192, 64), "w_hh": (192, 64), "fc2": (9, 64)}
    target = sparse_param_count(shapes, 0.9, "uniform")
    assert target == pytest.approx(0.1 * agent(64), abs=4)
    assert agent(tiny_width(agent, target)) <= agent(64) * 0.12
