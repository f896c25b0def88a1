"""Price bands are conservative: inside a band the exact policy never acts nor changes the state."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import pytest

from config.loader import load_settings
from exits import policy
from exits.bands import NO_PRICE, idle_band, price_band
from exits.market import MarketSnapshot
from exits.position import ExitPosition
from exits.state import ExitState
from market import calendar
from market.session import EXCHANGE_TZ

DAY = date(2026, 11, 30)


def position(profile: str, entry: Decimal, entered: datetime, expiry: date) -> ExitPosition:
    return ExitPosition(entry_price=entry, entry_time=entered, original_quantity=20, open_quantity=20, expiry=expiry,
                        underlying="SPY", profile=profile, right="C")


def walked(pos: ExitPosition, settings, market: MarketSnapshot, entered: datetime, now: datetime,  # type: ignore[no-untyped-def]
           rng: random.Random, steps: tuple[str, ...]) -> tuple[ExitState, MarketSnapshot]:
    """The state after entry and a short seeded walk of the premium (so some states carry a peak, fired
    levels, a raised stop), and the market at the walk's last premium."""
    _, state = policy.evaluate(pos, policy.new_state(pos, settings), market, entered, settings)
    price = market.option_price
    assert price is not None
    for _ in range(rng.randrange(0, 6)):
        price = max(Decimal("0.05"), price * Decimal(rng.choice(steps)))
        market = replace(market, option_price=price.quantize(Decimal("0.01")))
        _, state = policy.evaluate(pos, state, market, now, settings)
    return state, replace(market, option_price=price.quantize(Decimal("0.01")))


@pytest.mark.parametrize("profile", ["0dte", "7dte"])
def test_every_price_inside_a_band_is_quiet(profile: str) -> None:
    settings = load_settings(profile)
    rng = random.Random(11)
    checked = bands = 0
    for _ in range(60):
        pos, state, market, now, vix = _walked_position(profile, settings, rng, 300)
        band = price_band(pos, state, market, now, settings)
        if band is None:
            continue
        bands += 1
        assert band.lo < float(market.option_price) <= band.hi  # at the 7dte peak the band ends at the price
        checked += _quiet_inside(band, pos, state, market, now, settings, vix)
    assert bands > 10 and checked > 300


def _walked_position(profile, settings, rng, minutes: int):  # type: ignore[no-untyped-def]
    """A seeded position entered at 9:45 and its premium walked for up to `minutes`: (position, state, market,
    the moment reached, VIX)."""
    expiry = DAY if profile == "0dte" else DAY + timedelta(days=4)
    entry = Decimal(rng.randrange(50, 900)) / 100
    entered = datetime.combine(DAY, time(9, 45), tzinfo=EXCHANGE_TZ)
    pos = position(profile, entry, entered, expiry)
    now = entered + timedelta(minutes=rng.randrange(1, minutes))
    vix = Decimal(rng.choice([12, 18, 30]))
    market = MarketSnapshot(option_price=entry, session=calendar.session_for(DAY), underlying_price=Decimal(600),
                            vix=vix)
    state, market = walked(pos, settings, market, entered, now, rng, ("0.9", "1.05", "1.1", "0.97"))
    return pos, state, market, now, vix


def _quiet_inside(band, pos, state, market, now, settings, vix) -> int:  # type: ignore[no-untyped-def]
    """Every premium the band holds (its two inner edges and 40 points between them) is quiet under the exact
    policy; returns how many were checked."""
    checked = 0
    edges = [math.nextafter(band.lo, math.inf), math.nextafter(band.hi, -math.inf)]
    inside = [band.lo + (band.hi - band.lo) * (k + 0.5) / 40 if band.hi < 1e9 else band.lo + k * 0.37
              for k in range(40)]
    for p in edges + inside:
        if not band.holds(p, now, float(vix)) or p <= 0:
            continue
        probe = replace(market, option_price=Decimal(repr(p)))
        actions, after = policy.evaluate(pos, state, probe, now, settings)
        assert actions == () and after == state, (p, band, state)
        checked += 1
    return checked


@pytest.mark.parametrize("profile", ["0dte", "7dte"])
def test_a_band_built_from_an_earlier_band_is_quiet_inside(profile: str) -> None:
    """Seeded: the band taken with the previous band as its hint (after the premium walked, the state moved,
    time passed: a time-scaled target came down, a level fired) is as sound as one built from nothing, whether
    the hint's edges are still quiet (kept) or act now (the bisection starts from them)."""
    settings = load_settings(profile)
    rng = random.Random(31)
    checked = hinted = kept = moved = 0
    for _ in range(120):
        pos, state, market, first, vix = _walked_position(profile, settings, rng, 200)
        hint = price_band(pos, state, market, first, settings)
        if hint is None:
            continue
        now = first + timedelta(minutes=rng.choice([0, 1, 30, 90, 180]))
        price = market.option_price
        assert price is not None
        for _ in range(rng.randrange(0, 4)):  # the walk goes on from the first band's state
            price = max(Decimal("0.05"), price * Decimal(rng.choice(("0.9", "1.05", "1.1", "0.97", "0.8", "1.25"))))
            market = replace(market, option_price=price.quantize(Decimal("0.01")))
            _, state = policy.evaluate(pos, state, market, now, settings)
        band = price_band(pos, state, market, now, settings, hint)
        if band is None:
            continue
        hinted += 1
        current = float(market.option_price)
        kept += band.lo == hint.lo and band.hi == hint.hi
        moved += (0 < hint.lo < current and band.lo != hint.lo) or (current < hint.hi and band.hi != hint.hi)
        checked += _quiet_inside(band, pos, state, market, now, settings, vix)
    assert hinted > 20 and kept > 5 and moved > 5 and checked > 300


def test_a_band_ends_before_the_close_out_and_outside_regular_hours() -> None:
    settings = load_settings("0dte")
    session = calendar.session_for(DAY)
    entered = datetime.combine(DAY, time(10, 0), tzinfo=EXCHANGE_TZ)
    pos = position("0dte", Decimal("2.00"), entered, DAY)
    market = MarketSnapshot(option_price=Decimal("2.00"), session=session, vix=Decimal(18))
    state = policy.new_state(pos, settings)
    band = price_band(pos, state, market, entered, settings)
    assert band is not None and band.until < datetime.combine(DAY, time(15, 45), tzinfo=EXCHANGE_TZ)
    assert band.lo >= float(state.stop_price) and band.hi <= 2.0 * 1.2
    assert not band.holds(2.0, band.until, 18.0) and not band.holds(2.0, entered, 30.0)
    late = datetime.combine(DAY, time(17, 0), tzinfo=EXCHANGE_TZ)
    assert price_band(pos, state, market, late, settings) is None


@pytest.mark.parametrize("profile", ["0dte", "7dte"])
def test_a_position_without_a_premium_stays_quiet_inside_its_idle_band(profile: str) -> None:
    """Seeded: whenever an idle band (no premium: a 0dte option bid at 0) holds, the exact policy on a snapshot
    without a premium acts on nothing and leaves the state as it was; at and after its end it no longer holds."""
    settings = load_settings(profile)
    rng = random.Random(23)
    session = calendar.session_for(DAY)
    checked = bands = outside = 0
    for _ in range(80):
        entry = Decimal(rng.randrange(50, 900)) / 100
        entered = datetime.combine(DAY, time(9, 45), tzinfo=EXCHANGE_TZ)
        expiry = DAY if profile == "0dte" or rng.random() < 0.5 else DAY + timedelta(days=4)  # 7dte: its last day too
        pos = position(profile, entry, entered, expiry)
        now = entered + timedelta(minutes=rng.randrange(1, 390))
        vix = Decimal(rng.choice([12, 18, 30]))
        market = MarketSnapshot(option_price=entry, session=session, underlying_price=Decimal(600), vix=vix)
        state, market = walked(pos, settings, market, entered, now, rng, ("0.9", "1.05", "1.1", "0.97", "1.3"))
        mark = market.option_price
        bare = replace(market, option_price=None)
        band = idle_band(pos, state, bare, now, settings, mark)
        if band is None:
            continue
        bands += 1
        assert band.until > now
        assert not band.holds(float(mark), now, float(vix), mark)  # a premium is evaluated exactly
        # later moments, up to well past the band's end (the close-out, the close, the expiry-day close)
        for _ in range(40):
            span = (band.until - now).total_seconds() + 2 if rng.random() < 0.6 else 8 * 3600
            later = now + timedelta(seconds=rng.uniform(0, span))
            v = Decimal(rng.choice([11, 12, 15, 18, 25, 30, 40]))
            if not band.holds(NO_PRICE, later, float(v), mark):
                outside += later >= band.until
                continue
            assert later < band.until
            actions, after = policy.evaluate(pos, state, replace(bare, vix=v), later, settings)
            assert actions == () and after == state, (later, band, state)
            checked += 1
    assert bands > 20 and checked > 300 and outside > 100


def test_an_idle_band_ends_before_the_close_out_and_needs_no_premium() -> None:
    settings = load_settings("0dte")
    session = calendar.session_for(DAY)
    entered = datetime.combine(DAY, time(15, 10), tzinfo=EXCHANGE_TZ)  # after the last time-compression step
    pos = position("0dte", Decimal("2.00"), entered, DAY)
    market = MarketSnapshot(option_price=None, session=session, vix=Decimal(18))
    state = policy.new_state(pos, settings)
    band = idle_band(pos, state, market, entered, settings, Decimal("2.00"))
    assert band is not None and band.until < datetime.combine(DAY, time(15, 45), tzinfo=EXCHANGE_TZ)
    closeout = band.until + timedelta(milliseconds=1)
    actions, _ = policy.evaluate(pos, state, market, closeout, settings)
    assert [a.rule for a in actions] == ["closeout"]  # the moment it ends, the close-out acts
    assert band.holds(NO_PRICE, band.until - timedelta(seconds=1), 18.0, Decimal("2.00"))
    assert not band.holds(NO_PRICE, band.until - timedelta(seconds=1), 18.0, Decimal("1.00"))  # the mark moved
    assert not band.holds(0.5, entered, 18.0, Decimal("2.00"))
    with_price = replace(market, option_price=Decimal("2.00"))
    assert idle_band(pos, state, with_price, entered, settings, Decimal("2.00")) is None
    late = datetime.combine(DAY, time(16, 0), tzinfo=EXCHANGE_TZ)
    assert idle_band(pos, state, market, late, settings, Decimal("2.00")) is None
