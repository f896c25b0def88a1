"""The event calendar (SPEC §10.1): the bundled file, an operator's refresh, and the look-ups the
engine hands to `risk/` and `exits/` as values.

File format (TOML, exchange time): `[macro.<kind>]` with `time = "HH:MM"` and `days = [dates]`;
`[earnings.<SYMBOL>]` with `timing = "amc" | "bmo"` and `days`; `[aliases]` SYMBOL = "SYMBOL".
A refresh is merged over what is loaded (union of days); a refresh that fails keeps the calendar
as it was and says why (reason code), it never empties it.
"""

from __future__ import annotations

import asyncio
import tomllib
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from config.errors import ReasonError
from config.models import EventsConfig
from market.session import EXCHANGE_TZ
from risk.events import EventView, MarketEvent

BUNDLED = Path(__file__).resolve().parent.parent / "config" / "calendar" / "events.toml"
MAX_BYTES = 1_000_000  # a calendar is a few kilobytes; anything larger is not one


class CalendarError(ReasonError, ValueError):
    """A calendar that cannot be read or parsed: `code` is calendar_unreadable | calendar_invalid."""


@dataclass(frozen=True)
class EventCalendar:
    macro: Mapping[date, tuple[MarketEvent, ...]] = field(default_factory=dict)
    earnings: Mapping[str, tuple[date, ...]] = field(default_factory=dict)  # sorted
    timings: Mapping[str, str] = field(default_factory=dict)
    aliases: Mapping[str, str] = field(default_factory=dict)
    source: str = ""

    def macro_on(self, day: date) -> tuple[MarketEvent, ...]:
        return self.macro.get(day, ())

    def next_earnings(self, symbol: str, day: date) -> date | None:
        """The first report on or after `day` (a report today after the close is still ahead)."""
        for when in self.earnings.get(self.aliases.get(symbol, symbol), ()):
            if when >= day:
                return when
        return None

    def view(self, now: datetime, symbol: str, expiry: date | None) -> EventView:
        today = now.astimezone(EXCHANGE_TZ).date()
        return EventView(macro=self.macro_on(today), earnings=self.next_earnings(symbol, today), expiry=expiry)

    def macro_labels(self, day: date, kinds: Iterable[str]) -> tuple[str, ...]:
        wanted = set(kinds)
        return tuple(e.label for e in self.macro_on(day) if e.kind in wanted)

    def merged(self, other: EventCalendar) -> EventCalendar:
        macro: dict[date, tuple[MarketEvent, ...]] = dict(self.macro)
        for day, events in other.macro.items():
            known = {(e.kind, e.at) for e in macro.get(day, ())}
            macro[day] = macro.get(day, ()) + tuple(e for e in events if (e.kind, e.at) not in known)
        earnings = {s: tuple(sorted(set(self.earnings.get(s, ())) | set(other.earnings.get(s, ()))))
                    for s in {*self.earnings, *other.earnings}}
        sources = self.source.split(" + ")
        source = self.source if other.source in sources else f"{self.source} + {other.source}"  # daily refreshes
        return EventCalendar(macro, earnings, {**self.timings, **other.timings}, {**self.aliases, **other.aliases},
                             source)

    def summary(self) -> dict[str, Any]:
        days = sorted(self.macro)
        return {"source": self.source, "macro_days": len(days),
                "first": days[0].isoformat() if days else None, "last": days[-1].isoformat() if days else None,
                "earnings": {s: len(d) for s, d in sorted(self.earnings.items())}}


EMPTY = EventCalendar(source="none")


def parse_calendar(text: str, source: str) -> EventCalendar:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CalendarError("calendar_invalid", f"{source}: not TOML: {exc}") from None
    macro: dict[date, list[MarketEvent]] = {}
    for kind, entry in _table(raw, "macro", source).items():
        at = _time(entry.get("time"), f"{source}: macro.{kind}.time")
        for day in _days(entry, f"{source}: macro.{kind}"):
            when = None if at is None else datetime.combine(day, at, tzinfo=EXCHANGE_TZ)
            macro.setdefault(day, []).append(MarketEvent(kind.lower(), day, when))
    earnings: dict[str, tuple[date, ...]] = {}
    timings: dict[str, str] = {}
    for symbol, entry in _table(raw, "earnings", source).items():
        timing = entry.get("timing")
        if timing not in (None, "amc", "bmo"):
            raise CalendarError("calendar_invalid", f"{source}: earnings.{symbol}.timing must be amc or bmo")
        earnings[symbol.upper()] = tuple(sorted(set(_days(entry, f"{source}: earnings.{symbol}"))))
        if timing is not None:
            timings[symbol.upper()] = timing
    aliases = raw.get("aliases", {})
    if not isinstance(aliases, dict) or not all(isinstance(v, str) for v in aliases.values()):
        raise CalendarError("calendar_invalid", f"{source}: aliases must map symbols to symbols")
    return EventCalendar({d: tuple(e) for d, e in macro.items()}, earnings, timings,
                         {k.upper(): v.upper() for k, v in aliases.items()}, source)


def _table(raw: dict[str, Any], key: str, source: str) -> dict[str, dict[str, Any]]:
    table = raw.get(key, {})
    if not isinstance(table, dict) or not all(isinstance(v, dict) for v in table.values()):
        raise CalendarError("calendar_invalid", f"{source}: [{key}.<name>] tables expected")
    return table


def _time(value: object, what: str) -> time | None:
    if value is None:
        return None
    try:
        return time.fromisoformat(str(value))
    except ValueError:
        raise CalendarError("calendar_invalid", f"{what}: {value!r} is not HH:MM") from None


def _days(entry: dict[str, Any], what: str) -> list[date]:
    days = entry.get("days", [])
    if not isinstance(days, list):
        raise CalendarError("calendar_invalid", f"{what}.days must be a list of dates")
    out = []
    for day in days:
        if isinstance(day, datetime) or not isinstance(day, date):
            raise CalendarError("calendar_invalid", f"{what}.days: {day!r} is not a date (YYYY-MM-DD)")
        out.append(day)
    return out


def read_source(source: str, timeout_s: float) -> str:
    """A file path or an http(s) URL, as text (blocking: call it on a thread)."""
    try:
        if source.startswith(("http://", "https://")):
            with urllib.request.urlopen(source, timeout=timeout_s) as response:  # noqa: S310 (operator's URL)
                body = response.read(MAX_BYTES + 1)
        else:
            body = Path(source).expanduser().read_bytes()
    except (OSError, ValueError) as exc:
        raise CalendarError("calendar_unreadable", f"{source}: {exc}") from None
    if len(body) > MAX_BYTES:
        raise CalendarError("calendar_unreadable", f"{source}: larger than {MAX_BYTES} bytes")
    try:
        return body.decode()
    except UnicodeDecodeError:
        raise CalendarError("calendar_invalid", f"{source}: not UTF-8 text") from None


def load_calendar(cfg: EventsConfig) -> EventCalendar:
    """The configured calendar file, or the bundled one (blocking; small)."""
    source = cfg.calendar_file or str(BUNDLED)
    return parse_calendar(read_source(source, float(cfg.refresh_timeout_s)), source)


async def refreshed(calendar: EventCalendar, cfg: EventsConfig) -> EventCalendar:
    """The calendar with the operator's source merged over it; raises CalendarError when it fails
    (the caller keeps the old calendar and reports the reason)."""
    if not cfg.refresh_source:
        return calendar
    text = await asyncio.to_thread(read_source, cfg.refresh_source, float(cfg.refresh_timeout_s))
    return calendar.merged(parse_calendar(text, cfg.refresh_source))
