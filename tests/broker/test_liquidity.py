from datetime import timedelta

import pytest

from broker import liquidity
from broker.liquidity import check_quote
from tests.broker.helpers import T0, quote, settings

CFG0 = settings("0dte").liquidity
CFG7 = settings("7dte").liquidity


def check(q, cfg=CFG0, now=T0):
    return check_quote(q, cfg, now)


def test_spread_exactly_ten_percent_of_mid_passes_and_a_cent_more_fails():
    assert check(quote("X", "1.90", "2.10")).ok  # mid 2.00, spread 0.20 = 10 %
    verdict = check(quote("X", "1.90", "2.11"))
    assert (verdict.ok, verdict.reason) == (False, liquidity.SPREAD_TOO_WIDE)


def test_small_mid_allows_five_cents():
    assert check(quote("X", "0.20", "0.25")).ok  # mid 0.225 < 0.50: 0.05 allowed though 22 % of mid
    assert check(quote("X", "0.20", "0.26")).reason == liquidity.SPREAD_TOO_WIDE
    # at mid 0.50 the small-mid rule no longer applies: 10 % = 0.05 still passes, 0.06 does not
    assert check(quote("X", "0.475", "0.525")).ok
    assert check(quote("X", "0.47", "0.53")).reason == liquidity.SPREAD_TOO_WIDE


def test_open_interest_boundary_per_profile():
    assert check(quote("X", "1.00", "1.05", oi=500)).ok
    assert check(quote("X", "1.00", "1.05", oi=499)).reason == liquidity.OPEN_INTEREST
    assert check(quote("X", "1.00", "1.05", oi=200), CFG7).ok
    assert check(quote("X", "1.00", "1.05", oi=199), CFG7).reason == liquidity.OPEN_INTEREST
    assert check(quote("X", "1.00", "1.05", oi=None)).ok  # not reported: not checked


def test_quote_age_ten_seconds_passes_a_millisecond_more_fails():
    q = quote("X", "1.00", "1.05")
    assert check(q, now=T0 + timedelta(seconds=10)).ok
    assert check(q, now=T0 + timedelta(seconds=10, milliseconds=1)).reason == liquidity.QUOTE_STALE


@pytest.mark.parametrize("bid, ask, reason", [
    (None, "1.00", liquidity.NO_BID),
    ("0", "0.05", liquidity.NO_BID),
    ("1.00", None, liquidity.NO_ASK),
    ("1.00", "1.00", liquidity.CROSSED),
    ("1.05", "1.00", liquidity.CROSSED),
])
def test_one_sided_or_crossed_quotes_fail(bid, ask, reason):
    assert check(quote("X", bid, ask)).reason == reason


def test_missing_and_unusable_quotes_fail_with_their_codes():
    assert check(None).reason == liquidity.NO_QUOTE
    assert check(quote("X", "1.00", "1.05", usable=False)).reason == liquidity.QUOTE_UNUSABLE


def test_verdict_unpacks_as_ok_reason_pair():
    ok, reason = check(quote("X", "1.00", "1.50"))
    assert ok is False and reason == liquidity.SPREAD_TOO_WIDE
    assert "spread 0.50" in check(quote("X", "1.00", "1.50")).detail
