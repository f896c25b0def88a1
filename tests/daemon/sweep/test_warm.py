"""`daemon.sweep.warm`: after `warm()` a replay imports nothing and builds no calendar, so workers forked
from a warmed planner (or from the warmed fork server) start their first cell as fast as their last."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
from daemon.sweep.warm import warm
warm()
import market.calendar as calendar
built = calendar._cache
before = set(sys.modules)
from daemon.backtest.data import load_dataset
from daemon.backtest.run import replay_settings, run_replay
from datetime import date
data = load_dataset("bundled")
day = date(2019, 2, 13)
result = run_replay(replay_settings("7dte", data, "new"), data, "reference", (day, day), "new")
print(built is not None and calendar._cache is built, len(result.sessions))
print(sorted(set(sys.modules) - before))
print(sorted(m for m in sys.modules if m.startswith(("alembic", "daemon.store.store", "daemon.store.database",
                                                     "daemon.store.migrate", "daemon.store.core_sink"))))
"""


def test_after_warm_a_replay_imports_nothing_and_reuses_the_calendar() -> None:
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    calendar_kept, new_modules, store_side = proc.stdout.strip().splitlines()[-3:]
    assert calendar_kept == "True 1"
    assert new_modules == "[]", new_modules  # a module imported here is one every cold worker pays for
    assert store_side == "[]", store_side  # a replay into memory never loads the database side of the store


def test_the_fork_server_preload_module_warms_on_import() -> None:
    probe = ("import sys; import daemon.sweep.forkserver; import daemon.sweep.warm as w; "
             "print(w._WARM, all(m in sys.modules for m in w.REPLAY_MODULES))")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "True True"
