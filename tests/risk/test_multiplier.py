from decimal import Decimal as D

import pytest

from risk.multiplier import (
    clamp, combine, confidence_tier, rescale, correlation_factor, exposure_factor, fundamental_score, fundamentals_multiplier,
    multiplier_caps, signal_factors, vix_factor, vix_regime_cap,
)
from risk.signal import Fundamentals
from tests.risk.builders import settings, signal

M0 = settings("0dte").multiplier
M7 = settings("7dte").multiplier


@pytest.mark.parametrize("confidence, tier", [
    ("0", "1.0"), ("0.6", "1.0"), ("0.65", "1.0"), ("0.6999", "1.0"), ("0.7", "1.25"), ("0.7999", "1.25"),
    ("0.8", "1.5"), ("0.8999", "1.5"), ("0.9", "2.0"), ("1", "2.0"),
])
def test_confidence_tier_boundaries(confidence, tier):
    assert confidence_tier(D(confidence), M0) == D(tier)


@pytest.mark.parametrize("vix, factor", [
    ("9", "1.1"), ("11.99", "1.1"), ("12", "1"), ("15", "1"), ("20", "1"), ("20.01", "0.9"), ("25", "0.9"),
    ("25.01", "0.7"), ("30", "0.7"), ("30.01", "0.5"), ("80", "0.5"),
])
def test_vix_factor_boundaries(vix, factor):
    assert vix_factor(D(vix), M0) == D(factor)


@pytest.mark.parametrize("vix, cap", [
    ("14.99", "2.0"), ("15", "1.5"), ("20", "1.5"), ("25", "1.5"), ("25.01", "1.0"), ("30", "1.0"), ("45", "1.0"),
])
def test_vix_regime_cap_boundaries(vix, cap):
    assert vix_regime_cap(D(vix), M0) == D(cap)


def test_7dte_has_no_vix_factor_or_regime():
    assert vix_regime_cap(D(40), M7) is None
    factors, _ = signal_factors(signal("7dte", confidence=0.9), D(40), None, settings("7dte"))
    assert "vix" not in factors


@pytest.mark.parametrize("rho, factor", [
    (None, "1"), ("0", "1.2"), ("0.29", "1.2"), ("0.3", "1"), ("0.6", "1"), ("0.61", "0.75"), ("0.8", "0.75"),
    ("0.81", "0.5"), ("1", "0.5"),
])
def test_correlation_factor_bands(rho, factor):
    assert correlation_factor(None if rho is None else D(rho), M0) == D(factor)


def test_exposure_factor_0dte_only():
    sizing = settings("0dte").sizing
    assert exposure_factor(D(36000), D(60000), sizing) == D(1)  # exactly 60 %
    assert exposure_factor(D("36000.01"), D(60000), sizing) == D("0.8")
    assert exposure_factor(D(10 ** 6), D(100000), settings("7dte").sizing) is None


F = settings("7dte").multiplier.fundamentals


@pytest.mark.parametrize("fundamentals, score", [
    (Fundamentals(), "0.5"),
    (Fundamentals(earnings_surprise_pct=D(11)), "0.7"),
    (Fundamentals(earnings_surprise_pct=D(10)), "0.6"),  # > 10 only
    (Fundamentals(earnings_surprise_pct=D(6)), "0.6"),
    (Fundamentals(earnings_surprise_pct=D(5)), "0.5"),
    (Fundamentals(earnings_surprise_pct=D(-6)), "0.4"),
    (Fundamentals(earnings_surprise_pct=D(-10)), "0.4"),
    (Fundamentals(earnings_surprise_pct=D(-11)), "0.3"),
    (Fundamentals(analyst_buy_pct=D(71), analyst_sell_pct=D(60)), "0.6"),  # buy wins, sell not looked at
    (Fundamentals(analyst_buy_pct=D(70), analyst_sell_pct=D(51)), "0.4"),
    (Fundamentals(analyst_sell_pct=D(50)), "0.5"),
    (Fundamentals(pe_ratio=D(20), sector_pe=D(30)), "0.6"),  # 20 < 21
    (Fundamentals(pe_ratio=D(21), sector_pe=D(30)), "0.5"),
    (Fundamentals(pe_ratio=D(46), sector_pe=D(30)), "0.4"),  # 46 > 45
    (Fundamentals(pe_ratio=D(-5), sector_pe=D(30)), "0.5"),  # no earnings: not cheap
    (Fundamentals(pe_ratio=D(20)), "0.5"),  # no sector P/E: no valuation term
    (Fundamentals(D(20), D(90), None, D(10), D(30)), "0.9"),
    (Fundamentals(D(-20), D(0), D(80), D(100), D(30)), "0.1"),
])
def test_fundamental_score(fundamentals, score):
    assert fundamental_score(fundamentals, F) == D(score)


def test_fundamental_score_is_clamped():
    rich = F.model_copy(update={"base_score": D("0.9")})
    assert fundamental_score(Fundamentals(D(20), D(90), None, D(10), D(30)), rich) == D(1)
    poor = F.model_copy(update={"base_score": D("0.1")})
    assert fundamental_score(Fundamentals(D(-20), D(0), D(80), D(100), D(30)), poor) == D(0)


@pytest.mark.parametrize("score, confidence, multiplier", [
    ("0.5", "0.7", "1.85"), ("0.5", "0.9", "1.95"), ("1", "1", "2.25"), ("0", "0.65", "1.575"),
])
def test_fundamentals_formula(score, confidence, multiplier):
    assert fundamentals_multiplier(D(score), D(confidence)) == D(multiplier)


def test_fundamentals_replace_the_tier_when_enabled():
    sig = signal("7dte", confidence=0.9, earnings_surprise_pct=12)
    factors, notes = signal_factors(sig, None, None, settings("7dte"))
    assert factors == {"fundamentals": D("2.05"), "correlation": D(1)}  # score 0.7: 1 + (1.2 + 0.9) / 2
    assert notes["fundamental_score"] == "0.7"
    factors0, _ = signal_factors(signal("0dte", confidence=0.9, earnings_surprise_pct=12), D(18), None,
                                 settings("0dte"))
    assert factors0["confidence"] == D(2) and "fundamentals" not in factors0  # disabled for 0dte


def caps_for(profile="0dte", vix=None, vix_open=None, breaker=0, **fields):
    sig = signal(profile, confidence=0.9, **fields)
    return multiplier_caps(sig, vix, vix_open, breaker, settings(profile).multiplier)


def test_strategy_caps():
    assert caps_for(vix=D(14), strategy="neutral")["strategy"] == D("1.25")
    assert caps_for(vix=D(14), strategy="volatility")["strategy"] == D("2.0")  # the VIX regime cap
    assert caps_for(vix=D(20), strategy="volatility")["strategy"] == D("1.5")
    assert caps_for(vix=D(14), strategy="directional")["strategy"] == D("2.0")
    assert "strategy" not in caps_for("7dte", strategy="volatility")  # no VIX regime in 7dte


@pytest.mark.parametrize("underlying, cap", [("AAPL", "2.0"), ("MSFT", "2.0"), ("NVDA", "2.0"), ("GOOGL", "1.5"),
                                             ("AMZN", "1.5"), ("TSLA", "1.0"), ("META", "1.0")])
def test_liquidity_caps(underlying, cap):
    assert caps_for("7dte", underlying=underlying)["liquidity"] == D(cap)


def test_breaker_cap_from_level_one():
    assert "breaker" not in caps_for(vix=D(14), breaker=0)
    assert caps_for(vix=D(14), breaker=1)["breaker"] == D(1)
    assert caps_for("7dte", breaker=3)["breaker"] == D(1)


def test_vix_spike_cap_when_up_more_than_20_pct_from_open():
    assert "vix_spike" not in caps_for(vix=D(18), vix_open=D(15))  # exactly +20 %
    assert caps_for(vix=D("18.01"), vix_open=D(15))["vix_spike"] == D(1)
    assert "vix_spike" not in caps_for(vix=D(18))  # no open given


def test_combine_clamps_and_names_the_binding_cap():
    caps = {"multiplier_cap": D(2), "vix_regime": D("1.5"), "strategy": D("1.5")}
    result = combine({"confidence": D(2), "vix": D("0.9")}, caps, D(1), {})
    assert (result.raw, result.final, result.cap, result.bound_by) == (D("1.8"), D("1.5"), D("1.5"), "vix_regime")
    low = combine({"confidence": D(1), "vix": D("0.5")}, caps, D(1), {})
    assert (low.raw, low.final, low.bound_by) == (D("0.5"), D(1), None)  # the floor is not a cap
    under = combine({"confidence": D(2)}, {"breaker": D("0.8")}, D(1), {})
    assert (under.final, under.bound_by) == (D("0.8"), "breaker")  # a cap below the floor wins


def test_clamp_keeps_the_first_of_equal_values_as_min_and_max_would() -> None:
    """Equal Decimals can differ in exponent (1.0 and 1.00), and the record shows the text: the
    product when it equals the floor, the first-added of equal caps."""
    kept = clamp(D("1.0"), {}, {"a": D("2.00"), "b": D("2.0")}, D("1.00"), {})
    assert str(kept.final) == "1.0" and kept.bound_by is None and str(kept.cap) == "2.00"
    capped = clamp(D("3"), {}, {"a": D("2.00"), "b": D("2.0")}, D("1"), {})
    assert (capped.bound_by, str(capped.final)) == ("a", "2.00")
    assert str(clamp(D("2.0"), {}, {"a": D("2.00")}, D("1"), {}).final) == "2.0", "the product when it equals the cap"
    with pytest.raises(ValueError):
        clamp(D(1), {}, {}, D(1), {})


@pytest.mark.parametrize("raw, factor", [("1.8", "0.5"), ("1.8", "1"), ("0.9", "0.5"), ("2.5", "1"), ("1.0", "2.0"),
                                         ("2.000", "1.00"), ("1.6", "1.25")])
def test_rescale_answers_what_clamp_answers_for_the_scaled_product(raw: str, factor: str) -> None:
    """The 0dte exposure factor: the tentative result times the factor, as a fresh clamp of that product
    with the same caps would give it (the same least cap, the first of equal ones, the floor's text)."""
    caps = {"multiplier_cap": D("2.00"), "vix_regime": D("2.0"), "breaker": D("2.000")}
    factors = {"confidence": D(raw)}
    tentative = clamp(D(raw), factors, caps, D("1.00"), {})
    more = {**factors, "exposure": D(factor)}
    got, want = rescale(tentative, D(factor), more, {}), clamp(D(raw) * D(factor), more, caps, D("1.00"), {})
    for field in ("raw", "final", "cap", "bound_by", "floor", "cap_name"):
        assert str(getattr(got, field)) == str(getattr(want, field)), field
