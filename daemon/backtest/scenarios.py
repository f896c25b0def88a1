"""Stress scenarios (`--scenario NAME`): a real recorded path transformed, signals that put risk on
where the stress lands, and the invariant each one is tested for (tests/daemon/backtest/test_scenarios.py).

- `crash`: each session's real intraday path stretched into a −5 % day (a drift growing linearly from
  the open to −5 % at the close, on top of the recorded moves), VIX rising the same way to +40 %;
  bullish entries at 10:00 and 10:30. Invariant: every breaker trips at or beyond its own level, and
  the day's loss stays within the emergency halt plus one slice of slippage.
- `gap`: an overnight −8 % gap (every underlying from the second session on, with a pre-market print
  at the gapped price) for 7dte positions opened bullish the afternoon before. Invariant: the gap is
  flagged before the open and the positions exit at the open.
- `outage`: no streamed market data from 15:35 to 15:50 each session, across the 15:45 close-out;
  bullish signals at 15:25 (held into the outage) and 15:40 (inside it). Invariant: no entry is
  sized on stale data (the 15:40 signals are refused `stale_market_data`), and the positions held
  into it exit as SPEC §6.1 says: the close-out finds the stream stale, asks for a snapshot
  (`OutageSnapshots` answers from the market as recorded) and sells with a marketable limit on it,
  inside the outage and by 15:45.
- `disconnect`: the broker link drops 2 s after the 10:00 entries start slicing and returns 90 s later
  (orders refused `not_connected` meanwhile; the venue's events delivered on reconnect). Invariant:
  no order id is sent twice, no execution is applied twice, and the book equals the venue's positions.
- Every scenario: 0dte is flat by 15:45, and no entry is opened below the minimum bet.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from daemon.bars import Bar
from daemon.signals.jsonl import TimedSignal
from market.clock import EXCHANGE_TZ
from market.types import Quote

Scenario = Callable[[Any, Any], tuple[Any, list[str], dict[str, Any]]]
_CENT = Decimal("0.01")
OPEN, CLOSE = time(9, 30), time(16, 0)


def _by_day(bars: list[Bar]) -> dict[date, list[Bar]]:
    out: dict[date, list[Bar]] = {}
    for b in bars:
        out.setdefault(b.start.astimezone(EXCHANGE_TZ).date(), []).append(b)
    return out


def _frac(at: datetime) -> Decimal:
    day = at.astimezone(EXCHANGE_TZ).date()
    start = datetime.combine(day, OPEN, tzinfo=EXCHANGE_TZ)
    span = (datetime.combine(day, CLOSE, tzinfo=EXCHANGE_TZ) - start).total_seconds()
    return min(max(Decimal(repr((at - start).total_seconds() / span)), Decimal(0)), Decimal(1))


def _scaled(bar: Bar, factor: Decimal) -> Bar:
    o, h, low, c = ((p * factor).quantize(_CENT) for p in (bar.open, bar.high, bar.low, bar.close))
    return replace(bar, open=o, high=max(o, h, low, c), low=min(o, h, low, c), close=c)


def _signals(data: Any, settings: Any, times: list[tuple[date, time]], direction: str, tag: str,
             confidence: float = 0.8) -> list[TimedSignal]:
    out = []
    n = 0
    for day, moment in times:
        at = datetime.combine(day, moment, tzinfo=EXCHANGE_TZ)
        for underlying in settings.profile.underlyings:
            if underlying not in data.bars:
                continue
            n += 1
            raw = {"id": f"{tag}-{underlying}-{day:%Y%m%d}-{moment:%H%M}", "profile": settings.profile.name,
                   "underlying": underlying, "direction": direction, "strategy": "directional",
                   "confidence": confidence, "created_at": at.isoformat()}
            out.append(TimedSignal(at, raw, n))
    return out


def crash(data: Any, settings: Any) -> tuple[Any, list[str], dict[str, Any]]:
    bars = {}
    for symbol, series in data.bars.items():
        out: list[Bar] = []
        for day, day_bars in sorted(_by_day(series).items()):
            if symbol in ("VIX", "VIX1D"):
                out += [_scaled(b, 1 + Decimal("0.40") * _frac(b.end)) for b in day_bars]
                continue
            first, last = day_bars[0].open, day_bars[-1].close
            drift = Decimal("0.95") * first / last - 1  # the close lands at −5 % from the open
            out += [_scaled(b, 1 + drift * _frac(b.end)) for b in day_bars]
        bars[symbol] = out
    days = data.days()
    signals = _signals(data, settings, [(d, t) for d in days for t in (time(10, 0), time(10, 30))], "bullish", "crash")
    return (replace(data, bars=bars, option_quotes=[]),
            ["scenario crash: every session stretched to −5 % at the close, VIX +40 %; bullish entries at 10:00 "
             "and 10:30"], {"signals": signals})


GAP = Decimal("0.92")


def gap(data: Any, settings: Any) -> tuple[Any, list[str], dict[str, Any]]:
    days = data.days()
    if len(days) < 2:
        raise ValueError("the gap scenario needs two sessions")
    gap_day = days[1]
    bars = {}
    for symbol, series in data.bars.items():
        if symbol in ("VIX", "VIX1D"):
            bars[symbol] = series
            continue
        out = [b if b.start.astimezone(EXCHANGE_TZ).date() < gap_day else _scaled(b, GAP) for b in series]
        first = next((b for b in out if b.start.astimezone(EXCHANGE_TZ).date() == gap_day), None)
        if first is not None:  # the gap shows before the open: pre-market prints at the gapped open
            pre = [Bar(symbol, datetime.combine(gap_day, time(9, 0), tzinfo=EXCHANGE_TZ) + timedelta(minutes=i),
                       datetime.combine(gap_day, time(9, 1), tzinfo=EXCHANGE_TZ) + timedelta(minutes=i),
                       first.open, first.open, first.open, first.open, 0) for i in range(5)]
            out = sorted(out + pre, key=lambda b: b.end)
        bars[symbol] = out
    signals = _signals(data, settings, [(days[0], time(14, 0))], "bullish", "gap")
    return (replace(data, bars=bars, option_quotes=[]),
            [f"scenario gap: every underlying −8 % from {gap_day} on (pre-market prints at 09:00); bullish "
             f"entries at 14:00 on {days[0]}"], {"signals": signals, "gap_day": gap_day.isoformat()})


OUTAGE = (time(15, 35), time(15, 50))  # across the close-out (15:43, flat by 15:45): exits go out inside it
OUTAGE_SIGNALS = (time(15, 25), time(15, 40))  # one entry held into the outage, one sized inside it


def _inside_outage(at: datetime) -> bool:
    return OUTAGE[0] <= at.astimezone(EXCHANGE_TZ).time() < OUTAGE[1]


class OutageSnapshots:
    """The venue's answer to a snapshot while the stream is out (SPEC §6.1 "exits with stale quotes ask
    for a fresh snapshot"): the market as recorded at that moment, which the outage hid from the stream.

    The outage is of the streaming feed (what IB reports as a broken market-data farm for streamed
    lines); a snapshot is a separate request that the venue answers. An option that was recorded is
    answered with its latest recorded quote; otherwise it is modelled, like every modelled quote of
    the replay, from the hidden underlying and VIX values at that moment. Outside the outage nothing
    is hidden and the replay's own answer stands. `answered` counts what was given."""

    def __init__(self, hidden_bars: dict[str, list[Bar]], hidden_quotes: list[Quote], index_symbols: frozenset[str]):
        self.hidden_bars = hidden_bars
        self.hidden_quotes: dict[str, list[Quote]] = {}
        for q in hidden_quotes:
            self.hidden_quotes.setdefault(q.key, []).append(q)
        self.index_symbols = index_symbols
        self.asked: list[tuple[str, str]] = []
        self.answered: list[tuple[str, str]] = []

    def active(self, now: datetime) -> bool:
        return _inside_outage(now)

    def recorded(self, key: str, now: datetime) -> Quote | None:
        seen = [q for q in self.hidden_quotes.get(key, ()) if q.received_at <= now]
        return seen[-1] if seen else None

    def underlyings(self, now: datetime) -> list[Quote]:
        """Each hidden symbol's value at `now` (the open of the minute under way, the close once it ended)."""
        from daemon.feed import underlying_quote

        out = []
        for symbol, series in self.hidden_bars.items():
            bar = next((b for b in reversed(series) if b.start <= now), None)
            if bar is not None:
                price = bar.open if now < bar.end else bar.close
                out.append(underlying_quote(symbol, price, now, symbol in self.index_symbols))
        return out


def outage(data: Any, settings: Any) -> tuple[Any, list[str], dict[str, Any]]:
    bars = {s: [b for b in series if not _inside_outage(b.start)] for s, series in data.bars.items()}
    hidden = {s: [b for b in series if _inside_outage(b.start)] for s, series in data.bars.items()}
    quotes = [q for q in data.option_quotes if not _inside_outage(q.received_at)]
    hidden_quotes = [q for q in data.option_quotes if _inside_outage(q.received_at)]
    days = data.days()
    signals = _signals(data, settings, [(d, t) for d in days for t in OUTAGE_SIGNALS], "bullish", "outage")
    snapshots = OutageSnapshots(hidden, hidden_quotes, data.index_symbols)
    return (replace(data, bars=bars, option_quotes=quotes),
            [f"scenario outage: no streamed market data {OUTAGE[0]:%H:%M}–{OUTAGE[1]:%H:%M} each session (across the "
             f"15:45 close-out; snapshots answer from the market as recorded); signals at "
             f"{OUTAGE_SIGNALS[0]:%H:%M} and {OUTAGE_SIGNALS[1]:%H:%M}"],
            {"signals": signals, "outage": [OUTAGE[0].isoformat(), OUTAGE[1].isoformat()], "snapshots": snapshots})


DISCONNECT_AFTER = timedelta(seconds=10)
DISCONNECT_FOR = timedelta(seconds=90)


def disconnect(data: Any, settings: Any) -> tuple[Any, list[str], dict[str, Any]]:
    days = data.days()
    entry = time(10, 0)
    windows = []
    for d in days:
        start = datetime.combine(d, entry, tzinfo=EXCHANGE_TZ) + DISCONNECT_AFTER
        windows.append((start, start + DISCONNECT_FOR))
    signals = _signals(data, settings, [(d, entry) for d in days], "bullish", "disconnect")
    return (data, [f"scenario disconnect: the broker link drops at 10:00:02 for {DISCONNECT_FOR.seconds} s each "
                   "session, mid-slice of the 10:00 entries"],
            {"signals": signals, "disconnects": windows})


SCENARIOS: dict[str, Scenario] = {"crash": crash, "gap": gap, "outage": outage, "disconnect": disconnect}


def apply_scenario(name: str, data: Any, settings: Any) -> tuple[Any, list[str], dict[str, Any]]:
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; one of {', '.join(sorted(SCENARIOS))}")
    return SCENARIOS[name](data, settings)
