"""SPEC §1 and §2 rules that had no test of their own, each through `risk.sizing.evaluate`.

Every docstring quotes the SPEC line it checks. The worked checks of §2.2 are in
`test_sizing_spec_checks.py`; the unit tests under `tests/risk/` cover the rest.
"""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from risk.capital import capital_base
from risk.request import OpenPositionView
from risk.sizing import evaluate
from tests.risk.builders import request, settings, signal

S7 = settings("7dte")


def size_7dte(underlying: str = "AAPL", confidence: float = 0.9, price: str = "10", **fields):
    sig = signal("7dte", underlying=underlying, confidence=confidence, **fields.pop("signal_fields", {}))
    return evaluate(request("7dte", price=D(price), sig=sig, **fields), S7)


def small(underlying: str) -> OpenPositionView:
    return OpenPositionView(underlying, 1, D(1))  # 100 of premium: no exposure cap comes near


@pytest.mark.parametrize("book, reason", [
    (("AAPL", "MSFT", "NVDA"), "max_positions"),
    (("AAPL", "MSFT"), None),
    (("GOOGL", "GOOGL"), "max_positions_per_symbol"),
])
def test_7dte_position_counts(book, reason):
    """§1: "max open positions | 5 total, 2 per underlying | 3 total, 2 per underlying" (the 7dte column)."""
    d = size_7dte("GOOGL" if reason == "max_positions_per_symbol" else "AMZN",
                  open_positions=tuple(small(u) for u in book))
    assert d.reason == reason


@pytest.mark.parametrize("realized, min_bet, max_bet, contracts", [
    ("50000", "49500", "99000", 62),   # equity 150,000: 33 % wins; ceil(49.5) = 50 minimum × 1.25 = 62
    ("-20000", "33000", "52800", 41),  # equity 80,000: the 33,000 floor wins; 33 × 1.25 = 41
])
def test_7dte_bets_follow_equity_with_realized_pnl(realized, min_bet, max_bet, contracts):
    """§1: "capital base | … | equity: starting capital 100,000 + realized P&L"; "minimum bet | … |
    max(33,000, 33% of equity)"; "maximum bet | … | 66% of equity"."""
    base = capital_base(S7.capital, realized_pnl=D(realized))
    d = size_7dte(confidence=0.7, capital_base=base)
    assert (d.capital_base, d.min_bet, d.max_bet) == (D(100000) + D(realized), D(min_bet), D(max_bet))
    assert (d.accepted, d.contracts) == (True, contracts)


def test_7dte_max_bet_binds_with_a_smaller_equity():
    """§2.4: "maximum bet · per-underlying allocation …" — at equity 80,000 the 2.0 multiplier asks for
    66 contracts; the 52,800 maximum bet floors it to 52 (per-underlying 66 % allows the same)."""
    d = size_7dte(capital_base=capital_base(S7.capital, realized_pnl=D(-20000)))
    assert (d.accepted, d.contracts, d.notional) == (True, 52, D(52000))
    assert d.caps[0].name == "max_bet"


@pytest.mark.parametrize("underlying, contracts, bound_by", [
    ("AAPL", 66, "multiplier_cap"),  # 2.05 capped at 2.0
    ("GOOGL", 49, "liquidity"),      # 1.5
    ("TSLA", 33, "liquidity"),       # 1.0
])
def test_fundamentals_multiplier_is_clamped_and_capped(underlying, contracts, bound_by):
    """§2.2: "multiplier = 1 + ((0.5 + score) + confidence) / 2" then "Product of the factors, then
    clamped to [1.0, cap], where cap is the least of: 2.0 · … · the liquidity cap of the underlying".
    Score 0.7 (surprise 12 % > 10 %) and confidence 0.9 give 2.05."""
    d = size_7dte(underlying, signal_fields={"earnings_surprise_pct": 12})
    assert d.factors["fundamentals"] == D("2.05")
    assert (d.accepted, d.contracts) == (True, contracts)
    assert d.caps[0].name == bound_by and d.caps[0].kind == "multiplier"


def test_fundamentals_lowest_score():
    """§2.2: "surprise … < −10% −0.2 …; buy > 70% +0.1 else sell > 50% −0.1; … PE > 1.5 × sector −0.1;
    clamp score to [0, 1]" — 0.5 − 0.2 − 0.1 − 0.1 = 0.1; confidence 0.65: 1 + (0.6 + 0.65) / 2 = 1.625."""
    d = size_7dte(confidence=0.65, signal_fields={"earnings_surprise_pct": -20, "analyst_buy_pct": 10,
                                                  "analyst_sell_pct": 60, "pe_ratio": 60, "sector_pe": 30})
    assert d.notes["fundamental_score"] == "0.1"
    assert (d.factors["fundamentals"], d.contracts) == (D("1.625"), 53)  # floor(33 × 1.625) = 53


def test_product_below_one_is_clamped_up_to_the_minimum():
    """§2.2: "Product of the factors, then clamped to [1.0, cap]" — fundamentals 1.575 × correlation
    0.5 (average |ρ| 0.9 > 0.8) = 0.7875, clamped to 1.0: the minimum bet, never less."""
    d = size_7dte(confidence=0.65, signal_fields={"earnings_surprise_pct": -20, "analyst_sell_pct": 60},
                  open_positions=(small("MSFT"),), correlations={"AAPL": {"MSFT": D("0.9")}})
    assert d.notes["fundamental_score"] == "0.2"
    assert d.factors == {"fundamentals": D("1.675"), "correlation": D("0.5")}
    assert (d.raw_multiplier, d.multiplier, d.contracts, d.notional) == (D("0.8375"), D(1), 33, D(33000))


@pytest.mark.parametrize("vix, contracts", [("22.8", 66), ("22.81", 33)])
def test_7dte_vix_spike_caps_at_one(vix, contracts):
    """§3: "VIX up > 20% from its session open caps multipliers at 1.0" (both profiles; open 19:
    22.8 is exactly +20 %, not more)."""
    d = size_7dte(vix=D(vix), vix_session_open=D(19))
    assert (d.accepted, d.contracts) == (True, contracts)
    assert ("vix_spike" in d.multiplier_caps) is (contracts == 33)


@pytest.mark.parametrize("price, reason, contracts", [("660", None, 1), ("660.01", "contract_too_expensive", 0)])
def test_7dte_one_contract_above_the_max_bet(price, reason, contracts):
    """§2.3: "if one contract alone exceeds the maximum bet, rejected `contract_too_expensive`" (66,000
    at equity 100,000; one contract of exactly 66,000 is within [min bet, max bet])."""
    d = size_7dte(price=price)
    assert (d.reason, d.contracts) == (reason, contracts)


def test_7dte_breaker_level_one_is_minimum_bet_only():
    """§3: "1 caution | −7% | −7% | new entries at the minimum bet only" and §2.2 "1.0 while the
    account circuit breaker is at level 1 or above"."""
    d = size_7dte(breaker_level=1)
    assert (d.accepted, d.contracts, d.notional) == (True, 33, D(33000))
    assert [c.name for c in d.caps] == ["breaker"]


def test_correlation_factor_looks_at_the_new_underlying_against_open_positions_only():
    """§2.2: "Correlation factor: average |ρ| between the new underlying and the underlyings of open
    positions … < 0.3 → 1.2" — SPY against QQQ and IWM averages 0.2 (the QQQ–IWM pair's 0.9 is not
    part of it): 1.25 × 1.2 = 1.5, so 60 contracts rather than 50."""
    book = (OpenPositionView("QQQ", 1, D(1)), OpenPositionView("IWM", 1, D(1)))
    rho = {"SPY": {"QQQ": D("0.2"), "IWM": D("0.2")}, "QQQ": {"IWM": D("0.9")}}
    d = evaluate(request("0dte", confidence=0.7, vix=D(18), open_positions=book, correlations=rho), settings("0dte"))
    assert d.factors["correlation"] == D("1.2")
    assert (d.accepted, d.contracts) == (True, 60)


def test_7dte_book_regime_averages_every_pair_including_the_new_one():
    """§2.5: "The 7dte book is "highly correlated" when the average pairwise |ρ| of open positions plus
    the new one is > 0.8" and §1 "max total exposure | … | 99% of equity; 75% if the book is moderately
    correlated, 50% if highly" — MSFT–NVDA 0.99 and AAPL to each 0.75 average 0.83: high, so 50,000 less
    the 20,000 open leaves 30 contracts, below the 33,000 minimum (AAPL's own average, 0.75, is only
    moderate: it sets the correlation factor 0.75, not the book's regime)."""
    book = (OpenPositionView("MSFT", 10, D(10)), OpenPositionView("NVDA", 10, D(10)))
    rho = {"AAPL": {"MSFT": D("0.75"), "NVDA": D("0.75")}, "MSFT": {"NVDA": D("0.99")}}
    d = size_7dte(open_positions=book, correlations=rho)
    assert d.notes["correlation_regime"] == "high" and d.factors["correlation"] == D("0.75")
    assert d.cap_limits["total_exposure"] == D(30000)
    assert (d.reason, d.contracts) == ("below_minimum_bet", 30)
