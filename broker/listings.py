"""Which options are listed on a date: standard strikes, expiries and price ticks (the sim's chains).

Listing conventions are exchange facts, not trading rules, so they live here as named tables:
- SPY, QQQ, IWM: an expiry every session, $1 strikes near the money, penny ticks at every price.
- single stocks (the Mag7): weekly Friday expiries (Thursday when Friday is a holiday),
  strikes by price ($2.50 below $500, $5 below $1,000, ...), penny ticks below $3, nickels above.
Sessions come from the daemon's one XNYS calendar (`market.calendar`: built once, then plain
values), so the option model's per-tick look-ups never reach pandas.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

from market.types import OptionChain
from config.errors import ReasonError
from market import calendar

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
# SPXW (cash-settled, European, same-day): Monday/Wednesday/Friday expiries, Tuesday added on 2022-04-18 and
# Thursday on 2022-05-11 (Cboe), so an expiry every session since; $5 strikes near the money.
SPXW_WEEKDAYS: tuple[tuple[date, frozenset[int]], ...] = (
    (date(2022, 5, 11), frozenset({0, 1, 2, 3, 4})),
    (date(2022, 4, 18), frozenset({0, 1, 2, 4})),
    (date(2000, 1, 1), frozenset({0, 2, 4})),
)
INDEX_STRIKE_STEPS = {"SPX": Decimal(5)}
FIRST_LISTED = date(2000, 1, 1)  # far enough back for every recorded data set we replay
DEFAULT_HORIZON_DAYS = 35
DEFAULT_STRIKES_EACH_SIDE = 25


class ListingError(ReasonError, ValueError):
    """`code` is a stable reason code."""


def _check_in_calendar(first: date, last: date) -> None:
    if first < FIRST_LISTED:
        raise ListingError("outside_calendar", f"{first}..{last} is outside the XNYS calendar")


def session_close(day: date) -> datetime:
    """The close of the session on `day`, exchange time (13:00 on half days)."""
    _check_in_calendar(day, day)
    session = calendar.session_for(day)
    if session is None:
        raise ListingError("not_a_session", f"{day} is not an XNYS session")
    return session.close


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
    if underlying in INDEX_STRIKE_STEPS:
        return INDEX_STRIKE_STEPS[underlying]
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
    _check_in_calendar(today, end)
    if underlying in DAILY_EXPIRY_UNDERLYINGS:
        return calendar.sessions_between(today, end)
    if underlying == "SPX":
        return tuple(d for d in calendar.sessions_between(today, end) if d.weekday() in _spxw_weekdays(d))
    expiries = []
    friday = today + timedelta(days=(WEEKLY_WEEKDAY - today.weekday()) % 7)
    while friday <= end:
        # A holiday Friday moves the expiry to the session before it (Thursday, usually).
        expiry = friday if calendar.is_session(friday) else calendar.previous_session(friday)
        if expiry >= today:
            expiries.append(expiry)
        friday += timedelta(days=7)
    return tuple(expiries)


def _spxw_weekdays(day: date) -> frozenset[int]:
    return next(days for since, days in SPXW_WEEKDAYS if day >= since)


def option_chain(underlying: str, today: date, spot: Decimal, multiplier: int = 100,
                 horizon_days: int = DEFAULT_HORIZON_DAYS,
                 strikes_each_side: int = DEFAULT_STRIKES_EACH_SIDE) -> OptionChain:
    return OptionChain(underlying, listed_expiries(underlying, today, horizon_days),
                       listed_strikes(underlying, spot, strikes_each_side), multiplier)
