import json
from dataclasses import replace
from datetime import datetime
from decimal import Decimal as D

import pytest

from risk.request import OpenPositionView
from risk.sizing import evaluate
from tests.risk.builders import request, settings, settings_with, signal, with_signal

S0, S7 = settings("0dte"), settings("7dte")


def pos(underlying, contracts, price):
    return OpenPositionView(underlying, contracts, D(price))


@pytest.mark.parametrize("change, reason", [
    ({"price": D("NaN")}, "invalid_price"),
    ({"price": D("sNaN")}, "invalid_price"),
    ({"price": float("nan")}, "invalid_price"),
    ({"price": float("inf")}, "invalid_price"),
    ({"price": D(0)}, "invalid_price"),
    ({"price": D(-3)}, "invalid_price"),
    ({"price": "3.00"}, "invalid_price"),
    ({"price": None}, "invalid_price"),
    ({"price": True}, "invalid_price"),
    ({"capital_base": D(0)}, "invalid_capital_base"),
    ({"capital_base": D("Infinity")}, "invalid_capital_base"),
    ({"vix": D(-1)}, "invalid_vix"),
    ({"vix": float("nan")}, "invalid_vix"),
    ({"vix_session_open": D(0)}, "invalid_vix"),
    ({"open_positions": ({"underlying": "SPY", "contracts": 0, "price": 1},)}, "invalid_open_position"),
    ({"open_positions": ({"underlying": "SPY", "contracts": 2, "price": -1},)}, "invalid_open_position"),
    ({"open_positions": ({"underlying": "SPY", "contracts": 2.5, "price": 1},)}, "invalid_open_position"),
    ({"open_positions": "SPY"}, "invalid_open_position"),
    ({"correlations": {"SPY": {"QQQ": 1.5}}}, "invalid_correlation"),
    ({"correlations": {"SPY": {"QQQ": float("nan")}}}, "invalid_correlation"),
    ({"correlations": {"SPY": 0.5}}, "invalid_correlation"),
    ({"buying_power": D("NaN")}, "invalid_buying_power"),
    ({"breaker_level": 5}, "invalid_breaker_level"),
    ({"breaker_level": -1}, "invalid_breaker_level"),
    ({"trading_state": "ACTIVE?"}, "invalid_trading_state"),
    ({"quote_age_s": D(-1)}, "invalid_quote_age"),
    ({"option_delta": D("Infinity")}, "invalid_greeks"),
    ({"now": datetime(2024, 3, 5, 10, 30)}, "invalid_created_at"),
    ({"now": "10:30"}, "invalid_created_at"),
    ({"signal": {"id": "raw-dict"}}, "invalid_signal"),
])
def test_bad_numbers_are_refused_never_raised(change, reason):
    d = evaluate(replace(request(), **change), S0)
    assert (d.accepted, d.reason, d.contracts) == (False, reason, 0)
    assert d.checks[0].name == "inputs" and d.checks[0].status == "fail"
    json.dumps(d.to_record())


@pytest.mark.parametrize("change, reason", [
    ({"confidence": D("1.5")}, "invalid_confidence"),
    ({"confidence": D("NaN")}, "invalid_confidence"),
    ({"ttl_s": D(0)}, "invalid_ttl"),
    ({"profile": "7dte"}, "wrong_profile"),
    ({"underlying": "AAPL"}, "unknown_underlying"),
    ({"action": "scale_in", "position_id": "p1"}, "invalid_action"),
])
def test_a_hand_built_signal_is_checked_too(change, reason):
    assert evaluate(with_signal(request(), **change), S0).reason == reason


def test_refused_decisions_still_carry_the_sizer_answer():
    d = evaluate(request(confidence=0.6, vix=D(20)), S0)
    assert (d.accepted, d.reason, d.contracts, d.notional) == (False, "confidence_below_threshold", 40, D(12000))


def test_exposure_factor_judged_on_the_tentative_size():
    book = (pos("QQQ", 40, "5.00"),)  # 20,000 open
    corr = {"SPY": {"QQQ": D("0.5")}}
    d = evaluate(request(confidence=0.9, vix=D(14), open_positions=book, correlations=corr), S0)
    # tentative 2.0 → 80 contracts = 24,000; 44,000 after > 36,000 → × 0.8 → 1.6 → 64 contracts
    assert d.factors == {"confidence": D(2), "vix": D(1), "correlation": D(1), "exposure": D("0.8")}
    assert (d.multiplier, d.contracts, d.notional) == (D("1.6"), 64, D(19200))
    edge = evaluate(request(confidence=0.9, vix=D(14), open_positions=(pos("QQQ", 40, "3.00"),),
                            correlations=corr), S0)
    assert edge.factors["exposure"] == D(1)  # 12,000 + 24,000 = 36,000: exactly 60 %


@pytest.mark.parametrize("rho, factor, contracts", [("0.9", "0.5", 40), ("0.7", "0.75", 45), ("0.5", "1", 60),
                                                    ("0.2", "1.2", 60)])
def test_correlation_factor_through_evaluate(rho, factor, contracts):
    d = evaluate(request(confidence=0.8, vix=D(18), open_positions=(pos("QQQ", 1, "1"),),
                         correlations={"QQQ": {"SPY": D(rho)}}), S0)
    assert d.factors["correlation"] == D(factor)
    assert d.contracts == contracts  # 1.5 × factor, floored at 1.0, capped at the regime's 1.5


def test_7dte_with_fundamentals():
    sig = signal("7dte", confidence=0.7, earnings_surprise_pct=12, analyst_buy_pct=80)
    d = evaluate(request("7dte", price=D(10), sig=sig), S7)
    assert d.factors["fundamentals"] == D("2.0")  # score 0.8: 1 + (1.3 + 0.7) / 2
    assert d.contracts == 66
    tsla = evaluate(request("7dte", price=D(10), sig=signal("7dte", confidence=0.9, underlying="TSLA")), S7)
    assert (tsla.multiplier, tsla.contracts) == (D(1), 33)  # TSLA's liquidity cap 1.0
    assert tsla.caps[0].name == "liquidity" and tsla.caps[0].kind == "multiplier"


@pytest.mark.parametrize("rho, regime, reason, contracts", [
    ("0.5", "none", None, 66),
    ("0.7", "moderate", None, 45),  # 75,000 - 30,000 open
    ("0.85", "high", "below_minimum_bet", 20),  # 50,000 - 30,000 < 33,000
])
def test_7dte_total_exposure_is_correlation_aware(rho, regime, reason, contracts):
    book = (pos("AMZN", 30, "10"),)  # another sector than AAPL's, so only the correlation caps bind
    d = evaluate(request("7dte", price=D(10), confidence=0.9, open_positions=book,
                         correlations={"AAPL": {"AMZN": D(rho)}}), S7)
    assert d.notes["correlation_regime"] == regime
    assert (d.reason, d.contracts) == (reason, contracts)


def test_per_underlying_allocation_counts_what_is_open():
    d = evaluate(request("7dte", price=D(10), confidence=0.7, open_positions=(pos("AAPL", 40, "10"),)), S7)
    assert d.reason == "below_minimum_bet"  # 66,000 - 40,000 = 26,000 left < 33,000
    # and a second AAPL position makes the book perfectly correlated: 50 % of equity - 40,000 = 10,000
    assert [(c.name, c.contracts_after) for c in d.caps] == [("per_underlying", 26), ("total_exposure", 10)]


def test_per_underlying_allocation_configured_lower():
    low = settings_with("7dte", **{"sizing.per_underlying_alloc_pct": D("0.5")})
    d = evaluate(request("7dte", price=D(10), confidence=0.9), low)
    assert (d.accepted, d.contracts, d.notional) == (True, 50, D(50000))
    assert [(c.name, c.limit, c.contracts_before, c.contracts_after) for c in d.caps] == [
        ("per_underlying", D(50000), 66, 50)]


def test_breaker_level_one_sizes_at_the_minimum_only():
    d = evaluate(request(confidence=0.9, vix=D(14), breaker_level=1), S0)
    assert (d.accepted, d.multiplier, d.contracts, d.multiplier_caps["breaker"]) == (True, D(1), 40, D(1))
    assert d.caps[0].name == "breaker"


def test_vix_spike_caps_the_multiplier():
    d = evaluate(request(confidence=0.9, vix=D(14), vix_session_open=D(11)), S0)
    assert (d.multiplier, d.contracts) == (D(1), 40)  # 14 > 11 × 1.2


def test_buying_power_is_the_last_cap():
    d = evaluate(request(confidence=0.9, vix=D(14), buying_power=D(15000)), S0)
    assert (d.contracts, d.notional) == (50, D(15000))
    assert d.caps[-1].name == "buying_power"


def test_record_is_json_safe_with_decimals_as_strings():
    d = evaluate(request(confidence=0.9, vix=D(20)), S0)
    record = json.loads(json.dumps(d.to_record()))
    assert record["notional"] == "18000.00" and record["multiplier"] == "1.5" and record["contracts"] == 60
    assert record["caps"] == [{"name": "vix_regime", "kind": "multiplier", "limit": "1.5",
                               "contracts_before": 80, "contracts_after": 60}]
    numbers = json.loads(json.dumps(d.to_record(numbers=True)))
    assert numbers["notional"] == 18000 and numbers["multiplier"] == 1.5 and numbers["min_bet"] == 12000
    assert {c["name"] for c in record["checks"]} >= {"halted", "greeks_limit"}


def test_the_breakdown_cannot_be_edited():
    d = evaluate(request(), S0)
    with pytest.raises(TypeError):
        d.factors["confidence"] = D(9)  # type: ignore[index]
