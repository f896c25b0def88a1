"""A `tradingd run --broker sim` process with a quote source, for the live restart tests.

The CLI refuses a live sim without quotes (SPEC §4.3); this runs the same `daemon.app.App` with
live time moved to a Wednesday 10:00 ET (timers stay real) and a feeder that writes the
underlyings and VIX into the daemon's quote book every 50 ms (the sim's option model prices the
options from them, as it does live). The SPY price is read from `--spy-file` on every tick, so a
test moves the market by writing that file. Usage:
    python -m tests.daemon.live_sim_child --db URL --api-port N --spy-file PATH
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from daemon.app import App, RunOptions
from market.clock import LiveClock
from market.session import EXCHANGE_TZ
from market.types import Quote

START = datetime(2024, 3, 6, 10, 0, tzinfo=EXCHANGE_TZ)
LEVELS = {"QQQ": Decimal("400.00"), "IWM": Decimal("200.00"), "VIX": Decimal("18.50")}


class ShiftedClock(LiveClock):
    def __init__(self, start: datetime):
        self._offset = start - super().now()

    def now(self) -> datetime:
        return super().now() + self._offset


async def feed(app: App, spy_file: Path) -> None:
    while app.engine is None or app.engine.phase != "RUNNING":
        await asyncio.sleep(0.01)
    book = app.engine.quotes
    while True:
        try:
            spy = Decimal(spy_file.read_text().strip())
        except (OSError, ArithmeticError):
            spy = Decimal("470.00")
        now = app.clock.now()
        for key, mid in {"SPY": spy, **LEVELS}.items():
            half = Decimal("0.01")
            book.update(Quote(key, mid - half, mid + half, mid, now, bid_size=500, ask_size=500))
        await asyncio.sleep(0.05)


async def main(args: argparse.Namespace) -> int:
    app = App(RunOptions(profile="0dte", broker="sim", db=args.db, api_port=args.api_port, json_logs=True,
                         log_level="debug"))
    app.clock = ShiftedClock(START + timedelta(seconds=args.offset_s))
    feeder = asyncio.ensure_future(feed(app, Path(args.spy_file)))
    try:
        return await app.run()
    finally:
        feeder.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--api-port", type=int, required=True)
    parser.add_argument("--spy-file", required=True)
    parser.add_argument("--offset-s", type=float, default=0.0)
    raise SystemExit(asyncio.run(main(parser.parse_args())))
