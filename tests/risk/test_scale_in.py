from decimal import Decimal as D

import pytest

from risk.events import EventView, MarketEvent
from risk.request import OpenPositionView
from risk.scale_in import ScaleInRequest, evaluate_scale_in
from tests.risk.builders import NOW, request, settings, settings_with, signal


def add_0dte(position=OpenPositionView("SPY", 40, D("3.00")), mark=D("3.30"), profile_settings=None, **fields):
    sig = signal("0dte", confidence=0.7, action="scale_in", position_id="pos-1")
    req = request("0dte", price=D("3.00"), sig=sig, open_positions=(position,), **fields)
    return evaluate_scale_in(ScaleInRequest(req, position, mark), profile_settings or settings("0dte"))


def add_7dte(position=OpenPositionView("AAPL", 40, D("10")), sessions=0, underlying="AAPL", **fields):
    sig = signal("7dte", confidence=0.7, action="scale_in", position_id="pos-9", underlying=underlying)
    req = request("7dte", price=D("10"), sig=sig, open_positions=(position,), **fields)
    return evaluate_scale_in(ScaleInRequest(req, position, None, sessions), settings("7dte"))


def test_0dte_adds_half_the_minimum_bet_while_in_profit():
    d = add_0dte()
    assert (d.accepted, d.action, d.contracts, d.notional) == (True, "scale_in", 20, D(6000))


@pytest.mark.parametrize("mark", [D("3.00"), D("2.50"), None])
def test_0dte_refuses_unless_in_profit(mark):
    assert add_0dte(mark=mark).reason == "scale_in_not_in_profit"


def test_0dte_never_past_the_max_bet():
    near = add_0dte(position=OpenPositionView("SPY", 70, D("3.00")))  # 21,000 of a 24,000 max
    assert (near.accepted, near.contracts) == (True, 10)
    assert [(c.name, c.contracts_before, c.contracts_after) for c in near.caps] == [("max_bet", 20, 10)]
    at_max = add_0dte(position=OpenPositionView("SPY", 80, D("3.00")))
    assert (at_max.accepted, at_max.reason, at_max.contracts) == (False, "scale_in_too_small", 0)


@pytest.mark.parametrize("level", [1, 2, 3, 4])
def test_never_while_the_breaker_is_at_level_one_or_above(level):
    d = add_0dte(breaker_level=level)
    assert not d.accepted
    assert next(c for c in d.checks if c.name == "scale_in_breaker").status == "fail"


def test_disabled_by_config():
    off = settings_with("0dte", **{"scale_in.enabled": False})
    assert add_0dte(profile_settings=off).reason == "scale_in_disabled"


@pytest.mark.parametrize("sessions, accepted", [(0, True), (1, True), (2, False)])
def test_7dte_adds_a_quarter_on_entry_day_or_the_next(sessions, accepted):
    d = add_7dte(sessions=sessions)
    assert d.accepted is accepted
    if accepted:
        assert (d.contracts, d.notional) == (10, D(10000))
    else:
        assert d.reason == "scale_in_window_closed"


def test_7dte_needs_no_profit_but_keeps_the_max_bet():
    d = add_7dte(position=OpenPositionView("AAPL", 60, D("10")))
    assert (d.accepted, d.contracts) == (True, 6)  # 15 allowed, 66,000 - 60,000 leaves 6
    assert next(c for c in d.checks if c.name == "scale_in_not_in_profit").status == "skip"


def test_position_must_match_the_signal():
    assert add_7dte(underlying="MSFT").reason == "scale_in_position_mismatch"


def test_bad_inputs_are_refused():
    sig = signal("7dte", confidence=0.7, action="scale_in", position_id="p")
    pos = OpenPositionView("AAPL", 4, D(10))
    req = request("7dte", price=D(10), sig=sig, open_positions=(pos,))
    assert evaluate_scale_in(ScaleInRequest(req, pos, None, -1), settings("7dte")).reason == "invalid_value"
    bad_mark = evaluate_scale_in(ScaleInRequest(req, pos, D("NaN"), 0), settings("7dte"))
    assert bad_mark.reason == "invalid_price"
    opening = request("7dte", price=D(10), open_positions=(pos,))
    assert evaluate_scale_in(ScaleInRequest(opening, pos), settings("7dte")).reason == "invalid_action"


def test_gate_basics_apply_to_scale_ins():
    assert add_0dte(duplicate=True).reason == "duplicate_signal"
    assert add_0dte(quote_age_s=D(30)).reason == "stale_market_data"
    assert add_0dte(vix=D(31)).reason == "vix_above_threshold"


def test_no_scale_in_inside_a_release_s_blackout_window():
    cpi = EventView(macro=(MarketEvent("cpi", NOW.date(), NOW),))
    d = add_0dte(events=cpi)
    assert (d.accepted, d.reason) == (False, "event_blackout")
    assert add_0dte(events=EventView()).accepted


def test_a_7dte_scale_in_keeps_within_its_sector_cap():
    # AAPL 40 x 10.00 = 40,000 and MSFT 35,000 in one sector: 80,000 - 75,000 leaves 5 contracts of the 10 allowed
    book = (OpenPositionView("AAPL", 40, D("10")), OpenPositionView("MSFT", 35, D("10")))
    sig = signal("7dte", confidence=0.7, action="scale_in", position_id="pos-9")
    req = request("7dte", price=D("10"), sig=sig, open_positions=book)
    d = evaluate_scale_in(ScaleInRequest(req, book[0], None, 0), settings("7dte"))
    assert d.accepted and d.contracts == 5 and [c.name for c in d.caps] == ["sector"]
