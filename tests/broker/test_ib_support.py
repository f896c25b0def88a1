"""Shared pieces of the IBBroker tests: a fake gateway with a small market, a broker on it, a recorder.

No tests here; the test_ib_*.py modules import from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from broker.ib import IBBroker
from market.types import Fill, OptionContract, OrderRequest, OrderUpdate, Quote
from config.loader import load_settings
from config.models import Settings
from market.clock import EXCHANGE_TZ, LiveClock
from tests.fakegw import FakeGateway

EXPIRY = date(2030, 1, 18)  # far enough out that no test meets it
STRIKES = (Decimal(468), Decimal(470), Decimal(472))
# Fast but still ordered: heartbeat every 0.2 s, 0.1 s to answer, reconnect after 0.05 s.
FAST_IB = {
    "broker.ib.heartbeat_interval_s": "0.2",
    "broker.ib.heartbeat_timeout_s": "0.1",
    "broker.ib.reconnect_initial_s": "0.05",
    "broker.ib.reconnect_max_s": "0.2",
    "broker.ib.connect_timeout_s": "2",
    "broker.ib.commission_wait_s": "0.5",
    "broker.ib.disconnect_alert_after_s": "0.3",
}


def settings(port: int, **overrides: Any) -> Settings:
    values: dict[str, Any] = {**FAST_IB, "broker.ib.port": port, "broker.ib.client_id": 7}
    values.update({k.replace("__", "."): v for k, v in overrides.items()})
    return load_settings("0dte", env={}, overrides=values)


def spy_call(strike: Decimal = Decimal(470)) -> OptionContract:
    return OptionContract("SPY", EXPIRY, strike, "C")


def order(order_id: int, *, qty: int = 2, side: str = "BUY", limit: str | None = "2.55",
          order_type: str = "LMT", stop: str | None = None, ref: str | None = None,
          contract: OptionContract | None = None, tif: str = "DAY") -> OrderRequest:
    return OrderRequest(order_id=order_id, order_ref=ref or f"tradingd:0dte:sig-{order_id}:1",
                        contract=contract or spy_call(), side=side, quantity=qty,  # type: ignore[arg-type]
                        order_type=order_type,  # type: ignore[arg-type]
                        limit_price=Decimal(limit) if limit and order_type == "LMT" else None,
                        stop_price=Decimal(stop) if stop else None, tif=tif)  # type: ignore[arg-type]


def stock_market(gw: FakeGateway) -> None:
    gw.market.set_stock("SPY", "470.00", "470.02", last="470.01")
    gw.market.set_index("VIX", "18.5")
    gw.market.add_chain("SPY", [EXPIRY], STRIKES)
    for strike in STRIKES:
        gw.market.set_option("SPY", EXPIRY, strike, "C", "2.50", "2.60", bid_size=20, ask_size=20,
                             open_interest=1200, delta="0.5", gamma="0.04", iv="0.18")
    gw.account_values(net_liquidation="100000", buying_power="400000", cash="100000")


@dataclass
class Recorder:
    """A BrokerListener that keeps everything and lets a test wait for something to arrive."""

    quotes: list[Quote] = field(default_factory=list)
    updates: list[OrderUpdate] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    connection: list[tuple[bool, str]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def on_quote(self, quote: Quote) -> None:
        self.quotes.append(quote)
        self.changed.set()

    def on_order_update(self, update: OrderUpdate) -> None:
        self.updates.append(update)
        self.changed.set()

    def on_fill(self, fill: Fill) -> None:
        self.fills.append(fill)
        self.changed.set()

    def on_connection(self, connected: bool, reason: str) -> None:
        self.connection.append((connected, reason))
        self.changed.set()

    async def wait_for(self, condition: Callable[[], Any], timeout: float = 5.0) -> Any:
        """The condition's first truthy value; fails the test after `timeout` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = condition()
            if value:
                return value
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"condition not met within {timeout} s: {condition}")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(remaining, 0.05))

    def last_quote(self, key: str) -> Quote | None:
        return next((q for q in reversed(self.quotes) if q.key == key), None)

    def updates_for(self, order_id: int) -> list[OrderUpdate]:
        return [u for u in self.updates if u.order_id == order_id]


@contextlib.asynccontextmanager
async def gateway(**kwargs: Any) -> AsyncIterator[FakeGateway]:
    gw = FakeGateway(**kwargs)
    await gw.start()
    stock_market(gw)
    try:
        yield gw
    finally:
        await gw.stop()


@contextlib.asynccontextmanager
async def connected(gw: FakeGateway, alerts: list | None = None, start: bool = True,
                    **overrides: Any) -> AsyncIterator[tuple[IBBroker, Recorder]]:
    broker = IBBroker(settings(gw.port, **overrides), rng=random.Random(7),
                      alert=(lambda kind, detail: alerts.append((kind, dict(detail)))) if alerts is not None else None)
    rec = Recorder()
    broker.set_listener(rec)
    try:
        if start:
            await broker.start()
        yield broker, rec
    finally:
        await broker.stop()


class ShiftedClock(LiveClock):
    """Live time moved to `start` (timers stay real): a trading day, or IB's restart window, on any day."""

    def __init__(self, start: datetime):
        self._offset = start - super().now()

    def now(self) -> datetime:
        return super().now() + self._offset


def at(hour: int, minute: int = 0, day: date = date(2024, 3, 6)) -> datetime:
    """A wall time in exchange time (default a Wednesday)."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=EXCHANGE_TZ)


__all__ = ["EXPIRY", "Recorder", "ShiftedClock", "at", "connected", "gateway", "order", "settings", "spy_call"]
