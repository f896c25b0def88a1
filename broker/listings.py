"""Which options are listed on a date: standard strikes, expiries and price ticks (the sim's chains).

Listing conventions are exchange facts, not trading rules, so they live here as named tables:
- SPY, QQQ, IWM: an expiry every session, $1 strikes near the money, penny ticks at every price.
- single stocks (the Mag7): weekly Friday expiries (Thursday when Friday is a holiday),
  strikes by price ($2.50 below $500, $5 below $1,000, ...), penny ticks below $3, nickels above.
The session calendar is exchange_calendars' XNYS.
"""

from __future__ import annotations

import warnings
from datetime import date, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from functools import lru_cache

import exchange_calendars as xcals
import pandas as pd

from broker.types import OptionChain
from daemon.clock import EXCHANGE_TZ

DAILY_EXPIRY_UNDERLYINGS = frozenset({"SPY", "QQQ", "IWM"})
PENNY_EVERY_PRICE = frozenset({"SPY", "QQQ", "IWM"})  # Penny Interval Program: $0.01 at every price
PENNY = Decimal("0.01")
NICKEL = Decimal("0.05")
PENNY_BELOW = Decimal(3)  # other penny-program classes: $0.01 below $3, $0.05 from $3
ETF_STRIKE_STEP = Decimal(1)
# (price below, strike step) for single stocks; the last row has no bound.
STOCK_STRIKE_STEPS: tuple[tuple[Decimal | None, Decimal], ...] = (
    (Decimal(25), Decimal("0.5")),
    (Decimal(500), Decimal("2.5")),
    (Decimal(1000), Decimal(5)),
    (None, Decimal(10)),
)
WEEKLY_WEEKDAY = 4  # Friday
CALENDAR_START = "2000-01-01"  # far enough back for every recorded data set we replay
DEFAULT_HORIZON_DAYS = 35
DEFAULT_STRIKES_EACH_SIDE = 25
CACHED_DAYS = 2048  # dates whose session facts are kept (about eight years of sessions)


class ListingError(ValueError):
    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(f"{code}: {message}")


@lru_cache(maxsize=1)
def _xnys() -> xcals.ExchangeCalendar:
    with warnings.catch_warnings():  # exchange_calendars trips a pandas deprecation warning while it builds
        warnings.simplefilter("ignore")
        return xcals.get_calendar("XNYS", start=CALENDAR_START)


def _ts(day: date) -> pd.Timestamp:
    return pd.Timestamp(day.isoformat())


def _in_bounds(day: date) -> bool:
    cal = _xnys()
    return cal.first_session.date() <= day <= cal.last_session.date()


# A date's facts never change, and a pandas lookup costs ~100 µs: the option model asks for
# every tracked option on every tick, so both lookups are cached per day (bounded: a few years).
@lru_cache(maxsize=CACHED_DAYS)
def is_session(day: date) -> bool:
    if not _in_bounds(day):
        raise ListingError("outside_calendar", f"{day} is outside the XNYS calendar")
    return bool(_xnys().is_session(_ts(day)))


def session_close(day: date) -> datetime:
    """The close of the session on `day`, exchange time (13:00 on half days)."""
    close = _session_close(day)
    if close is None:
        raise ListingError("not_a_session", f"{day} is not an XNYS session")
    return close


@lru_cache(maxsize=CACHED_DAYS)
def _session_close(day: date) -> datetime | None:
    if not is_session(day):
        return None
    return _xnys().session_close(_ts(day)).to_pydatetime().astimezone(EXCHANGE_TZ)


def tick_size(underlying: str, price: Decimal) -> Decimal:
    if underlying in PENNY_EVERY_PRICE or price < PENNY_BELOW:
        return PENNY
    return NICKEL


def round_to_tick(underlying: str, price: Decimal, direction: str) -> Decimal:
    """`direction` "down", "up" or "nearest". The tick is the one that applies at the rounded price."""
    if direction not in ("down", "up", "nearest"):
        raise ValueError(f"round_to_tick: unknown direction {direction!r}")
    mode = {"down": ROUND_FLOOR, "up": ROUND_CEILING, "nearest": ROUND_HALF_EVEN}[direction]
    tick = tick_size(underlying, price)
    rounded = (price / tick).quantize(Decimal(1), rounding=mode) * tick
    # Near the penny/nickel boundary the coarser tick may apply to the rounded price instead.
    coarse = tick_size(underlying, rounded)
    if coarse != tick:
        rounded = (price / coarse).quantize(Decimal(1), rounding=mode) * coarse
    return rounded


def strike_increment(underlying: str, price: Decimal) -> Decimal:
    if underlying in DAILY_EXPIRY_UNDERLYINGS:
        return ETF_STRIKE_STEP
    for below, step in STOCK_STRIKE_STEPS:
        if below is None or price < below:
            return step
    raise AssertionError("STOCK_STRIKE_STEPS must end with an unbounded row")


def listed_strikes(underlying: str, spot: Decimal, count_each_side: int = DEFAULT_STRIKES_EACH_SIDE) -> tuple[Decimal, ...]:
    if not spot > 0:
        raise ListingError("bad_price", f"underlying price must be positive, got {spot}")
    step = strike_increment(underlying, spot)
    center = (spot / step).quantize(Decimal(1), rounding=ROUND_HALF_EVEN) * step
    strikes = (center + i * step for i in range(-count_each_side, count_each_side + 1))
    return tuple(k for k in strikes if k > 0)


def listed_expiries(underlying: str, today: date, horizon_days: int = DEFAULT_HORIZON_DAYS) -> tuple[date, ...]:
    """Expiries from `today` (inclusive) to `today + horizon_days`."""
    end = today + timedelta(days=horizon_days)
    if not (_in_bounds(today) and _in_bounds(end)):
        raise ListingError("outside_calendar", f"{today}..{end} is outside the XNYS calendar")
    cal = _xnys()
    if underlying in DAILY_EXPIRY_UNDERLYINGS:
        return tuple(s.date() for s in cal.sessions_in_range(_ts(today), _ts(end)))
    expiries = []
    friday = today + timedelta(days=(WEEKLY_WEEKDAY - today.weekday()) % 7)
    while friday <= end:
        # A holiday Friday moves the expiry to the session before it (Thursday, usually).
        expiry = cal.date_to_session(_ts(friday), direction="previous").date()
        if expiry >= today:
            expiries.append(expiry)
        friday += timedelta(days=7)
    return tuple(expiries)


def option_chain(underlying: str, today: date, spot: Decimal, multiplier: int = 100,
                 horizon_days: int = DEFAULT_HORIZON_DAYS,
                 strikes_each_side: int = DEFAULT_STRIKES_EACH_SIDE) -> OptionChain:
    return OptionChain(underlying, listed_expiries(underlying, today, horizon_days),
                       listed_strikes(underlying, spot, strikes_each_side), multiplier)
