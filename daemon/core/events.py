"""What goes into the core: every input is one of these frozen values, with its own time.

The core never reads a clock: each event carries `at`, the moment it happened (a quote's
receive time, a fill's execution time, a timer's scheduled fire time), and the core acts at
that moment. The same sequence of events therefore gives the same effects, byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from market.types import Fill, OrderUpdate, Quote


@dataclass(frozen=True, slots=True)
class QuoteEvent:
    quote: Quote

    @property
    def at(self) -> datetime:
        return self.quote.received_at


@dataclass(frozen=True, slots=True)
class SignalEvent:
    raw: Any  # the signal as received (a JSON object); validated by the entry desk
    source: str
    at: datetime
    ticket: int | None = None  # the caller's handle: its answer comes back in `Core.answers` under it


@dataclass(frozen=True, slots=True)
class FillEvent:
    fill: Fill

    @property
    def at(self) -> datetime:
        return self.fill.at


@dataclass(frozen=True, slots=True)
class OrderUpdateEvent:
    update: OrderUpdate

    @property
    def at(self) -> datetime:
        return self.update.at


@dataclass(frozen=True, slots=True)
class TimerEvent:
    """A scheduled job (`daemon.scheduler` job names: session_open, checkpoint, closeout, ...) at its fire time."""

    name: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ConnectionEvent:
    connected: bool
    reason: str
    at: datetime
    expected: bool = False  # away inside the broker's restart window: no alert


@dataclass(frozen=True, slots=True)
class OperatorCommand:
    """halt / resume / flatten / ack (SPEC §6): `args` holds `reason` or `underlying`."""

    action: str
    actor: str
    at: datetime
    args: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StoreStatusEvent:
    available: bool
    reason: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class OrderRefusedEvent:
    """The shell could not place an order (venue refused it, or its durable intent failed: `store_unavailable`)."""

    order_id: int
    reason: str
    at: datetime


@dataclass(frozen=True, slots=True)
class SubscribeFailedEvent:
    """The broker would not stream these keys (e.g. IB's market-data line budget): a signal waiting for
    them is refused at once as stale data, not left to its deadline."""

    keys: tuple[str, ...]
    code: str
    message: str
    at: datetime


Event = (QuoteEvent | SignalEvent | FillEvent | OrderUpdateEvent | TimerEvent | ConnectionEvent | OperatorCommand
         | StoreStatusEvent | OrderRefusedEvent | SubscribeFailedEvent)
