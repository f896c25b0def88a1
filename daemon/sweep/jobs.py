"""One replay a sweep runs (`Job`), its cache key, and the worker function (`run_job`).

A job carries the fully resolved `Settings` (so a worker never re-reads profiles or its own
environment), the data set by name or shared path with the digest the planner saw, and the
window. Workers load each data set once per process and refuse one whose files differ from the
planner's (`data_mismatch`), and report their code version so the planner refuses results from a
worker running other code (`code_mismatch`): a cached figure is only ever a figure of this code on
these files.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import date
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

from config.errors import ReasonError
from config.models import Settings

REPO = Path(__file__).resolve().parents[2]
# The code a replay's figures depend on: every module and bundled config file of these packages.
CODE_PACKAGES = ("daemon", "broker", "risk", "exits", "config", "market")
CODE_SUFFIXES = (".py", ".toml")


@lru_cache(maxsize=1)
def code_version() -> str:
    """sha256 over the source of the packages a replay runs (not the git commit: an uncommitted edit
    changes the figures too)."""
    h = hashlib.sha256()
    for package in CODE_PACKAGES:
        for path in sorted((REPO / package).rglob("*")):
            if path.suffix in CODE_SUFFIXES and path.is_file() and "__pycache__" not in path.parts:
                h.update(str(path.relative_to(REPO)).encode())
                h.update(path.read_bytes())
    return h.hexdigest()


def file_digest(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@dataclass(frozen=True)
class Job:
    """One replay: a grid cell (or a baseline) on a window of a data set."""

    cell: str  # "c003", "baseline-new", ...
    phase: str  # "full" (the whole window), "train", "test", "baseline"
    fold: int | None
    settings: Settings
    data: str  # a data set name ("bundled", "spxw", ...) or an absolute folder shared with the workers
    data_digest: str
    signals: str  # "reference" or an absolute path to a JSONL file
    signals_digest: str
    window: tuple[date | None, date | None]
    sizing: str = "new"

    @cached_property
    def key(self) -> str:
        """The cache key: sha256 of (the cell's effective settings, the data files, the signals, the window,
        the sizing label, the code version). Labels (cell name, phase, fold) are not in it: the same
        replay under two names is one replay."""
        body = {"settings": self.settings.model_dump(mode="json"), "data": self.data_digest,
                "signals": self.signals_digest, "window": [None if d is None else d.isoformat() for d in self.window],
                "sizing": self.sizing, "code": code_version()}
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()

    def describe(self) -> dict[str, Any]:
        return {"cell": self.cell, "phase": self.phase, "fold": self.fold, "data": self.data,
                "window": [None if d is None else d.isoformat() for d in self.window], "sizing": self.sizing}


# ------------------------------------------------------------------------------------------ worker side

_DATA: dict[str, Any] = {}  # data set spec -> MarketData, once per worker process


def dataset(spec: str, digest: str) -> Any:
    """The data set, loaded once per process; refused when its files are not the planner's."""
    from daemon.backtest.data import load_dataset

    data = _DATA.get(spec)
    if data is None:
        data = load_dataset(spec)
        _DATA[spec] = data
        _DATA[f"{spec}\0digest"] = data.digest()
    if _DATA[f"{spec}\0digest"] != digest:
        raise JobError("data_mismatch", f"data set {spec} on this worker (pid {os.getpid()}) is not the files the "
                                        "sweep was planned on: workers must read one shared path")
    return data


def preload(spec: str, data: Any) -> None:
    """Hand a data set loaded by the planner to the workers it forks (they inherit it; no reload)."""
    _DATA[spec] = data
    _DATA[f"{spec}\0digest"] = data.digest()


class JobError(ReasonError, RuntimeError):
    """A replay a worker refuses to run (its data is not the planner's)."""


_QUIET = False


def _quiet() -> None:
    """A fresh worker (spawned, or a Dask worker) logs errors only, like `tradingd replay`; a forked
    worker keeps what its parent configured."""
    global _QUIET
    if not _QUIET:
        import sys

        import structlog

        from daemon.logging import configure_logging

        if not structlog.is_configured():
            configure_logging(False, level="ERROR", stream=sys.stderr)
        _QUIET = True


def run_job(job: Job) -> dict[str, Any]:
    """Run one replay; returns plain values: the §8 figures, the counts, the notes, the worker's code version.
    Module-level and free of globals other than the data cache, so process pools and Dask can call it."""
    from daemon.backtest.figures import figures
    from daemon.backtest.run import run_replay

    _quiet()
    data = dataset(job.data, job.data_digest)
    result = run_replay(job.settings, data, job.signals, job.window, job.sizing)
    return {"figures": figures(result), "counts": dict(sorted(result.counts.items())),
            "sessions": [d.isoformat() for d in result.sessions], "notes": list(result.notes),
            "code": code_version()}
