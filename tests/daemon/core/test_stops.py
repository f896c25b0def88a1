"""The stop desk alone: place, follow, never lower, cancel; nothing before it is active."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

from daemon.core.effects import CancelOrder, ModifyOrder, Outbox, PlaceOrder
from daemon.core.ids import Counter
from daemon.core.ledger import new_position
from daemon.core.stops import StopDesk
from daemon.positions import LivePosition
from exits.state import ExitState
from market.types import Fill, OptionContract, OrderStatus, OrderUpdate
from tests.daemon.core.fakes import at, settings_for

CONTRACT = OptionContract("SPY", date(2026, 11, 30), Decimal(600), "C")


def position(qty: int = 10, entry: str = "2.00") -> LivePosition:
    record = replace(new_position(7, CONTRACT, at(9, 31), "s1"), open_qty=qty, original_qty=qty,
                     entry_price=Decimal(entry))
    return LivePosition(record, CONTRACT, ExitState(), Decimal(entry), entry_complete=True)


def test_nothing_is_sent_before_the_desk_is_active() -> None:
    desk, out = StopDesk(settings_for(), Counter(100)), Outbox()
    desk.follow(position(), True, at(9, 31), out)
    assert out.take() == []


def test_place_then_follow_the_quantity_and_only_raise_the_price() -> None:
    desk, out = StopDesk(settings_for(), Counter(100)), Outbox()
    desk.active = True
    p = position()
    desk.follow(p, True, at(9, 31), out)
    placed = [e for e in out.take() if isinstance(e, PlaceOrder)]
    assert len(placed) == 1 and placed[0].request.order_id == 101 and placed[0].request.quantity == 10
    first_price = placed[0].request.stop_price
    p.pending_exit = 4
    desk.follow(p, True, at(9, 32), out)
    modified = [e for e in out.take() if isinstance(e, ModifyOrder)]
    assert modified[0].request.quantity == 6 and modified[0].request.order_id == 101
    p.exit_state = replace(p.exit_state, stop_price=Decimal("2.50"))
    desk.follow(p, True, at(9, 33), out)
    raised = [e for e in out.take() if isinstance(e, ModifyOrder)][0].request.stop_price
    assert raised > first_price
    p.exit_state = replace(p.exit_state, stop_price=None)
    desk.follow(p, True, at(9, 34), out)
    lowered = [e for e in out.take() if isinstance(e, ModifyOrder)]
    assert lowered == [] or lowered[0].request.stop_price == raised  # never comes down
    desk.follow(p, False, at(9, 35), out)
    assert [e for e in out.take() if isinstance(e, CancelOrder)] == [CancelOrder(101)]
    assert desk.resting == {}


def test_a_stop_that_ended_at_the_broker_is_forgotten_and_placed_again() -> None:
    desk, out = StopDesk(settings_for(), Counter(100)), Outbox()
    desk.active = True
    p = position()
    desk.follow(p, True, at(9, 31), out)
    request = [e for e in out.take() if isinstance(e, PlaceOrder)][0].request
    desk.on_update(OrderUpdate(request.order_id, request.order_ref, OrderStatus.CANCELLED, 0, 10, None, at(9, 40)),
                   out)
    assert desk.resting == {}
    desk.follow(p, True, at(9, 41), out)
    again = [e for e in out.take() if isinstance(e, PlaceOrder)][0].request
    assert again.order_id == 102 and again.order_ref.endswith(":2")


def test_after_a_restart_a_new_stop_takes_the_next_number_never_one_already_sent() -> None:
    """A stop cancelled before the restart is not at the broker to be adopted, but its orderRef was used."""
    desk, out = StopDesk(settings_for(), Counter(100)), Outbox()
    desk.active = True
    p = position()
    desk.numbered([f"tradingd:{desk.profile}:stop-7:1", f"tradingd:{desk.profile}:stop-7:2",
                   f"tradingd:{desk.profile}:stop-8:5", "tradingd:other:stop-7:9", "not a ref"])
    desk.follow(p, True, at(9, 31), out)
    (placed,) = [e for e in out.take() if isinstance(e, PlaceOrder)]
    assert placed.request.order_ref == f"tradingd:{desk.profile}:stop-7:3"


def test_a_stop_that_filled_whole_is_not_cancelled() -> None:
    """The position closes on the stop's own fill, before the venue's Filled status arrives: a Cancel then
    would only be refused (`order_not_working`)."""
    desk, out = StopDesk(settings_for(), Counter(100)), Outbox()
    desk.active = True
    p = position()
    desk.follow(p, True, at(9, 31), out)
    request = [e for e in out.take() if isinstance(e, PlaceOrder)][0].request
    fill = Fill("s1", request.order_id, request.order_ref, CONTRACT, "SELL", 10, Decimal("1.50"), at(9, 40))
    assert desk.on_fill(fill)
    desk.cancel(p.id, out)
    assert out.take() == [] and desk.resting == {}
