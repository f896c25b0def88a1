"""RSS after a replayed week with 100 subscribed contracts (issue 8: <= 150 MB, flat from day 2).

The daemon's replay (`make run`'s: 0dte, sim, the bundled week, speed 0, reference signals, a
fresh SQLite store) in this process, with 100 option contracts subscribed at the broker through
the whole week on top of what the daemon itself subscribes: at each session's first quote the
previous day's 100 are unsubscribed and 100 of the day's contracts are subscribed (25 strikes
around the money x call/put x SPY and QQQ, expiring that day, as a 0dte book would watch), so
the sim models and books a quote for each of them on every underlying tick.
RSS (VmRSS of /proc/self/status) is sampled at the end of each session (the first quote of the
next day, and after the last); "flat from day 2" is the growth from the end of day 2 to the end
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
from datetime import date
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
    from daemon.app import App, RunOptions
    from daemon.engine import Engine
    from market.types import Quote

    samples: list[tuple[str, float]] = []
    subscribed: list[int] = []

    class SubscribingApp(App):
        def build(self) -> Engine:
            engine = super().build()
            state: dict[str, Any] = {"day": None, "keys": [], "prices": {}}

            def on_quote(quote: Quote) -> None:
                if quote.key in UNDERLYINGS and quote.last is not None:
                    state["prices"][quote.key] = quote.last
                day = self.clock.now().date()  # the replay's clock: quote stamps are not all in order
                if (state["day"] is not None and day <= state["day"]) or any(u not in state["prices"] for u in UNDERLYINGS):
                    return
                if state["day"] is not None:
                    samples.append((state["day"].isoformat(), rss_mb()))
                state["day"] = day
                old, new = state["keys"], day_contracts(day, state["prices"])
                state["keys"] = new
                broker = engine.broker

                async def resubscribe() -> None:
                    if old:
                        await broker.unsubscribe(old)
                    await broker.subscribe(new)
                    subscribed.append(len(new))

                asyncio.get_running_loop().create_task(resubscribe())

            engine.quotes.add_listener(on_quote)
            return engine

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TRADINGD_DAEMON__STATE_DIR"] = tmp
        options = RunOptions(profile="0dte", broker="sim", replay="bundled", speed=0.0, signals="reference",
                             api=False)
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            app = SubscribingApp(options, out=sink)
            code = asyncio.run(app.run())
        samples.append(("end", rss_mb()))
    return {"exit_code": code, "rss_mb_by_day": samples, "subscribed_per_day": subscribed}


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
