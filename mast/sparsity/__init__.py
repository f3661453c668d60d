"""Sparse training: masks, per-layer densities, topology updaters, schedules, FLOPs, export.

API summary (everything below is importable from ``mast.sparsity``)
------------------------------------------------------------------

Configuration
    ``SparsityConfig(method="mast", sparsity=0.9, distribution="erdos_renyi",
    dense_layers=(), init=None, zeta=None, decay=None, delta_t=10_000, t_end=1_500_000,
    dense_grad_window=0, seed=0)`` -- frozen; ``None`` fields take the method's default.
    Bad names / values raise :class:`mast.errors.UserError` with a one-line message.
    ``METHODS`` (dense, tiny, static, set, rigl, rlx2, mast), ``DISTRIBUTIONS`` (uniform,
    erdos_renyi), ``DECAYS`` (cosine, constant) are the registries.

Manager (one per online network; time ``t`` = environment steps in the training loop)
    ``mgr = SparsityManager(config)``
    ``mgr.register(name, param, role="agent"|"mixer"|"hypernet", uses_per_env_step=...,
    uses_per_sample=..., inputs=(...), recurrent=False, dense=False)`` for every weight
    tensor of shape ``(*lead, out, in)`` (``weight_matrices(module, prefix)`` lists them);
    a stacked per-agent-type tensor ``(n_types, out, in)`` is one masked unit whose
    ``uses_*`` may be given per type.
    ``mgr.build()`` -- densities, initial masks, applies them.
    Per iteration: ``loss.backward(); res = mgr.step(t, optimizer)``; call
    ``optimizer.step()`` only ``if not res.skip_optimizer_step``; then ``mgr.apply_()``.
    ``mgr.needs_dense_grad(t)`` tells whether this iteration's raw gradient feeds growth
    (never mask gradients yourself before ``step``). ``mgr.apply_to_(target_module)``
    applies the online masks to the target network (same names, or ``name_map``).
    Lower-level: ``apply_()``, ``mask_grads_()``, ``mask_optimizer_state_(opt)``,
    ``update(t, opt)``, ``is_update_step(t)``.
    Queries: ``masks``, ``mask(name)``, ``nnz()``, ``numel()``, ``densities()``,
    ``sparsity``, ``n_updates``.
    Checkpoints: ``state_dict()`` / ``load_state_dict(sd)`` (mismatches: one-line
    ``UserError`` naming the tensor).
    Export: ``export_layers(roles=None, with_values=False) -> list[SparseLayer]`` (stacked
    tensors give ``name[i]``); ``save_layers`` / ``load_layers`` write / read ``.npz``.
    FLOPs: ``mgr.flops_report(samples_per_iteration, update_interval_iters,
    target_network=True, reference=None) -> FlopsReport`` with ``train_ratio``,
    ``test_ratio``, ``size_ratio``; or ``flops_report(layers, ...)`` on records.

Helpers
    ``layer_densities(shapes, sparsity, distribution, dense)``,
    ``sparse_param_count(shapes, sparsity, distribution, dense)`` and
    ``tiny_width(count_fn, target_nnz)`` (the ``tiny`` network's hidden width: the dense
    width whose weight count matches the sparse network's non-zeros),
    ``TopologySchedule`` (``drop_fraction(t)``, ``is_due(t, last_t)``), ``MaskUpdater``
    (base drop/grow rule) with ``RandomGrowthUpdater`` and ``GradientUpdater``.
"""

# Submodules load on first use (PEP 562): ``mast.sparsity.layer`` (numpy only) is what the
# hardware side imports, and it should not pay for torch.
_EXPORTS = {
    "DECAYS": "mast.sparsity.schedule",
    "DISTRIBUTIONS": "mast.sparsity.density",
    "FlopsReport": "mast.sparsity.flops",
    "GradientUpdater": "mast.sparsity.updaters",
    "METHODS": "mast.sparsity.methods",
    "MaskChange": "mast.sparsity.updaters",
    "MaskUpdater": "mast.sparsity.updaters",
    "MethodSpec": "mast.sparsity.methods",
    "RandomGrowthUpdater": "mast.sparsity.updaters",
    "SparseLayer": "mast.sparsity.layer",
    "SparsityConfig": "mast.sparsity.config",
    "SparsityManager": "mast.sparsity.manager",
    "StepResult": "mast.sparsity.manager",
    "TensorInfo": "mast.sparsity.export",
    "TopologySchedule": "mast.sparsity.schedule",
    "TopologyUpdate": "mast.sparsity.manager",
    "UPDATERS": "mast.sparsity.updaters",
    "flops_report": "mast.sparsity.flops",
    "get_method": "mast.sparsity.methods",
    "layer_densities": "mast.sparsity.density",
    "layer_nnz": "mast.sparsity.density",
    "load_layers": "mast.sparsity.layer",
    "save_layers": "mast.sparsity.layer",
    "sparse_param_count": "mast.sparsity.density",
    "tiny_width": "mast.sparsity.density",
    "weight_matrices": "mast.sparsity.manager",
}


def __getattr__(name: str):
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'mast.sparsity' has no attribute {name!r}") from None
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "DECAYS",
    "DISTRIBUTIONS",
    "METHODS",
    "FlopsReport",
    "GradientUpdater",
    "MaskChange",
    "MaskUpdater",
    "MethodSpec",
    "RandomGrowthUpdater",
    "SparseLayer",
    "SparsityConfig",
    "SparsityManager",
    "StepResult",
    "TensorInfo",
    "TopologySchedule",
    "TopologyUpdate",
    "UPDATERS",
    "flops_report",
    "get_method",
    "layer_densities",
    "layer_nnz",
    "load_layers",
    "save_layers",
    "sparse_param_count",
    "tiny_width",
    "weight_matrices",
]
