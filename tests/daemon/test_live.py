"""The live shell (`daemon.live.LiveShell`) in process, over the sim, a real store and the real API, on a
live clock moved to a Wednesday 10:00 ET (timers stay real):

- a signal is decided by the core, its entry filled, a protective stop rests at the sim;
- the store stops writing: /healthz answers 503 with the reason, entries are refused `store_unavailable`,
  a take-profit exit still goes out at once; when the store is back everything is written, in order;
- a restart on the same store restores the position and its stop (not sent again) and answers a resent
  signal with its first decision (409).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from broker.quotes import QuoteBook
from broker.sim import SimBroker, stored_account_state
from config.loader import load_settings
from daemon.live import LiveShell
from daemon.store import Store
from market.clock import EXCHANGE_TZ, LiveClock
from market.types import OrderRequest, Quote
from tests.daemon.test_store_journal import Faulty, wait_for

START = datetime(2024, 3, 6, 10, 0, tzinfo=EXCHANGE_TZ)
DAY = date(2024, 3, 6)


class Shifted(LiveClock):
    def __init__(self, start: datetime):
        self._offset = start - super().now()

    def now(self) -> datetime:
        return super().now() + self._offset


class Sim(SimBroker):
    """The sim, recording every order it is handed."""

    placed: list[OrderRequest]

    async def place(self, order: OrderRequest) -> None:
        self.placed.append(order)
        await super().place(order)


class Market:
    def __init__(self, book: QuoteBook, clock: Shifted):
        self.book, self.clock = book, clock
        self.spy = Decimal("470.00")
        self.task: asyncio.Task[None] | None = None

    def tick(self) -> None:
        now = self.clock.now()
        for key, mid in {"SPY": self.spy, "QQQ": Decimal("400"), "IWM": Decimal("200"), "VIX": Decimal("18.5")}.items():
            self.book.update(Quote(key, mid - Decimal("0.01"), mid + Decimal("0.01"), mid, now, bid_size=500,
                                   ask_size=500))

    async def run(self) -> None:
        while True:
            self.tick()
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def shell(tmp_path: Path, clock: Shifted, broker_class: type[Sim] | None = None,
                **overrides: Any) -> AsyncIterator[tuple[LiveShell, Sim, Market]]:
    from broker.quote_model import OptionQuoteModel

    settings = load_settings("0dte", env={}, overrides={"daemon.state_dir": str(tmp_path / "state"),
                                                        "daemon.api.port": 0, "daemon.journal.retry_max_s": "0.05",
                                                        "daemon.journal.durable_timeout_s": "1",
                                                        "execution.child_interval_s": "0.1", "execution.reprice_s": "0.1",
                                                        **overrides})
    store = Store("0dte", f"sqlite:///{tmp_path / 'live.db'}")
    book = QuoteBook()
    model = OptionQuoteModel(book, clock, settings.broker.sim.model, settings.profile.vix_symbol,
                             settings.profile.contract_multiplier)
    broker = (broker_class or Sim)(book, clock, settings, quote_model=model,
                 prior=lambda: stored_account_state(store, settings, clock.now()))
    broker.placed = []
    live = LiveShell(settings, clock, store, broker, book)
    market = Market(book, clock)
    market.tick()
    await live.start()
    market.task = asyncio.ensure_future(market.run())
    try:
        yield live, broker, market
    finally:
        market.task.cancel()
        await asyncio.gather(market.task, return_exceptions=True)
        await live.stop()
        await store.close()


def signal(sid: str, clock: Shifted) -> dict[str, Any]:
    return {"id": sid, "profile": "0dte", "underlying": "SPY", "direction": "bullish", "strategy": "directional",
            "confidence": 0.75, "created_at": (clock.now() - timedelta(seconds=1)).isoformat()}


async def entered(live: LiveShell, sid: str, clock: Shifted) -> int:
    """A signal accepted, its entry filled and its protective stop resting; returns the contracts."""
    outcome = await live.submit_signal(signal(sid, clock), "test")
    assert outcome.accepted, outcome
    contracts: int = outcome.decision["contracts"]
    await wait_for(lambda: sum(p.open_qty for p in live.core.book) == contracts, timeout=60)
    await wait_for(lambda: len(live.core.stops.resting) == 1)
    return contracts


async def healthz(live: LiveShell) -> tuple[int, dict[str, Any]]:
    from daemon.api import start_api
    from daemon.auth import Tokens

    runner, port = await start_api(live, live.settings, tokens=Tokens("t" * 32, "a" * 32))
    try:
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/healthz") as resp:
            return resp.status, await resp.json()
    finally:
        await runner.cleanup()


async def test_a_trade_a_store_fault_and_a_restart_on_the_live_shell(tmp_path: Path) -> None:
    clock = Shifted(START)
    async with shell(tmp_path, clock) as (live, sim, market):
        await entered(live, "live-1", clock)
        stop_id = next(iter(live.core.stops.resting.values())).request.order_id
        assert (await healthz(live))[0] == 200

        faulty = Faulty(live.store)
        faulty.broken = True
        live.journal.append("set_meta", key="probe", value="x")  # the next write fails: the store is away
        await wait_for(lambda: not live.journal.available)
        await wait_for(lambda: not live.core.store_available)
        code, body = await healthz(live)
        assert code == 503 and body["reason"] == "store_unavailable"
        refused = await live.submit_signal(signal("live-2", clock), "test")
        assert not refused.accepted and refused.reason == "store_unavailable"

        sold_before = len([o for o in sim.placed if o.side == "SELL" and o.order_type == "LMT"])
        market.spy = Decimal("470.18")  # the call's model price past the first take-profit tier
        await wait_for(lambda: len([o for o in sim.placed if o.side == "SELL" and o.order_type == "LMT"])
                       > sold_before, timeout=10)  # the exit went out with the store away
        exit_order = next(o for o in sim.placed if o.side == "SELL" and o.order_type == "LMT")
        assert await live.store.find_intent(exit_order.order_id) is None  # not written yet: journaled

        faulty.broken = False
        await wait_for(lambda: live.journal.available and live.journal.pending == 0, timeout=10)
        assert await live.store.find_intent(exit_order.order_id) is not None  # nothing lost
        assert (await healthz(live))[0] == 200
        market.spy = Decimal("470.00")
        await live.settle()
        held = sum(p.open_qty for p in live.core.book)
        position_id = next(iter(live.core.book)).id if held else None
        stops_before = sorted(s.request.order_id for s in live.core.stops.resting.values())
        refs_before = {o.order_ref for o in sim.placed}

    async with shell(tmp_path, clock) as (again, sim2, _):
        if position_id is not None:
            (position,) = list(again.core.book)
            assert position.id == position_id and position.open_qty == held
            assert stops_before == [stop_id]  # one stop covers what the tier left
            assert sorted(s.request.order_id for s in again.core.stops.resting.values()) == stops_before  # adopted
        assert not [o for o in sim2.placed if o.order_type == "STP"]  # the stop was not sent again
        assert not {o.order_ref for o in sim2.placed} & refs_before  # no orderRef twice
        resent = await again.submit_signal(signal("live-1", clock), "test")
        assert not resent.accepted and resent.reason == "duplicate_signal" and resent.http_status == 409
