"""Each position's stop resting at the broker (SPEC §6.1), kept in step with the engine's book.

`broker.protective.ProtectiveStops` talks to the broker; this decides what each position's
stop should be, whenever the book changes:

- quantity = open contracts less those a working exit is selling, so the stop and an exit never
  sell the same contract (plus what the stop order itself already filled: a modification
  states the order's total quantity);
- price = the hard stop (SPEC §1) rounded down to the tick, raised to the exit rules' own stop
  when they tighten it (7dte trailing, break-even at breaker level 3); it never comes down;
- nothing left to protect: cancelled.

Called on entry fills, before and after every exit order, when the exits tighten the stop,
when a position closes, after a restart (`start`: adopt the stops still resting, cancel those
of positions no longer open, place the missing ones) and after a reconnect (`resync`).
Until `start` nothing is sent: order ids are not known before the engine has reconciled.

Outside an exit's own task the changes run as tasks of their own (`follow_soon`): a message may
wait for the throttle on the engine's clock, which the engine's worker (and its start-up) must
never do, or a replay's virtual time could not move on. A change made late is still right:
each one makes the broker match the position as it is when it runs.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from broker.base import Broker
from broker.order_ref import OrderRefError, parse_order_ref
from broker.protective import STOP_SOURCE, ProtectiveStops, stop_price
from market.types import Fill, OpenOrder, OrderRequest, OrderUpdate

# The engine these desks serve is typed loosely: a desk never imports its engine (no import cycle);
# daemon/core's desks take narrow collaborators instead.
Engine = Any

if TYPE_CHECKING:
    from daemon.positions import LivePosition

ZERO = Decimal(0)


class StopDesk:
    def __init__(self, engine: Engine, broker: Broker):
        self.engine = engine
        settings = engine.settings
        self.cfg = settings.broker.protective
        self.prefix = settings.execution.order_ref_prefix
        self.stops = ProtectiveStops(broker, self.cfg, profile=engine.profile, prefix=self.prefix,
                                     allocate_order_id=engine.allocate_order_id, before_send=self._before_send)
        self.active = False
        self._filled: dict[int, int] = defaultdict(int)  # stop order id -> contracts it sold
        # One change at a time per position: two callers must never both place a first stop.
        self._locks: dict[int, asyncio.Lock] = defaultdict(asyncio.Lock)

    # ------------------------------------------------------------------ what a position's stop should be

    def is_stop(self, order_ref: str | None) -> bool:
        if not order_ref:
            return False
        try:
            ref = parse_order_ref(order_ref, self.prefix)
        except OrderRefError:
            return False
        return ref.profile == self.engine.profile and ref.source_id.startswith(STOP_SOURCE)

    def price(self, position: LivePosition) -> Decimal | None:
        entry = position.record.entry_price
        if entry is None or entry <= 0:
            return None
        tick = self.cfg.price_tick
        price = stop_price(entry, self.engine.settings.position_levels.hard_stop_pct, tick)
        tightened = position.exit_state.stop_price
        if tightened is not None and tightened > 0:
            price = max(price, stop_price(tightened, ZERO, tick))
        return price

    def wanted_quantity(self, position: LivePosition) -> int:
        return max(0, position.open_qty - position.pending_exit)

    # ------------------------------------------------------------------ following the book

    async def follow(self, position: LivePosition) -> None:
        """Make the resting stop match the position now (place, change or cancel it)."""
        if not self.active:
            return
        async with self._locks[position.id]:
            price = self.price(position)
            if price is None:
                return
            wanted = self.wanted_quantity(position) if position.id in self.engine.book.positions else 0
            resting = self.stops.resting(position.id)
            done = self._filled.get(resting.request.order_id, 0) if resting is not None and wanted else 0
            await self.stops.sync(position.id, position.contract, wanted + done, price)

    def leaves_room(self, position: LivePosition) -> bool:
        """The stop as the broker holds it and the working exits never sell more than is held together:
        an exit goes only once the stop has given its contracts up (the broker confirmed the change)."""
        resting = self.stops.resting(position.id) if self.active else None
        if resting is None:
            return True
        left = resting.quantity - self._filled.get(resting.request.order_id, 0)
        return left + position.pending_exit <= position.open_qty

    async def cancel(self, position_id: int) -> None:
        if not self.active:
            return
        async with self._locks[position_id]:
            await self.stops.cancel(position_id)

    def follow_soon(self, position: LivePosition) -> None:
        if self.active:
            self.engine.spawn(self.follow(position), name=f"stop-{position.id}")

    def cancel_soon(self, position_id: int) -> None:
        if self.active:
            self.engine.spawn(self.cancel(position_id), name=f"stop-cancel-{position_id}")

    def start(self, open_orders: list[OpenOrder]) -> None:
        """After the start-up reconciliation: take over the stops still resting, cancel those of positions
        no longer open, and make every position's stop right."""
        held = self.engine.book.positions
        adopted = self.stops.adopt(open_orders)
        self.active = True
        for stop in adopted:
            if stop.position_id not in held or held[stop.position_id].open_qty <= 0:
                self.engine.log.warning("protective_stop_orphan", position_id=stop.position_id,
                                        order_id=stop.request.order_id)
                self.cancel_soon(stop.position_id)
        self.follow_all()

    def follow_all(self) -> None:
        for position in self.engine.book:
            self.follow_soon(position)

    def resync(self) -> None:
        """After a reconnect: changes refused while away go through, then every stop is checked again."""
        if self.active:
            self.engine.spawn(self._resync(), name="stop-resync")

    async def _resync(self) -> None:
        await self.stops.resync()
        self.follow_all()

    # ------------------------------------------------------------------ broker events

    def on_order_update(self, update: OrderUpdate) -> None:
        self.stops.on_order_update(update)

    def on_fill(self, fill: Fill) -> bool:
        """Count a stop's own fill (True when `fill` is one)."""
        if not self.is_stop(fill.order_ref):
            return False
        self._filled[fill.order_id] += fill.quantity
        return True

    async def _before_send(self, request: OrderRequest, position_id: int) -> None:
        await self.engine.write_intent(request, position_id)
