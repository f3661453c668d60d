"""MAST training: value-based multi-agent RL with dynamic sparse training (PyTorch).

Layout (PyMARL's split): ``envs`` (SMAC-compatible simulator), ``agents`` (recurrent
Q-networks with an explicit GRU cell), ``mixers`` (VDN, QMIX, the central ``Q*`` of
weighted QMIX), ``controllers`` (inputs and epsilon-greedy acting), ``learners`` (VDN,
QMIX, OW/CW-QMIX, RES), ``targets`` (Soft Mellowmax, n-step, TD(lambda), hybrid),
``buffer`` (compact episode replay, dual buffer), ``sparsity`` (masks, topology updates,
FLOPs, ``SparseLayer`` export), ``runner`` (vectorised episodes), ``config`` / ``presets``
(typed configuration), ``train`` (the loop, callbacks), ``run_dir`` (run folders),
``progress`` (the progress line, end-of-run summary, stage log of long commands) and
``cli`` (``mast-train``; ``--help`` imports no torch).

Entry points for other packages: ``mast.train.train(cfg, callbacks=())`` with
:class:`mast.train.TrainCallback`, ``mast.cli.main(argv, callbacks, extra_args_hook)``,
``mast.presets.resolve_config(...)``. This package never imports ``hw``, ``sim`` or
``cost_models``.
"""
