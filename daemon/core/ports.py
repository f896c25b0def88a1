"""The small interfaces the desks are given (each desk takes only what it uses).

Nothing here does I/O: a `ChainSource` answers from what the shell fetched beforehand (IB) or
from the listing rules (sim); an `Execution` is `broker.working.Working`, the synchronous
parent-order state machine; quotes are the core's own table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

from market.session import SessionTimes
from market.types import Fill, OptionChain, OrderUpdate, Quote

SessionLookup = Callable[[date], SessionTimes | None]
DailyCloses = Callable[[date], Mapping[str, Sequence[Decimal]]]
SessionsBetween = Callable[[date, date], Sequence[date]]


class QuoteSource(Protocol):
    def get(self, key: str) -> Quote | None: ...


class ChainSource(Protocol):
    """The option chain of `underlying` on `day` around `spot`; None when it is not known (yet)."""

    def chain(self, underlying: str, day: date, spot: Decimal) -> OptionChain | None: ...


class Execution(Protocol):
    """`broker.working.Working` as the core drives it (INTERFACES.md)."""

    def start(self, parent: Any, now: datetime, next_id: Callable[[], int]) -> None: ...
    def on_update(self, update: OrderUpdate, now: datetime) -> None: ...
    def on_fill(self, fill: Fill, now: datetime) -> None: ...
    def on_quote(self, key: str, now: datetime) -> None: ...
    def on_timer(self, now: datetime) -> None: ...
    def next_deadline(self) -> datetime | None: ...
    def take_commands(self) -> list[Any]: ...
    def take_results(self) -> list[Any]: ...
    def refused(self, order_id: int, reason: str, now: datetime) -> None: ...
    def renumber(self, old_id: int, new_id: int) -> bool: ...
    def modify_refused(self, order_id: int, reason: str, now: datetime) -> None: ...
    def abandon(self, ref: str, now: datetime) -> list[int]: ...  # stop a parent; its working children's ids
    def shrink(self, ref: str, by: int, now: datetime) -> int: ...  # an exit sells fewer; returns how many fewer
