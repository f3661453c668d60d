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

import lazy_loader

# Submodules load on first use (PEP 562): ``mast.sparsity.layer`` (numpy only) is what the
# hardware side imports, and it should not pay for torch.
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "config": ["SparsityConfig"],
        "density": [
            "DISTRIBUTIONS",
            "layer_densities",
            "layer_nnz",
            "sparse_param_count",
            "tiny_width",
        ],
        "export": ["TensorInfo"],
        "flops": ["FlopsReport", "flops_report"],
        "layer": ["SparseLayer", "load_layers", "save_layers"],
        "manager": ["SparsityManager", "StepResult", "TopologyUpdate", "weight_matrices"],
        "methods": ["METHODS", "MethodSpec", "get_method"],
        "schedule": ["DECAYS", "TopologySchedule"],
        "updaters": [
            "GradientUpdater",
            "MaskChange",
            "MaskUpdater",
            "RandomGrowthUpdater",
            "UPDATERS",
        ],
    },
)
