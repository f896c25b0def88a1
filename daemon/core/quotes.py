"""The core's quote table: the latest quote per key, an older one never hiding a newer one."""

from __future__ import annotations

from market.types import Quote


class QuoteTable:
    __slots__ = ("_quotes",)

    def __init__(self) -> None:
        self._quotes: dict[str, Quote] = {}

    def put(self, quote: Quote) -> bool:
        current = self._quotes.get(quote.key)
        if current is not None and quote.received_at < current.received_at:
            return False
        self._quotes[quote.key] = quote
        return True

    def get(self, key: str) -> Quote | None:
        return self._quotes.get(key)

    def keys(self) -> list[str]:
        return list(self._quotes)

    def __contains__(self, key: object) -> bool:
        return key in self._quotes
