"""MAST's learning targets: bootstrap operators and multi-step returns.

Two stages build a learner's regression target:

1. **Bootstrap** (per agent, over actions): reduce the target network's next-state
   Q-values to one value per agent with ``max``, ``double_q`` or MAST's Soft Mellowmax
   (:func:`soft_mellowmax`, :func:`greedy_bootstrap`, :func:`bootstrap_values`). The
   learner mixes these per-agent values with the target mixer into ``v_tp1``.
2. **Return** (over time): one-step, n-step, TD(lambda) or MAST's hybrid schedule
   (:func:`make_targets`), from ``r_t``, ``d_t``, ``mask_t`` and ``v_tp1`` shaped
   ``[B, T, *extra]`` (conventions in :mod:`mast.targets.returns`).

:class:`TargetConfig` selects both stages; its docstrings say which defaults are the
paper's and which are chosen here.
"""

# Submodules load on first use (PEP 562): :mod:`mast.targets.config` is plain data, read
# by the torch-free run-folder reader, and should not pay for torch.
_EXPORTS = {
    "BOOTSTRAPS": "mast.targets.config",
    "HYBRID_ORDERS": "mast.targets.config",
    "TARGET_KINDS": "mast.targets.config",
    "TARGET_PRESETS": "mast.targets.config",
    "TargetConfig": "mast.targets.config",
    "bootstrap_values": "mast.targets.compute",
    "greedy_bootstrap": "mast.targets.bootstrap",
    "hybrid_one_step_weight": "mast.targets.config",
    "make_targets": "mast.targets.compute",
    "nstep_targets": "mast.targets.returns",
    "one_step_targets": "mast.targets.returns",
    "soft_mellowmax": "mast.targets.bootstrap",
    "td_lambda_targets": "mast.targets.returns",
}


def __getattr__(name: str):
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'mast.targets' has no attribute {name!r}") from None
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "BOOTSTRAPS",
    "HYBRID_ORDERS",
    "TARGET_KINDS",
    "TARGET_PRESETS",
    "TargetConfig",
    "bootstrap_values",
    "greedy_bootstrap",
    "hybrid_one_step_weight",
    "make_targets",
    "nstep_targets",
    "one_step_targets",
    "soft_mellowmax",
    "td_lambda_targets",
]
