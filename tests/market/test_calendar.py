"""market.calendar: XNYS sessions from exchange_calendars, as SessionTimes values."""

from __future__ import annotations

from datetime import date, datetime, time, timezone

import pytest

from config import load_settings
from market import calendar
from market.clock import EXCHANGE_TZ
from exits import zero_dte_closeout_at, zero_dte_flat_by


def _at(d: date, hh: int, mm: int = 0) -> datetime:
    return datetime(d.year, d.month, d.day, hh, mm, tzinfo=EXCHANGE_TZ)


def test_regular_session() -> None:
    s = calendar.session_for(date(2025, 3, 3))
    assert s is not None and not s.early_close
    assert (s.open, s.close) == (_at(date(2025, 3, 3), 9, 30), _at(date(2025, 3, 3), 16))
    assert s.open.utcoffset() == _at(date(2025, 3, 3), 9).utcoffset()


@pytest.mark.parametrize("d", [date(2025, 11, 28), date(2025, 7, 3), date(2024, 12, 24), date(2015, 12, 24)])
def test_half_days_close_at_13(d: date) -> None:
    s = calendar.session_for(d)
    assert s is not None and s.early_close and s.close.time() == time(13) and s.open.time() == time(9, 30)


@pytest.mark.parametrize("d", [date(2025, 12, 25), date(2025, 11, 27), date(2025, 1, 9), date(2025, 3, 1),
                               date(2025, 3, 2), date(2025, 4, 18)])
def test_holidays_and_weekends_have_no_session(d: date) -> None:
    assert calendar.session_for(d) is None and not calendar.is_session(d)


def test_dst_open_is_0930_local_on_both_sides() -> None:
    before, after = calendar.session_for(date(2025, 3, 7)), calendar.session_for(date(2025, 3, 10))
    assert before.open.astimezone(timezone.utc).hour == 14 and after.open.astimezone(timezone.utc).hour == 13
    assert before.open.time() == after.open.time() == time(9, 30)


def test_next_and_previous_session() -> None:
    assert calendar.next_session(date(2025, 12, 24)) == date(2025, 12, 26)
    assert calendar.next_session(date(2025, 2, 28)) == date(2025, 3, 3)
    assert calendar.previous_session(date(2025, 12, 26)) == date(2025, 12, 24)
    assert calendar.previous_session(date(2025, 3, 3)) == date(2025, 2, 28)


def test_sessions_between_inclusive() -> None:
    assert calendar.sessions_between(date(2025, 12, 24), date(2026, 1, 2)) == (
        date(2025, 12, 24), date(2025, 12, 26), date(2025, 12, 29), date(2025, 12, 30), date(2025, 12, 31),
        date(2026, 1, 2))
    assert calendar.sessions_between(date(2025, 3, 3), date(2025, 3, 1)) == ()


def test_intraday_helpers() -> None:
    d = date(2025, 3, 3)
    assert calendar.session_at(_at(d, 10)) == calendar.session_for(d)
    assert calendar.session_at(_at(d, 16)) is None and calendar.is_regular_hours(_at(d, 9, 30))
    assert not calendar.is_regular_hours(_at(d, 9, 29))
    assert calendar.next_open(_at(d, 8)) == _at(d, 9, 30)
    assert calendar.next_open(_at(d, 10)) == _at(date(2025, 3, 4), 9, 30)
    assert calendar.next_open(_at(date(2025, 12, 24), 14)) == _at(date(2025, 12, 26), 9, 30)
    assert calendar.previous_close(_at(d, 8)) == _at(date(2025, 2, 28), 16)
    assert calendar.previous_close(_at(d, 16)) == _at(d, 16)
    assert calendar.previous_close(_at(date(2025, 11, 28), 13, 30)) == _at(date(2025, 11, 28), 13)
    utc = _at(d, 10).astimezone(timezone.utc)
    assert calendar.session_at(utc) == calendar.session_for(d)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError):
        calendar.session_at(datetime(2025, 3, 3, 10))
    with pytest.raises(calendar.CalendarRangeError):
        calendar.session_for(date(1980, 1, 2))


def test_half_day_closeout_from_the_real_calendar() -> None:
    cfg = load_settings("0dte", env={}).exits.zero_dte
    # flat by 15 minutes before the early close (SPEC §5.1); the close-out starts closeout_lead_s before that
    assert zero_dte_flat_by(calendar.session_for(date(2025, 11, 28)), cfg) == _at(date(2025, 11, 28), 12, 45)
    assert zero_dte_flat_by(calendar.session_for(date(2025, 11, 26)), cfg) == _at(date(2025, 11, 26), 15, 45)
    assert zero_dte_closeout_at(calendar.session_for(date(2025, 11, 28)), cfg) == _at(date(2025, 11, 28), 12, 43)
