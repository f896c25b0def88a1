from dataclasses import replace
from datetime import timedelta
from decimal import Decimal as D

import pytest

from risk.breakers import TradingState
from risk.request import OpenPositionView
from risk.sizing import evaluate
from tests.risk.builders import request, settings, with_signal

# SPEC §2.1's order.
SPEC_ORDER = ["duplicate_signal", "signal_expired", "halted", "underlying_blocked", "store_unavailable",
              "confidence_below_threshold",
              "vix_above_threshold", "max_positions", "max_positions_per_symbol", "event_blackout",
              "closeout_window", "stale_market_data", "bad_market_data", "liquidity", "below_minimum_bet", "contract_too_expensive",
              "greeks_limit", "sector_limit"]
S0 = settings("0dte")


def decide(req, profile="0dte"):
    return evaluate(req, settings(profile))


def check(decision, name):
    return next(c for c in decision.checks if c.name == name)


def test_a_clean_live_request_passes_every_check_in_spec_order():
    req = request(option_delta=D("0.5"), portfolio_delta=D(0), option_gamma=D("0.05"), portfolio_gamma=D(0))
    d = decide(replace(req, closeout_at=req.now + timedelta(hours=1)))  # a 0dte entry before its close-out
    assert d.accepted and d.reason is None
    assert [c.name for c in d.checks] == SPEC_ORDER
    assert all(c.status == "pass" for c in d.checks)


SPY = OpenPositionView("SPY", 1, D("0.10"))
QQQ = OpenPositionView("QQQ", 1, D("0.10"))


@pytest.mark.parametrize("change, reason", [
    ({"trading_state": TradingState.HALTED}, "halted"),
    ({"trading_state": TradingState.REDUCING}, "halted"),
    ({"trading_state": TradingState.RECONCILING}, "halted"),
    ({"breaker_level": 2}, "halted"),
    ({"vix": D("30.01")}, "vix_above_threshold"),
    ({"open_positions": (QQQ,) * 5}, "max_positions"),
    ({"open_positions": (SPY, SPY)}, "max_positions_per_symbol"),
    ({"quote_age_s": D("10.01")}, "stale_market_data"),
    ({"quote_age_s": None}, "stale_market_data"),
    ({"vix": None}, "stale_market_data"),  # 0dte needs VIX
    ({"liquidity_ok": False}, "liquidity"),
    ({"liquidity_ok": None}, "liquidity"),
    ({"duplicate": True}, "duplicate_signal"),
    ({"price": D("240.01")}, "contract_too_expensive"),
    ({"buying_power": D(11999)}, "below_minimum_bet"),
    ({"option_delta": D("0.8"), "portfolio_delta": D(2001)}, "greeks_limit"),  # 2001 + 0.8 × 100 × 50 > 6000
    ({"option_gamma": D("0.3"), "portfolio_gamma": D(1501)}, "greeks_limit"),  # 1501 + 0.3 × 100 × 50 > 3000
])
def test_each_check_refuses_alone(change, reason):
    d = decide(request(**change))
    assert (d.accepted, d.reason) == (False, reason)
    assert check(d, reason).status == "fail" and check(d, reason).detail
    assert [c.name for c in d.checks if c.status == "fail"] == [reason]


def test_confidence_below_threshold():
    d = decide(request(confidence=0.6499))
    assert d.reason == "confidence_below_threshold"
    assert decide(request(confidence=0.65)).accepted


def test_vix_exactly_30_still_enters():
    assert decide(request(vix=D(30))).accepted


def test_quote_exactly_10_s_old_is_fresh():
    assert decide(request(quote_age_s=D(10))).accepted


def test_signal_expiry_boundary():
    req = request()
    ttl = req.signal.ttl_s
    assert decide(replace(req, now=req.now + timedelta(seconds=float(ttl)))).accepted
    late = decide(replace(req, now=req.now + timedelta(seconds=float(ttl) + 0.001)))
    assert late.reason == "signal_expired"
    short = decide(replace(with_signal(req, ttl_s=D(5)), now=req.now + timedelta(seconds=6)))
    assert short.reason == "signal_expired"


def test_first_failure_in_spec_order_wins_and_all_are_recorded():
    d = decide(request(confidence=0.5, trading_state=TradingState.HALTED, duplicate=True, liquidity_ok=False))
    assert d.reason == "duplicate_signal"
    failed = [c.name for c in d.checks if c.status == "fail"]
    assert failed == ["duplicate_signal", "halted", "confidence_below_threshold", "liquidity"]


def test_what_if_skips_what_it_cannot_know():
    d = decide(request(quote_age_s=None, liquidity_ok=None, vix=None, what_if=True))
    assert d.accepted
    assert {c.name for c in d.checks if c.status == "skip"} == {
        "vix_above_threshold", "stale_market_data", "liquidity", "greeks_limit", "closeout_window"}


def test_what_if_still_refuses_a_stale_quote_it_was_given():
    assert decide(request(quote_age_s=D(11), what_if=True)).reason == "stale_market_data"


def test_greeks_use_share_equivalents_after_the_trade():
    # 0.7 at VIX 18: 50 contracts; delta 0.5 × 100 × 50 = 2,500 share-equivalents
    ok = decide(request(option_delta=D("0.5"), portfolio_delta=D(3500)))
    assert ok.accepted and "6000" in check(ok, "greeks_limit").detail
    over = decide(request(option_delta=D("0.5"), portfolio_delta=D("3500.01")))
    assert over.reason == "greeks_limit"
    short_puts = decide(request(option_delta=D("-0.5"), portfolio_delta=D(-3501)))
    assert short_puts.reason == "greeks_limit"  # |delta| counts both ways


def test_7dte_has_no_vix_or_delta_limits_only_vega_and_theta():
    d = decide(request("7dte", price=D(10), vix=D(45), option_delta=D(1), portfolio_delta=D(10 ** 6)), "7dte")
    assert d.accepted
    assert check(d, "vix_above_threshold").status == "skip"
    assert check(d, "greeks_limit").detail == "vega 0 within 5000; theta 0 within 10000"  # SPEC §10.4


@pytest.mark.parametrize("missing", ["option_delta", "option_gamma", "portfolio_delta", "portfolio_gamma"])
def test_a_live_entry_without_its_greeks_is_refused_greeks_unavailable(missing):
    d = decide(request(**{missing: None}))
    assert (d.accepted, d.reason) == (False, "greeks_limit")
    assert check(d, "greeks_limit").detail.startswith("greeks unavailable")


def test_what_if_without_greeks_still_skips_the_limit():
    d = decide(request(option_delta=None, option_gamma=None, portfolio_delta=None, portfolio_gamma=None,
                       what_if=True))
    assert d.accepted and check(d, "greeks_limit").status == "skip"


def test_7dte_without_vega_is_refused_greeks_unavailable():
    d = decide(request("7dte", price=D(10), option_vega=None), "7dte")
    assert (d.accepted, d.reason) == (False, "greeks_limit")
    assert check(d, "greeks_limit").detail == "greeks unavailable: no option vega"


def test_a_stale_vix_is_stale_market_data_for_0dte():
    assert decide(request(vix_quote_age_s=D(10))).accepted
    stale = decide(request(vix_quote_age_s=D("10.01")))
    assert stale.reason == "stale_market_data" and "VIX" in check(stale, "stale_market_data").detail


def test_7dte_does_not_need_a_fresh_vix():
    assert decide(request("7dte", price=D(10), vix_quote_age_s=D(3600)), "7dte").accepted


def test_store_unavailable_comes_after_underlying_blocked_and_before_confidence():
    blocked = decide(request(store_unavailable="disk full", underlying_blocked=True, option_delta=D("0.5"),
                             portfolio_delta=D(0), option_gamma=D("0.05"), portfolio_gamma=D(0)))
    assert blocked.reason == "underlying_blocked"
    low = with_signal(request(store_unavailable="disk full"), confidence=D("0.5"))
    d = decide(low)
    assert d.reason == "store_unavailable" and "disk full" in check(d, "store_unavailable").detail


# ------------------------------------------------------------------ room expiry: closeout_window

def test_a_same_day_expiry_is_refused_once_its_closeout_has_started():
    base = request(option_delta=D("0.5"), portfolio_delta=D(0), option_gamma=D("0.05"), portfolio_gamma=D(0))
    before = decide(replace(base, closeout_at=base.now + timedelta(seconds=1)))
    assert before.accepted and next(c for c in before.checks if c.name == "closeout_window").status == "pass"
    at_start = decide(replace(base, closeout_at=base.now))
    assert not at_start.accepted and at_start.reason == "closeout_window"
    later = decide(replace(base, closeout_at=base.now - timedelta(minutes=30)))
    assert later.reason == "closeout_window" and "nothing could close it" in later.message


def test_closeout_window_comes_after_the_spec_checks_it_does_not_hide_them():
    base = request(option_delta=D("0.5"), portfolio_delta=D(0), option_gamma=D("0.05"), portfolio_gamma=D(0))
    halted = decide(replace(base, closeout_at=base.now - timedelta(minutes=1), trading_state=TradingState.HALTED))
    assert halted.reason == "halted"
