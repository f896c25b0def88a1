"""`make run`'s command: the embedded default runs end to end and prints every kind of event."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_make_run_command_prints_decisions_orders_fills_exits_and_the_summary(tmp_path: Path) -> None:
    tradingd = Path(sys.executable).parent / "tradingd"
    env = {**os.environ, "TRADINGD_DAEMON__STATE_DIR": str(tmp_path)}
    env.pop("JOURNAL_STREAM", None)
    done = subprocess.run([str(tradingd), "run", "--profile", "0dte", "--broker", "sim", "--replay", "bundled",
                           "--speed", "0", "--signals", "reference", "--api-port", "0"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    for event in (" decision ", " order ", " fill ", " exit ", "api_listening", "DEMONSTRATION"):
        assert event in out, f"no {event.strip()} line"
    assert "== 0dte: per-day summary" in out
    for day in ("2019-02-11", "2019-02-12", "2019-02-13", "2019-02-14", "2019-02-15"):
        assert f"{day}: signals" in out
    assert "total: signals" in out and "trades" in out
    # The log's count of signals is the summary's (the reference source's signals included).
    logged = re.search(r"replay_done .*signals=(\d+)", out)
    total = re.search(r"total: signals (\d+)", out)
    assert logged and total and logged.group(1) == total.group(1) != "0"
    assert f"database: {tmp_path / 'replay-0dte.db'}" in out  # where the state went, the last line
