"""The 1-second quote stream the replay benches run on (issue 8's "stream").

Every real 1-minute bar of the bundled week (7 symbols) becomes 60 one-second quotes: second
`i` (0..59) of the bar is at `bar.start + i s`, its price steps linearly from the bar's open
(i = 0) to its close (i = 59), rounded to cents (half-even, Decimal's default: no float touches a
price), and bid/ask are that price -/+ 0.01. 13,607 bars -> 816,420 quotes, merged across
symbols in time order (ties in symbol order), so a consumer sees one market.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

from daemon.bars import available_symbols, load_minute_bars, resolve_data_dir

SECONDS_PER_BAR = 60
CENT = Decimal("0.01")
SPREAD_HALF = CENT  # bid = price - 0.01, ask = price + 0.01
_STEPS = SECONDS_PER_BAR - 1  # 59 steps from open to close
_OFFSETS = tuple(timedelta(seconds=i) for i in range(SECONDS_PER_BAR))

Tick = tuple[datetime, str, Decimal, Decimal]


def second_prices(open_: Decimal, close: Decimal) -> list[Decimal]:
    """The 60 prices of one bar: open at second 0, close at second 59, linear between, in cents."""
    step = (close - open_) / _STEPS
    return [(open_ + step * i).quantize(CENT, rounding=ROUND_HALF_EVEN) for i in range(SECONDS_PER_BAR)]


def _symbol_ticks(folder: Path, symbol: str) -> Iterator[Tick]:
    for bar in load_minute_bars(folder, symbol):
        for offset, price in zip(_OFFSETS, second_prices(bar.open, bar.close), strict=True):
            yield bar.start + offset, symbol, price - SPREAD_HALF, price + SPREAD_HALF


def one_second_stream(bars_dir: str | Path = "bundled") -> Iterator[Tick]:
    """(at, symbol, bid, ask) for every second of every 1-minute bar in `bars_dir`, oldest first."""
    folder = resolve_data_dir(bars_dir)
    symbols = sorted(available_symbols(folder))
    # Each symbol's ticks are already in time order: a k-way merge keeps the whole stream lazy.
    return heapq.merge(*(_symbol_ticks(folder, s) for s in symbols), key=lambda t: (t[0], t[1]))


def materialize(bars_dir: str | Path = "bundled") -> list[Tick]:
    """The whole stream as a list (the benches build it before their clock starts)."""
    return list(one_second_stream(bars_dir))
