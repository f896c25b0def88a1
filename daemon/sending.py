"""The broker as the engine's order senders (executor, protective stops) see it.

Two things every outgoing order needs beyond the Broker interface:
- a `place` the broker refuses (disconnected, bad order) is recorded in the store at once as a
  rejected order with the broker's reason: its intent was committed before the send, and must
  not be left looking as if it might still be working;
- one token bucket paces every message (SPEC §4.2, §6.1). A broker that paces its own wire
  (IB: `broker.throttle`) is trusted to; for any other the sender takes the token itself when
  asked to (`pace=True`; the executor takes its own before each message).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from broker.base import Broker, BrokerError
from broker.types import OrderRequest, OrderStatus, OrderUpdate

RecordUpdate = Callable[[OrderUpdate], Awaitable[Any]]
Now = Callable[[], Any]
Acquire = Callable[[], Awaitable[None]]


def paces_itself(broker: Broker) -> bool:
    """True when the broker passes every message through a throttle of its own (IBBroker.throttle)."""
    return getattr(broker, "throttle", None) is not None


class RecordingBroker:
    """Delegates to `broker`; `place`, `modify`, `cancel` as described in the module docstring."""

    def __init__(self, broker: Broker, record: RecordUpdate, now: Now, acquire: Acquire | None = None):
        self._broker = broker
        self._record = record
        self._now = now
        self._acquire = acquire

    def __getattr__(self, name: str) -> Any:
        return getattr(self._broker, name)

    async def place(self, order: OrderRequest) -> None:
        await self._pace()
        try:
            await self._broker.place(order)
        except BrokerError as exc:
            await self._record(OrderUpdate(order.order_id, order.order_ref, OrderStatus.REJECTED, 0, order.quantity,
                                           None, self._now(), reason=str(exc)))
            raise

    async def modify(self, order: OrderRequest) -> None:
        await self._pace()
        await self._broker.modify(order)

    async def cancel(self, order_id: int) -> None:
        await self._pace()
        await self._broker.cancel(order_id)

    async def _pace(self) -> None:
        if self._acquire is not None:
            await self._acquire()
