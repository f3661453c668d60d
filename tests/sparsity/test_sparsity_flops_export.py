"""FLOPs of a small network by hand; SparseLayer export and its .npz round trip."""

import numpy as np
import pytest
import torch

from mast.errors import UserError
from mast.sparsity import (
    SparseLayer,
    SparsityConfig,
    SparsityManager,
    flops_report,
    load_layers,
    save_layers,
)


def _mask(shape, nnz):
    m = np.zeros(shape, dtype=bool)
    m.reshape(-1)[:nnz] = True
    return m


def _network():
    # 3 agents: fc (4x3, 6 nnz) -> out (2x4, 4 nnz); mixer (1x6, 3 nnz) once per sample.
    return [
        SparseLayer("fc", "agent", _mask((4, 3), 6), uses_per_env_step=3, uses_per_sample=3),
        SparseLayer(
            "out", "agent", _mask((2, 4), 4), uses_per_env_step=3, uses_per_sample=3, inputs=("fc",)
        ),
        SparseLayer("mix", "mixer", _mask((1, 6), 3), uses_per_env_step=0, uses_per_sample=1),
    ]


def test_flops_by_hand():
    r = flops_report(_network(), samples_per_iteration=10, update_interval_iters=4)
    # f_S = 2 (6*3 + 4*3 + 3) = 66; f_D = 2 (12*3 + 8*3 + 6) = 132
    assert r.forward_per_sample == 66 and r.dense_forward_per_sample == 132
    # (3 f_S dT + 2 f_S + f_D) / (dT + 1) + f_S (target) = 1056/5 + 66, x 10 samples
    assert r.train == pytest.approx(10 * (1056 / 5 + 66))
    assert r.dense_train == 10 * 4 * 132
    assert r.train_ratio == pytest.approx(2772 / 5280)
    # test: agents only, per env step: 2 (6*3 + 4*3) vs 2 (12*3 + 8*3)
    assert (r.test, r.dense_test, r.test_ratio) == (60, 120, 0.5)
    assert (r.nnz, r.dense_params, r.size_ratio) == (13, 26, 0.5)


def test_flops_fixed_topology_and_no_target():
    r = flops_report(_network(), target_network=False)
    assert (r.train, r.dense_train) == (3 * 66, 3 * 132)
    assert r.train_ratio == 0.5


def test_flops_tiny_against_reference():
    full = _network()
    tiny = [
        SparseLayer("fc", "agent", np.ones((2, 3), bool), uses_per_env_step=3, uses_per_sample=3)
    ]
    r = flops_report(tiny, reference=full)
    assert r.dense_params == 26 and r.nnz == 6
    assert r.train_ratio == pytest.approx((4 * 2 * 6 * 3) / (4 * 132))
    assert r.test_ratio == pytest.approx(36 / 120)


def test_flops_bad_input():
    with pytest.raises(UserError, match=r"^samples_per_iteration must be >= 1, got 0$"):
        flops_report(_network(), samples_per_iteration=0)


def _stacked_manager():
    torch.manual_seed(0)
    fc = torch.nn.Parameter(torch.randn(2, 8, 5))
    gru = torch.nn.Parameter(torch.randn(2, 24, 8))
    hh = torch.nn.Parameter(torch.randn(24, 8))
    mix = torch.nn.Parameter(torch.randn(4, 6))
    mgr = SparsityManager(SparsityConfig(method="mast", sparsity=0.9, t_end=10, delta_t=1))
    mgr.register("agent.fc", fc, uses_per_env_step=(2, 3), uses_per_sample=(2, 3))
    mgr.register(
        "agent.w_ih", gru, uses_per_env_step=(2, 3), uses_per_sample=(2, 3), inputs=("agent.fc",)
    )
    mgr.register("agent.w_hh", hh, uses_per_env_step=5, uses_per_sample=5, recurrent=True)
    mgr.register("mixer.w1", mix, role="mixer", uses_per_env_step=0, inputs=("agent.w_hh",))
    mgr.build()
    return mgr, fc


def test_export_per_type_and_round_trip(tmp_path):
    mgr, fc = _stacked_manager()
    layers = mgr.export_layers(with_values=True)
    assert [layer.name for layer in layers] == [
        "agent.fc[0]",
        "agent.fc[1]",
        "agent.w_ih[0]",
        "agent.w_ih[1]",
        "agent.w_hh",
        "mixer.w1",
    ]
    assert layers[3].inputs == ("agent.fc[1]",) and layers[3].uses_per_env_step == 3
    assert layers[4].recurrent and layers[5].inputs == ("agent.w_hh",)
    assert sum(layer.nnz for layer in layers) == mgr.nnz()
    assert layers[0].nnz + layers[1].nnz == mgr.nnz("agent.fc")
    assert np.array_equal(layers[1].mask, mgr.mask("agent.fc")[1].numpy())
    assert np.array_equal(layers[1].values, fc.detach()[1].numpy())
    back = load_layers(save_layers(tmp_path / "masks.npz", layers))
    for a, b in zip(layers, back, strict=True):
        assert a.meta() == b.meta()
        assert np.array_equal(a.mask, b.mask) and np.array_equal(a.values, b.values)
    agents = mgr.export_layers(roles=["agent"])
    assert all(layer.role == "agent" and layer.values is None for layer in agents)
    assert len(agents) == 5


def test_manager_flops_match_records():
    mgr, _ = _stacked_manager()
    r = mgr.flops_report(samples_per_iteration=8, update_interval_iters=50)
    direct = flops_report(mgr.export_layers(), samples_per_iteration=8, update_interval_iters=50)
    assert r == direct
    assert r.size_ratio == pytest.approx(0.1, abs=2e-3)
    assert 0.1 < r.train_ratio < 0.13 and r.test_ratio < 0.2


class _Evil:
    """Unpickling it would create the file ``self.marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _rewrite(path, **changes):
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays.update(changes)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def test_snapshot_with_object_array_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    path = save_layers(tmp_path / "masks.npz", _network())
    _rewrite(path, mask_1=np.array([_Evil(marker)], dtype=object))
    with pytest.raises(UserError, match="Object arrays cannot be loaded"):
        load_layers(path)
    path = save_layers(tmp_path / "masks.npz", _network())
    _rewrite(path, meta=np.array([_Evil(marker)], dtype=object))
    with pytest.raises(UserError, match=r"masks\.npz'"):
        load_layers(path)
    assert not marker.exists()


def test_truncated_mask_array_is_an_error_not_padding(tmp_path):
    path = save_layers(tmp_path / "masks.npz", _network())
    with np.load(path) as z:
        short = z["mask_0"][:-1]
    _rewrite(path, mask_0=short)
    with pytest.raises(UserError, match=r"array 'mask_0' is uint8\[1\], expected shape \(2,\)"):
        load_layers(path)


def test_wrong_value_shape_and_missing_array_are_errors(tmp_path):
    layers = [SparseLayer("fc", "agent", _mask((4, 3), 6), values=np.ones((4, 3)))]
    path = save_layers(tmp_path / "masks.npz", layers)
    _rewrite(path, values_0=np.ones((3, 3), np.float32))
    with pytest.raises(UserError, match=r"array 'values_0' is float32\[3, 3\], expected"):
        load_layers(path)
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files if k != "mask_0"}
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    with pytest.raises(UserError, match="array 'mask_0' is missing"):
        load_layers(path)


@pytest.mark.parametrize("keep", [0, 40, 0.6])
def test_truncated_or_empty_snapshot_file_is_a_clean_error(tmp_path, keep):
    path = save_layers(tmp_path / "masks.npz", _network())
    data = path.read_bytes()
    path.write_bytes(data[: int(keep * len(data)) if isinstance(keep, float) else keep])
    with pytest.raises(UserError, match=r"^mask snapshot '.*masks\.npz': "):
        load_layers(path)
