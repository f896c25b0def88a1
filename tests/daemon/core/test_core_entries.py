"""The core's entry path with fakes: signal -> pending on quotes -> decision -> durable entry order,
and the wiring the old engine could break silently (VIX session open, correlations, scale-in)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from daemon.core.effects import PlaceOrder, Subscribe, Unsubscribe
from daemon.core.events import FillEvent, QuoteEvent, SignalEvent, StoreStatusEvent
from risk.correlation import correlation_matrix
from tests.daemon.core.fakes import DAY, at, fill_of, make_core, option, orders, persists, signal, underlying, vix


def opened_core(vix_open: str = "15", vix_now: str = "15"):  # type: ignore[no-untyped-def]
    core, execution = make_core()
    core.advance(at(9, 30))
    core.handle(QuoteEvent(vix(vix_open, at(9, 30, 1))))
    core.handle(QuoteEvent(vix(vix_now, at(9, 31))))
    core.handle(QuoteEvent(underlying("SPY", "600.00", at(9, 31))))
    core.handle(QuoteEvent(underlying("QQQ", "500.00", at(9, 31))))
    core.take_effects()
    return core, execution


def decide(core, sid: str = "s1", symbol: str = "SPY", when=None, **extra):  # type: ignore[no-untyped-def]
    when = when or at(9, 31, 5)
    outcome = core.handle(SignalEvent(signal(sid, symbol, "bullish", when, **extra), "test", when))
    effects = core.take_effects()
    if outcome is not None:
        return outcome, effects
    keys = next(e.keys for e in effects if isinstance(e, Subscribe))
    for key in keys:
        core.handle(QuoteEvent(option(key, "2.00", when)))
    decided = core.take_effects()
    return core.answers[-1][1], effects + decided


def test_a_signal_waits_for_its_candidates_quotes_then_enters_durably() -> None:
    core, execution = opened_core()
    outcome = core.handle(SignalEvent(signal("s1", "SPY", "bullish", at(9, 31, 5)), "test", at(9, 31, 5)))
    assert outcome is None  # no option quotes yet: pending
    effects = core.take_effects()
    subscribe = [e for e in effects if isinstance(e, Subscribe)]
    assert subscribe and all(" " in k for k in subscribe[0].keys)
    assert [p.op for p in persists(effects)] == ["record_signal"]
    for key in subscribe[0].keys:
        core.handle(QuoteEvent(option(key, "2.00", at(9, 31, 6))))
    effects = core.take_effects()
    assert core.answers[-1][1].accepted, core.answers[-1][1].decision
    ops = [p.op for p in persists(effects)]
    assert ops[:3] == ["record_decision", "open_position", "write_intent"]
    place = [e for e in orders(effects) if isinstance(e, PlaceOrder)]
    assert len(place) == 1 and place[0].durable and place[0].request.side == "BUY"
    assert effects.index(persists(effects, "write_intent")[0]) < effects.index(place[0])  # intent first
    unused = [e for e in effects if isinstance(e, Unsubscribe)]
    assert unused and place[0].request.contract.key not in unused[0].keys
    assert execution.started[0].quantity == place[0].request.quantity


def test_a_pending_signal_is_decided_at_its_deadline_without_quotes() -> None:
    core, _ = opened_core()
    assert core.handle(SignalEvent(signal("s1", "SPY", "bullish", at(9, 31, 5)), "test", at(9, 31, 5))) is None
    core.take_effects()
    deadline = core.next_timer_at()
    assert deadline is not None and deadline <= at(9, 31, 17)
    core.advance(deadline)
    outcome = core.answers[-1][1]
    assert not outcome.accepted and outcome.reason == "stale_market_data"


def test_vix_session_open_is_the_first_print_after_the_open_and_feeds_sizing() -> None:
    core, _ = make_core()
    core.handle(QuoteEvent(vix("14", at(9, 0))))  # pre-market: not the session open
    core.advance(at(9, 30))
    core.handle(QuoteEvent(vix("20", at(9, 30, 2))))
    core.handle(QuoteEvent(vix("21", at(9, 31))))
    assert core.standing(at(9, 31)).vix_session_open == Decimal(20)
    core.handle(QuoteEvent(vix("25", at(9, 31, 1))))  # 25 % above the open: the spike cap applies
    core.handle(QuoteEvent(underlying("SPY", "600.00", at(9, 31, 1))))
    core.take_effects()
    outcome, _ = decide(core)
    assert "vix_spike" in outcome.decision["multiplier_caps"], outcome.decision
    # the next session forgets it
    nxt = DAY + timedelta(days=1)
    core.advance(at(9, 30, day=nxt))
    assert core.standing(at(9, 30, day=nxt)).vix_session_open is None


def test_no_vix_spike_cap_below_the_threshold() -> None:
    core, _ = opened_core(vix_open="20", vix_now="21")
    outcome, _ = decide(core)
    assert "vix_spike" not in outcome.decision["multiplier_caps"]


def test_the_correlation_refresh_timer_feeds_the_sizer() -> None:
    closes = {"SPY": [Decimal(100 + i) for i in range(30)], "QQQ": [Decimal(200 + 2 * i + (i % 3)) for i in range(30)]}
    asked = []

    def daily(day):  # type: ignore[no-untyped-def]
        asked.append(day)
        return closes

    core, _ = make_core(daily_closes=daily)
    assert core.standing(at(9, 0)).correlations == {}
    core.advance(at(9, 31))
    assert asked == [DAY]
    expected = correlation_matrix(closes, core.settings.correlation.lookback_sessions)
    assert expected and core.standing(at(9, 31)).correlations == expected
    core.handle(QuoteEvent(underlying("SPY", "600.00", at(9, 31))))
    core.handle(QuoteEvent(vix("15", at(9, 31))))
    outcome, _ = decide(core)
    assert outcome.decision["notes"]["correlation_regime"] is not None


def enter(core, execution, sid="s1"):  # type: ignore[no-untyped-def]
    outcome, effects = decide(core, sid)
    assert outcome.accepted, outcome.decision
    place = next(e for e in orders(effects) if isinstance(e, PlaceOrder))
    core.handle(FillEvent(fill_of(place.request, at(9, 31, 10))))
    return place, core.take_effects()


def test_a_scale_in_adds_to_the_open_position_through_the_same_execution() -> None:
    core, execution = opened_core()
    place, _ = enter(core, execution)
    position = next(iter(core.book))
    assert position.open_qty == place.request.quantity and position.entry_complete
    when = at(9, 40)
    core.handle(QuoteEvent(underlying("SPY", "600.50", when)))
    core.handle(QuoteEvent(option(position.key, "2.10", when)))
    core.handle(QuoteEvent(vix("15", when)))
    core.take_effects()
    outcome = core.handle(SignalEvent(signal("s2", "SPY", "bullish", when, action="scale_in",
                                             position_id=str(position.id)), "test", when))
    effects = core.take_effects()
    assert outcome is not None and outcome.accepted, outcome.decision
    scale = [e for e in orders(effects) if isinstance(e, PlaceOrder) and e.request.side == "BUY"]
    assert len(scale) == 1 and scale[0].request.contract.key == position.key
    assert execution.started[-1].source_id == "s2"
    assert core.orders.order_positions[scale[0].request.order_id] == position.id
    assert position.entry_pending == scale[0].request.quantity and not position.entry_complete
    assert persists(effects, "open_position") == []  # no new position
    core.handle(FillEvent(fill_of(scale[0].request, when)))
    assert position.open_qty == place.request.quantity + scale[0].request.quantity
    assert position.entry_complete


def test_a_scale_in_of_an_unknown_position_is_refused() -> None:
    core, _ = opened_core()
    when = at(9, 40)
    outcome = core.handle(SignalEvent(signal("s2", "SPY", "bullish", when, action="scale_in", position_id="99"),
                                      "test", when))
    assert outcome is not None and outcome.reason == "scale_in_position_mismatch"


def test_a_duplicate_signal_is_answered_with_its_first_decision() -> None:
    core, _ = opened_core()
    first, _ = decide(core)
    again = core.handle(SignalEvent(signal("s1", "SPY", "bullish", at(9, 31, 6)), "test", at(9, 31, 6)))
    assert again.reason == "duplicate_signal" and again.decision["first_decision"] == first.decision


def test_entries_are_refused_while_the_store_is_away() -> None:
    core, execution = opened_core()
    core.handle(StoreStatusEvent(False, "disk full", at(9, 31, 4)))
    outcome = core.handle(SignalEvent(signal("s1", "SPY", "bullish", at(9, 31, 5)), "test", at(9, 31, 5)))
    assert outcome.reason == "store_unavailable" and not outcome.accepted
    assert execution.started == [] and orders(core.take_effects()) == []
    core.handle(StoreStatusEvent(True, None, at(9, 31, 6)))
    outcome, _ = decide(core, "s2", when=at(9, 31, 7))
    assert outcome.accepted


def test_a_bad_signal_is_recorded_and_never_stops_the_core() -> None:
    core, _ = opened_core()
    outcome = core.handle(SignalEvent({"id": "x1", "direction": "sideways"}, "test", at(9, 31, 5)))
    assert not outcome.accepted
    effects = core.take_effects()
    assert persists(effects, "record_decision")
    outcome, _ = decide(core, "s2")
    assert outcome.accepted
