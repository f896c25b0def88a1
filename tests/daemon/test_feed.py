"""Recorded bars become time-ordered quotes; the bundled data set and the reference source."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from broker.quotes import QuoteBook
from daemon.bars import BUNDLED, Bar, BarDataError, load_daily_bars, load_minute_bars, resolve_data_dir
from market.clock import EXCHANGE_TZ, VirtualClock
from daemon.feed import ReplayFeed, bar_path
from daemon.signals.jsonl import SignalFileError, load_signal_file
from daemon.signals.reference import OpeningRangeBreakout


def _bar(o: str, h: str, lo: str, c: str) -> Bar:
    end = datetime(2019, 2, 11, 9, 31, tzinfo=EXCHANGE_TZ)
    return Bar("SPY", end.replace(minute=30), end, Decimal(o), Decimal(h), Decimal(lo), Decimal(c), 100)


def test_bar_path_visits_open_both_extremes_and_close() -> None:
    up = bar_path(_bar("10", "12", "9", "11"))
    prices = [p for _, p in up]
    assert prices[0] == 10 and prices[-1] == 11 and 9 in prices and 12 in prices
    assert prices.index(Decimal(9)) < prices.index(Decimal(12)), "an up bar dips first"
    assert up[-1][0] == datetime(2019, 2, 11, 9, 31, tzinfo=EXCHANGE_TZ)
    gaps = [(b[0] - a[0]).total_seconds() for a, b in zip(up, up[1:])]
    assert max(gaps) < 10, "quotes stay fresher than the gate's 10 s"


def test_bundled_bars_load_oldest_first_with_their_notice() -> None:
    assert (BUNDLED / "NOTICE").read_text().count("ISC") >= 1
    spy = load_minute_bars(resolve_data_dir("bundled"), "SPY")
    assert spy[0].end == datetime(2019, 2, 11, 9, 31, tzinfo=EXCHANGE_TZ)
    assert [b.end for b in spy] == sorted(b.end for b in spy)
    assert len({b.end.date() for b in spy}) == 5
    assert load_daily_bars(BUNDLED, "SPY")[-1].day == date(2019, 2, 15)
    with pytest.raises(BarDataError) as err:
        resolve_data_dir("/no/such/folder")
    assert err.value.code == "replay_data_missing"


async def test_feed_merges_symbols_in_time_order_on_the_virtual_clock() -> None:
    folder = resolve_data_dir("bundled")
    bars = {s: [b for b in load_minute_bars(folder, s) if b.end.hour == 9 and b.end.minute <= 35]
            for s in ("SPY", "QQQ")}
    book = QuoteBook()
    seen: list[datetime] = []
    book.add_listener(lambda q: seen.append(q.received_at))
    clock = VirtualClock(datetime(2019, 2, 11, 0, 0, tzinfo=EXCHANGE_TZ))
    feed = ReplayFeed(clock, book, bars)
    stats = await feed.run()
    assert seen == sorted(seen) and stats.quotes == len(seen) > 0
    assert clock.now().hour == 23


def test_signal_file_times_and_refusals(tmp_path: Path) -> None:
    good = tmp_path / "s.jsonl"
    good.write_text('# comment\n{"id": "b", "created_at": "2019-02-11T10:05:00-05:00"}\n'
                    '{"at": "2019-02-11T10:00:00", "signal": {"id": "a", "confidence": NaN}}\n')
    timed = load_signal_file(good)
    assert [t.raw["id"] for t in timed] == ["a", "b"]
    assert timed[0].at.tzinfo is not None
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "no time"}\n')
    with pytest.raises(SignalFileError) as err:
        load_signal_file(bad)
    assert err.value.code == "signal_file_invalid" and ":1:" in str(err.value)


def test_reference_source_exercises_every_confidence_tier() -> None:
    folder = resolve_data_dir("bundled")
    source = OpeningRangeBreakout("0dte", ["SPY", "QQQ"])
    bars = sorted((b for s in ("SPY", "QQQ") for b in load_minute_bars(folder, s)), key=lambda b: (b.end, b.symbol))
    confidences = [raw["confidence"] for b in bars if (raw := source.on_bar(b)) is not None]
    assert any(c < 0.65 for c in confidences)
    assert any(0.7 <= c < 0.8 for c in confidences)
    assert any(0.8 <= c < 0.9 for c in confidences)
    assert any(c >= 0.9 for c in confidences)


@pytest.mark.parametrize("row, problem", [
    ("2019-02-11 10:01:00,270.10,270.00,270.20,270.05,100", "high 270.00 < low 270.20"),
    ("2019-02-11 10:01:00,271.00,270.50,270.00,270.10,100", "open 271.00 outside [low 270.00, high 270.50]"),
    ("2019-02-11 10:01:00,270.10,270.50,270.00,269.00,100", "close 269.00 outside [low 270.00, high 270.50]"),
])
def test_inconsistent_bars_are_refused_with_file_and_line(tmp_path: Path, row: str, problem: str) -> None:
    """SPEC §4.4 (Part 8): a bar with high < low or open/close outside [low, high] is refused."""
    from daemon.bars import BarDataError, load_minute_bars

    good = "2019-02-11 10:00:00,270.00,270.20,269.90,270.10,100"
    (tmp_path / "SPY_1min.csv").write_text(f"datetime,open,high,low,close,volume\n{good}\n{row}\n")
    with pytest.raises(BarDataError) as err:
        load_minute_bars(tmp_path, "SPY")
    assert err.value.code == "replay_bar_invalid"
    assert str(tmp_path / "SPY_1min.csv") in str(err.value) and "line 3" in str(err.value) and problem in str(err.value)
