"""Room expiry (SPEC §6.3): what an expired position settles at, and when it has expired."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal as D

from exits.settlement import combo_value, is_expired, settle
from market import calendar
from market.combo import Combo, ComboLeg
from market.intrinsic import intrinsic
from market.session import EXCHANGE_TZ
from market.types import OptionContract

DAY = date(2026, 11, 30)
CALL = OptionContract("SPX", DAY, D("6000"), "C", 100)
PUT = OptionContract("SPX", DAY, D("6000"), "P", 100)


def at(hour: int, minute: int, day: date = DAY) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=EXCHANGE_TZ)


def test_intrinsic_value_of_calls_and_puts() -> None:
    assert intrinsic(CALL, D("6012.5")) == D("12.5") and intrinsic(CALL, D("5990")) == 0
    assert intrinsic(PUT, D("5990")) == D("10") and intrinsic(PUT, D("6012.5")) == 0


def test_otm_settles_worthless_itm_at_intrinsic_with_the_price_in_its_reason() -> None:
    otm = settle(CALL, None, D("5990"), D("0.05"))
    assert otm.price == 0 and otm.worthless and "worthless" in otm.reason and "5990" in otm.reason
    itm = settle(CALL, None, D("6003.40"), D("3.00"))
    assert itm.price == D("3.40") and not itm.worthless and "intrinsic" in itm.reason


def test_without_an_underlying_price_it_settles_at_its_last_mark_and_says_so() -> None:
    s = settle(CALL, None, None, D("0.10"))
    assert s.price == D("0.10") and s.underlying_price is None and "last mark" in s.reason
    assert settle(CALL, None, None, None).price == 0


def test_a_combo_settles_leg_by_leg_in_its_value_space() -> None:
    legs = (ComboLeg(OptionContract("SPX", DAY, D("5950"), "P", 100), "BUY", 1),
            ComboLeg(OptionContract("SPX", DAY, D("5975"), "P", 100), "SELL", 1),
            ComboLeg(OptionContract("SPX", DAY, D("6025"), "C", 100), "SELL", 1),
            ComboLeg(OptionContract("SPX", DAY, D("6050"), "C", 100), "BUY", 1))
    condor = Combo("neutral", "iron_condor", legs, D("25"))  # credit: value = width − cost to close
    assert combo_value(condor, D("6000")) == D("25")  # inside the wings: the whole credit kept
    assert combo_value(condor, D("6035")) == D("15")  # the short call 10 in the money
    assert combo_value(condor, D("6100")) == 0  # through the long wing: the maximum loss
    straddle = Combo("volatility", "straddle", (ComboLeg(CALL, "BUY", 1), ComboLeg(PUT, "BUY", 1)))
    assert combo_value(straddle, D("5980")) == D("20")
    assert settle(CALL, straddle, D("6007"), None).price == D("7")


def test_expired_after_the_expiry_sessions_close_or_any_later_day() -> None:
    session = calendar.session_for(DAY)
    assert not is_expired(DAY, at(15, 59), session)
    assert is_expired(DAY, at(16, 0), session)
    assert is_expired(DAY, at(9, 0, date(2026, 12, 1)), calendar.session_for(DAY))
    assert not is_expired(date(2026, 12, 1), at(16, 30), calendar.session_for(date(2026, 12, 1)))
    half = calendar.session_for(date(2026, 11, 27))  # the day after Thanksgiving closes at 13:00
    assert is_expired(date(2026, 11, 27), at(13, 0, date(2026, 11, 27)), half)
