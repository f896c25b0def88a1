"""Per-position levels on premium (SPEC §3) and the protective stop: alert, close half, hard stop, gaps."""

from __future__ import annotations

from config.models import PositionLevelsConfig
from exits.levels import loss_alert, loss_close_half
from exits.stops import announce_stop, hard_stop_price, initial_stop, raise_stop, stop_hit
from tests.exits.builders import DAY, FRI, SEVEN_CFG, ZERO, D, at, ctx, fresh, seven_position, walk, zero_position

LV = ZERO.position_levels


def _rules(steps):
    return [[(a.kind, a.quantity, a.rule) for a in acts] for _, acts in steps]


def test_alert_once_close_half_once_then_hard_stop_closes_the_rest() -> None:
    prices = ["9.30", "9.29", "8.50", "8.40", "7.50"]
    steps, state = walk(zero_position(qty=10), [(at(DAY, 10, i), p) for i, p in enumerate(prices)])
    assert _rules(steps) == [
        [("alert", 0, "loss_alert")],
        [],
        [("partial_close", 5, "loss_close_half")],
        [],
        [("close", 5, "hard_stop")],
    ]
    assert state.quantity_closed == 10


def test_gap_through_the_stop_closes_everything_at_once() -> None:
    steps, _ = walk(zero_position(qty=10), [(at(DAY, 10), "7.00")])
    assert _rules(steps) == [[("close", 10, "hard_stop")]]


def test_gap_down_through_the_7dte_stop() -> None:
    steps, _ = walk(seven_position(qty=20), [(at(FRI, 10, 1), "130"), (at(FRI, 10, 2), "70")])
    assert _rules(steps)[1] == [("close", 15, "trailing_stop")]  # 5 went at +30 % (partial profit)
    steps, _ = walk(seven_position(qty=20), [(at(FRI, 10, 1), "70")])
    assert _rules(steps) == [[("close", 20, "hard_stop")]]


def test_gap_past_the_alert_into_close_half() -> None:
    steps, _ = walk(zero_position(qty=10), [(at(DAY, 10), "8.40")])
    assert _rules(steps) == [[("alert", 0, "loss_alert"), ("partial_close", 5, "loss_close_half")]]


def test_close_half_of_one_and_two_contracts() -> None:
    one, _ = walk(zero_position(qty=1), [(at(DAY, 10), "8.50")])
    two, _ = walk(zero_position(qty=2), [(at(DAY, 10), "8.50"), (at(DAY, 10, 1), "7.50")])
    assert _rules(one) == [[("alert", 0, "loss_alert"), ("close", 1, "loss_close_half")]]
    assert _rules(two) == [[("alert", 0, "loss_alert"), ("partial_close", 1, "loss_close_half")],
                           [("close", 1, "hard_stop")]]


def test_levels_alone() -> None:
    position = zero_position()
    above = ctx(position, "9.31", at(DAY, 10))
    at_alert = ctx(position, "9.30", at(DAY, 10))
    assert loss_alert(above, fresh(position), LV)[0] == ()
    actions, state = loss_alert(at_alert, fresh(position), LV)
    assert actions[0].kind == "alert" and loss_alert(at_alert, state, LV)[0] == ()
    assert loss_close_half(ctx(position, "8.51", at(DAY, 10)), fresh(position), LV)[0] == ()
    assert loss_close_half(ctx(position, "8.50", at(DAY, 10)), fresh(position), LV)[0][0].quantity == 5


def test_hard_stop_prices() -> None:
    assert hard_stop_price(zero_position(), LV) == D("7.5")
    wide = PositionLevelsConfig(alert_pct=D("-0.07"), close_half_pct=D("-0.15"), hard_stop_pct=D("-0.3"))
    assert initial_stop(seven_position(), wide, SEVEN_CFG) == (D(80), "initial_stop")  # the tighter one wins
    assert initial_stop(seven_position(), wide, None) == (D(70), "hard_stop")


def test_stop_hit_alone_and_announce() -> None:
    position = zero_position()
    state = fresh(position)
    assert stop_hit(ctx(position, "7.51", at(DAY, 10)), state)[0] == ()
    assert stop_hit(ctx(position, "7.50", at(DAY, 10)), state)[0][0].rule == "hard_stop"
    assert announce_stop(position, state)[0] == ()  # the initial stop was placed at entry
    raised = raise_stop(state, D(9), "breakeven_stop")
    actions, after = announce_stop(position, raised)
    assert [(a.kind, a.quantity, a.stop_price) for a in actions] == [("tighten_stop", 10, D(9))]
    assert announce_stop(position, after)[0] == ()
    assert raise_stop(after, D(8), "x") is after
