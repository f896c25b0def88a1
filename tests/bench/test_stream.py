"""The benches' 1-second stream: the count issue 8 states and the rounding rule."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from bench.stream import one_second_stream, second_prices
from daemon.bars import load_minute_bars, resolve_data_dir
from market.clock import EXCHANGE_TZ


def test_the_bundled_week_gives_816420_quotes_in_time_order_with_a_two_cent_spread() -> None:
    count, last = 0, None
    per_symbol: dict[str, int] = {}
    for at, symbol, bid, ask in one_second_stream("bundled"):
        count += 1
        per_symbol[symbol] = per_symbol.get(symbol, 0) + 1
        assert ask - bid == Decimal("0.02")
        assert bid.as_tuple().exponent == -2
        key = (at, symbol)
        assert last is None or key > last, f"out of order at {key}"
        last = key
    assert count == 816_420
    assert sorted(per_symbol) == ["AAPL", "AMZN", "MSFT", "QQQ", "SPY", "TSLA", "VIX"]
    assert all(n % 60 == 0 for n in per_symbol.values())


def test_a_bar_steps_linearly_from_open_to_close_rounded_to_cents() -> None:
    prices = second_prices(Decimal("270.00"), Decimal("270.59"))
    assert len(prices) == 60
    assert prices[0] == Decimal("270.00") and prices[-1] == Decimal("270.59")
    assert prices[1] == Decimal("270.01") and prices[30] == Decimal("270.30")
    # 0.10 over 59 steps: second 1 is 10.0169... cents above the open -> 0.00, second 3 -> 0.0051 -> 0.01
    tenth = second_prices(Decimal("1.00"), Decimal("1.10"))
    assert tenth[1] == Decimal("1.00") and tenth[3] == Decimal("1.01") and tenth[59] == Decimal("1.10")
    # An exact half cent rounds to even (Decimal's default)
    halves = second_prices(Decimal("10.00"), Decimal("10.295"))  # step = 0.005
    assert halves[1] == Decimal("10.00") and halves[3] == Decimal("10.02")  # 10.005 -> 10.00, 10.015 -> 10.02


def test_the_first_spy_bar_becomes_sixty_quotes_one_second_apart_from_its_start() -> None:
    folder: Path = resolve_data_dir("bundled")
    first = load_minute_bars(folder, "SPY")[0]
    spy = [t for t in _take_until(first.end) if t[1] == "SPY"]
    assert [t[0] for t in spy] == [first.start + timedelta(seconds=i) for i in range(60)]
    assert spy[0][2] == first.open - Decimal("0.01") and spy[0][3] == first.open + Decimal("0.01")
    assert spy[-1][2] == first.close - Decimal("0.01") and spy[-1][3] == first.close + Decimal("0.01")
    assert first.start == datetime(2019, 2, 11, 9, 30, tzinfo=EXCHANGE_TZ)


def _take_until(end: datetime) -> list:
    out = []
    for tick in one_second_stream("bundled"):
        if tick[0] >= end:
            break
        out.append(tick)
    return out
