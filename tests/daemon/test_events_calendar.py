"""The event calendar: the bundled file, parsing, merging a refresh, and the look-ups."""

from __future__ import annotations

import asyncio
from datetime import date, datetime

import pytest

from config import load_settings
from daemon.events_calendar import BUNDLED, CalendarError, load_calendar, parse_calendar, refreshed
from market.calendar import session_for
from market.session import EXCHANGE_TZ

CFG = load_settings("7dte", env={}).regime.events


@pytest.fixture(scope="module")
def bundled():
    return load_calendar(CFG)


def test_the_bundled_calendar_has_fomc_days_at_two_and_mag7_earnings(bundled):
    events = bundled.macro_on(date(2024, 1, 31))
    assert [(e.kind, e.at) for e in events] == [("fomc", datetime(2024, 1, 31, 14, 0, tzinfo=EXCHANGE_TZ))]
    assert bundled.macro_labels(date(2019, 2, 13), ["fomc", "cpi", "nfp"]) == ("cpi 2019-02-13 08:30 ET",)
    assert bundled.next_earnings("NVDA", date(2019, 2, 11)) == date(2019, 2, 14)
    assert bundled.next_earnings("GOOG", date(2015, 12, 24)) == date(2016, 2, 1)  # alias of GOOGL
    assert bundled.source == str(BUNDLED)


def test_every_bundled_macro_day_and_earnings_day_is_a_trading_session(bundled):
    for day in [*bundled.macro, *(d for days in bundled.earnings.values() for d in days)]:
        assert session_for(day) is not None, day


def test_the_view_gives_today_s_releases_and_the_next_report_before_expiry(bundled):
    now = datetime(2024, 1, 29, 10, 0, tzinfo=EXCHANGE_TZ)
    view = bundled.view(now, "AAPL", date(2024, 2, 2))
    assert view.macro == () and view.earnings == date(2024, 2, 1) and view.expiry == date(2024, 2, 2)


def test_a_bad_calendar_is_refused_with_a_reason():
    with pytest.raises(CalendarError) as bad_time:
        parse_calendar('[macro.fomc]\ntime = "2pm"\ndays = [2024-01-31]\n', "x.toml")
    assert bad_time.value.code == "calendar_invalid"
    with pytest.raises(CalendarError) as not_date:
        parse_calendar('[earnings.AAPL]\ndays = ["soon"]\n', "x.toml")
    assert not_date.value.code == "calendar_invalid"


def test_a_refresh_is_merged_over_the_bundled_calendar_and_a_failed_one_raises(bundled, tmp_path):
    extra = tmp_path / "events.toml"
    extra.write_text('[macro.fomc]\ntime = "14:00"\ndays = [2027-01-27, 2024-01-31]\n'
                     '[earnings.AAPL]\ntiming = "amc"\ndays = [2027-01-28]\n')
    cfg = CFG.model_copy(update={"refresh_source": str(extra)})
    merged = asyncio.run(refreshed(bundled, cfg))
    assert [e.kind for e in merged.macro_on(date(2024, 1, 31))] == ["fomc"]  # no duplicate
    assert merged.macro_on(date(2027, 1, 27))[0].kind == "fomc"
    assert merged.next_earnings("AAPL", date(2026, 12, 1)) == date(2027, 1, 28)
    again = asyncio.run(refreshed(merged, cfg))  # the daily refresh of the same source changes nothing
    assert again.macro == merged.macro and again.earnings == merged.earnings and again.source == merged.source
    missing = CFG.model_copy(update={"refresh_source": str(tmp_path / "nope.toml")})
    with pytest.raises(CalendarError) as exc:
        asyncio.run(refreshed(bundled, missing))
    assert exc.value.code == "calendar_unreadable"
