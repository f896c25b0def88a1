"""RSS after a replayed week with 100 subscribed contracts (issue 8: <= 150 MB, flat from day 2).

The daemon's replay (`daemon.replay.Replay` as `make run` wires it: 0dte, the sim venue, the
bundled week, reference signals, the store sink on a fresh SQLite store) in this process, with
100 option contracts subscribed through the whole week on top of what the daemon itself
subscribes: at each session's first bars the previous day's 100 are untracked and 100 of the
day's contracts tracked by the option model (what a Subscribe effect does; 25 strikes around
the money x call/put x SPY and QQQ, expiring that day, as a 0dte book would watch), so a quote
is modelled and booked for each of them on every underlying tick.
RSS (VmRSS of /proc/self/status) is sampled at the end of each session (the next session's first
bar, and after the last); "flat from day 2" is the growth from the end of day 2 to the end
of the week. Usage: python bench/bench_rss.py [--json]
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.results import Sample  # noqa: E402

CONTRACTS = 100
UNDERLYINGS = ("SPY", "QQQ")
STRIKES_EACH_SIDE = 12  # 25 strikes per underlying x 2 rights x 2 underlyings = 100
FLAT_MB = 5.0  # "flat from day 2": at most this much growth from the end of day 2 to the end of the week


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def day_contracts(day: date, prices: dict[str, Decimal]) -> list[str]:
    from market.types import OptionContract

    keys = []
    for underlying in UNDERLYINGS:
        atm = int(prices[underlying])
        for strike in range(atm - STRIKES_EACH_SIDE, atm + STRIKES_EACH_SIDE + 1):
            for right in ("C", "P"):
                keys.append(OptionContract(underlying, day, Decimal(strike), right).key)  # type: ignore[arg-type]
    return keys


def measure() -> dict[str, Any]:
    """Run the week in this process; the RSS at the end of each session and the subscriptions."""
    import logging

    from config.loader import load_settings
    from daemon.app import load_replay
    from daemon.bars import Bar
    from daemon.replay import Replay, StepClock, StoreSink, recorded_events
    from daemon.signals.reference import OpeningRangeBreakout
    from daemon.store import Store
    from market import calendar
    from market.clock import EXCHANGE_TZ

    settings = load_settings("0dte", env={})
    data = load_replay("bundled", settings)
    events = recorded_events(data.bars, [], frozenset({settings.profile.vix_symbol}))
    first = min(b[0].start for b in data.bars.values() if b)
    start = datetime.combine(first.date(), time(0), tzinfo=EXCHANGE_TZ)
    last = max(b[-1].end for b in data.bars.values() if b).date()
    calendar.session_for(start.date())
    samples: list[tuple[str, float]] = []
    subscribed: list[int] = []
    reference = OpeningRangeBreakout(settings.profile.name, settings.profile.underlyings)
    state: dict[str, Any] = {"day": None, "keys": [], "prices": {}}
    replay: Replay | None = None

    def on_bar(bar: Bar) -> Any:
        """The reference signals, and at each session's first bars the day's 100 subscriptions."""
        assert replay is not None
        if bar.symbol in UNDERLYINGS:
            state["prices"][bar.symbol] = bar.close
        day = bar.end.date()
        if (state["day"] is None or day > state["day"]) and all(u in state["prices"] for u in UNDERLYINGS):
            if state["day"] is not None:
                samples.append((state["day"].isoformat(), rss_mb()))
            state["day"] = day
            old, new = state["keys"], day_contracts(day, state["prices"])
            replay.model.untrack(old)  # what a Subscribe/Unsubscribe effect does in the replay
            replay.model.track(new)
            for underlying in UNDERLYINGS:
                replay.model.refresh(underlying)
            state["keys"] = new
            subscribed.append(len(replay.model.tracked()))
        return reference.on_bar(bar)

    with tempfile.TemporaryDirectory() as tmp:
        store = Store("0dte", f"sqlite:///{Path(tmp) / 'rss.db'}")
        asyncio.run(store.upgrade())
        sink = StoreSink(store)
        sink.claim("bench-rss")
        replay = Replay(settings, start, sink=sink, bar_listener=on_bar, signal_source="reference",
                        daily_closes=data.closes_before, clock=StepClock(start))
        with open(os.devnull, "w") as out, contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            logging.disable(logging.CRITICAL)
            replay.run(events, datetime.combine(last, time(23, 59), tzinfo=EXCHANGE_TZ))
            sink.flush()
            logging.disable(logging.NOTSET)
        samples.append(("end", rss_mb()))

        async def close() -> None:
            await store.close()

        asyncio.run(close())
    return {"exit_code": 0, "rss_mb_by_day": samples, "subscribed_per_day": subscribed}


def figures() -> list[Sample]:
    """One bench run, in a fresh process (RSS is the process's own)."""
    done = subprocess.run([sys.executable, __file__, "--json"], capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1][:200]
        return [Sample("rss_after_week_100_contracts", None, "MB", "<=", 150, f"failed: {reason}"),
                Sample("rss_growth_day2_to_end", None, "MB", "<=", FLAT_MB, f"failed: {reason}")]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    by_day = out["rss_mb_by_day"]
    note = (f"{CONTRACTS} contracts re-subscribed at each of {len(out['subscribed_per_day'])} sessions; "
            f"RSS MB at each session's end {[(d, round(m, 1)) for d, m in by_day]}")
    final = by_day[-1][1]
    growth = final - by_day[1][1] if len(by_day) > 2 else None
    return [Sample("rss_after_week_100_contracts", final, "MB", "<=", 150, note),
            Sample("rss_growth_day2_to_end", growth, "MB", "<=", FLAT_MB, note)]


if __name__ == "__main__":
    if "--json" in sys.argv:
        result = measure()
        print(json.dumps(result))
        sys.exit(result["exit_code"])
    for s in figures():
        print(f"{s.name}: {s.value} {s.unit} ({s.note})")
