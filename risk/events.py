"""The event calendar's effects on sizing (SPEC §10.1), as pure functions of values.

The shell looks the calendar up (`daemon/events_calendar.py`) and hands the sizer an `EventView`:
the macro releases of the signal's exchange date and the underlying's next earnings date, plus the
expiry of the chosen contract. Nothing here reads a file or a clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from config.models import EventsConfig
from market.session import EXCHANGE_TZ


@dataclass(frozen=True, slots=True)
class MarketEvent:
    """One calendar entry. `at` is the release time (aware) when known; earnings carry `symbol`
    and `timing` (`bmo` before the open, `amc` after the close, None unknown)."""

    kind: str  # fomc | cpi | nfp | earnings | ...
    day: date
    at: datetime | None = None
    symbol: str | None = None
    timing: str | None = None

    def __post_init__(self) -> None:
        if self.at is not None and self.at.tzinfo is None:
            raise ValueError(f"{self.kind} {self.day}: release time must be timezone-aware")

    @property
    def label(self) -> str:
        when = "" if self.at is None else f" {self.at.astimezone(EXCHANGE_TZ):%H:%M} ET"
        who = "" if self.symbol is None else f" {self.symbol}"
        return f"{self.kind}{who} {self.day.isoformat()}{when}"


@dataclass(frozen=True, slots=True)
class EventView:
    """What the calendar says for one signal: today's macro releases (exchange date), the
    underlying's next earnings on or after today, and the chosen contract's expiry."""

    macro: tuple[MarketEvent, ...] = ()
    earnings: date | None = None
    expiry: date | None = None


NO_EVENTS = EventView()


def macro_today(now: datetime, view: EventView, cfg: EventsConfig) -> tuple[MarketEvent, ...]:
    today = now.astimezone(EXCHANGE_TZ).date()
    return tuple(e for e in view.macro if e.day == today and e.kind in cfg.macro_kinds)


def blackout(now: datetime, view: EventView, cfg: EventsConfig) -> MarketEvent | None:
    """The release whose window [at − before, at + after] holds `now`, if any (edges included)."""
    if not view.macro:
        return None  # most days: no release, and no window to build
    before, after = timedelta(minutes=cfg.blackout_before_min), timedelta(minutes=cfg.blackout_after_min)
    for event in view.macro:
        if event.at is not None and event.kind in cfg.macro_kinds and event.at - before <= now <= event.at + after:
            return event
    return None


def spans_earnings(now: datetime, view: EventView) -> bool:
    """Earnings from today up to and including the expiry day fall inside the position's life
    (the same test exits/partial.py applies to the thresholds)."""
    if view.earnings is None or view.expiry is None:
        return False
    return now.astimezone(EXCHANGE_TZ).date() <= view.earnings <= view.expiry


def event_caps(now: datetime, view: EventView, cfg: EventsConfig,
               fundamental_score: Decimal | None) -> tuple[dict[str, Decimal], dict[str, str]]:
    """Multiplier caps the calendar imposes, by name, and notes saying why (for the decision record)."""
    caps: dict[str, Decimal] = {}
    notes: dict[str, str] = {}
    if not cfg.enabled:
        return caps, notes
    today = macro_today(now, view, cfg) if view.macro else ()  # no release: no exchange date to work out
    if today:
        notes["macro_day"] = ", ".join(e.label for e in today)
        if cfg.macro_day_multiplier_cap is not None:
            caps["macro_day"] = cfg.macro_day_multiplier_cap
    if spans_earnings(now, view):
        assert view.earnings is not None and view.expiry is not None
        notes["earnings_before_expiry"] = f"earnings {view.earnings.isoformat()} <= expiry {view.expiry.isoformat()}"
        if cfg.earnings_span_cap is not None:
            lift = cfg.earnings_cap_lifted_at_score
            if lift is not None and fundamental_score is not None and fundamental_score >= lift:
                notes["earnings_cap"] = f"lifted: fundamental score {fundamental_score!s} >= {lift!s}"
            else:
                caps["earnings_span"] = cfg.earnings_span_cap
    return caps, notes
