"""The one Broker interface that `sim` and `ib` both implement, and the events they emit.

The engine is the only caller. Slicing, repricing and the liquidity check are not here:
they live once in `broker/execution.py` and `broker/liquidity.py` and drive any Broker.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from typing import Protocol, runtime_checkable

from market.types import (
    AccountSnapshot,
    BrokerPosition,
    Fill,
    OpenOrder,
    OptionChain,
    OptionContract,
    OrderRequest,
    OrderUpdate,
    Quote,
)
from config.errors import ReasonError


class BrokerError(ReasonError):
    """A broker refused or failed a request. `code` is a stable reason code (IB error number as text for `ib`)."""


class BrokerListener(Protocol):
    """Callbacks a Broker makes into the engine. They must not block; the engine queues the work."""

    def on_quote(self, quote: Quote) -> None: ...
    def on_order_update(self, update: OrderUpdate) -> None: ...
    def on_fill(self, fill: Fill) -> None: ...
    def on_connection(self, connected: bool, reason: str) -> None: ...


@runtime_checkable
class Broker(Protocol):
    name: str

    @property
    def connected(self) -> bool: ...

    def set_listener(self, listener: BrokerListener) -> None: ...

    async def start(self) -> None:
        """Connect (ib) or open the book (sim). Raises BrokerError when it cannot."""

    async def stop(self) -> None: ...

    async def account(self) -> AccountSnapshot: ...

    async def next_order_id(self) -> int:
        """The broker's next valid id; the daemon takes max(this, highest stored) + 1."""

    async def chain(self, underlying: str) -> OptionChain: ...

    async def subscribe(self, keys: list[str]) -> None:
        """Stream quotes for underlying symbols and/or OptionContract keys into on_quote."""

    async def unsubscribe(self, keys: list[str]) -> None: ...

    async def snapshot(self, key: str) -> Quote:
        """A fresh quote now (used by exits when the streamed one is stale)."""

    async def place(self, order: OrderRequest) -> None: ...

    async def modify(self, order: OrderRequest) -> None:
        """Replace a working order (same order_id) with new price/quantity."""

    async def cancel(self, order_id: int) -> None: ...

    async def positions(self) -> list[BrokerPosition]: ...

    async def open_orders(self) -> list[OpenOrder]: ...

    async def executions(self, since: datetime | None = None) -> list[Fill]: ...


BuyingPower = Callable[[], Awaitable[Decimal]]
__all__ = ["Broker", "BrokerError", "BrokerListener", "BuyingPower", "OptionContract"]
