"""The NYSE session calendar (exchange_calendars XNYS): holidays and half days from a real
calendar, never a hand list. Sessions come out as `exits.SessionTimes` values, which the pure
code receives instead of looking anything up.

Building the calendar takes a fraction of a second, so it is built once, lazily, and its
sessions are kept as plain values; look-ups after that are dictionary and bisect operations.
"""

from __future__ import annotations

import bisect
import json
import os
import tempfile
import threading
import warnings
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

from market.clock import EXCHANGE_TZ
from market.session import SessionTimes

__all__ = [
    "CalendarRangeError",
    "SessionTimes",
    "is_regular_hours",
    "is_session",
    "next_open",
    "next_session",
    "previous_close",
    "previous_session",
    "session_at",
    "session_for",
    "sessions_between",
]

CALENDAR = "XNYS"
FIRST_YEAR = 1990
YEARS_AHEAD = 5  # the calendar grows on demand past this; holidays are rule-based


class CalendarRangeError(ValueError):
    """A date outside what the exchange calendar covers."""

    code = "calendar_range"


@dataclass(frozen=True)
class _Sessions:
    first: date
    last: date
    days: tuple[date, ...]
    by_day: dict[date, SessionTimes]


_lock = threading.Lock()
_cache: _Sessions | None = None


def _sessions(covering: date) -> _Sessions:
    global _cache
    cached = _cache
    if cached is not None and covering <= cached.last:
        if covering < cached.first:
            raise CalendarRangeError(f"{covering} is before the calendar's first session year {FIRST_YEAR}")
        return cached
    with _lock:
        if _cache is None or covering > _cache.last:
            _cache = _build(max(covering.year, date.today().year) + YEARS_AHEAD)
        if covering < _cache.first:
            raise CalendarRangeError(f"{covering} is before the calendar's first session year {FIRST_YEAR}")
        return _cache


def _build(last_year: int) -> _Sessions:
    """The sessions through `last_year`: from the table cached by an earlier process when it was built by
    the same exchange_calendars version for the same years, else from the library (and cached)."""
    path = _cache_path(last_year)
    if path is not None:
        try:
            return _decode(json.loads(path.read_bytes()), last_year)
        except Exception:  # noqa: BLE001,S110 - absent, torn, foreign or wrong: build it from the library
            pass
    table = _from_library(last_year)
    if path is not None:
        _save(path, table)
    return table


def _cache_path(last_year: int) -> Path | None:
    """`<cache>/tradingd/XNYS-1990-<last_year>-ec<version>.json` (room tick: importing pandas and building
    the calendar was ~0.6 s CPU of every start). `TRADINGD_CALENDAR_CACHE` names the folder ("" turns the
    cache off); else `$XDG_CACHE_HOME/tradingd` or `~/.cache/tradingd`. None when there is none to use."""
    from importlib.metadata import PackageNotFoundError, version

    folder = os.environ.get("TRADINGD_CALENDAR_CACHE")
    if folder == "":
        return None
    if folder is None:
        base = os.environ.get("XDG_CACHE_HOME") or (str(Path.home() / ".cache") if os.environ.get("HOME") else "")
        if not base:
            return None
        folder = str(Path(base) / "tradingd")
    try:
        library = version("exchange_calendars")
    except PackageNotFoundError:
        return None
    return Path(folder) / f"{CALENDAR}-{FIRST_YEAR}-{last_year}-ec{library}.json"


# The cache holds plain numbers, never pickled objects: a file another build of this code wrote (a
# compiled `SessionTimes` pickles differently; session 7 saw one read back as nonsense sessions) or a
# foreign file can only fail the checks in `_decode` and be rebuilt, never load as a wrong calendar.
_FORMAT = "tradingd-xnys-sessions/1"
_MINUTES_A_DAY = 24 * 60


def _encode(table: _Sessions) -> dict[str, object]:
    """Each session as [day's ordinal, open and close in exchange-local minutes after midnight, half day]."""
    def minutes(at: datetime) -> int:
        local = at.astimezone(EXCHANGE_TZ)
        return local.hour * 60 + local.minute

    return {"format": _FORMAT, "first": table.first.toordinal(), "last": table.last.toordinal(),
            "sessions": [[d.toordinal(), minutes(s.open), minutes(s.close), s.early_close]
                         for d, s in table.by_day.items()]}


def _decode(raw: object, last_year: int) -> _Sessions:
    """The table back from `_encode`'s numbers, every one checked: ValueError on anything else."""
    if not isinstance(raw, dict) or raw.get("format") != _FORMAT:
        raise ValueError("not a session table of this format")
    first, last, rows = date.fromordinal(raw["first"]), date.fromordinal(raw["last"]), raw["sessions"]
    if first != date(FIRST_YEAR, 1, 1) or last != date(last_year, 12, 31) or not isinstance(rows, list) or not rows:
        raise ValueError("the table covers other years")
    by_day: dict[date, SessionTimes] = {}
    previous = first.toordinal() - 1
    for row in rows:
        ordinal, opens, closes, early = row
        if not (type(ordinal) is int and type(opens) is int and type(closes) is int and type(early) is bool
                and previous < ordinal <= last.toordinal() and 0 <= opens < closes < _MINUTES_A_DAY):
            raise ValueError(f"bad session row {row!r}")
        previous = ordinal
        day = date.fromordinal(ordinal)
        by_day[day] = SessionTimes(day=day, open=_at(day, opens), close=_at(day, closes), early_close=early)
    return _Sessions(first=first, last=last, days=tuple(by_day), by_day=by_day)


def _at(day: date, minutes: int) -> datetime:
    return datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=EXCHANGE_TZ)


def _save(path: Path, table: _Sessions) -> None:
    """Written whole or not at all (a temporary file renamed over it); a read-only home is no error."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(_encode(table), f, separators=(",", ":"))
        os.replace(tmp, path)
    except OSError:
        pass


def _from_library(last_year: int) -> _Sessions:
    import exchange_calendars  # slow to import and to build: only when first needed

    with warnings.catch_warnings():
        # the library's own use of soon-deprecated pandas API is not ours to fix, nor to log
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        cal = exchange_calendars.get_calendar(CALENDAR, start=f"{FIRST_YEAR}-01-01", end=f"{last_year}-12-31")
    early = {ts.date() for ts in cal.early_closes}
    labels = [ts.date() for ts in cal.sessions]
    opens = cal.opens.dt.tz_convert(EXCHANGE_TZ.key).dt.to_pydatetime()
    closes = cal.closes.dt.tz_convert(EXCHANGE_TZ.key).dt.to_pydatetime()
    by_day = {
        day: SessionTimes(day=day, open=o.astimezone(EXCHANGE_TZ), close=c.astimezone(EXCHANGE_TZ),
                          early_close=day in early)
        for day, o, c in zip(labels, opens, closes, strict=True)
    }
    days = tuple(sorted(by_day))
    return _Sessions(first=date(FIRST_YEAR, 1, 1), last=date(last_year, 12, 31), days=days, by_day=by_day)


def session_for(d: date) -> SessionTimes | None:
    """The session on `d`, or None on a weekend or holiday."""
    return _sessions(d).by_day.get(d)


def is_session(d: date) -> bool:
    return session_for(d) is not None


def next_session(d: date) -> date:
    """The first session strictly after `d`."""
    s = _sessions(d + timedelta(days=10))
    return s.days[bisect.bisect_right(s.days, d)]


def previous_session(d: date) -> date:
    """The last session strictly before `d`."""
    s = _sessions(d)
    i = bisect.bisect_left(s.days, d)
    if i == 0:
        raise CalendarRangeError(f"no session before {d} in the calendar")
    return s.days[i - 1]


def sessions_between(a: date, b: date) -> tuple[date, ...]:
    """Sessions from `a` to `b`, both inclusive; empty when b < a."""
    if b < a:
        return ()
    s = _sessions(b)
    _sessions(a)
    return s.days[bisect.bisect_left(s.days, a):bisect.bisect_right(s.days, b)]


def _local(when: datetime) -> datetime:
    if when.tzinfo is None:
        raise ValueError("calendar look-ups need a timezone-aware datetime")
    return when.astimezone(EXCHANGE_TZ)


def session_at(when: datetime) -> SessionTimes | None:
    """The session whose regular hours contain `when`, else None."""
    when = _local(when)
    session = session_for(when.date())
    return session if session is not None and session.contains(when) else None


def is_regular_hours(when: datetime) -> bool:
    return session_at(when) is not None


def next_open(when: datetime) -> datetime:
    """The first session open strictly after `when`."""
    when = _local(when)
    session = session_for(when.date())
    if session is not None and when < session.open:
        return session.open
    return _by_day(next_session(when.date())).open


def previous_close(when: datetime) -> datetime:
    """The last session close at or before `when` (the close the overnight check measures from)."""
    when = _local(when)
    session = session_for(when.date())
    if session is not None and session.close <= when:
        return session.close
    return _by_day(previous_session(when.date())).close


def _by_day(d: date) -> SessionTimes:
    return _sessions(d).by_day[d]
