"""What comes out of the core: orders to send, records to persist, log lines, metrics.

Plain frozen values the shell carries out in order. `PlaceOrder.durable` is True for entries:
the shell makes the intent durable first and answers an `OrderRefusedEvent` with
`store_unavailable` when it cannot. Exits and protective stops are never held up by storage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from market.types import OrderRequest


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    request: OrderRequest
    durable: bool = False


@dataclass(frozen=True, slots=True)
class ModifyOrder:
    request: OrderRequest


@dataclass(frozen=True, slots=True)
class CancelOrder:
    order_id: int


@dataclass(frozen=True, slots=True)
class Subscribe:
    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RequestSnapshot:
    key: str


@dataclass(frozen=True, slots=True)
class Persist:
    """One journal record: `op` names a Store operation, `payload` its keyword arguments (natural keys inside)."""

    op: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class LogLine:
    level: str
    event: str
    fields: dict[str, Any]


@dataclass(frozen=True, slots=True)
class MetricUpdate:
    """`name` names a `daemon.metrics.Metrics` method; `args` its keyword arguments."""

    name: str
    args: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Notify:
    """Tell the operator (`daemon.notifications.notify(kind, text)`): the shell sends it, never blocking the core.
    Kinds as `daemon.notifications.notify` lists them (breaker, halt, store_fault, vol_term_inversion, ...)."""

    kind: str
    text: str


Effect = (PlaceOrder | ModifyOrder | CancelOrder | Subscribe | Unsubscribe | RequestSnapshot | Persist | LogLine
          | MetricUpdate | Notify)
ORDER_EFFECTS = (PlaceOrder, ModifyOrder, CancelOrder)


class Outbox:
    """The effects of the event being handled, in the order they were decided."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[Any] = []

    def add(self, effect: Any) -> None:
        self.items.append(effect)

    def persist(self, op: str, /, **payload: Any) -> None:
        self.items.append(Persist(op, payload))

    def log(self, level: str, event: str, /, **fields: Any) -> None:
        self.items.append(LogLine(level, event, fields))

    def metric(self, name: str, /, **args: Any) -> None:
        self.items.append(MetricUpdate(name, args))

    def notify(self, kind: str, text: str) -> None:
        self.items.append(Notify(kind, text))

    def take(self) -> list[Any]:
        out, self.items = self.items, []
        return out


@dataclass(frozen=True, slots=True)
class RefreshModel:
    """The daily closes before today (the sim's option model takes its realized volatility from them)."""

    closes: dict[str, list[Any]]


@dataclass(frozen=True, slots=True)
class DailyReport:
    """The session's report is due (the shell reads the store's day summary and logs it)."""

    day: Any


@dataclass(frozen=True, slots=True)
class SettleExpired:
    """SPEC §6.3 (room expiry): the core settled the positions whose contracts expired by `at`
    (`prices`: underlying -> the price each was settled from). A sim venue settles its own book
    the same way; live at IB the exchange does it and the reconciliation checks it."""

    at: Any
    prices: dict[str, Any]
