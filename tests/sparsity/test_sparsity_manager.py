"""Masked training invariants over many optimizer steps, checkpoints, target masks."""

import copy
import io

import pytest
import torch

from mast.errors import UserError
from mast.sparsity import SparsityConfig, SparsityManager, weight_matrices


class TinyRecurrentQ(torch.nn.Module):
    """fc -> explicit GRU cell -> per-agent-type output heads stacked as (types, out, in)."""

    def __init__(self, d_in=7, hidden=12, n_actions=5, n_types=2):
        super().__init__()
        self.fc1 = torch.nn.Linear(d_in, hidden)
        self.w_ih = torch.nn.Parameter(torch.randn(3 * hidden, hidden) * 0.3)
        self.w_hh = torch.nn.Parameter(torch.randn(3 * hidden, hidden) * 0.3)
        self.b_ih = torch.nn.Parameter(torch.zeros(3 * hidden))
        self.heads = torch.nn.Parameter(torch.randn(n_types, n_actions, hidden) * 0.3)
        self.hidden = hidden

    def forward(self, x_seq, agent_type):
        h = torch.zeros(x_seq.shape[1], self.hidden)
        out = []
        for x in x_seq:
            e = torch.relu(self.fc1(x))
            gi, gh = e @ self.w_ih.T + self.b_ih, h @ self.w_hh.T
            r = torch.sigmoid(gi[:, : self.hidden] + gh[:, : self.hidden])
            z = torch.sigmoid(
                gi[:, self.hidden : 2 * self.hidden] + gh[:, self.hidden : 2 * self.hidden]
            )
            n = torch.tanh(gi[:, 2 * self.hidden :] + r * gh[:, 2 * self.hidden :])
            h = (1 - z) * n + z * h
            out.append(torch.einsum("bh,bah->ba", h, self.heads[agent_type]))
        return torch.stack(out)


def _manager(net, method="mast", **kw):
    cfg = dict(method=method, sparsity=0.8, delta_t=4, t_end=60, seed=3)
    cfg.update(kw)
    mgr = SparsityManager(SparsityConfig(**cfg))
    for name, p in weight_matrices(net):
        mgr.register(name, p, recurrent=name == "w_hh")
    mgr.build()
    return mgr


def _loss(net, g):
    x = torch.randn(4, 6, 7, generator=g)
    types = torch.randint(0, 2, (6,), generator=g)
    target = torch.randn(4, 6, 5, generator=g)
    return ((net(x, types) - target) ** 2).mean()


OPTIMIZERS = {
    "rmsprop": lambda ps: torch.optim.RMSprop(ps, lr=5e-3, alpha=0.99, eps=1e-5),
    "adam": lambda ps: torch.optim.Adam(ps, lr=5e-3),
    "sgd_momentum": lambda ps: torch.optim.SGD(ps, lr=5e-2, momentum=0.9, weight_decay=1e-4),
}


@pytest.mark.parametrize("opt_name", list(OPTIMIZERS))
@pytest.mark.parametrize("method", ["mast", "set", "static"])
def test_invariants_over_many_steps(opt_name, method):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    net = TinyRecurrentQ()
    mgr = _manager(net, method)
    opt = OPTIMIZERS[opt_name](net.parameters())
    nnz0 = {n: mgr.nnz(n) for n in mgr.names}
    first_masks = {n: m.clone() for n, m in mgr.masks.items()}
    n_updates = 0
    for t in range(1, 41):
        opt.zero_grad()
        _loss(net, g).backward()
        res = mgr.step(t, opt)
        if not res.skip_optimizer_step:
            torch.nn.utils.clip_grad_norm_(net.parameters(), 10.0)
            opt.step()
        else:
            n_updates += 1
        # no apply_() here: masked grads and zeroed state alone must keep pruned weights at 0
        for name, m in mgr.masks.items():
            p = dict(net.named_parameters())[name]
            assert torch.all(p[~m] == 0), name
            assert torch.all(p.grad[~m] == 0), name
            for value in opt.state[p].values():
                if torch.is_tensor(value) and value.shape == p.shape:
                    assert torch.all(value[~m] == 0), name
            assert mgr.nnz(name) == nnz0[name]
    assert mgr.sparsity == pytest.approx(0.8, abs=2e-3)
    changed = any(not torch.equal(first_masks[n], mgr.mask(n)) for n in mgr.names)
    if method == "static":
        assert n_updates == 0 and not changed
    else:
        assert n_updates == 10 == mgr.n_updates and changed
    assert torch.isfinite(_loss(net, g))


def test_optimizer_step_skipped_only_on_updates():
    net = TinyRecurrentQ()
    mgr = _manager(net, "rigl", delta_t=5, t_end=20)
    skipped = []
    for t in range(1, 26):
        net.zero_grad()
        _loss(net, torch.Generator().manual_seed(t)).backward()
        assert mgr.needs_dense_grad(t) == (t in (5, 10, 15))
        if mgr.step(t, None).skip_optimizer_step:
            skipped.append(t)
    assert skipped == [5, 10, 15]


def test_dense_and_tiny_hold_no_masks():
    for method in ("dense", "tiny"):
        net = TinyRecurrentQ()
        before = {n: p.detach().clone() for n, p in net.named_parameters()}
        mgr = _manager(net, method)
        net.zero_grad()
        _loss(net, torch.Generator().manual_seed(0)).backward()
        assert not mgr.step(4, None).skip_optimizer_step
        assert dict(mgr.masks) == {}
        assert mgr.sparsity == 0.0 and not mgr.needs_dense_grad(4)
        for n, p in net.named_parameters():
            assert torch.equal(p.detach(), before[n])
        assert all(layer.density == 1.0 for layer in mgr.export_layers())


def test_magnitude_init_keeps_largest_weights():
    net = TinyRecurrentQ()
    w = net.w_hh.detach().clone()
    mgr = _manager(net, "mast", distribution="uniform")
    m = mgr.mask("w_hh")
    assert w.abs()[m].min() >= w.abs()[~m].max()


def test_dense_layer_patterns():
    net = TinyRecurrentQ()
    mgr = _manager(net, "rigl", dense_layers=("fc1.*",))
    assert mgr.densities()["fc1.weight"] == 1.0
    assert mgr.sparsity == pytest.approx(0.8, abs=2e-3)
    with pytest.raises(UserError, match=r"^dense layer pattern 'mixer.\*' matches no registered"):
        _manager(TinyRecurrentQ(), "rigl", dense_layers=("mixer.*",))


def test_target_network_shares_masks():
    net = TinyRecurrentQ()
    target = copy.deepcopy(net)
    mgr = _manager(net, "mast")
    mgr.apply_to_(target)
    for name, m in mgr.masks.items():
        assert torch.equal(
            dict(target.named_parameters())[name] != 0,
            m & (dict(net.named_parameters())[name] != 0),
        )
        assert torch.all(dict(target.named_parameters())[name][~m] == 0)
    wrapped = torch.nn.ModuleDict({"online": copy.deepcopy(net)})
    mgr.apply_to_(wrapped, name_map=lambda n: "online." + n)
    with pytest.raises(UserError, match=r"^target network has no tensor 'w_ih' for mask 'w_ih'$"):
        mgr.apply_to_(wrapped)


def test_dense_grad_window_averages_gradients():
    p = torch.nn.Parameter(torch.tensor([[5.0, 0.0, 0.0, 4.0]]))
    mgr = SparsityManager(
        SparsityConfig(
            method="rigl",
            sparsity=0.5,
            distribution="uniform",
            init="magnitude",
            delta_t=4,
            t_end=100,
            zeta=0.5,
            decay="constant",
            dense_grad_window=2,
        )
    )
    mgr.register("w", p)
    mgr.build()
    grads = {2: [0.0, 9.0, 0.0, 0.0], 3: [0.0, 0.0, 0.0, 0.0], 4: [0.0, 0.0, 1.0, 0.0]}
    for t in (1, 2, 3, 4):
        p.grad = torch.tensor([grads.get(t, [0.0, 0.0, 50.0, 0.0])])
        res = mgr.step(t)
        assert res.skip_optimizer_step == (t == 4)
    # mean over t = 2, 3, 4 favours entry 1 (9/3) over entry 2 (1/3); t = 1 is outside
    assert mgr.mask("w").tolist() == [[True, True, False, False]]


def test_checkpoint_round_trip():
    torch.manual_seed(0)
    net = TinyRecurrentQ()
    mgr = _manager(net, "set")
    g = torch.Generator().manual_seed(1)
    for t in range(1, 10):
        net.zero_grad()
        _loss(net, g).backward()
        mgr.step(t, None)
    buf = io.BytesIO()
    torch.save({"net": net.state_dict(), "sparsity": mgr.state_dict()}, buf)
    buf.seek(0)
    ckpt = torch.load(buf)
    net2 = TinyRecurrentQ()
    mgr2 = _manager(net2, "set", seed=99)
    net2.load_state_dict(ckpt["net"])
    mgr2.load_state_dict(ckpt["sparsity"])
    for n in mgr.names:
        assert torch.equal(mgr.mask(n), mgr2.mask(n))
    assert (mgr2.last_update_t, mgr2.n_updates) == (8, 2)
    for m, t_net in ((mgr, net), (mgr2, net2)):  # identical continuation, RNG included
        t_net.zero_grad()
        _loss(t_net, torch.Generator().manual_seed(5)).backward()
        m.step(12, None)
    for n in mgr.names:
        assert torch.equal(mgr.mask(n), mgr2.mask(n))


def test_checkpoint_mismatch_names_tensor():
    mgr = _manager(TinyRecurrentQ(), "rigl")
    state = mgr.state_dict()
    other = _manager(TinyRecurrentQ(hidden=10), "rigl")
    with pytest.raises(
        UserError,
        match=r"^mask checkpoint tensor 'w_ih' has shape \(36, 12\), expected \(30, 10\)$",
    ):
        other.load_state_dict(state)
    del state["masks"]["w_hh"]
    with pytest.raises(UserError, match=r"^mask checkpoint lacks tensor 'w_hh'$"):
        mgr.load_state_dict(state)
    state["masks"]["extra"] = torch.ones(2, 2, dtype=torch.bool)
    with pytest.raises(UserError, match=r"^mask checkpoint has tensor 'extra' that is not masked"):
        mgr.load_state_dict(state)
    with pytest.raises(UserError, match=r"^mask checkpoint is for method 'rigl', not 'set'$"):
        _manager(TinyRecurrentQ(), "set").load_state_dict(mgr.state_dict())


def test_registration_errors():
    mgr = SparsityManager(SparsityConfig(method="rigl"))
    with pytest.raises(
        UserError, match=r"^tensor 'b': need a non-empty \(\.\.\., out, in\) tensor"
    ):
        mgr.register("b", torch.nn.Parameter(torch.zeros(3)))
    with pytest.raises(
        UserError, match=r"^tensor 'w': unknown role 'critic'; known: agent, mixer, hypernet$"
    ):
        mgr.register("w", torch.nn.Parameter(torch.zeros(3, 3)), role="critic")
    with pytest.raises(UserError, match=r"^tensor 's': uses_per_sample needs 2 values, got 3$"):
        mgr.register("s", torch.nn.Parameter(torch.zeros(2, 3, 3)), uses_per_sample=(1, 2, 3))
    with pytest.raises(UserError, match=r"^call build\(\) after registering tensors$"):
        mgr.step(1)
