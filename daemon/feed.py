"""The replay feed: recorded bars become quotes on a virtual clock, in time order across symbols.

Each 1-minute bar (labelled at its end) is walked along open -> first extreme -> second
extreme -> close (low first on an up bar, high first on a down bar) in `ticks_per_bar`
evenly spaced quotes ending at the bar's close time, so the exit rules see the bar's whole
range and a quote is never older than a few seconds while a symbol trades. Quotes go into
the engine's QuoteBook (the option quote model, the sim broker and the engine listen to it);
each completed bar also goes to the bar listeners (the reference signal source), and timed
signals (a JSONL file) go to the signal sink at their times.

Before each event the scheduler fires every job due up to its time, on the same clock;
after each event `settle` lets the engine finish what the event started (and the store
write it), so a replay is deterministic. `speed` 0 runs as fast as the data allows; N > 0
sleeps (virtual gap) / N of real time between events.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

from broker.quotes import QuoteBook
from market.types import Quote
from daemon.bars import Bar
from market.clock import EXCHANGE_TZ, VirtualClock
from daemon.scheduler import VirtualScheduler
from daemon.signals.jsonl import TimedSignal

# A recorded bar has no quotes: the underlying is shown with a one-cent market around the
# path price (a liquid ETF or mega-cap's usual touch), `TOUCH_SIZE` shares each side.
UNDERLYING_HALF_SPREAD = Decimal("0.005")
TOUCH_SIZE = 100
# 3 segments × 2 + 1: the path's four corners (open, extremes, close) are sampled exactly,
# and quotes are 60/7 ≈ 8.6 s apart, inside the 10 s freshness the gate asks for.
DEFAULT_TICKS_PER_BAR = 7
_CENT = Decimal("0.01")

BarListener = Callable[[Bar], Awaitable[None]]
SignalSink = Callable[[Any, str], Awaitable[Any]]

_QUOTE, _BAR, _SIGNAL = 0, 1, 2  # at the same instant: quotes first, then the bar it completes, then signals


@dataclass
class FeedStats:
    quotes: int = 0
    bars: int = 0
    signals: int = 0
    first: datetime | None = None
    last: datetime | None = None
    days: set[Any] = field(default_factory=set)


class ReplayClock(VirtualClock):
    """A VirtualClock that, each time it wakes sleepers, also lets `quiesce` (the engine's
    wait for its worker and the database) finish before time moves on: a fill arriving after
    the sim's latency is applied at its own virtual time, not at the next quote's."""

    def __init__(self, start: datetime, settle_rounds: int = 8):
        super().__init__(start, settle_rounds)
        self.quiesce: Callable[[], Awaitable[None]] | None = None

    async def settle(self) -> None:
        await self.turns()
        if self.quiesce is not None:
            await self.quiesce()


def bar_path(bar: Bar, ticks: int = DEFAULT_TICKS_PER_BAR) -> list[tuple[datetime, Decimal]]:
    """(time, price) samples along open -> extreme -> extreme -> close, the last at bar.end."""
    if ticks < 1:
        raise ValueError("ticks_per_bar must be at least 1")
    if ticks == 1:
        return [(bar.end, bar.close)]
    first, second = (bar.low, bar.high) if bar.close >= bar.open else (bar.high, bar.low)
    corners = [bar.open, first, second, bar.close]
    span_us = (bar.end - bar.start) // timedelta(microseconds=1)
    path = []
    for k in range(ticks):
        u = Decimal(3 * k) / (ticks - 1)  # position along the 3 segments
        seg = min(int(u), 2)
        frac = u - seg
        price = corners[seg] + (corners[seg + 1] - corners[seg]) * frac
        # Whole microseconds, so the last sample falls exactly on the bar's end (before its bar event).
        offset = timedelta(microseconds=span_us * (k + 1) // ticks)
        path.append((bar.start + offset, price.quantize(_CENT) if frac else price))
    return path


def underlying_quote(symbol: str, price: Decimal, at: datetime, index: bool = False) -> Quote:
    if index:  # VIX and other indices have a value, not a market
        return Quote(key=symbol, bid=None, ask=None, last=price, received_at=at)
    return Quote(key=symbol, bid=price - UNDERLYING_HALF_SPREAD, ask=price + UNDERLYING_HALF_SPREAD, last=price,
                 received_at=at, bid_size=TOUCH_SIZE, ask_size=TOUCH_SIZE)


def replay_start(bars: dict[str, Sequence[Bar]], signals: Sequence[TimedSignal] = ()) -> datetime | None:
    """Midnight of the first day with data: the scheduler's pre-open jobs fire before the first bar."""
    firsts = [b[0].start for b in bars.values() if b] + [s.at for s in signals]
    if not firsts:
        return None
    first = min(firsts).astimezone(EXCHANGE_TZ)
    return datetime.combine(first.date(), time(0), tzinfo=EXCHANGE_TZ)


class ReplayFeed:
    def __init__(self, clock: VirtualClock, book: QuoteBook, bars: dict[str, Sequence[Bar]], *,
                 index_symbols: frozenset[str] = frozenset({"VIX"}),
                 scheduler: VirtualScheduler | None = None,
                 bar_listeners: Sequence[BarListener] = (),
                 signals: Sequence[TimedSignal] = (), signal_sink: SignalSink | None = None,
                 signal_source: str = "replay",
                 settle: Callable[[], Awaitable[None]] | None = None,
                 speed: float = 0.0, ticks_per_bar: int = DEFAULT_TICKS_PER_BAR,
                 run_until: time = time(23, 59)):
        if speed < 0:
            raise ValueError("speed must be >= 0 (0: as fast as possible)")
        if signals and signal_sink is None:
            raise ValueError("timed signals need a signal_sink")
        self.clock = clock
        self.book = book
        self.bars = bars
        self.index_symbols = index_symbols
        self.scheduler = scheduler
        self.bar_listeners = list(bar_listeners)
        self.signals = list(signals)
        self.signal_sink = signal_sink
        self.signal_source = signal_source
        self.settle = settle
        self.speed = speed
        self.ticks_per_bar = ticks_per_bar
        self.run_until_time = run_until
        self.stats = FeedStats()
        self._stop = asyncio.Event()
        self._pending: Iterator[tuple[datetime, int, int, Any]] | None = None
        self._next: tuple[datetime, int, int, Any] | None = None
        self._previous: datetime | None = None

    @property
    def start(self) -> datetime | None:
        return replay_start(self.bars, self.signals)

    def stop(self) -> None:
        self._stop.set()

    def events(self) -> Iterator[tuple[datetime, int, int, Any]]:
        seq = itertools.count()
        streams = [self._symbol_events(symbol, bars, seq) for symbol, bars in self.bars.items()]
        streams.append(((s.at, _SIGNAL, next(seq), s) for s in self.signals))
        return heapq.merge(*streams, key=lambda e: (e[0], e[1], e[2]))

    def _symbol_events(self, symbol: str, bars: Sequence[Bar], seq: Iterator[int]) -> Iterator[tuple[datetime, int, int, Any]]:
        index = symbol in self.index_symbols
        for bar in bars:
            for at, price in bar_path(bar, self.ticks_per_bar):
                yield at, _QUOTE, next(seq), underlying_quote(symbol, price, at, index)
            yield bar.end, _BAR, next(seq), bar

    async def run(self) -> FeedStats:
        """Replay everything (or until `stop()`), then fire the jobs left on the last day."""
        await self.run_until(None)
        if self._previous is not None and not self._stop.is_set():
            last_day = self._previous.astimezone(EXCHANGE_TZ).date()
            await self.run_until(datetime.combine(last_day, self.run_until_time, tzinfo=EXCHANGE_TZ))
        return self.stats

    async def run_until(self, until: datetime | None) -> FeedStats:
        """Replay the events at or before `until` (None: all), then bring the clock and the jobs to
        `until`. Called again, it carries on where it stopped."""
        if self._pending is None:
            self._pending = self.events()
            self._next = next(self._pending, None)
        while self._next is not None and not self._stop.is_set():
            at, kind, _, payload = self._next
            if until is not None and at > until:
                break
            await self._pace(self._previous, at)
            self._previous = at
            await self._at(at)
            await self._deliver(kind, payload)
            if self.settle is not None:
                await self.settle()
            self._next = next(self._pending, None)
        if until is not None and not self._stop.is_set():
            await self._at(until)
            if self.settle is not None:
                await self.settle()
        return self.stats

    async def _at(self, at: datetime) -> None:
        if self.scheduler is not None:
            await self.scheduler.run_until(at)
        if at > self.clock.now():
            await self.clock.advance_to(at)

    async def _deliver(self, kind: int, payload: Any) -> None:
        stats = self.stats
        if kind == _QUOTE:
            stats.quotes += 1
            stats.first = stats.first or payload.received_at
            stats.last = payload.received_at
            stats.days.add(payload.received_at.date())
            self.book.update(payload)
        elif kind == _BAR:
            stats.bars += 1
            for listener in self.bar_listeners:
                await listener(payload)
        else:
            stats.signals += 1
            assert self.signal_sink is not None
            await self.signal_sink(payload.raw, f"{self.signal_source}:{payload.line_no}")

    async def _pace(self, previous: datetime | None, at: datetime) -> None:
        if self.speed > 0 and previous is not None and at > previous:
            await asyncio.sleep((at - previous).total_seconds() / self.speed)
