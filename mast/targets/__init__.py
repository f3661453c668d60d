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

import lazy_loader

from . import config as _config

# The torch modules load on first use (PEP 562): :mod:`mast.targets.config` is plain data,
# read by the torch-free run-folder reader, and should not pay for torch.
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "bootstrap": ["greedy_bootstrap", "soft_mellowmax"],
        "compute": ["bootstrap_values", "make_targets"],
        "config": list(_config.__all__),
        "returns": ["nstep_targets", "one_step_targets", "td_lambda_targets"],
    },
)
