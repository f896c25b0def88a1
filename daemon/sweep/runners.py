"""Where a sweep's replays run: local worker processes (default) or a Dask cluster (`--cluster`).

Both yield `(job, outcome)` as replays finish, in completion order (the planner orders results by
cell, so the order never shows). An outcome is the worker's result dict, or `{"error": code,
"message": ...}` when the replay itself failed (bad data in a window, say): that cell is reported
failed, the others go on.

A lost worker is not a failed replay: its unfinished cells are run again.
- Local: a worker process that dies breaks Python's process pool (every unfinished future fails
  with `BrokenProcessPool`); the runner starts a new pool and resubmits exactly the unfinished jobs.
- Dask: the scheduler already reruns a dead worker's tasks elsewhere; a task that took down
  `allowed-failures` workers comes back as `KilledWorker` and is resubmitted here.
After `max_losses` losses in one sweep the runner gives up (`workers_lost`): a cell that kills every
worker it touches is a bug to fix, not to retry forever.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from daemon.sweep.jobs import Job, JobError, run_job

MAX_LOSSES = 3


class WorkersLost(RuntimeError):
    code = "workers_lost"


def _failure(exc: BaseException) -> dict[str, Any]:
    code = getattr(exc, "code", None) or type(exc).__name__
    return {"error": str(code), "message": str(exc)}


class LocalRunner:
    """A pool of `workers` processes on this machine.

    Forked from the planner when it is single-threaded (the command line): the workers inherit the data
    set the planner loaded. A process with other threads (a test session, an embedding service) is not
    forked, since a lock another thread holds at the fork would stay held in the child forever; there
    the workers come from a fork server that imported the replay code once, and load the data once each."""

    name = "local"

    def __init__(self, workers: int | None = None, max_losses: int = MAX_LOSSES):
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.max_losses = max_losses
        self.submitted = 0  # replays handed to a worker, retries included
        self.lost = 0  # pools broken by a dead worker
        self._pool: ProcessPoolExecutor | None = None

    def describe(self) -> str:
        return f"{self.workers} local worker process{'es' if self.workers != 1 else ''}"

    def pids(self) -> list[int]:
        """The live worker processes' ids (tests kill one by its id)."""
        pool = self._pool
        processes = getattr(pool, "_processes", None) or {}
        return sorted(pid for pid, p in list(processes.items()) if p.is_alive())

    @staticmethod
    def context() -> Any:
        methods = multiprocessing.get_all_start_methods()
        if "fork" in methods and threading.active_count() == 1:
            return multiprocessing.get_context("fork")
        if "forkserver" in methods:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(["daemon.sweep.jobs", "daemon.backtest.run", "daemon.replay"])
            return ctx
        return multiprocessing.get_context("spawn")

    def run(self, jobs: list[Job]) -> Iterator[tuple[Job, dict[str, Any]]]:
        pending = {job.key: job for job in jobs}
        while pending:
            pool = ProcessPoolExecutor(self.workers, mp_context=self.context())
            self._pool = pool
            broken = False
            try:
                futures = {}
                for job in pending.values():
                    futures[pool.submit(run_job, job)] = job
                    self.submitted += 1
                waiting = set(futures)
                while waiting:
                    done, waiting = wait(waiting, return_when=FIRST_COMPLETED)
                    for future in sorted(done, key=lambda f: futures[f].key):
                        job = futures[future]
                        try:
                            outcome = future.result()
                        except BrokenProcessPool:
                            broken = True
                            continue
                        except Exception as exc:  # the replay failed: report the cell, keep the sweep
                            outcome = _failure(exc)
                        del pending[job.key]
                        yield job, outcome
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None
            if broken and pending:
                self.lost += 1
                if self.lost > self.max_losses:
                    raise WorkersLost(f"workers_lost: {self.lost} worker losses; {len(pending)} cells not run")

    def close(self) -> None:
        pass


class DaskRunner:
    """A running Dask scheduler (`--cluster tcp://host:8786`) or a `distributed.Client` the caller owns.
    Workers must see the same data path and run the same code (both are checked per result)."""

    name = "dask"

    def __init__(self, cluster: Any, max_losses: int = MAX_LOSSES, timeout: str = "30s"):
        from distributed import Client

        self.own = not isinstance(cluster, Client)
        self.client = Client(cluster, timeout=timeout, set_as_default=False) if self.own else cluster
        self.max_losses = max_losses
        self.submitted = 0
        self.lost = 0

    def describe(self) -> str:
        workers = self.client.scheduler_info().get("workers", {})
        return f"Dask cluster {self.client.scheduler.address} ({len(workers)} workers)"

    def run(self, jobs: list[Job]) -> Iterator[tuple[Job, dict[str, Any]]]:
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        nonce = uuid.uuid4().hex[:8]
        by_key: dict[str, Job] = {}

        def submit(job: Job, attempt: int) -> Any:
            self.submitted += 1
            key = f"tradingd-sweep-{job.cell}-{job.key[:16]}-{nonce}-{attempt}"
            by_key[key] = job
            return self.client.submit(run_job, job, key=key, pure=False)

        stream = as_completed([submit(job, 0) for job in jobs], loop=self.client.loop)
        for future in stream:
            job = by_key[future.key]
            if future.status == "finished":
                outcome = future.result()
            else:
                exc = future.exception()
                if isinstance(exc, KilledWorker):
                    self.lost += 1
                    if self.lost > self.max_losses:
                        raise WorkersLost(f"workers_lost: {self.lost} tasks lost their workers")
                    stream.add(submit(job, self.lost))
                    future.release()
                    continue
                outcome = _failure(exc)
            future.release()
            yield job, outcome

    def close(self) -> None:
        if self.own:
            self.client.close()


__all__ = ["DaskRunner", "JobError", "LocalRunner", "WorkersLost"]
