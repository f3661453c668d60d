"""Live hardware cost trace of a training run: ``hw_trace.csv`` in the run folder.

:class:`HwTrace` is a :class:`mast.train.TrainCallback`. At the start of a run and after
every topology update it costs the current masks on the profile ``P``
(:func:`codesign.costing.snapshot_costs`) and appends one row to ``hw_trace.csv``; the
dense network on ``P`` and on the dense baseline profile is costed once and cached. Each
metrics row (and the progress bar) gets ``hw_speedup``, the current training-iteration
speedup over the dense network on ``P``. At the end of the run a final row closes the
cumulative sums and :func:`codesign.report.write_run_report` writes the report.

Trace format (wide: one row per snapshot, one column per layer figure)
----------------------------------------------------------------------
``event`` (``start``, ``update``, ``end``), ``t_env``, ``iterations`` (learner updates so
far), ``sparsity``; per layer ``nnz:<layer>`` and ``density:<layer>``; the snapshot's
costs on ``P`` (:class:`~codesign.costing.SnapshotCost` fields: a steady training
iteration ``train_cycles``, ``train_time_s``, ``train_energy_j``, ``train_dram_bytes``,
``train_sram_bytes``, ``train_util``; one acting step ``infer_cycles``, ``infer_time_s``,
``infer_energy_j``, ``infer_util``; the extra cost of one topology update
``update_cycles``, ``update_time_s``, ``update_energy_j``); ``speedup_vs_dense`` /
``energy_gain_vs_dense`` (dense network on ``P`` over this snapshot, per steady training
iteration; ``infer_`` versions per acting step) and the same ``_vs_baseline``;
cumulative hardware time and energy of the run so far on ``P``, dense on ``P`` and on the
baseline (``cum_time_s``, ``cum_energy_j``, ``cum_dense_time_s``...): every row adds, for
the interval since the previous row, the iterations run times the previous snapshot's
iteration cost, the environment steps taken times its acting cost and, on an ``update``
row, one topology update of the previous masks. With ``--hw-verify``: ``verify_layer``,
``verify_sim_cycles``, ``verify_rtl_cycles``, ``verify_ok`` (see :mod:`codesign.verify`).
``costing_s`` is the host time the row's costing took (0 for masks costed before: costs
are cached per mask).

Resume: the trace's sums, position and row count go into the run's checkpoint
(:meth:`HwTrace.state_dict`); a resumed run keeps the first rows its checkpoint had seen,
drops later ones, and continues the sums from the checkpoint, so the trace equals that of
an uninterrupted run. Rows are written atomically (the whole file is rewritten).

``hw_meta.json`` records the profiles, the cost model's run configuration and the layer
names, so the trace can be recomputed from ``masks/masks_<t_env>.npz``.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import time
from collections.abc import Sequence
from pathlib import Path

from codesign.costing import SnapshotCost, snapshot_costs
from cost_models.rundir import workload_config
from hw.profiles import HwProfile
from mast import atomicio
from mast.errors import UserError
from mast.sparsity.layer import SparseLayer

__all__ = ["HwTrace", "META_FILE", "TRACE_FILE", "read_meta", "read_trace"]

TRACE_FILE = "hw_trace.csv"
META_FILE = "hw_meta.json"
_CUM = (
    "time_s",
    "energy_j",
    "dense_time_s",
    "dense_energy_j",
    "baseline_time_s",
    "baseline_energy_j",
)


def _masks_key(layers: Sequence[SparseLayer]) -> str:
    h = hashlib.sha1()
    for lay in layers:
        h.update(lay.name.encode())
        h.update(lay.mask.tobytes())
    return h.hexdigest()


def read_trace(run_dir: str | Path) -> list[dict[str, str]]:
    """The rows of ``RUN_DIR/hw_trace.csv`` (strings, as written)."""
    path = Path(run_dir) / TRACE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"run folder {str(run_dir)!r} has no {TRACE_FILE}")
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def read_meta(run_dir: str | Path) -> dict:
    """``RUN_DIR/hw_meta.json`` (profiles, cost-model run configuration, layer names)."""
    path = Path(run_dir) / META_FILE
    if not path.is_file():
        raise FileNotFoundError(f"run folder {str(run_dir)!r} has no {META_FILE}")
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"{str(path)!r} is not valid JSON") from None
    if not isinstance(meta, dict) or not {"profile", "baseline"} <= set(meta):
        raise UserError(f"{str(path)!r} lacks the 'profile' and 'baseline' records")
    return meta


class HwTrace:
    """Training callback recording the hardware cost of the evolving masks.

    Parameters
    ----------
    profile:
        The accelerator ``P`` the masks are compiled and costed for.
    baseline:
        The dense baseline profile (e.g. ``systolic_8x8`` for ``sparse_pe_64``).
    verify:
        Replay one compiled layer through the Verilated RTL at every snapshot
        (:class:`codesign.verify.RtlCheck`) and fail on a cycle mismatch.
    report:
        Write ``report.md`` / ``report.json`` / plots at the end of the run.
    """

    def __init__(
        self, profile: HwProfile, baseline: HwProfile, *, verify: bool = False, report: bool = True
    ) -> None:
        self.profile, self.baseline = profile, baseline
        self.report = report
        self.checker = None
        if verify:
            from codesign.verify import RtlCheck

            self.checker = RtlCheck(profile)
        self._fields: list[str] | None = None
        self._cache: dict[str, SnapshotCost] = {}
        self.current: SnapshotCost | None = None
        self.dense: SnapshotCost | None = None
        self.base: SnapshotCost | None = None
        self.cum = dict.fromkeys(_CUM, 0.0)
        self.last: tuple[int, int] | None = None  # (t_env, iterations) of the last row
        self.rows = 0
        self._table: list[list[str]] = []
        self._restored: dict | None = None

    # ---------------------------------------------------------------- callback methods
    def on_start(self, run) -> None:
        from mast.envs import make_batch_env

        cfg = run.cfg
        env = make_batch_env(cfg.env.name, map_name=cfg.env.map_name, n_envs=1, seed=cfg.run.seed)
        self.run_cfg = workload_config(cfg, int(env.get_env_info()["episode_limit"]))
        close = getattr(env, "close", None)
        if close is not None:
            close()
        layers = run.export_layers(with_values=False)
        self.nnz = {lay.name: (lay.nnz, lay.mask.size) for lay in layers}
        self.dense = snapshot_costs(self.profile, layers, self.run_cfg, dense=True)
        self.base = snapshot_costs(self.baseline, layers, self.run_cfg, dense=True)
        self.path = Path(run.run_dir) / TRACE_FILE
        meta = {
            "profile": self.profile.to_dict(),
            "baseline": self.baseline.to_dict(),
            "run_config": dataclasses.asdict(self.run_cfg),
            "layers": [lay.name for lay in layers],
            "verify": self.checker is not None,
            "dense": self.dense.as_dict(),
            "dense_baseline": self.base.as_dict(),
        }
        meta_path = Path(run.run_dir) / META_FILE
        if self.path.is_file() and meta_path.is_file():
            old = read_meta(run.run_dir)
            for key, prof in (("profile", self.profile), ("baseline", self.baseline)):
                # As profiles, not as dicts: fields added since the run have defaults.
                if HwProfile.from_dict(old[key], source=str(meta_path)) != prof:
                    raise UserError(
                        f"run folder {str(run.run_dir)!r} was traced with {key} "
                        f"{old[key]['name']!r}; resume it with the same hardware flags"
                    )
        atomicio.write_text(meta_path, json.dumps(meta, indent=2) + "\n")
        if self.path.is_file():  # resumed run: the rows up to its checkpoint
            self._resume(run, layers)

    def _resume(self, run, layers: Sequence[SparseLayer]) -> None:
        """Cut the trace back to the rows its checkpoint had seen and continue its sums.

        With the trace's state from the checkpoint (:meth:`load_state_dict`) the first
        ``rows`` rows are kept and the sums continue from the checkpoint; a checkpoint
        without it (the trace was off when it was written) keeps the rows up to its
        ``t_env`` and continues from the last of them.
        """
        rows = read_trace(run.run_dir)
        if self._restored is not None:
            rows = rows[: self._restored["rows"]]
        else:
            at = run.resumed_at if run.resumed_at is not None else run.t_env
            rows = [r for r in rows if int(r["t_env"]) <= at and r["event"] != "end"]
            if rows:
                last = rows[-1]
                self.cum = {k: float(last[f"cum_{k}"]) for k in _CUM}
                self.last = (int(last["t_env"]), int(last["iterations"]))
        self.rows = len(rows)
        self._fields = list(rows[0].keys()) if rows else None
        self._table = [[r[k] for k in self._fields] for r in rows] if rows else []
        self._flush()
        self.current = self._cost(layers)

    # ---------------------------------------------------------------- checkpoint state
    def state_dict(self) -> dict:
        """Cumulative sums and position of the trace (goes into the run's checkpoint)."""
        return {
            "cum": dict(self.cum),
            "last": list(self.last) if self.last is not None else None,
            "rows": self.rows,
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from :meth:`state_dict` (called before :meth:`on_start` on resume)."""
        self.cum = {k: float(state["cum"][k]) for k in _CUM}
        self.last = tuple(int(v) for v in state["last"]) if state["last"] is not None else None
        self._restored = {"rows": int(state["rows"])}

    def on_topology_update(self, run, t_env: int, layers: list[SparseLayer]) -> None:
        self._row(run, "start" if self.rows == 0 else "update", t_env, layers)

    def on_log(self, run, t_env: int, metrics: dict) -> dict:
        if self.current is None or self.dense is None:
            return {}
        return {"hw_speedup": self.dense.train_cycles / self.current.train_cycles}

    def on_end(self, run) -> list[str]:
        """Close the trace, write the report; returns the summary lines (figures, path)."""
        if self.last is not None and self.last != (run.t_env, run.learner.train_steps):
            self._row(run, "end", run.t_env, None)
        if not self.report:
            return []
        from codesign.report import hardware_lines, run_summary, write_run_report

        path = write_run_report(run.run_dir)
        return [*hardware_lines(run_summary(run.run_dir)), f"report: {path}"]

    # ---------------------------------------------------------------- rows
    def _cost(self, layers: Sequence[SparseLayer]) -> SnapshotCost:
        key = _masks_key(layers)
        if key not in self._cache:
            self._cache[key] = snapshot_costs(self.profile, layers, self.run_cfg)
        return self._cache[key]

    def _integrate(self, t_env: int, iterations: int, updates: int) -> None:
        """Add the interval since the last row; ``updates`` topology updates ended it."""
        if self.last is None or self.current is None:
            return
        d_env, d_it = t_env - self.last[0], iterations - self.last[1]
        for prefix, c in (("", self.current), ("dense_", self.dense), ("baseline_", self.base)):
            self.cum[prefix + "time_s"] += (
                d_it * c.train_time_s + d_env * c.infer_time_s + updates * c.update_time_s
            )
            self.cum[prefix + "energy_j"] += (
                d_it * c.train_energy_j + d_env * c.infer_energy_j + updates * c.update_energy_j
            )

    def _row(self, run, event: str, t_env: int, layers: Sequence[SparseLayer] | None) -> None:
        iterations = int(run.learner.train_steps)
        self._integrate(t_env, iterations, int(event == "update"))
        t0 = time.perf_counter()
        if layers is not None:
            self.current = self._cost(layers)
            self.nnz = {lay.name: (lay.nnz, lay.mask.size) for lay in layers}
        c, d, b = self.current, self.dense, self.base
        kept = sum(n for n, _ in self.nnz.values())
        total = sum(size for _, size in self.nnz.values())
        row: dict[str, object] = {
            "event": event,
            "t_env": t_env,
            "iterations": iterations,
            "sparsity": 1.0 - kept / total,
        }
        for name, (n, size) in self.nnz.items():
            row[f"nnz:{name}"] = n
            row[f"density:{name}"] = n / size
        row.update(c.as_dict())
        for tag, ref in (("dense", d), ("baseline", b)):
            # Time, not cycles: the baseline may run at another clock.
            row[f"speedup_vs_{tag}"] = ref.train_time_s / c.train_time_s
            row[f"energy_gain_vs_{tag}"] = ref.train_energy_j / c.train_energy_j
            row[f"infer_speedup_vs_{tag}"] = ref.infer_time_s / c.infer_time_s
            row[f"infer_energy_gain_vs_{tag}"] = ref.infer_energy_j / c.infer_energy_j
        row.update({f"cum_{k}": v for k, v in self.cum.items()})
        row["costing_s"] = time.perf_counter() - t0
        check = None
        if self.checker is not None and layers is not None:
            check = self.checker.check(layers, self.rows)
            row.update(check.as_row())
        elif self.checker is not None:
            row.update(
                dict.fromkeys(
                    ("verify_layer", "verify_sim_cycles", "verify_rtl_cycles", "verify_ok"), ""
                )
            )
        self._write(row)
        self.last = (t_env, iterations)
        self.rows += 1
        if check is not None:
            check.raise_if_failed()

    def _write(self, row: dict) -> None:
        if self._fields is None:
            self._fields = list(row)
        self._table.append([str(row.get(k, "")) for k in self._fields])
        self._flush()

    def _flush(self) -> None:
        """Rewrite ``hw_trace.csv`` atomically (a kill never leaves a torn row)."""
        if self._fields is None:
            return
        text = io.StringIO(newline="")
        w = csv.writer(text)
        w.writerow(self._fields)
        w.writerows(self._table)
        atomicio.write_text(self.path, text.getvalue())
