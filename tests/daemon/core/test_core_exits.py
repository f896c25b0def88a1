"""Exits, protective stops, fills, breakers and operator commands through the core, with fakes."""

from __future__ import annotations

from decimal import Decimal

from daemon.core.effects import CancelOrder, ModifyOrder, PlaceOrder, Unsubscribe
from daemon.core.events import FillEvent, OperatorCommand, OrderRefusedEvent, QuoteEvent, StoreStatusEvent
from tests.daemon.core.fakes import at, fill_of, logs, orders, persists
from tests.daemon.core.test_core_entries import enter, opened_core


def held():  # type: ignore[no-untyped-def]
    core, execution = opened_core()
    place, effects = enter(core, execution)
    return core, execution, place, effects


def test_an_entry_fill_places_the_protective_stop_after_its_intent() -> None:
    core, _, place, effects = held()
    stops = [e for e in orders(effects) if isinstance(e, PlaceOrder) and e.request.order_type == "STP"]
    assert len(stops) == 1
    stop = stops[0].request
    assert stop.quantity == place.request.quantity and not stops[0].durable
    position = next(iter(core.book))
    assert stop.stop_price == core.stops.price(position) and stop.stop_price < Decimal("2.00")
    assert ":stop-" in stop.order_ref
    intents = persists(effects, "write_intent")
    assert intents and intents[-1].payload["request"] == stop
    assert [p.op for p in persists(effects)][:1] == ["apply_fill"]


def test_a_fill_is_applied_once() -> None:
    core, _, place, _ = held()
    position = next(iter(core.book))
    qty = position.open_qty
    core.handle(FillEvent(fill_of(place.request, at(9, 31, 10))))  # the same exec id again
    assert position.open_qty == qty and core.take_effects() == []


def test_the_hard_stop_rule_closes_through_the_execution_after_the_stop_gives_way() -> None:
    core, execution, place, _ = held()
    position = next(iter(core.book))
    core.handle(QuoteEvent(__import__("tests.daemon.core.fakes", fromlist=["option"]).option(
        position.key, "0.60", at(9, 45))))  # -70 %: past every hard stop
    effects = core.take_effects()
    events = persists(effects, "record_exit_event")
    assert events, effects
    sells = [e for e in orders(effects) if isinstance(e, PlaceOrder) and e.request.side == "SELL"
             and e.request.order_type == "LMT"]
    assert len(sells) == 1 and sells[0].request.order_ref.split(":")[2] == f"x{events[0].payload['event_id']}"
    stop_changes = [e for e in orders(effects) if isinstance(e, (ModifyOrder, CancelOrder))]
    assert stop_changes and effects.index(stop_changes[0]) < effects.index(sells[0])  # stop shrinks first
    assert effects.index(events[0]) < effects.index(sells[0])  # the event is recorded before the order
    assert position.pending_exit == sells[0].request.quantity
    # the exit fills: the position closes, its stop is cancelled, the option released
    core.handle(FillEvent(fill_of(sells[0].request, at(9, 45, 2), price="0.60")))
    effects = core.take_effects()
    assert position.id not in core.book.positions
    assert persists(effects, "apply_fill") and logs(effects, "position_closed")
    assert any(isinstance(e, Unsubscribe) and position.key in e.keys for e in effects)
    assert core.realized_total < 0


def test_a_refused_exit_gives_its_contracts_back_to_the_stop() -> None:
    core, execution, _, _ = held()
    position = next(iter(core.book))
    from tests.daemon.core.fakes import option

    core.handle(QuoteEvent(option(position.key, "0.60", at(9, 45))))
    sell = next(e for e in orders(core.take_effects()) if isinstance(e, PlaceOrder) and e.request.side == "SELL"
                and e.request.order_type == "LMT")
    core.handle(OrderRefusedEvent(sell.request.order_id, "venue down", at(9, 45, 1)))
    effects = core.take_effects()
    assert position.pending_exit == 0
    stops = [e for e in orders(effects) if isinstance(e, (ModifyOrder, PlaceOrder)) and e.request.order_type == "STP"]
    assert stops and stops[-1].request.quantity == position.open_qty  # the whole position is covered again


def test_a_stop_fill_that_overtook_its_cancel_takes_the_contracts_from_the_exit() -> None:
    """The hard stop fires: the exit sells what the stop held and the stop is cancelled; the stop fills
    before its cancel reaches the venue. The exit must give those contracts up (they are sold): sold again
    they would be another position's contracts on the same option (docs/decisions/churn.md)."""
    core, execution, _, effects = held()
    position = next(iter(core.book))
    stop = next(e for e in orders(effects) if isinstance(e, PlaceOrder) and e.request.order_type == "STP").request
    from tests.daemon.core.fakes import option

    core.handle(QuoteEvent(option(position.key, "0.60", at(9, 45))))
    effects = core.take_effects()
    sell = next(e for e in orders(effects) if isinstance(e, PlaceOrder) and e.request.side == "SELL"
                and e.request.order_type == "LMT").request
    assert CancelOrder(stop.order_id) in effects and position.pending_exit == sell.quantity == stop.quantity
    core.handle(FillEvent(fill_of(stop, at(9, 45), price="0.60")))  # the cancel was overtaken
    core.take_effects()
    exit_ref = sell.order_ref.rsplit(":", 1)[0]
    assert execution.shrunk == [(exit_ref, sell.quantity)]
    assert position.pending_exit == 0 and position.id not in core.book.positions
    assert core.orders.owners[exit_ref].quantity == 0


def test_exits_go_on_while_the_store_is_away() -> None:
    core, _, _, _ = held()
    position = next(iter(core.book))
    from tests.daemon.core.fakes import option

    core.handle(StoreStatusEvent(False, "disk full", at(9, 44)))
    core.handle(QuoteEvent(option(position.key, "0.60", at(9, 45))))
    sells = [e for e in orders(core.take_effects()) if isinstance(e, PlaceOrder) and e.request.side == "SELL"]
    assert sells and not sells[0].durable


def test_the_closeout_timer_closes_a_0dte_position() -> None:
    core, _, _, _ = held()
    position = next(iter(core.book))
    from tests.daemon.core.fakes import option, underlying, vix

    for minute in range(0, 60, 5):  # keep quotes fresh up to the close-out
        when = at(15, minute)
        core.advance(when)
        core.handle(QuoteEvent(option(position.key, "2.00", when)))
        core.handle(QuoteEvent(underlying("SPY", "600.00", when)))
        core.handle(QuoteEvent(vix("15", when)))
    effects = core.take_effects()
    rules = [p.payload["rule"] for p in persists(effects, "record_exit_event")]
    assert any("closeout" in r or "close_out" in r for r in rules), rules


def test_operator_halt_resume_and_flatten() -> None:
    core, _, _, _ = held()
    answer = core.handle(OperatorCommand("halt", "ops", at(10, 0), {"reason": "test"}))
    assert answer["ok"] and core.control.latched
    effects = core.take_effects()
    assert [p.op for p in persists(effects)][:3] == ["record_operator_action", "set_meta", "set_trading_state"]
    answer = core.handle(OperatorCommand("resume", "ops", at(10, 1)))
    assert answer["ok"] and not core.control.latched
    again = core.handle(OperatorCommand("resume", "ops", at(10, 2)))
    assert again == {"ok": False, "error": "not_halted", "message": again["message"]}
    flat = core.handle(OperatorCommand("flatten", "ops", at(10, 3), {"reason": "end"}))
    position = next(iter(core.book))
    assert flat["closing_positions"] == [position.id]
    effects = core.take_effects()
    assert [p.payload["rule"] for p in persists(effects, "record_exit_event")] == ["operator_flatten"]
    assert core.handle(OperatorCommand("ack", "ops", at(10, 4), {"underlying": "spy"}))["error"] == "not_blocked"
    core.blocked.add("SPY")
    assert core.handle(OperatorCommand("ack", "ops", at(10, 5), {"underlying": "spy"}))["ok"]
    assert "SPY" not in core.blocked


def test_a_breaker_trip_is_recorded_and_closes_losers() -> None:
    core, _, _, _ = held()
    position = next(iter(core.book))
    from tests.daemon.core.fakes import option

    core.realized_total = Decimal(0)
    core.book.session_realized = -core.capital_base() * Decimal("0.5")  # a heavy loss this session
    core.handle(QuoteEvent(option(position.key, "1.90", at(10, 0))))
    effects = core.take_effects()
    assert persists(effects, "record_breaker_event"), [p.op for p in persists(effects)]
    assert core.control.level > 0


def test_an_exit_on_a_stale_quote_asks_for_a_snapshot_and_the_fresh_quote_wakes_the_execution() -> None:
    """SPEC 4.4/6.1: the execution's SnapshotWanted becomes a RequestSnapshot effect (not a cancel), and a
    fresh quote of that key is passed back to the execution."""
    from broker.working import SnapshotWanted
    from daemon.core.effects import RequestSnapshot
    from tests.daemon.core.fakes import option

    core, execution, _, _ = held()
    position = next(iter(core.book))
    woken: list[str] = []
    execution.on_quote = lambda key, now: woken.append(key)  # type: ignore[method-assign]
    execution.commands.append(SnapshotWanted(position.key))  # what Working asks at an exit's reprice
    core.advance(at(9, 40))
    effects = core.take_effects()
    assert any(isinstance(e, RequestSnapshot) and e.key == position.key for e in effects), effects
    assert not any(isinstance(e, CancelOrder) for e in effects)
    core.handle(QuoteEvent(option(position.key, "2.00", at(9, 40, 1))))
    assert position.key in woken


def test_the_checkpoint_runs_the_regime_desk_without_failing() -> None:
    """The regime desk writes through a journal; the core gives it one whose records are Persist effects."""
    from daemon.core.events import TimerEvent

    core, _, _, _ = held()
    core.handle(TimerEvent("checkpoint", at(10, 0)))
    effects = core.take_effects()
    assert not logs(effects, "regime_checkpoint_failed"), logs(effects, "regime_checkpoint_failed")
    assert persists(effects, "record_checkpoint") or persists(effects, "set_meta")
