"""SPEC §4.4 in the QuoteBook: every quote written is checked; a bad one is stored flagged, counted, logged once."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal as D

from structlog.testing import capture_logs

from broker.quotes import QuoteBook
from config.loader import load_settings
from market.clock import EXCHANGE_TZ, VirtualClock
from market.sanity import QuoteSanity, SanityLimits
from market.types import Quote

T0 = datetime(2019, 2, 11, 10, 0, tzinfo=EXCHANGE_TZ)


def guarded() -> tuple[QuoteBook, VirtualClock, list[str]]:
    book, clock, bad = QuoteBook(), VirtualClock(T0), []
    book.guard(QuoteSanity(SanityLimits.from_config(load_settings("0dte", env={}).market_data)), clock.now,
               lambda quote, verdict: bad.append(f"{quote.key}:{verdict.reason}"))
    return book, clock, bad


def test_a_crossed_quote_is_stored_unusable_with_its_reason_and_counted() -> None:
    book, _, bad = guarded()
    book.update(Quote("SPY", D("270.10"), D("270.00"), None, T0))
    stored = book.get("SPY")
    assert stored is not None and not stored.usable
    problem = book.problem("SPY")
    assert problem is not None and problem.reason == "crossed"
    assert bad == ["SPY:crossed"]
    book.update(Quote("SPY", D("270.00"), D("270.02"), None, T0 + timedelta(seconds=1)))
    assert book.get("SPY").usable and book.problem("SPY") is None  # type: ignore[union-attr]


def test_a_listener_sees_the_flag() -> None:
    book, _, _ = guarded()
    seen: list[bool] = []
    book.add_listener(lambda quote: seen.append(quote.usable))
    book.update(Quote("SPY", D("-1"), D("270.00"), None, T0))
    assert seen == [False]


def test_logged_once_per_minute_but_counted_each_time() -> None:
    book, clock, bad = guarded()
    with capture_logs() as logs:
        for k in range(5):
            book.update(Quote("SPY", D("2"), D("1"), None, T0 + timedelta(seconds=k)))
    assert [(e["event"], e["reason"]) for e in logs] == [("bad_market_data", "crossed")]
    assert len(bad) == 5


def test_an_unguarded_book_keeps_its_old_behaviour() -> None:
    book = QuoteBook()
    book.update(Quote("SPY", D("2"), D("1"), None, T0))
    assert book.get("SPY").usable and book.problem("SPY") is None  # type: ignore[union-attr]
