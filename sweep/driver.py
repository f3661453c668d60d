"""Running a sweep's grid on Ray: submission, bounded retries, progress, clean interruption.

Every unfinished run becomes one Ray task executing :func:`sweep.task.run_one` with
``num_cpus=cpus_per_run``, ``num_gpus=gpus_per_run`` and ``max_retries``: Ray starts a
task again when its worker process dies (a killed process, a lost node), and the task
resumes the run from its checkpoint. An exception inside training is not retried: the
run is reported failed and the others go on.

Without an address the sweep starts an embedded local Ray (no dashboard, a small object
store, no usage statistics, and runs at the driver's CPU priority: Ray's default worker
niceness of 15 lets any other process on the machine starve the runs) and stops it at the
end; ``address`` (``auto`` or
``HOST:PORT``) joins a running cluster, whose nodes must see the sweep folder at the same
absolute path (a shared filesystem).

Ctrl-C cancels the running tasks (they stop inside the training loop, keeping their last
checkpoint) and raises ``KeyboardInterrupt``; running the same sweep again resumes.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from mast.errors import UserError
from sweep.spec import SPEC_FILE, RunKey, SweepSpec
from sweep.task import find_run_dir, is_finished, read_status, run_one, write_status

__all__ = ["SweepOutcome", "run_sweep", "ray_session"]

OBJECT_STORE_BYTES = 100 * 2**20
"""Object store of the embedded Ray: tasks return small records only."""
WORKER_NICENESS = 0
"""Niceness of the embedded Ray's workers (Ray's own default is 15)."""
CANCEL_GRACE_S = 20.0
"""How long cancelled tasks get to stop before their workers are killed."""


@dataclass(frozen=True)
class SweepOutcome:
    """What a call of :func:`run_sweep` did."""

    done: tuple[str, ...]
    """Runs finished in this call (run names, ``<cell>/s<seed>``)."""
    skipped: tuple[str, ...]
    """Runs that had finished before."""
    failed: tuple[tuple[str, str], ...]
    """Runs that failed: (name, error)."""
    wall_s: float
    """Wall time of the call."""


def _validate(spec: SweepSpec) -> None:
    """Resolve every run's config and check the maps before anything starts."""
    from mast.envs.maps import get_map

    for key in spec.runs():
        cfg = spec.train_config(key)
        if cfg.env.name == "builtin":
            get_map(cfg.env.map_name)
    if spec.hw_profile != "none":
        from sweep.task import _hw_callbacks

        _hw_callbacks(spec)


@contextmanager
def _lock(out: Path) -> Iterator[None]:
    out.mkdir(parents=True, exist_ok=True)
    fh = open(out / ".lock", "w")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise UserError(f"sweep {str(out)!r} is being run by another mast-sweep") from None
    try:
        yield
    finally:
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()


@contextmanager
def ray_session(
    address: str | None = None, num_cpus: int | None = None, node_ip: str | None = None
) -> Iterator[object]:
    """Connect to the cluster at ``address`` (``auto`` or ``HOST:PORT``; ``node_ip``: this
    machine's address in that cluster when Ray cannot tell), or start an embedded local Ray
    of ``num_cpus`` CPUs (default: all); shut it down, or disconnect, at the end."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    kw: dict = {"log_to_driver": False, "logging_level": logging.ERROR}
    if address is None:
        kw.update(
            num_cpus=num_cpus,
            include_dashboard=False,
            object_store_memory=OBJECT_STORE_BYTES,
            _system_config={"worker_niceness": WORKER_NICENESS},
        )
    else:
        if num_cpus is not None:
            raise UserError("--num-cpus sizes a local Ray; a cluster has its own nodes")
        kw["address"] = address
        if node_ip is not None:
            kw["_node_ip_address"] = node_ip
    try:
        ray.init(**kw)
    except ConnectionError as e:
        raise UserError(f"cannot reach a Ray cluster at {address!r}: {e}") from None
    except Exception as e:  # a local node that does not come up is a bare Exception
        if address is not None:
            raise
        cpus = "all CPUs" if num_cpus is None else f"{num_cpus} CPU" + "s" * (num_cpus != 1)
        raise UserError(f"could not start a local Ray of {cpus}: {e}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def _t_env_now(spec: SweepSpec, key: RunKey) -> int:
    """Environment steps a run has logged so far (the last ``metrics.csv`` row)."""
    try:
        run_dir = find_run_dir(spec.slot(key))
        if run_dir is None:
            return 0
        with open(run_dir / "metrics.csv", "rb") as fh:
            fh.seek(max(0, fh.seek(0, 2) - 4096))
            last = fh.read().decode(errors="replace").strip().splitlines()[-1]
        return int(float(last.split(",", 1)[0]))
    except (OSError, IndexError, ValueError, RuntimeError):
        return 0


def run_sweep(
    spec: SweepSpec,
    address: str | None = None,
    num_cpus: int | None = None,
    node_ip: str | None = None,
    console: Console | None = None,
) -> SweepOutcome:
    """Run every unfinished run of ``spec`` on Ray (see the module docstring).

    Raises
    ------
    mast.errors.UserError
        A run's configuration is invalid, the cluster is unreachable or lacks the GPUs asked
        for, or another ``mast-sweep`` runs the same sweep folder. Nothing starts then.
    KeyboardInterrupt
        Ctrl-C, after the running tasks were stopped.
    """
    console = console or Console(stderr=True)
    start = time.perf_counter()
    spec = spec.with_out(Path(spec.out).resolve())
    _validate(spec)
    out = Path(spec.out)
    with _lock(out):
        (out / SPEC_FILE).write_text(yaml.safe_dump(spec.to_dict(), sort_keys=False))
        keys = spec.runs()
        skipped = tuple(k.name for k in keys if is_finished(spec, k))
        todo = [k for k in keys if not is_finished(spec, k)]
        console.print(
            f"sweep {out}: {len(keys)} runs, {len(skipped)} finished before, {len(todo)} to run"
        )
        if not todo:
            return SweepOutcome((), skipped, (), time.perf_counter() - start)
        with ray_session(address, num_cpus, node_ip) as ray:
            if spec.gpus_per_run > 0 and ray.cluster_resources().get("GPU", 0) < spec.gpus_per_run:
                raise UserError(
                    f"gpus_per_run {spec.gpus_per_run} but the Ray cluster has "
                    f"{ray.cluster_resources().get('GPU', 0)} GPUs"
                )
            done, failed = _submit_and_wait(ray, spec, todo, console)
    return SweepOutcome(tuple(done), skipped, tuple(failed), time.perf_counter() - start)


def _submit_and_wait(ray, spec: SweepSpec, todo: list[RunKey], console: Console):
    session = uuid.uuid4().hex
    task = ray.remote(run_one).options(
        num_cpus=spec.cpus_per_run,
        num_gpus=spec.gpus_per_run,
        max_retries=spec.max_retries,
        retry_exceptions=False,
    )
    pending = {task.remote(spec, k, session): k for k in todo}
    total = len(todo) * spec.t_max
    base = {k: _t_env_now(spec, k) for k in todo}
    done: list[str] = []
    failed: list[tuple[str, str]] = []
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f} steps"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    bar = progress.add_task("", total=total, completed=sum(base.values()))
    last_poll = 0.0
    try:
        with progress:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
                for ref in ready:
                    key = pending.pop(ref)
                    try:
                        res = ray.get(ref)
                    except Exception as e:  # a training error, or a worker dead after retries
                        msg = str(e).strip().splitlines()
                        failed.append((key.name, msg[-1] if msg else type(e).__name__))
                        st = read_status(spec.slot(key))
                        if st.get("state") == "running":  # the worker died: it wrote nothing
                            write_status(spec.slot(key), {**st, "state": "failed",
                                                          "error": failed[-1][1]})  # fmt: skip
                        progress.console.print(f"[red]failed[/] {key.name}: {failed[-1][1]}")
                        continue
                    done.append(key.name)
                    progress.console.print(
                        f"done {key.name}: test win {res['test_win_rate']:.3f}, "
                        f"{res['t_env']} steps in {res['wall_s']:.0f} s "
                        f"(attempts {res['attempts']})"
                    )
                if time.perf_counter() - last_poll > 2.0 or ready:
                    last_poll = time.perf_counter()
                    running = sum(
                        read_status(spec.slot(k)).get("session") == session
                        and read_status(spec.slot(k)).get("state") == "running"
                        for k in pending.values()
                    )
                    now = sum(_t_env_now(spec, k) for k in pending.values())
                    finished = len(done) * spec.t_max + len(failed) * spec.t_max
                    progress.update(
                        bar,
                        completed=min(total, now + finished),
                        description=f"runs done {len(done)}/{len(todo)}, running {running}, "
                        f"failed {len(failed)}",
                    )
    except KeyboardInterrupt:
        try:
            _cancel(ray, list(pending), console)
        except Exception:  # noqa: BLE001 - Ray already going down: shutdown stops the rest
            pass
        raise
    if failed:
        console.print(
            f"{len(failed)} run(s) failed; run the same sweep again to retry them "
            f"(finished runs are skipped, interrupted ones resume)"
        )
    return done, failed


def _cancel(ray, refs: list, console: Console) -> None:
    console.print(f"interrupted: stopping {len(refs)} run(s); they resume on the next run")
    for ref in refs:
        ray.cancel(ref, force=False)
    deadline = time.perf_counter() + CANCEL_GRACE_S
    left = refs
    while left and time.perf_counter() < deadline:
        _, left = ray.wait(left, num_returns=len(left), timeout=1.0)
    for ref in left:
        ray.cancel(ref, force=True)
