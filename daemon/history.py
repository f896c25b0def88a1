"""Daily closes for SPEC §2.5's correlations, live: from the broker's historical data (IB), cached in the
store and refreshed before each open, paced.

Replay brings its own closes (`Replay.closes_before`); a broker that can answer `daily_closes(symbol,
sessions)` (IBBroker) feeds this instead. The cache lives in the store's meta table (one JSON value, so no
schema change): a restart has yesterday's closes at once, and a refresh asks only for symbols whose last
close is older than the previous session. Requests are spaced `pace_s` apart (IB's historical-data pacing
is far stricter than its message limit); a symbol IB does not answer keeps its cached closes and is logged.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

import structlog

from broker.base import BrokerError

log = structlog.get_logger(__name__)

META_KEY = "history.daily_closes"


class HistoryBroker(Protocol):
    async def daily_closes(self, symbol: str, sessions: int) -> list[tuple[date, Decimal]]: ...


class MetaStore(Protocol):
    async def get_meta(self, key: str) -> str | None: ...
    async def set_meta(self, key: str, value: str) -> None: ...


class DailyHistory:
    def __init__(self, broker: HistoryBroker, store: MetaStore, symbols: Iterable[str], *, sessions: int,
                 pace_s: float, sleep: Callable[[float], Awaitable[None]]):
        self._broker = broker
        self._store = store
        self.symbols = tuple(dict.fromkeys(s.upper() for s in symbols))
        self._sessions = sessions
        self._pace_s = pace_s
        self._sleep = sleep  # the injected clock's
        self._closes: dict[str, dict[date, Decimal]] = {}
        self._loaded = False
        self._lock = asyncio.Lock()

    async def refresh(self, today: date) -> list[str]:
        """Bring every symbol's closes up to the session before `today`; returns the symbols asked for."""
        async with self._lock:
            if not self._loaded:
                self._closes = _decode(await self._store.get_meta(META_KEY))
                self._loaded = True
            asked = []
            for symbol in self.symbols:
                known = [d for d in self._closes.get(symbol, {}) if d < today]
                if known and _business_days_between(max(known), today) <= 1:
                    continue  # already holds the previous session
                if asked:
                    await self._sleep(self._pace_s)
                asked.append(symbol)
                try:
                    bars = await self._broker.daily_closes(symbol, self._sessions + 1)
                except BrokerError as exc:
                    log.warning("daily_closes_unavailable", symbol=symbol, code=exc.code, error=str(exc))
                    continue
                self._closes.setdefault(symbol, {}).update(bars)
            if asked:
                await self._store.set_meta(META_KEY, _encode(self._closes))
                log.info("daily_closes_refreshed", symbols=asked)
            return asked

    def closes(self, day: date) -> Mapping[str, Sequence[Decimal]]:
        """Each symbol's closes before `day`, on the dates every symbol has (aligned), oldest first."""
        series = {s: {d: v for d, v in self._closes.get(s, {}).items() if d < day} for s in self.symbols}
        series = {s: v for s, v in series.items() if v}
        if not series:
            return {}
        common = sorted(set.intersection(*(set(v) for v in series.values())))[-(self._sessions + 1):]
        return {s: [v[d] for d in common] for s, v in series.items()}


def _business_days_between(a: date, b: date) -> int:
    """Weekdays after `a` up to and including `b` (holidays count: at worst one extra request)."""
    n, d = 0, a
    while d < b:
        d = date.fromordinal(d.toordinal() + 1)
        n += d.weekday() < 5
    return n


def _encode(closes: Mapping[str, Mapping[date, Decimal]]) -> str:
    return json.dumps({s: {d.isoformat(): str(v) for d, v in sorted(m.items())} for s, m in closes.items()})


def _decode(raw: str | None) -> dict[str, dict[date, Decimal]]:
    if not raw:
        return {}
    try:
        data: Any = json.loads(raw)
        return {s: {date.fromisoformat(d): Decimal(v) for d, v in m.items()} for s, m in data.items()}
    except (ValueError, TypeError, AttributeError):
        log.warning("daily_closes_cache_unreadable")
        return {}
