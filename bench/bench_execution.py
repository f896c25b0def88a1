"""How fast the executor and the sim work parents in virtual time (replay speed), and the pacing they keep.

Runs N sliced entry parents (40 contracts at 3.00 = 12,000 each) against the SimBroker on a
VirtualClock with a quote feed ticking every second, then prints wall time, messages sent and
the busiest second of virtual time. Usage: python bench/bench_execution.py [parents]
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import structlog  # noqa: E402

from broker.execution import Executor, ParentOrder  # noqa: E402
from broker.quotes import QuoteBook  # noqa: E402
from broker.sim import SimBroker  # noqa: E402
from market.types import Fill, OptionContract, OrderUpdate, Quote  # noqa: E402
from config.loader import load_settings  # noqa: E402
from market.clock import EXCHANGE_TZ, VirtualClock  # noqa: E402

START = datetime(2019, 2, 12, 10, 0, tzinfo=EXCHANGE_TZ)


class Forward:
    def __init__(self, executor: Executor):
        self.executor = executor

    def on_quote(self, quote: Quote) -> None: ...
    def on_order_update(self, update: OrderUpdate) -> None: self.executor.on_order_update(update)
    def on_fill(self, fill: Fill) -> None: self.executor.on_fill(fill)
    def on_connection(self, connected: bool, reason: str) -> None: ...


async def run(parents: int) -> dict[str, object]:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    settings = load_settings("0dte", env={}, overrides={"broker.sim.starting_cash": 10**9})
    clock = VirtualClock(START)
    book = QuoteBook()
    sim = SimBroker(book, clock, settings)
    ids = itertools.count(1)
    sent: list[datetime] = []

    async def before_send(request: object) -> None:
        return None

    executor = Executor.from_settings(sim, book, clock, settings, allocate_order_id=lambda: next(ids),
                                      before_send=before_send)
    original = executor.throttle.acquire

    async def counted() -> None:
        await original()
        sent.append(clock.now())

    executor.throttle.acquire = counted  # type: ignore[method-assign]
    sim.set_listener(Forward(executor))
    await sim.start()
    contract = OptionContract("SPY", START.date(), Decimal(270), "C")

    async def feed() -> None:
        while True:
            book.update(Quote(contract.key, Decimal("2.95"), Decimal("3.05"), None, clock.now(), 50, 50))
            await clock.sleep(1)

    feeding = asyncio.create_task(feed())
    wall = time.perf_counter()
    work = asyncio.gather(*(executor.execute(ParentOrder("0dte", f"b{i}", contract, "BUY", 40))
                            for i in range(parents)))
    while not work.done():
        await clock.advance_to(clock.now() + timedelta(milliseconds=50))
    results = work.result()
    wall = time.perf_counter() - wall
    feeding.cancel()
    await sim.stop()
    per_second: dict[int, int] = {}
    for t in sent:
        second = int((t - START).total_seconds())
        per_second[second] = per_second.get(second, 0) + 1
    return {
        "parents": parents, "filled": sum(r.filled for r in results), "messages": len(sent),
        "virtual_s": round((clock.now() - START).total_seconds(), 1), "wall_s": round(wall, 2),
        "busiest_second_messages": max(per_second.values()),
        "limit_per_s": settings.execution.max_messages_per_s,
    }


if __name__ == "__main__":
    out = asyncio.run(run(int(sys.argv[1]) if len(sys.argv) > 1 else 50))
    print(json.dumps(out))
    sys.exit(0 if out["busiest_second_messages"] <= out["limit_per_s"] else 1)
