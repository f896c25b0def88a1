"""SPEC §10 worked checks in the sizer: event calendar, volatility regime, sectors, vega/theta."""

from datetime import date, datetime, timedelta
from decimal import Decimal as D

import pytest

from risk.events import EventView, MarketEvent, blackout, spans_earnings
from risk.regime import VolatilityView, classify, percentile_rank
from risk.request import OpenPositionView
from risk.sizing import evaluate
from tests.risk.builders import NOW, NY, request, settings, settings_with, signal

S0, S7 = settings("0dte"), settings("7dte")


def check(decision, name):
    return next(c for c in decision.checks if c.name == name)


def fomc(at: datetime) -> MarketEvent:
    return MarketEvent("fomc", at.date(), at)


FOMC_TODAY = EventView(macro=(fomc(datetime.combine(NOW.date(), datetime.min.time(), NY).replace(hour=14)),))


# ------------------------------------------------------------------ macro day (0dte)


def test_an_fomc_day_caps_a_0_9_confidence_0dte_signal_at_the_minimum_bet():
    ordinary = evaluate(request(confidence=0.9, vix=D(14)), S0)
    assert (ordinary.contracts, ordinary.notional) == (80, D("24000.00"))  # SPEC §2.2: 0.9 with VIX 14
    fomc_day = evaluate(request(confidence=0.9, vix=D(14), events=FOMC_TODAY), S0)
    assert fomc_day.accepted
    assert (fomc_day.multiplier, fomc_day.contracts, fomc_day.notional) == (D("1.0"), 40, D("12000.00"))
    assert fomc_day.multiplier_caps["macro_day"] == D("1.0")
    assert fomc_day.caps[0].name == "macro_day" and fomc_day.caps[0].contracts_after == 40
    assert fomc_day.notes["macro_day"] == "fomc 2024-03-05 14:00 ET"


def test_a_macro_event_on_another_day_changes_nothing():
    tomorrow = EventView(macro=(fomc(datetime(2024, 3, 6, 14, 0, tzinfo=NY)),))
    d = evaluate(request(confidence=0.9, vix=D(14), events=tomorrow), S0)
    assert d.contracts == 80 and "macro_day" not in d.multiplier_caps


def test_7dte_has_no_macro_day_cap():
    d = evaluate(request("7dte", price=D(10), confidence=0.9, events=FOMC_TODAY), S7)
    assert d.contracts == 66 and "macro_day" not in d.multiplier_caps


# ------------------------------------------------------------------ blackout window


@pytest.mark.parametrize("release, refused", [
    (NOW + timedelta(minutes=8), True),  # 10 minutes before the release: inside
    (NOW + timedelta(minutes=10), True),  # the edge is inside
    (NOW - timedelta(minutes=10), True),
    (NOW + timedelta(minutes=10, seconds=1), False),
    (NOW - timedelta(minutes=10, seconds=1), False),
])
def test_a_signal_inside_the_blackout_window_is_refused_event_blackout(release, refused):
    view = EventView(macro=(MarketEvent("cpi", release.date(), release),))
    d = evaluate(request(events=view), S0)
    if refused:
        assert (d.accepted, d.reason) == (False, "event_blackout")
        assert d.message.startswith("cpi 2024-03-05 ")
    else:
        assert d.accepted and check(d, "event_blackout").status == "pass"


def test_blackout_comes_after_max_positions_per_symbol_and_before_stale_market_data():
    view = EventView(macro=(MarketEvent("nfp", NOW.date(), NOW),))
    held = (OpenPositionView("SPY", 1, D(1)), OpenPositionView("SPY", 1, D(1)))
    assert evaluate(request(events=view, open_positions=held), S0).reason == "max_positions_per_symbol"
    assert evaluate(request(events=view, quote_age_s=D(60)), S0).reason == "event_blackout"


def test_blackout_ignores_kinds_that_are_not_macro_and_events_without_a_time():
    cfg = S0.regime.events
    view = EventView(macro=(MarketEvent("earnings", NOW.date(), NOW, symbol="AAPL"),
                            MarketEvent("fomc", NOW.date(), None)))
    assert blackout(NOW, view, cfg) is None


# ------------------------------------------------------------------ earnings (7dte)


def test_a_7dte_expiry_spanning_earnings_is_capped_at_the_minimum_bet():
    plain = evaluate(request("7dte", price=D(10), confidence=0.9), S7)
    assert plain.contracts == 66
    view = EventView(earnings=date(2024, 3, 7), expiry=date(2024, 3, 8))
    d = evaluate(request("7dte", price=D(10), confidence=0.9, events=view), S7)
    assert d.accepted and (d.contracts, d.notional) == (33, D(33000))
    assert d.multiplier_caps["earnings_span"] == D("1.0")
    assert d.notes["earnings_before_expiry"] == "earnings 2024-03-07 <= expiry 2024-03-08"


def test_earnings_after_expiry_does_not_cap():
    view = EventView(earnings=date(2024, 3, 11), expiry=date(2024, 3, 8))
    assert evaluate(request("7dte", price=D(10), confidence=0.9, events=view), S7).contracts == 66
    assert not spans_earnings(NOW, view)


def test_strong_fundamentals_lift_the_earnings_cap():
    view = EventView(earnings=date(2024, 3, 7), expiry=date(2024, 3, 8))
    strong = signal("7dte", confidence=0.9, earnings_surprise_pct=12, analyst_buy_pct=80)  # score 0.8
    d = evaluate(request("7dte", price=D(10), sig=strong, events=view), S7)
    assert "earnings_span" not in d.multiplier_caps
    assert d.notes["earnings_cap"] == "lifted: fundamental score 0.8 >= 0.8"
    weak = signal("7dte", confidence=0.9, earnings_surprise_pct=12)  # score 0.7
    assert evaluate(request("7dte", price=D(10), sig=weak, events=view), S7).multiplier_caps["earnings_span"] == 1


# ------------------------------------------------------------------ volatility regime


@pytest.mark.parametrize("vix, view, name", [
    (D(35), None, "stressed"),  # VIX level
    (D(20), VolatilityView(vix_percentile=D("0.95")), "stressed"),  # VIX percentile
    (D(20), VolatilityView(term_slope=D("-0.02")), "stressed"),  # front IV above next: inverted
    (D(20), VolatilityView(skew_percentile=D("0.97")), "stressed"),
    (D(20), VolatilityView(term_slope=D("0.01"), vix_percentile=D("0.5")), "normal"),
])
def test_a_stressed_regime_caps_the_multiplier_at_its_table_value(vix, view, name):
    d = evaluate(request("7dte", price=D(10), confidence=0.9, vix=vix, volatility=view), S7)
    assert d.notes["volatility_regime"].startswith(name)
    if name == "stressed":  # table: stressed 1.0 -> the minimum bet, 33 contracts instead of 66
        assert d.multiplier_caps["volatility_regime"] == D("1.0")
        assert (d.multiplier, d.contracts) == (D("1.0"), 33)
        assert any(c.name == "volatility_regime" for c in d.caps)
    else:
        assert d.contracts == 66


def test_the_regime_cap_is_the_configured_table_value():
    s = settings_with("7dte", **{"regime.volatility.caps": {"calm": "2", "normal": "2", "stressed": "1.5"}})
    d = evaluate(request("7dte", price=D(10), confidence=0.9, vix=D(40)), s)
    assert (d.multiplier, d.contracts) == (D("1.5"), 49)  # floor(33 x 1.5)


def test_calm_needs_a_low_vix_and_a_low_percentile_when_known():
    cfg = S0.regime.volatility
    assert classify(D(12), VolatilityView(), cfg).name == "calm"
    assert classify(D(12), VolatilityView(vix_percentile=D("0.1")), cfg).name == "calm"
    assert classify(D(12), VolatilityView(vix_percentile=D("0.5")), cfg).name == "normal"
    assert classify(None, VolatilityView(), cfg).name == "normal"


def test_percentile_rank_needs_enough_history():
    history = [D(v) for v in range(1, 21)]
    assert percentile_rank(D(15), history, 20) == D("0.75")
    assert percentile_rank(D(15), history[:19], 20) is None


def test_a_bad_percentile_or_events_value_is_refused_as_input():
    d = evaluate(request(volatility=VolatilityView(vix_percentile=D("1.5"))), S0)
    assert (d.accepted, d.reason) == (False, "invalid_volatility")
    assert evaluate(request(events={"macro": []}), S0).reason == "invalid_events"


# ------------------------------------------------------------------ sectors


def test_a_third_mag7_position_in_the_same_sector_past_the_cap_is_refused_sector_limit():
    # AAPL and MSFT (information technology) hold 66,000; the sector cap is 80 % of 100,000.
    book = (OpenPositionView("AAPL", 33, D(10)), OpenPositionView("MSFT", 33, D(10)))
    nvda = signal("7dte", underlying="NVDA", confidence=0.7)
    d = evaluate(request("7dte", price=D(10), sig=nvda, open_positions=book), S7)
    assert (d.accepted, d.reason) == (False, "sector_limit")
    assert d.cap_limits["sector"] == D("14000.00")
    assert [(c.name, c.contracts_after) for c in d.caps] == [("sector", 14)]
    assert check(d, "below_minimum_bet").status == "pass"
    # the same third position in another sector (AMZN, consumer discretionary) is taken
    amzn = signal("7dte", underlying="AMZN", confidence=0.7)
    assert evaluate(request("7dte", price=D(10), sig=amzn, open_positions=book), S7).accepted


def test_a_sector_cap_with_room_above_the_minimum_bet_floors_the_size():
    book = (OpenPositionView("AAPL", 33, D(10)),)  # 33,000 held: 47,000 left in the sector
    msft = signal("7dte", underlying="MSFT", confidence=0.9)
    d = evaluate(request("7dte", price=D(10), sig=msft, open_positions=book), S7)
    assert d.accepted and d.contracts == 47
    assert [c.name for c in d.caps] == ["sector"]


def test_0dte_has_no_sector_cap():
    book = (OpenPositionView("QQQ", 1, D(1)),)
    assert "sector" not in evaluate(request(open_positions=book), S0).cap_limits


# ------------------------------------------------------------------ vega and theta


def test_a_vega_breach_is_refused_greeks_limit():
    # 0.7 confidence at 10.00: 41 contracts; vega 0.30 per share -> 0.30 x 100 x 41 = 1,230 $/vol point
    fits = evaluate(request("7dte", price=D(10), option_vega=D("0.30"), portfolio_vega=D(3700)), S7)
    assert fits.accepted and "vega 4930.00 within 5000" in check(fits, "greeks_limit").detail
    d = evaluate(request("7dte", price=D(10), option_vega=D("0.30"), portfolio_vega=D(4000)), S7)
    assert (d.accepted, d.reason) == (False, "greeks_limit")
    assert d.message == "portfolio vega after the trade |5230.00| > 5000"


def test_a_theta_breach_is_refused_greeks_limit():
    # 41 contracts x 100 x -0.50 = -2,050 $/day on top of -8,000
    d = evaluate(request("7dte", price=D(10), option_theta=D("-0.50"), portfolio_theta=D(-8000)), S7)
    assert (d.reason, d.message) == ("greeks_limit", "portfolio theta after the trade |-10050.00| > 10000")


def test_0dte_vega_joins_delta_and_gamma():
    d = evaluate(request(option_vega=D("0.5"), portfolio_vega=D(600)), S0)  # 50 contracts: +2,500
    assert (d.reason, d.message) == ("greeks_limit", "portfolio vega after the trade |3100.0| > 3000")
