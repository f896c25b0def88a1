"""The QuoteBook: the latest Quote per key (an underlying symbol or an OptionContract.key).

The engine owns one book; feeds and brokers write into it, the sim broker, the option
quote model, the executor and the engine read it and listen to it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from decimal import Decimal

import structlog

from market.types import Quote

QuoteListener = Callable[[Quote], None]

log = structlog.get_logger(__name__)


class QuoteBook:
    def __init__(self) -> None:
        self._quotes: dict[str, Quote] = {}
        self._listeners: list[QuoteListener] = []

    def update(self, quote: Quote) -> bool:
        """Store `quote` and tell the listeners. A quote older than the stored one is dropped (False):
        feeds may deliver out of order, and an old quote must never hide a newer one."""
        current = self._quotes.get(quote.key)
        if current is not None and quote.received_at < current.received_at:
            return False
        self._quotes[quote.key] = quote
        self._notify(quote)
        return True

    def get(self, key: str) -> Quote | None:
        return self._quotes.get(key)

    def age_s(self, key: str, now: datetime) -> Decimal | None:
        """Seconds since the quote of `key` was received; None when there is none."""
        quote = self._quotes.get(key)
        return None if quote is None else quote.age_s(now)

    def mark_unusable(self, keys: Iterable[str] | None = None) -> list[str]:
        """Flag quotes unusable (IB 354, 10197, 2103) until a fresh tick replaces them.

        `keys=None` marks every quote: the stale-data codes are often connection-wide.
        Returns the keys that changed.
        """
        targets = list(self._quotes) if keys is None else [k for k in keys if k in self._quotes]
        changed = []
        for key in targets:
            quote = self._quotes[key]
            if quote.usable:
                stale = dataclasses.replace(quote, usable=False)
                self._quotes[key] = stale
                changed.append(key)
                self._notify(stale)
        return changed

    def add_listener(self, listener: QuoteListener) -> Callable[[], None]:
        """Call `listener(quote)` on every stored quote; returns the function that removes it."""
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    def keys(self) -> list[str]:
        return list(self._quotes)

    def __contains__(self, key: object) -> bool:
        return key in self._quotes

    def __len__(self) -> int:
        return len(self._quotes)

    def __iter__(self) -> Iterator[Quote]:
        return iter(list(self._quotes.values()))

    def _notify(self, quote: Quote) -> None:
        # A failing listener must not starve the others nor the writer (a feed or the broker).
        for listener in list(self._listeners):
            try:
                listener(quote)
            except Exception:  # noqa: BLE001
                log.exception("quote_listener_failed", key=quote.key)
