"""One run of a sweep: the training call of ``mast-train``, idempotent and resumable.

:func:`run_one` is what every Ray task executes. In the run's slot (see
:mod:`sweep.spec`) it

- returns the recorded result when the run has finished (``status.json`` says ``done`` with
  at least the spec's ``t_max`` steps);
- resumes the run folder from its ``checkpoint.pt`` when an earlier attempt was interrupted
  (``mast-train --resume`` semantics: :func:`mast.train.train` with ``resume=``);
- otherwise starts the run afresh with :func:`mast.train.train`, removing the folder of an
  attempt that died before its first checkpoint (nothing in it can be resumed).

Calling it again after any interruption therefore continues the same run, which is how a
worker that died is retried and how a re-run of the sweep skips and resumes runs.

``status.json`` (written atomically) records ``state`` (``running``, ``done``, ``failed``,
``interrupted``), ``attempts``, the worker's ``pid``, host (``node``) and Ray node id
(``ray_node``), the driver's ``session``,
``resumed_from`` (the checkpoint's ``t_env`` of the latest attempt, ``null`` if it started
afresh) and, when done, ``result``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import time
from pathlib import Path
from typing import Any

from sweep.spec import RunKey, SweepSpec

__all__ = ["STATUS_FILE", "find_run_dir", "is_finished", "read_status", "run_one"]

STATUS_FILE = "status.json"


def read_status(slot: Path) -> dict[str, Any]:
    """The slot's ``status.json`` (empty when the run never started)."""
    path = Path(slot) / STATUS_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def write_status(slot: Path, status: dict[str, Any]) -> None:
    """Replace ``status.json`` atomically (a reader never sees half a file)."""
    path = Path(slot) / STATUS_FILE
    tmp = path.with_name(f".{STATUS_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(status, indent=1) + "\n")
    os.replace(tmp, path)


def find_run_dir(slot: Path) -> Path | None:
    """The run folder in a slot (the one sub-folder with a ``config.yaml``), if any."""
    found = sorted(p.parent for p in Path(slot).glob("*/config.yaml"))
    if len(found) > 1:
        names = ", ".join(str(p) for p in found)
        raise RuntimeError(f"slot {str(slot)!r} holds more than one run folder: {names}")
    return found[0] if found else None


def is_finished(spec: SweepSpec, key: RunKey) -> bool:
    """Whether the run has finished with at least the spec's ``t_max`` environment steps."""
    st = read_status(spec.slot(key))
    return st.get("state") == "done" and int(st["result"]["t_env"]) >= spec.t_max


def _hw_callbacks(spec: SweepSpec) -> list[object]:
    from codesign.train import hw_callbacks

    ns = argparse.Namespace(
        hw_profile=spec.hw_profile, hw_baseline=spec.hw_baseline, hw_verify=False
    )
    return hw_callbacks(ns)


def _ray_node() -> str | None:
    """The Ray node id of this worker (``None`` outside Ray)."""
    import ray

    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None


def run_one(spec: SweepSpec, key: RunKey, session: str = "") -> dict[str, Any]:
    """Run (or finish, or skip) one run of the sweep; returns its result record.

    The record holds :class:`mast.train.RunResult`'s numbers (``t_env``, ``episodes``,
    ``test_win_rate``, ``test_return``, ``flops_train``, ``flops_test``, ``sparsity``,
    ``wall_s``: training wall time summed over attempts), ``run_dir`` (relative to the
    sweep folder), ``attempts``, ``node``, ``task_s`` (this attempt's time in the task,
    set-up included) and ``peak_rss_mib`` (of the worker process).
    """
    from mast import run_dir as rd
    from mast.train import train

    start = time.perf_counter()
    slot = spec.slot(key)
    slot.mkdir(parents=True, exist_ok=True)
    cfg = spec.train_config(key)
    status = read_status(slot)
    if is_finished(spec, key):
        return status["result"]
    run_dir = find_run_dir(slot)
    resume, resumed_from = None, None
    if run_dir is not None and (run_dir / "checkpoint.pt").is_file():
        resume = run_dir
        resumed_from = int(rd.load_checkpoint(run_dir)["t_env"])
    elif run_dir is not None:
        shutil.rmtree(run_dir)
    status = {
        "run": key.name,
        "state": "running",
        "attempts": int(status.get("attempts", 0)) + 1,
        "pid": os.getpid(),
        "node": socket.gethostname(),
        "ray_node": _ray_node(),
        "session": session,
        "resumed_from": resumed_from,
        "started": time.time(),
    }
    write_status(slot, status)
    try:
        res = train(cfg, _hw_callbacks(spec), out=slot, resume=resume)
    except BaseException as e:
        state = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
        write_status(slot, {**status, "state": state, "error": f"{type(e).__name__}: {e}"})
        raise
    result = {
        "t_env": res.t_env,
        "episodes": res.episodes,
        "test_win_rate": res.test_win_rate,
        "test_return": res.test_return,
        "flops_train": res.flops_train,
        "flops_test": res.flops_test,
        "sparsity": res.sparsity,
        "wall_s": res.wall_s,
        "run_dir": str(res.run_dir.relative_to(Path(spec.out))),
        "attempts": status["attempts"],
        "node": status["node"],
        "task_s": time.perf_counter() - start,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    write_status(slot, {**status, "state": "done", "result": result})
    return result
