"""SPEC §2.1: the checks that need no option quote decide first (risk.sizing.screen), in SPEC order."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest

from risk.breakers import TradingState
from risk.gate import pre_quote_checks
from risk.request import OpenPositionView, normalize_request
from risk.sizing import evaluate, screen
from tests.risk.builders import NOW, request, settings, signal

S0 = settings("0dte")


def no_quote(**fields):  # type: ignore[no-untyped-def]
    """A request as the engine builds it before any contract is chosen: no price, no quote."""
    return request(price=D(0), quote_age_s=None, liquidity_ok=None, **fields)


def test_order_is_specs() -> None:
    names = [c.name for c in pre_quote_checks(normalize_request(no_quote(), S0, priced=False), S0)]
    assert names == ["duplicate_signal", "signal_expired", "halted", "underlying_blocked", "store_unavailable",
                     "confidence_below_threshold", "vix_above_threshold", "max_positions", "max_positions_per_symbol",
                     "event_blackout", "closeout_window"]


def test_a_clean_signal_passes_the_screen_without_a_price() -> None:
    assert screen(no_quote(confidence=0.9), S0) is None


@pytest.mark.parametrize("fields, reason", [
    ({"confidence": 0.5}, "confidence_below_threshold"),
    ({"confidence": 0.5, "underlying_blocked": True}, "underlying_blocked"),
    ({"confidence": 0.5, "underlying_blocked": True, "trading_state": TradingState.HALTED}, "halted"),
    ({"confidence": 0.5, "trading_state": TradingState.RECONCILING}, "halted"),
    ({"confidence": 0.9, "vix": D(31)}, "vix_above_threshold"),
    ({"confidence": 0.9, "open_positions": tuple(OpenPositionView(s, 1, D(1)) for s in ("SPY", "QQQ", "IWM", "QQQ",
                                                                                        "IWM"))},
     "max_positions"),
    ({"confidence": 0.9, "open_positions": (OpenPositionView("SPY", 1, D(1)), OpenPositionView("SPY", 1, D(1)))},
     "max_positions_per_symbol"),
])
def test_first_failure_without_any_quote(fields, reason) -> None:  # type: ignore[no-untyped-def]
    decision = screen(no_quote(**fields), S0)
    assert decision is not None and not decision.accepted and decision.reason == reason
    assert decision.notes["stage"] == "pre_quote"


def test_expired_and_duplicate_come_before_halted() -> None:
    old = signal(created_at=(NOW - timedelta(minutes=5)).isoformat(), confidence=0.5)
    decision = screen(no_quote(sig=old, trading_state=TradingState.HALTED), S0)
    assert decision is not None and decision.reason == "signal_expired"
    decision = screen(no_quote(sig=old, trading_state=TradingState.HALTED, duplicate=True), S0)
    assert decision is not None and decision.reason == "duplicate_signal"


def test_bad_market_data_sits_between_stale_and_liquidity() -> None:
    bad = evaluate(request(confidence=0.9, market_data_problem="SPY: crossed (bid 2 > ask 1)", liquidity_ok=False), S0)
    assert bad.reason == "bad_market_data" and "crossed" in bad.message
    stale = evaluate(request(confidence=0.9, market_data_problem="x", quote_age_s=D(30)), S0)
    assert stale.reason == "stale_market_data"
    assert evaluate(request(confidence=0.9, option_delta=D("0.5"), portfolio_delta=D(0), option_gamma=D("0.05"),
                            portfolio_gamma=D(0)), S0).accepted


def test_a_scale_in_is_not_held_to_the_position_counts() -> None:
    full = tuple(OpenPositionView(s, 1, D(1)) for s in ("SPY", "QQQ", "IWM", "QQQ", "IWM"))
    add = signal(action="scale_in", position_id="7", confidence=0.9)
    assert screen(no_quote(sig=add, open_positions=full), S0, new_position=False) is None
    low = signal(action="scale_in", position_id="7", confidence=0.5)
    refused = screen(no_quote(sig=low, open_positions=full), S0, new_position=False)
    assert refused is not None and refused.reason == "confidence_below_threshold"
