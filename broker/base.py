"""The one Broker interface that `sim` and `ib` both implement, and the events they emit.

The live shell (`daemon/live.py`) is the only caller. Slicing, repricing and the liquidity check are
not here: they live once in `broker/working.py` and `broker/liquidity.py` and drive any Broker.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

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
    """Capabilities are declared here, never sniffed with getattr (each broker says what it does):

    - `reconciles`: it runs a reconciler hook itself (`set_reconciler`) inside `start()` and after
      every reconnect, telling "reconciling" then "ready" (IB); otherwise the daemon reconciles.
    - `loads_chains`: its option chains are fetched ahead of time (`load_chains(underlyings)`, IB);
      otherwise the listing rules give them around the spot (sim).
    - `has_daily_closes`: it serves daily history (`daily_closes(symbol, sessions)`, IB).
    - `shares_order_ids`: profiles on one account share its id sequence
      (`claim_order_id_floor` / `release_order_id_claim`, IB).
    - `reports_completed_orders`: `completed_orders()` lists orders that ended while we were away (IB).
    - `confirms_changes`: modify/cancel take `confirm=True` to wait for the gateway's answer (IB).
    - `throttle`: the broker paces its own messages with this `Throttle` (IB); None: the caller paces.
    - `disconnect_expected`: it is away inside its restart window (IB's nightly restart): no alert.
    """

    name: str
    reconciles: bool
    loads_chains: bool
    has_daily_closes: bool
    shares_order_ids: bool
    reports_completed_orders: bool
    confirms_changes: bool
    throttle: Any

    @property
    def disconnect_expected(self) -> bool: ...

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

    async def modify(self, order: OrderRequest, *, confirm: bool = False) -> None:
        """Replace a working order (same order_id) with new price/quantity. `confirm`: return only once the
        broker has confirmed the change (raises BrokerError if it refused); a broker whose changes are in
        force when the call returns (`confirms_changes` False: the sim) ignores it."""

    async def cancel(self, order_id: int, *, confirm: bool = False) -> None:
        """End a working order; `confirm` as for `modify`."""

    async def positions(self) -> list[BrokerPosition]: ...

    async def open_orders(self) -> list[OpenOrder]: ...

    async def executions(self, since: datetime | None = None) -> list[Fill]: ...


BuyingPower = Callable[[], Awaitable[Decimal]]
__all__ = ["Broker", "BrokerError", "BrokerListener", "BuyingPower", "OptionContract"]
