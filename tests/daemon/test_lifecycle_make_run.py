"""`make run`'s command: the embedded default runs end to end and prints every kind of event."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.daemon.test_output_units import json_too_precise

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
    # stdout is a pipe, not a terminal: JSON lines only (a terminal gets one human line per event).
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    events = [line.get("event") for line in lines]
    # Every number at its unit: money 2 places, prices at the tick, percentages 0.1 (issue 13).
    for line in lines:
        shown = {k: v for k, v in line.items() if k not in ("timestamp", "exchange_time", "at")}
        assert json_too_precise(shown) == [], line
    for event in ("decision", "order", "fill", "exit", "api_listening"):
        assert event in events, f"no {event} line"
    assert any("DEMONSTRATION" in str(line.get("note")) for line in lines)
    # Reprices and per-child lines are debug: the parent's summary line ("order") carries the limit walk.
    orders = [line for line in lines if line.get("event") == "order"]
    assert orders and all(re.fullmatch(r"\d+\.\d+(>\d+\.\d+)*( \| \d+\.\d+(>\d+\.\d+)*)*", line["walk"])
                          for line in orders), orders[:3]
    assert not {"child_sent", "child_repriced", "sim_fill", "parent_start", "parent_done"} & set(events)
    summary = lines[events.index("replay_summary")]
    assert summary["complete"] is True
    assert [d["session_date"] for d in summary["days"]] == [
        "2019-02-11", "2019-02-12", "2019-02-13", "2019-02-14", "2019-02-15"]
    # The log's count of signals is the summary's (the reference source's signals included).
    logged = lines[events.index("replay_done")]["signals"]
    assert logged == sum(d["signals"] for d in summary["days"]) != 0
    assert lines[-1] == {"level": "info", "event": "database",  # where the state went, the last line
                         "database": str(tmp_path / "replay-0dte.db")}
