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

from market.sanity import QuoteSanity, Verdict
from market.types import Quote

QuoteListener = Callable[[Quote], None]
BadQuoteListener = Callable[[Quote, Verdict], None]

log = structlog.get_logger(__name__)


class QuoteBook:
    def __init__(self) -> None:
        self._quotes: dict[str, Quote] = {}
        self._listeners: list[QuoteListener] = []
        # SPEC §4.4 (Part 8): `guard` installs the sanity checker; every quote path writes through
        # `update`, so every path is checked. `_problems` says why a key's stored quote is unusable.
        self._sanity: QuoteSanity | None = None
        self._now: Callable[[], datetime] | None = None
        self._on_bad: BadQuoteListener | None = None
        self._problems: dict[str, Verdict] = {}
        # Where set (the replay), every modelled quote `update` stores (or `mark_unusable` flags) is appended
        # here, before the listeners hear it: the replay hands them on to the venue and the core itself.
        # A list, not a listener: the replay's recorded quotes are stored here too, and a listener call per
        # quote only to learn that it was not modelled cost more than the store itself.
        self.modelled: list[Quote] | None = None
        self.get: Callable[[str], Quote | None] = self._quotes.get  # `get(key)`: the dictionary's own (the option model reads it per option)

    def guard(self, sanity: QuoteSanity, now: Callable[[], datetime],
              on_bad: BadQuoteListener | None = None) -> None:
        """Check every quote from now on with `sanity` at `now()`; `on_bad(quote, verdict)` hears each
        unusable one (to count it); the first of each key+reason per interval is logged here."""
        self._sanity, self._now, self._on_bad = sanity, now, on_bad

    def update(self, quote: Quote) -> bool:
        """Store `quote` and tell the listeners. A quote older than the stored one is dropped (False):
        feeds may deliver out of order, and an old quote must never hide a newer one. A quote the
        sanity checks find unusable is stored flagged `usable=False` (it is the latest word on the
        key: no entry is sized on it, and exits see no price) with its reason in `problem(key)`."""
        stored = self.store(quote)
        if stored is None:
            return False
        if stored.modelled and self.modelled is not None:
            self.modelled.append(stored)
        if self._listeners:
            self._notify(stored)
        return True

    def store(self, quote: Quote) -> Quote | None:
        """`update` without telling the listeners: the quote as stored (flagged when unusable), None when
        dropped. For a writer that hands its quotes on itself (the replay's option model)."""
        current = self._quotes.get(quote.key)
        if current is not None and quote.received_at < current.received_at:
            return None
        if self._sanity is not None and self._now is not None:
            quote = self._checked(quote, self._now())
        self._quotes[quote.key] = quote
        return quote

    def problem(self, key: str) -> Verdict | None:
        """Why the stored quote of `key` failed the §4.4 sanity checks; None when it passed (or none is stored)."""
        return self._problems.get(key)

    def _checked(self, quote: Quote, now: datetime) -> Quote:
        assert self._sanity is not None
        try:
            verdict = self._sanity.check(quote, now)
        except Exception:  # noqa: BLE001  (a checker bug must not stop the feed; the quote is not trusted)
            log.exception("market_data_check_failed", key=quote.key)
            verdict = Verdict(False, "check_failed", "the sanity check raised")
        if verdict.usable:
            self._problems.pop(quote.key, None)
            return quote
        self._problems[quote.key] = verdict
        if verdict.log:
            log.warning("bad_market_data", key=quote.key, reason=verdict.reason, detail=verdict.detail,
                        bid=quote.bid, ask=quote.ask, last=quote.last, stamped=quote.received_at.isoformat())
        if self._on_bad is not None:
            try:
                self._on_bad(quote, verdict)
            except Exception:  # noqa: BLE001
                log.exception("bad_market_data_listener_failed", key=quote.key)
        return dataclasses.replace(quote, usable=False) if quote.usable else quote

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
                if stale.modelled and self.modelled is not None:
                    self.modelled.append(stale)
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
