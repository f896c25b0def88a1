"""Builders shared by the broker tests: settings, quotes, a recording listener, a clock driver."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from market.types import Fill, OptionContract, OrderUpdate, Quote
from config.loader import load_settings
from config.models import Settings
from market.clock import EXCHANGE_TZ, VirtualClock

D = Decimal
T0 = datetime(2019, 2, 12, 10, 0, tzinfo=EXCHANGE_TZ)  # a Tuesday session


def settings(profile: str = "0dte", **overrides: Any) -> Settings:
    return load_settings(profile, env={}, overrides=overrides)


def contract(strike: str = "270", right: str = "C", expiry: date = T0.date(), underlying: str = "SPY") -> OptionContract:
    return OptionContract(underlying, expiry, D(strike), right)  # type: ignore[arg-type]


def quote(key: str, bid: str | None, ask: str | None, at: datetime = T0, size: int = 50,
          oi: int | None = None, usable: bool = True, bid_size: int | None = None) -> Quote:
    return Quote(key, None if bid is None else D(bid), None if ask is None else D(ask), None, at,
                 bid_size=size if bid_size is None else bid_size, ask_size=size, open_interest=oi, usable=usable)


class Recorder:
    """A BrokerListener that keeps everything and forwards order events to an optional executor."""

    def __init__(self, forward: Any = None):
        self.updates: list[OrderUpdate] = []
        self.fills: list[Fill] = []
        self.connections: list[tuple[bool, str]] = []
        self.forward = forward

    def on_quote(self, q: Quote) -> None:  # the sim never calls it
        raise AssertionError("the sim must not emit on_quote")

    def on_order_update(self, update: OrderUpdate) -> None:
        self.updates.append(update)
        if self.forward is not None:
            self.forward.on_order_update(update)

    def on_fill(self, fill: Fill) -> None:
        self.fills.append(fill)
        if self.forward is not None:
            self.forward.on_fill(fill)

    def on_connection(self, connected: bool, reason: str) -> None:
        self.connections.append((connected, reason))


async def drive(clock: VirtualClock, task: asyncio.Future[Any], step_s: float = 0.05, limit_s: float = 600) -> Any:
    """Advance virtual time in small steps until `task` is done (or `limit_s` of virtual time passed)."""
    end = clock.now() + timedelta(seconds=limit_s)
    while not task.done() and clock.now() < end:
        await clock.advance_to(clock.now() + timedelta(seconds=step_s))
    assert task.done(), f"not done after {limit_s}s of virtual time"
    return task.result()


async def advance(clock: VirtualClock, seconds: float, step_s: float = 0.01) -> None:
    end = clock.now() + timedelta(seconds=seconds)
    while clock.now() < end:
        await clock.advance_to(min(end, clock.now() + timedelta(seconds=step_s)))
