"""SPEC §6.3 (room expiry): a position the close-out could not sell is settled after its expiry's close."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from daemon.core.effects import CancelOrder, PlaceOrder, SettleExpired, Unsubscribe
from daemon.core.events import QuoteEvent
from market.types import Quote
from tests.daemon.core.fakes import at, logs, orders, persists, underlying, vix
from tests.daemon.core.test_core_exits import held


def no_bid(key: str, when, ask: str = "0.05") -> Quote:  # type: ignore[no-untyped-def]
    """A far out-of-the-money option late on its expiry day: nobody bids for it."""
    return Quote(key, Decimal(0), Decimal(ask), None, when, bid_size=0, ask_size=10)


def through_the_close(core, spy: str):  # type: ignore[no-untyped-def]
    """Quotes up to the close with the option unsellable; the close-out fires and its sell never fills;
    the underlying's last print is `spy`. Returns the position and everything the core did."""
    position = next(iter(core.book))
    effects = []
    for minute in range(0, 60, 5):
        when = at(15, minute)
        core.advance(when)
        core.handle(QuoteEvent(no_bid(position.key, when)))
        core.handle(QuoteEvent(underlying("SPY", spy, when)))
        core.handle(QuoteEvent(vix("15", when)))
        effects += core.take_effects()
    core.advance(at(16, 30))
    effects += core.take_effects()
    return position, effects


def test_an_otm_0dte_held_through_the_close_is_settled_worthless_after_it() -> None:
    core, _, place, _ = held()
    position = next(iter(core.book))
    strike = position.contract.strike
    contracts, entry = position.open_qty, position.record.entry_price
    before, record_before = core.realized_total, position.record.realized_pnl
    position, effects = through_the_close(core, str(strike - 10))  # a call 10 below its strike
    rules = [p.payload["rule"] for p in persists(effects, "record_exit_event")]
    assert rules[-1] == "expiry" and "closeout" in rules  # the close-out tried first; then the settlement
    sells = [e for e in orders(effects) if isinstance(e, PlaceOrder) and e.request.side == "SELL"
             and e.request.order_type == "LMT"]
    assert sells, "the close-out sent its sell"
    assert CancelOrder(sells[-1].request.order_id) in effects  # the unfillable sell is given up
    event = persists(effects, "record_exit_event")[-1]
    assert event.payload["at"] == at(16, 5)  # five minutes after the close (schedule config)
    assert event.payload["quantity"] == contracts and "worthless" in event.payload["reason"]
    closing = persists(effects, "close_position")[-1].payload
    assert closing["exit_price"] == 0 and closing["reason"] == "expired" and closing["closed_at"] == at(16, 5)
    assert position.id not in core.book.positions and position.id in core.book.closed_today
    assert position.record.status == "closed" and position.record.open_qty == 0
    premium = entry * contracts * position.multiplier
    assert core.realized_total - before == -premium  # P&L = − the premium paid
    assert position.record.realized_pnl == record_before - premium and place.request.quantity == contracts
    assert any(isinstance(e, Unsubscribe) and position.key in e.keys for e in effects)
    assert position.id not in core.stops.resting  # its protective stop is forgotten
    settle = [e for e in effects if isinstance(e, SettleExpired)]
    assert len(settle) == 1 and settle[0].prices == {"SPY": strike - 10}


def test_an_itm_0dte_is_settled_at_intrinsic_value_from_the_underlyings_last_price() -> None:
    core, _, _, _ = held()
    position = next(iter(core.book))
    strike, contracts, entry = position.contract.strike, position.open_qty, position.record.entry_price
    before = core.realized_total
    position, effects = through_the_close(core, str(strike + Decimal("3.5")))
    closing = persists(effects, "close_position")[-1].payload
    assert closing["exit_price"] == Decimal("3.5")
    assert core.realized_total - before == (Decimal("3.5") - entry) * contracts * position.multiplier
    reason = persists(effects, "record_exit_event")[-1].payload["reason"]
    assert "intrinsic" in reason and "3.5" in reason and str(strike + Decimal("3.5")) in reason
    assert logs(effects, "position_closed")


def test_nothing_is_settled_before_the_close_nor_a_later_expiry() -> None:
    core, _, _, _ = held()
    position = next(iter(core.book))
    assert core.settle_expired(at(15, 59, 59)) == []
    assert position.id in core.book.positions
    assert core.settle_expired(at(16, 0)) == [position.id]


def test_a_settlement_loss_counts_in_the_session_pnl_the_breakers_see() -> None:
    core, _, _, _ = held()
    position = next(iter(core.book))
    qty, ref = position.open_qty, position.session_ref
    realized_before = core.book.session_realized
    core.settle_expired(at(16, 5))  # no underlying price past the fakes' 9:31 one: SPY 600, the call's strike
    assert core.book.session_realized == realized_before - ref * qty * position.multiplier
    assert core.book.session_pnl() == core.book.session_realized  # nothing else is held


# ------------------------------------------------------------------ no 0dte entry it cannot close

def test_a_0dte_entry_after_the_closeout_start_is_refused_closeout_window() -> None:
    from exits.closeout import zero_dte_closeout_at
    from market import calendar
    from tests.daemon.core.test_core_entries import decide, opened_core

    core, _ = opened_core()
    start = zero_dte_closeout_at(calendar.session_for(at(0, 0).date()), core.settings.exits.zero_dte)
    outcomes = []
    for sid, when in (("early", start - timedelta(seconds=1)), ("late", start)):
        core.handle(QuoteEvent(underlying("SPY", "600.00", when)))
        core.handle(QuoteEvent(vix("15", when)))
        core.take_effects()
        outcomes.append(decide(core, sid, when=when))
    (before, _), (after, effects) = outcomes
    assert before.accepted, before.decision
    assert not after.accepted and after.reason == "closeout_window"
    assert not [e for e in orders(effects) if isinstance(e, PlaceOrder) and e.request.side == "BUY"]
    record = persists(effects, "record_decision")
    assert record and record[-1].payload["reason"] == "closeout_window"


def test_7dte_entries_never_take_todays_expiry_so_the_window_is_not_theirs() -> None:
    from broker.selection import choose_expiry
    from tests.daemon.core.fakes import make_core

    core, _ = make_core("7dte")
    expiry = core.settings.profile.expiry
    assert expiry.min_dte > 0  # the 7dte window starts days out: today's expiry (after 15:30 or not) is never chosen
    today = at(15, 50).date()
    assert choose_expiry([today + timedelta(days=d) for d in range(0, 15)], today, expiry) != today
    assert choose_expiry([today], today, expiry) is None
    assert core.entries.closeout_at(at(15, 50)) is None


def test_an_entry_still_working_at_the_expiry_is_given_up_and_its_empty_position_closed() -> None:
    from tests.daemon.core.test_core_entries import decide, opened_core

    core, _ = opened_core()
    outcome, effects = decide(core)
    assert outcome.accepted
    buy = next(e for e in orders(effects) if isinstance(e, PlaceOrder) and e.request.side == "BUY")
    position = next(iter(core.book))
    assert position.record.original_qty == 0  # never filled
    assert core.settle_expired(at(16, 5)) == []
    effects = core.take_effects()
    assert CancelOrder(buy.request.order_id) in effects
    assert persists(effects, "close_position")[-1].payload["reason"] == "entry_unfilled"
    assert position.id not in core.book.positions and not persists(effects, "record_exit_event")
