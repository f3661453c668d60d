"""Mixing, loss, backward pass, topology update and optimizer nodes of a training iteration.

Called by :func:`cost_models.workload.training_graph` after the forward nodes exist; see
that module's docstring for the batching rules and the elementwise-operation counts.
Input gradients of non-recurrent agent layers are blocked over time steps like their
forward nodes, so they start as soon as the backward recurrence has passed their steps;
weight gradients need every step and are one node per layer.
"""

from __future__ import annotations

from cost_models import workload as W
from cost_models.kernels import Kernel

__all__ = ["add_backward"]


def _mixing(b, run, phase: str, agent_out, mixer_out) -> str:
    """Mixing (monotonic combination of agent Q-values by the hypernetworks' outputs)."""
    net = b.net
    gen = sum(lay.n_out for lay in net.outputs(net.mixer)) or net.n_agents
    deps = {n for lay in net.outputs(net.agent) for (_, _, n) in agent_out[lay.name]}
    deps |= {n for lay in net.outputs(net.mixer) for (_, _, n) in mixer_out[lay.name]}
    kern = Kernel(
        f"{phase}:mix",
        phase,
        "vector",
        run.batch_size * (run.steps - 1) * gen,
        label="mix",
        ops_per_elem=W.MIX_OPS,
        words_per_elem=2.0,
    )
    return W._add(b.g, kern, sorted(deps))


def add_backward(g, b, run, fwd) -> None:
    """Add loss, backward, dense-gradient + top-k, gradient clip and optimizer nodes."""
    net = b.net
    n_t, batch = run.steps, run.batch_size
    ratio, ob = b.spill
    mix = _mixing(b, run, "fwd", *fwd["fwd"])
    tmix = _mixing(b, run, "target_fwd", *fwd["target_fwd"])
    loss = W._add(
        g,
        Kernel(
            "loss",
            "loss",
            "vector",
            batch * (n_t - 1) * net.n_agents,
            label="loss",
            ops_per_elem=W.LOSS_OPS_PER_ACTION * net.actions + W.LOSS_OPS,
            words_per_elem=2.0,
        ),
        [mix, tmix],
    )
    mix_bwd = W._add(
        g,
        Kernel(
            "dx:mix",
            "dx",
            "vector",
            g.nodes[mix]["kernel"].m,
            label="mix",
            ops_per_elem=2 * W.MIX_OPS,
            words_per_elem=3.0,
        ),
        [loss],
    )

    grad: dict[str, W.Blocks] = {}
    for lay in net.outputs(net.agent):
        grad[lay.name] = [(0, n_t, mix_bwd)]
    for lay in net.outputs(net.mixer):
        grad[lay.name] = [(0, n_t - 1, mix_bwd)]
    weight_grads: list[str] = []

    def sp(operand, words, lay):
        return W._spill(b.spill, operand, words, b.wbytes, lay)

    def grads(lay, deps, steps):
        """dW (masked SDDMM) and the amortised dense dW + top-k of a layer."""
        m = batch * steps * lay.uses_per_sample
        dw = W._add(
            g,
            Kernel(
                f"dw:{lay.name}",
                "dw",
                "sddmm",
                m,
                lay.name,
                mask=lay.mask,
                dram=sp("activations", m * lay.n_in, lay),
            ),
            deps,
        )
        weight_grads.append(dw)
        if not run.topology_updates:
            return
        dd = W._add(
            g,
            Kernel(
                f"dense_dw:{lay.name}",
                "dense_dw",
                "sddmm_dense",
                m,
                lay.name,
                mask=lay.mask,
                weight=1.0 / run.update_interval_iters,
                dram=sp("activations", m * lay.n_in, lay),
            ),
            deps,
        )
        tk = W._add(
            g,
            Kernel(
                f"topk:{lay.name}",
                "topk",
                "vector",
                lay.mask.size,
                lay.name,
                ops_per_elem=W.TOPK_OPS,
                words_per_elem=2.0,
                weight=1.0 / run.update_interval_iters,
            ),
            [dd],
        )
        weight_grads.append(tk)

    def dx(lay, a, bnd, deps, t=None):
        m = batch * (bnd - a) * lay.uses_per_sample
        name = f"dx:{lay.name}:{a}"
        node = W._add(
            g,
            Kernel(
                name,
                "dx",
                "spmm_t",
                m,
                lay.name,
                t=a if t is None else t,
                mask=lay.mask,
                dram=sp("gradients", 0, lay),
            ),
            deps,
        )
        if t is None:
            for i in lay.inputs:
                grad.setdefault(i, []).append((a, bnd, node))
        return node

    cells_by_label = {c.label: c for c in net.cells}
    for group, steps, single in ((net.mixer, n_t - 1, True), (net.agent, n_t, False)):
        for u in reversed(W._units(net, group)):
            if u not in cells_by_label:
                lay = net.by_name[u]
                srcs = grad[lay.name]
                grads(lay, sorted({n for (_, _, n) in srcs}), steps)
                if lay.inputs:
                    for a, bnd in b.blocks(lay, steps, "dx", single):
                        dx(lay, a, bnd, sorted(set(W._overlap(srcs, a, bnd))))
                continue
            cell = cells_by_label[u]
            cells = _cell_backward(g, b, run, cell, grad, dx, steps)
            for lay in cell.members:
                grads(lay, [cells[0]], steps)
                if lay.inputs and not lay.recurrent:
                    for a, bnd in b.blocks(lay, steps, "dx", single):
                        dx(lay, a, bnd, [cells[a]])

    layers = list(net.by_name.values())
    nnz = sum(lay.nnz for lay in layers)
    norm = W._add(
        g,
        Kernel(
            "grad_norm",
            "opt",
            "vector",
            nnz,
            label="grad_norm",
            ops_per_elem=2.0,
            words_per_elem=1.0,
        ),
        weight_grads,
    )
    for lay in layers:
        words = lay.nnz * run.optimizer_words_per_nnz
        dram = (("optimizer", words * ob),) if b.wbytes else ()
        W._add(
            g,
            Kernel(
                f"opt:{lay.name}",
                "opt",
                "vector",
                lay.nnz,
                lay.name,
                ops_per_elem=run.optimizer_ops_per_nnz,
                words_per_elem=0.0 if b.wbytes else run.optimizer_words_per_nnz,
                dram=dram,
            ),
            [norm],
        )


def _cell_backward(g, b, run, cell, grad, dx, steps: int) -> list[str]:
    """Backward through time ``cell_bwd(t) -> dx_rec(t) -> cell_bwd(t-1)``; nodes by ``t``."""
    rec, h = cell.rec, cell.hidden
    ratio, ob = b.spill
    m = run.batch_size * rec.uses_per_sample
    srcs = [blk for mbr in cell.members for blk in grad.get(mbr.name, [])]
    cells: list[str] = [""] * steps
    prev = None
    for t in reversed(range(steps)):
        saved = (("activations", ratio * W.GRU_SAVED * m * h * ob),) if ratio else ()
        deps = sorted(set(W._overlap(srcs, t, t + 1))) + ([prev] if prev else [])
        cells[t] = W._add(
            g,
            Kernel(
                f"dx:{cell.label}:{t}",
                "dx",
                "vector",
                m * h,
                t=t,
                label=cell.label,
                ops_per_elem=2 * W.GRU_OPS,
                words_per_elem=12.0,
                dram=saved,
            ),
            deps,
        )
        prev = dx(rec, t, t + 1, [cells[t]], t=t) if t > 0 else None
    return cells
