"""``mast-sweep``: grids of training runs on Ray, resumable and fault-tolerant, with statistics.

- :mod:`sweep.spec`: the grid (:class:`~sweep.spec.SweepSpec`) from flags or YAML, its runs
  and their folders in the sweep tree;
- :mod:`sweep.task`: one run, the same :func:`mast.train.train` call as ``mast-train``,
  skipped when finished and resumed from its checkpoint when interrupted;
- :mod:`sweep.driver`: the grid on a local or remote Ray cluster, retries, progress;
- :mod:`sweep.results`, :mod:`sweep.stats`, :mod:`sweep.report`: ``results.csv``,
  rliable statistics, ``summary.md`` and plots (``mast-sweep report``);
- :mod:`sweep.cli`: the command line.

The package sits above ``codesign`` (it passes ``--hw-profile`` on to the hardware trace).
"""
