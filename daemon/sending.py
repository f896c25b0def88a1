"""The broker as the engine's order senders (executor, protective stops) see it.

Two things every outgoing order needs beyond the Broker interface:
- a `place` the broker refuses (disconnected, bad order) is recorded in the store at once as a
  rejected order with the broker's reason: its intent was committed before the send, and must
  not be left looking as if it might still be working;
- one token bucket paces every message (SPEC §4.2, §6.1). A broker that paces its own wire
  (IB: `broker.throttle`) is trusted to; for any other the sender takes the token itself when
  given `acquire` (the executor takes its own before each message);
- order ids reach the broker in the order they were handed out: IB refuses an id lower than
  one it has already seen (103, duplicate order id). `OrderIds` hands out one id at a time and
  the next only once the previous one was placed or given up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from broker.base import Broker, BrokerError
from market.types import OrderRequest, OrderStatus, OrderUpdate

RecordUpdate = Callable[[OrderUpdate], Awaitable[Any]]
Now = Callable[[], Any]
Acquire = Callable[[], Awaitable[None]]


def paces_itself(broker: Broker) -> bool:
    """True when the broker passes every message through a throttle of its own (IBBroker.throttle)."""
    return broker.throttle is not None


class OrderIds:
    """The engine's order ids (SPEC §6.1: max(broker's next valid id, highest stored) + 1, never reused),
    each held from `take` until `done` so that ids go out in order."""

    def __init__(self, claim: Callable[[], Awaitable[int]] | None = None,
                 unclaim: Callable[[], None] | None = None) -> None:
        """`claim`/`unclaim`: a broker whose order ids are shared with other processes (IB: one sequence per
        account) takes its account-wide turn with each id and returns the lowest id free there."""
        self.last = 0
        self._turn = asyncio.Lock()
        self._holder: int | None = None
        self._claim, self._unclaim = claim, unclaim

    def start_after(self, highest: int) -> None:
        self.last = max(self.last, highest)

    async def take(self) -> int:
        await self._turn.acquire()
        try:
            floor = await self._claim() if self._claim is not None else 0
        except BaseException:
            self._turn.release()
            raise
        self.last = max(self.last + 1, floor)
        self._holder = self.last
        return self.last

    def done(self, order_id: int) -> None:
        """`order_id` was placed, refused or given up: the next id may be handed out."""
        if self._holder == order_id:
            self.release()

    def release(self) -> None:
        if self._unclaim is not None:
            self._unclaim()
        if self._holder is not None:
            self._holder = None
            self._turn.release()


class RecordingBroker:
    """Delegates to `broker`; `place`, `modify`, `cancel` as described in the module docstring."""

    def __init__(self, broker: Broker, record: RecordUpdate, now: Now, ids: OrderIds,
                 acquire: Acquire | None = None):
        self._broker = broker
        self._record = record
        self._now = now
        self._ids = ids
        self._acquire = acquire

    def __getattr__(self, name: str) -> Any:
        return getattr(self._broker, name)

    async def place(self, order: OrderRequest) -> None:
        try:
            await self._pace()
            await self._broker.place(order)
        except BrokerError as exc:
            self._ids.done(order.order_id)
            await self._record(OrderUpdate(order.order_id, order.order_ref, OrderStatus.REJECTED, 0, order.quantity,
                                           None, self._now(), reason=str(exc)))
            raise
        finally:
            self._ids.done(order.order_id)

    async def modify(self, order: OrderRequest, **confirm: Any) -> None:
        await self._pace()
        await self._broker.modify(order, **confirm)

    async def cancel(self, order_id: int, **confirm: Any) -> None:
        await self._pace()
        await self._broker.cancel(order_id, **confirm)

    async def _pace(self) -> None:
        if self._acquire is not None:
            await self._acquire()
