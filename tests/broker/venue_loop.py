"""A plain synchronous loop around `Working` and `SimVenue`, as the replay loop drives them: one option
fed a quote every second, venue latency and Working's timers on virtual time, no asyncio."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from broker.base import BrokerError
from broker.parent import ParentOrder
from broker.quotes import QuoteBook
from broker.sim import starting_cash
from broker.sim_venue import SimVenue
from broker.working import Cancel, Modify, Place, SnapshotWanted, Working
from market.types import Fill, OrderRequest
from tests.broker.helpers import T0, contract, quote, settings

C = contract("270", "C")
KEY = C.key


class VenueLoop:
    def __init__(self, profile: str = "0dte", rows: Any = ((0, "2.95", "3.05", 50),), **overrides: Any):
        self.now = T0
        self.settings = settings(profile, **overrides)
        self.book = QuoteBook()
        self.venue = SimVenue(self.settings.broker.sim, quotes=self.book, cash=starting_cash(self.settings))
        self.working = Working(self.settings.execution, quotes=self.book,
                               max_quote_age_s=self.settings.liquidity.max_quote_age_s)
        self.rows = list(rows)
        self.feed_alive = True
        self.next_tick: datetime | None = T0
        self.ids = itertools.count(100)
        self.log: list[tuple[str, Any, datetime]] = []  # (place | modify | cancel | snapshot, order id or key, time)
        self.commands: list[tuple[datetime, Any]] = []
        self.fills: list[Fill] = []
        self.results: list[Any] = []
        self.refuse_places: str | None = None  # the shell refuses every Place with this reason

    # ---------------------------------------------------------------- the market

    def current(self) -> tuple:
        elapsed = (self.now - T0).total_seconds()
        return [r for r in self.rows if r[0] <= elapsed][-1]

    def post(self) -> None:
        _, bid, ask, size = self.current()
        q = quote(KEY, bid, ask, at=self.now, size=size)
        self.book.update(q)
        self.venue.on_quote(q, self.now)
        self.working.on_quote(KEY, self.now)

    # ---------------------------------------------------------------- the loop

    def pump(self) -> None:
        while True:
            events = self.venue.take_events()
            for event in events:
                if isinstance(event, Fill):
                    self.fills.append(event)
                    self.working.on_fill(event, self.now)
                else:
                    self.working.on_update(event, self.now)
            commands = self.working.take_commands()
            for cmd in commands:
                self.execute(cmd)
            self.results.extend(self.working.take_results())
            if not events and not commands:
                return

    def execute(self, cmd: Any) -> None:
        self.commands.append((self.now, cmd))
        try:
            if isinstance(cmd, Place):
                self.log.append(("place", cmd.request.order_id, self.now))
                if self.refuse_places:
                    self.working.refused(cmd.request.order_id, self.refuse_places, self.now)
                    return
                self.venue.place(cmd, self.now)
            elif isinstance(cmd, Modify):
                self.log.append(("modify", cmd.request.order_id, self.now))
                self.venue.modify(cmd, self.now)
            elif isinstance(cmd, Cancel):
                self.log.append(("cancel", cmd.order_id, self.now))
                self.venue.cancel(cmd, self.now)
            elif isinstance(cmd, SnapshotWanted):
                self.log.append(("snapshot", cmd.key, self.now))
                self.working.on_snapshot(cmd.key, self.book.get(cmd.key), self.now)
        except BrokerError as exc:
            if isinstance(cmd, Place):
                self.working.refused(cmd.request.order_id, exc.code, self.now)
            elif isinstance(cmd, Modify):
                self.working.modify_refused(cmd.request.order_id, exc.code, self.now)

    def next_time(self) -> datetime | None:
        times = [t for t in (self.next_tick if self.feed_alive else None, self.working.next_deadline(),
                             self.venue.next_deadline()) if t is not None]
        return min(times) if times else None

    def step(self) -> bool:
        """Move to the next moment anything happens; False when nothing ever will."""
        when = self.next_time()
        if when is None:
            return False
        self.advance_to(when)
        return True

    def advance_to(self, when: datetime) -> None:
        self.now = max(self.now, when)
        if self.feed_alive and self.next_tick is not None and self.next_tick <= self.now:
            self.post()
            self.next_tick = self.next_tick + timedelta(seconds=1)
            while self.next_tick <= self.now:
                self.next_tick += timedelta(seconds=1)
        self.venue.advance(self.now)
        self.pump()
        self.working.on_timer(self.now)
        self.pump()

    def advance(self, seconds: float) -> None:
        end = self.now + timedelta(seconds=seconds)
        while (when := self.next_time()) is not None and when <= end:
            self.advance_to(when)
        self.advance_to(end)

    def run(self, parent: ParentOrder, limit_s: float = 600) -> Any:
        before = len(self.results)
        self.working.start(parent, self.now, lambda: next(self.ids))
        self.pump()
        end = self.now + timedelta(seconds=limit_s)
        while len(self.results) == before and self.now < end:
            if not self.step():
                break
        assert len(self.results) > before, f"not done after {limit_s}s of virtual time"
        return self.results[before]

    def run_all(self, parents: list[ParentOrder], limit_s: float = 600) -> list[Any]:
        before = len(self.results)
        for p in parents:
            self.working.start(p, self.now, lambda: next(self.ids))
        self.pump()
        end = self.now + timedelta(seconds=limit_s)
        while len(self.results) - before < len(parents) and self.now < end:
            if not self.step():
                break
        return self.results[before:]

    def buy_position(self, qty: int) -> None:
        """Give the venue a long position to exit from (a marketable order straight to it)."""
        self.venue.place(OrderRequest(1, "tradingd:0dte:setup:1", C, "BUY", qty, "LMT", Decimal(10)), self.now)
        self.advance(1)
        self.fills.clear()
        assert self.venue.positions()[0].quantity == qty

    def sent(self, kind: str) -> list[tuple[Any, datetime]]:
        return [(oid, t) for k, oid, t in self.log if k == kind]
