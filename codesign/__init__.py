"""The integration of training and hardware: the only package importing both sides.

``mast`` knows nothing of ``hw``, ``sim`` or ``cost_models``; this package joins them:

- :mod:`codesign.train`: ``mast-train`` with ``--hw-profile``, ``--hw-baseline``,
  ``--hw-verify`` and ``--hw-aware-growth``;
- :mod:`codesign.trace`: :class:`~codesign.trace.HwTrace`, the training callback that
  writes ``hw_trace.csv`` (costs from :mod:`codesign.costing`);
- :mod:`codesign.verify`: the per-snapshot replay on the Verilated RTL;
- :mod:`codesign.report`: :func:`~codesign.report.write_run_report` (``report.md``,
  ``report.json``, plots);
- :mod:`codesign.evaluate` / :mod:`codesign.fixed_agent`: ``mast-hw eval``, the trained
  policy in a profile's fixed-point arithmetic through ``sim``.
"""
