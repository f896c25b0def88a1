"""Crash consistency (issue 8, SPEC §6.3): a replay SIGKILLed at >= 20 seeded random moments and
restarted each time on the same store ends exactly as one uninterrupted run.

The daemon runs as a real process, `make run`'s command (`tradingd run --profile 0dte --broker
sim --replay bundled --speed 0 --signals reference`) with its state in a temporary state dir and
JSON logs on stdout. First one uninterrupted run is the reference. Then, on a fresh state dir, the
same command is started, killed with SIGKILL after a seeded random delay, and started again on the
same state dir and store (`--db` in it), until it has been killed `KILLS` times; the last start runs to the end. Then:
- final positions, fills, realized P&L, exit events and breaker events in the store equal the
  reference's (compared on their natural keys and values, not on row ids or execution ids);
- no orderRef was sent twice, across every life's log (the `order ... status=sending` lines: what
  the daemon handed its venue; a killed run's venue dies with it, so an order whose intent was not
  durable before it was sent is sent again by the next life, and that is what this catches);
- the protective stops sent across every life are exactly the reference's (none re-sent);
- nothing is still open past its expiry (the replay ends after the last session).
The seed is printed on failure; set TRADINGD_CRASH_SEED to replay a failing schedule and
TRADINGD_CRASH_KILLS to change the number of kills.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
TRADINGD = Path(sys.executable).parent / "tradingd"
COMMAND = ["run", "--profile", "0dte", "--broker", "sim", "--replay", "bundled", "--speed", "0",
           "--signals", "reference", "--api-port", "0", "--json-logs"]
KILLS = int(os.environ.get("TRADINGD_CRASH_KILLS", "20"))
LAST_REPLAY_DAY = date(2019, 2, 15)  # the bundled week ends on Friday 2019-02-15
LIFE_TIMEOUT_S = 300


@dataclass
class Life:
    """One process: how it ended and what it logged."""

    killed: bool
    exit_code: int | None
    began: float  # wall clock (time.time()) at spawn
    seconds: float
    lines: list[dict[str, Any]] = field(default_factory=list)
    text: str = ""


def _start(state_dir: Path, out: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TRADINGD_DAEMON__STATE_DIR": str(state_dir), "PYTHONUNBUFFERED": "1"}
    env.pop("JOURNAL_STREAM", None)
    state_dir.mkdir(parents=True, exist_ok=True)
    # The store is named: a replay without --db starts from an empty database of its own by design,
    # so "restarted on the same store" means the same --db (in the same state dir).
    store = ["--db", f"sqlite:///{store_of(state_dir)}"]
    with out.open("wb") as sink:
        return subprocess.Popen([str(TRADINGD), *COMMAND, *store], cwd=REPO, env=env, stdout=sink,
                                stderr=subprocess.STDOUT)


def _read(out: Path) -> tuple[str, list[dict[str, Any]]]:
    text = out.read_text(errors="replace")
    lines = []
    for raw in text.splitlines():
        if raw.startswith("{"):
            try:
                lines.append(json.loads(raw))
            except json.JSONDecodeError:  # the line a SIGKILL cut in half
                continue
    return text, lines


def run_life(state_dir: Path, out: Path, kill_after_s: float | None) -> Life:
    """Start the daemon; SIGKILL it after `kill_after_s` seconds if it is still running."""
    began, wall = time.monotonic(), time.time()
    proc = _start(state_dir, out)
    killed = False
    try:
        if kill_after_s is None:
            proc.wait(timeout=LIFE_TIMEOUT_S)
        else:
            try:
                proc.wait(timeout=kill_after_s)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
                killed = True
    finally:
        if proc.poll() is None:  # a hung life must not outlive the test
            proc.kill()
            proc.wait(timeout=30)
    text, lines = _read(out)
    return Life(killed, None if killed else proc.returncode, wall, time.monotonic() - began, lines, text)


def startup_seconds(life: Life) -> float:
    """Wall seconds from spawn to `engine_started` in a reference life (imports, calendar, store)."""
    started = [ln for ln in life.lines if ln.get("event") == "engine_started"]
    assert started, "the reference run logged no engine_started"
    at = datetime.fromisoformat(started[0]["timestamp"].replace("Z", "+00:00")).timestamp()
    return min(max(at - life.began, 0.3), life.seconds)


def store_of(state_dir: Path) -> Path:
    """The store every life of a state dir runs on (`--db`, see `_start`)."""
    return state_dir / "replay-0dte.db"


def _rows(db: sqlite3.Connection, sql: str) -> list[tuple[Any, ...]]:
    return sorted(tuple(r) for r in db.execute(sql).fetchall())


def final_state(path: Path) -> dict[str, Any]:
    """What must equal an uninterrupted run's, on natural keys: no row ids, order ids or exec ids
    (a restarted process may number its rows and executions differently and still be right)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        state = {
            "positions": _rows(db, "SELECT underlying, contract_key, expiry, strike, right, entry_time, entry_price, "
                                   "original_qty, open_qty, realized_pnl, status, opened_by_signal_id, closed_at, "
                                   "close_reason FROM positions"),
            "fills": _rows(db, "SELECT order_ref, contract_key, side, quantity, price, commission, at, realized_pnl "
                               "FROM fills"),
            "realized_pnl": db.execute("SELECT COALESCE(SUM(realized_pnl), 0) FROM positions").fetchone()[0],
            "exit_events": _rows(db, "SELECT p.opened_by_signal_id, p.contract_key, e.rule, e.kind, e.quantity, "
                                     "e.reason, e.at FROM exit_events e JOIN positions p ON p.id = e.position_id"),
            "breaker_events": _rows(db, "SELECT level, from_state, to_state, session_pnl, reason, at "
                                        "FROM breaker_events"),
            "open_past_expiry": _rows(db, "SELECT contract_key, expiry, open_qty FROM positions "
                                          f"WHERE status != 'closed' AND expiry <= '{LAST_REPLAY_DAY.isoformat()}'"),
        }
    finally:
        db.close()
    return state


def sent_refs(lives: list[Life]) -> list[str]:
    """Every orderRef logged as sent, across every life, in order."""
    return [ln["order_ref"] for life in lives for ln in life.lines
            if ln.get("event") == "order" and ln.get("status") == "sending" and ln.get("order_ref")]


def stop_refs(refs: list[str]) -> list[str]:
    return sorted(r for r in refs if ":stop-" in r)


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_a_replay_killed_twenty_times_ends_as_one_uninterrupted_run(tmp_path: Path) -> None:
    seed = int(os.environ.get("TRADINGD_CRASH_SEED", str(random.SystemRandom().randrange(1, 2**31))))
    print(f"crash-consistency seed {seed} (TRADINGD_CRASH_SEED={seed} replays this schedule)")
    rng = random.Random(seed)
    where = f"[seed {seed}; rerun with TRADINGD_CRASH_SEED={seed}]"

    reference = run_life(tmp_path / "reference", tmp_path / "reference.out", None)
    assert reference.exit_code == 0, f"the uninterrupted run failed {where}:\n{reference.text[-3000:]}"
    expected = final_state(store_of(tmp_path / "reference"))
    assert expected["fills"] and expected["exit_events"], "the reference week traded nothing: nothing to compare"
    assert not expected["open_past_expiry"], f"the uninterrupted run leaves positions open past expiry {where}"
    reference_refs = sent_refs([reference])
    assert len(reference_refs) == len(set(reference_refs)), "the uninterrupted run sent an orderRef twice"

    # Kill moments: a life is killed after U(0.3 s, startup + 2 x (run - startup) / KILLS), so the
    # kills fall anywhere from start-up (store open, reconciliation) to deep in the week, and a
    # resuming daemon is killed about KILLS times before it reaches the end.
    startup = startup_seconds(reference)
    window = startup + 2 * max(reference.seconds - startup, 1.0) / KILLS
    crashed = tmp_path / "crashed"
    lives: list[Life] = []
    schedule: list[float] = []
    kills = 0
    while kills < KILLS:
        delay = round(rng.uniform(0.3, window), 3)
        life = run_life(crashed, tmp_path / f"life-{len(lives):02d}.out", delay)
        lives.append(life)
        schedule.append(delay)
        if life.killed:
            kills += 1
        else:
            assert life.exit_code == 0, f"life {len(lives) - 1} failed {where}:\n{life.text[-3000:]}"
        assert len(lives) < 4 * KILLS, f"the daemon never stays up long enough to be killed {where}"
    last = run_life(crashed, tmp_path / "last.out", None)
    lives.append(last)
    assert last.exit_code == 0, f"the final restart failed {where}:\n{last.text[-3000:]}"
    print(f"kills {kills} at {schedule} s after each start {where}")

    got = final_state(store_of(crashed))
    problems = []
    for key in ("positions", "fills", "realized_pnl", "exit_events", "breaker_events"):
        if got[key] != expected[key]:
            problems.append(f"{key} differ:\n  uninterrupted: {expected[key]}\n  killed x{kills}: {got[key]}")
    if got["open_past_expiry"]:
        problems.append(f"positions open past expiry: {got['open_past_expiry']}")
    refs = sent_refs(lives)
    twice = sorted(r for r, n in Counter(refs).items() if n > 1)
    if twice:
        problems.append(f"orderRefs sent more than once across the lives: {twice}")
    if stop_refs(refs) != stop_refs(reference_refs):
        extra = sorted((Counter(stop_refs(refs)) - Counter(stop_refs(reference_refs))).elements())
        problems.append(f"protective stops sent differ from the uninterrupted run's (re-sent or extra: {extra})")
    assert not problems, f"crash consistency broken {where}:\n" + "\n".join(problems)
