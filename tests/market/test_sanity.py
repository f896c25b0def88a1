"""SPEC §4.4: the market-data sanity checker, reason by reason."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal as D

import pytest

from config.loader import load_settings
from market.clock import EXCHANGE_TZ
from market.sanity import (CROSSED, FUTURE_STAMP, INVALID_PRICE, TICK_JUMP, TOO_OLD, QuoteSanity, SanityLimits)
from market.types import Quote

T0 = datetime(2019, 2, 11, 10, 0, tzinfo=EXCHANGE_TZ)
LIMITS = SanityLimits.from_config(load_settings("0dte", env={}).market_data)
OPTION = "SPY 20190211 C 270"


def q(key: str, bid: str | None, ask: str | None, at: datetime = T0, last: str | None = None,
      modelled: bool = False) -> Quote:
    return Quote(key, None if bid is None else D(bid), None if ask is None else D(ask),
                 None if last is None else D(last), at, 10, 10, modelled=modelled)


def sec(n: float) -> timedelta:
    return timedelta(seconds=n)


def test_defaults_are_specs() -> None:
    assert (LIMITS.max_tick_jump_underlying, LIMITS.max_tick_jump_option, LIMITS.jump_window_s) == (
        D("0.20"), D("0.60"), D(5))


@pytest.mark.parametrize("bid, ask, last", [("NaN", "1.00", None), ("1.00", "NaN", None), ("-1", "1.00", None),
                                            ("1.00", "-1", None), ("Infinity", "1.00", None), (None, None, "-1"),
                                            (None, None, "NaN"), ("-0.01", "0.05", None)])
def test_nan_negative_and_ibs_minus_one_are_invalid(bid: str | None, ask: str | None, last: str | None) -> None:
    verdict = QuoteSanity(LIMITS).check(q("SPY", bid, ask, last=last), T0)
    assert not verdict.usable and verdict.reason == INVALID_PRICE


def test_crossed_is_unusable_locked_is_not() -> None:
    sanity = QuoteSanity(LIMITS)
    assert sanity.check(q("SPY", "270.02", "270.01"), T0).reason == CROSSED
    assert sanity.check(q("SPY", "270.01", "270.01"), T0).usable


def test_no_bid_is_not_bad_data() -> None:  # an option nobody bids for is illiquid, not corrupt
    assert QuoteSanity(LIMITS).check(q(OPTION, None, "0.05"), T0).usable
    assert QuoteSanity(LIMITS).check(q(OPTION, "0", "0.05"), T0).usable


def test_future_and_old_stamps() -> None:
    sanity = QuoteSanity(LIMITS)
    assert sanity.check(q("SPY", "270", "270.01", at=T0 + sec(3)), T0).reason == FUTURE_STAMP
    assert sanity.check(q("SPY", "270", "270.01", at=T0 + sec(1)), T0).usable  # within the skew allowed
    assert sanity.check(q("SPY", "270", "270.01", at=T0 - sec(31)), T0).reason == TOO_OLD


def test_underlying_jump_is_held_until_a_second_quote_confirms_it() -> None:
    sanity = QuoteSanity(LIMITS)
    assert sanity.check(q("SPY", "270.00", "270.02"), T0).usable
    spike = sanity.check(q("SPY", "2700.00", "2700.20", at=T0 + sec(1)), T0 + sec(1))
    assert not spike.usable and spike.reason == TICK_JUMP and "270.01" in spike.detail
    assert sanity.last_usable_mid("SPY") == D("270.01")
    # back to normal: usable, the spike forgotten
    assert sanity.check(q("SPY", "270.02", "270.04", at=T0 + sec(2)), T0 + sec(2)).usable
    # a real move: two agreeing quotes within the window
    assert not sanity.check(q("SPY", "330", "330.02", at=T0 + sec(3)), T0 + sec(3)).usable
    assert sanity.check(q("SPY", "330.5", "330.52", at=T0 + sec(4)), T0 + sec(4)).usable
    assert sanity.last_usable_mid("SPY") == D("330.51")


def test_a_second_quote_outside_the_window_does_not_confirm() -> None:
    sanity = QuoteSanity(LIMITS)
    sanity.check(q("SPY", "100", "100"), T0)
    assert not sanity.check(q("SPY", "1000", "1000", at=T0 + sec(8)), T0 + sec(8)).usable
    assert not sanity.check(q("SPY", "1000", "1000", at=T0 + sec(16)), T0 + sec(16)).usable  # 8 s apart > 5 s


def test_the_jump_limit_is_per_kind() -> None:
    sanity = QuoteSanity(LIMITS)
    sanity.check(q(OPTION, "1.00", "1.00"), T0)
    assert sanity.check(q(OPTION, "1.50", "1.50", at=T0 + sec(1)), T0 + sec(1)).usable  # 50 % < 60 %
    assert not sanity.check(q(OPTION, "2.50", "2.50", at=T0 + sec(2)), T0 + sec(2)).usable  # 67 % > 60 %
    sanity.check(q("SPY", "100", "100"), T0)
    assert not sanity.check(q("SPY", "125", "125", at=T0 + sec(1)), T0 + sec(1)).usable  # 25 % > 20 %


def test_an_old_reference_is_no_reference() -> None:
    sanity = QuoteSanity(LIMITS)
    sanity.check(q("SPY", "100", "100"), T0)
    later = T0 + sec(float(LIMITS.jump_reference_max_age_s) + 1)
    assert sanity.check(q("SPY", "150", "150", at=later), later).usable


def test_modelled_quotes_are_not_jump_checked() -> None:
    sanity = QuoteSanity(LIMITS)
    sanity.check(q(OPTION, "0.10", "0.12", modelled=True), T0)
    assert sanity.check(q(OPTION, "0.50", "0.52", at=T0 + sec(1), modelled=True), T0 + sec(1)).usable


def test_logged_once_per_key_and_reason_per_interval() -> None:
    sanity = QuoteSanity(LIMITS)
    first = sanity.check(q("SPY", "2", "1"), T0)
    assert first.log
    assert not sanity.check(q("SPY", "2", "1", at=T0 + sec(30)), T0 + sec(30)).log
    assert sanity.check(q("QQQ", "2", "1", at=T0 + sec(30)), T0 + sec(30)).log  # another key
    assert sanity.check(q("SPY", "-1", "1", at=T0 + sec(30)), T0 + sec(30)).log  # another reason
    assert sanity.check(q("SPY", "2", "1", at=T0 + sec(61)), T0 + sec(61)).log
