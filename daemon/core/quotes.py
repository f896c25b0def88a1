"""The core's quote table: the latest quote per key, an older one never hiding a newer one.

With a `QuoteSanity` (SPEC 4.4) every quote is judged as it is stored: an unusable one is kept
flagged `usable=False` (it is the latest word on its key: no entry is sized on it and exits see no
price) and its verdict is kept in `problem(key)` until a usable quote of that key replaces it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from market.sanity import QuoteSanity, Verdict
from market.types import Quote

BadQuote = Callable[[Quote, Verdict], None]


class QuoteTable:
    __slots__ = ("_quotes", "_problems", "_sanity", "_on_bad", "get")

    def __init__(self, sanity: QuoteSanity | None = None, on_bad: BadQuote | None = None) -> None:
        self._quotes: dict[str, Quote] = {}
        # `get(key)`, the latest quote of `key` or None: the dictionary's own (no Python call per read; the
        # venue, the execution and the exits read the table on every quote they act on)
        self.get: Callable[[str], Quote | None] = self._quotes.get
        self._problems: dict[str, Verdict] = {}
        self._sanity = sanity
        self._on_bad = on_bad

    def put(self, quote: Quote) -> bool:
        key, at = quote.key, quote.received_at
        current = self._quotes.get(key)
        if current is not None and at < current.received_at:
            return False
        if self._sanity is not None:
            verdict = self._sanity.check(quote, at)
            if verdict.usable:
                if self._problems:
                    self._problems.pop(key, None)
            else:
                self._problems[key] = verdict
                quote = replace(quote, usable=False)
                if self._on_bad is not None:
                    self._on_bad(quote, verdict)
        self._quotes[key] = quote
        return True

    def put_derived(self, quote: Quote) -> None:
        """A quote the core computed from others (a combo's, from its legs': SPEC §9), stored as is:
        its legs were judged when they came in; a combo's value-space bid may be 0."""
        self._quotes[quote.key] = quote

    def problem(self, key: str) -> Verdict | None:
        """Why the stored quote of `key` failed the SPEC 4.4 checks; None when it passed (or none is stored)."""
        return self._problems.get(key)

    def keys(self) -> list[str]:
        return list(self._quotes)

    def __contains__(self, key: object) -> bool:
        return key in self._quotes
