"""Warm a process for replays before it forks sweep workers: import the replay stack and build the
exchange calendar once, so no worker pays them on its first cell.

Measured on the bundled week (docs/performance.md, "Sweep throughput"): a cold worker's first replay
costs ~1 s of CPU more than the next (the replay modules ~0.5 s, the XNYS calendar ~0.5 s). Paid in
the planner before the fork, every worker of every pool of the sweep (the walk-forward's second phase
starts a new pool) inherits it copy-on-write, once. The fork server imports `daemon.sweep.forkserver`,
which calls `warm()`, so forkserver-started workers inherit it the same way.
"""

from __future__ import annotations

import importlib
from datetime import date

# What `run_job` imports on its first replay (found with `python -X importtime` and sys.modules diffs).
REPLAY_MODULES = ("daemon.sweep.jobs", "daemon.backtest.run", "daemon.backtest.figures", "daemon.replay",
                  "daemon.signals.reference", "statistics",
                  "_strptime")  # `datetime.strptime`'s: pandas imported it before the calendar was cached (room tick)
_WARM = False


def warm() -> None:
    """Idempotent; the store and the IB client stay unimported (a sweep opens neither)."""
    global _WARM
    if _WARM:
        return
    for name in REPLAY_MODULES:
        importlib.import_module(name)
    from market.calendar import FIRST_YEAR, is_session

    is_session(date(FIRST_YEAR, 1, 2))  # builds the whole calendar once (any covered date does)
    _WARM = True
