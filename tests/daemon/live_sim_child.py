"""A `tradingd run --broker sim` process with a quote source, for the live restart tests.

The CLI refuses a live sim without quotes (SPEC §4.3); this runs the same `daemon.app.App` with
live time moved to a Wednesday 10:00 ET (timers stay real) and a feeder that writes the
underlyings and VIX into the daemon's quote book every 50 ms (the sim's option model prices the
options from them, as it does live). The SPY price is read from `--spy-file` on every tick, so a
test moves the market by writing that file. Usage:
    python -m tests.daemon.live_sim_child --db URL --api-port N --spy-file PATH

`TRADINGD_TEST_KILL_AT` (tests/daemon/test_intent_log_kill.py) makes the process SIGKILL itself at the
first exit order (a SELL limit): `written_ahead` right after its records reached the intent log and
before `place`; `sent_uncommitted` right after `place`, the store's writer thread held so that
nothing of the exit was committed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import threading
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

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


def _is_exit(record_op: str, payload: Any) -> bool:
    request = payload.get("request") if record_op == "write_intent" else None
    return request is not None and request.side == "SELL" and request.order_type == "LMT"


def kill_at(moment: str) -> None:
    """Install the self-kill of `TRADINGD_TEST_KILL_AT` (see the module docstring)."""
    from broker.sim import SimBroker
    from daemon.store.journal import Journal

    def die(request: Any) -> None:  # the test learns which order it died at from this line
        print(json.dumps({"event": "test_killed", "order_id": request.order_id, "order_ref": request.order_ref}),
              flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    if moment == "written_ahead":
        write_ahead = Journal.write_ahead

        def written(self: Journal) -> bool:
            done = write_ahead(self)
            exits = [r.payload["request"] for r in self._pending if _is_exit(r.op, r.payload)]
            if done and exits:
                die(exits[-1])
            return done

        Journal.write_ahead = written  # type: ignore[method-assign]
    elif moment == "sent_uncommitted":
        write, place = Journal._write, SimBroker.place

        def held(self: Journal, batch: list[Any]) -> list[Any]:
            if any(_is_exit(r.op, r.payload) for r in batch):
                threading.Event().wait()  # the exit's records never reach the database
            return write(self, batch)

        async def placed(self: SimBroker, order: Any) -> None:
            await place(self, order)
            if order.side == "SELL" and order.order_type == "LMT":
                die(order)

        Journal._write = held  # type: ignore[method-assign]
        SimBroker.place = placed  # type: ignore[method-assign]


async def main(args: argparse.Namespace) -> int:
    if moment := os.environ.get("TRADINGD_TEST_KILL_AT"):
        kill_at(moment)
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
