"""Properties of the exit policy over random price paths (hypothesis)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from exits import ExitPosition, ExitState, MarketSnapshot, evaluate
from tests.exits.builders import DAY, EXPIRY_7, FRI, SETTINGS, at, fresh, session

ONCE = ("take_profit_tier_1", "take_profit_tier_2", "take_profit_tier_3", "loss_alert", "loss_close_half",
        "closeout", "expiry_close", "overnight_exit", "overnight_gap", "runner_take_profit")
CLOSING = ("close", "partial_close")


@st.composite
def scenarios(draw):
    profile = draw(st.sampled_from(["0dte", "7dte"]))
    qty = draw(st.integers(1, 60))
    entry = Decimal(draw(st.integers(50, 5000))) / 100
    if profile == "0dte":
        entered = at(DAY, 9, 30) + timedelta(minutes=draw(st.integers(0, 380)))
        step_minutes, expiry = st.integers(1, 45), DAY
    else:
        day = draw(st.sampled_from([FRI + timedelta(days=d) for d in (0, 3, 4, 5, 6, 7)]))
        entered = at(day, 9, 30) + timedelta(minutes=draw(st.integers(0, 380)))
        step_minutes, expiry = st.integers(5, 300), EXPIRY_7
    position = ExitPosition(entry, entered, qty, qty, expiry, "SPY" if profile == "0dte" else "AAPL", profile,
                            draw(st.sampled_from(["C", "P"])))
    vix = draw(st.sampled_from([None, Decimal(12), Decimal(20), Decimal(30)]))
    path, when = [], entered
    for _ in range(draw(st.integers(1, 30))):
        when = when + timedelta(minutes=draw(step_minutes))
        ratio = Decimal(draw(st.integers(40, 190))) / 100
        price = None if draw(st.integers(0, 9)) == 0 else (entry * ratio).quantize(Decimal("0.01"))
        underlying = Decimal(draw(st.integers(9500, 10500))) / 100
        path.append((when, price if price and price > 0 else None, underlying))
    return position, vix, path


def _market(when: datetime, price, underlying, vix) -> MarketSnapshot:
    sess = session(when.date()) if when.weekday() < 5 else None
    return MarketSnapshot(price, sess, underlying, vix, None, Decimal(100))


def _run(position, vix, path, through_records=False):
    cfg = SETTINGS[position.profile]
    state, out, states = fresh(position), [], []
    for when, price, underlying in path:
        if through_records:
            state = ExitState.from_record(json.loads(json.dumps(state.to_record())))
        actions, state = evaluate(position, state, _market(when, price, underlying, vix), when, cfg)
        sold = sum(a.quantity for a in actions if a.kind in CLOSING)
        assert sold <= position.open_quantity
        position = replace(position, open_quantity=position.open_quantity - sold)
        out.append(actions)
        states.append((position, state))
    return out, states


PROPS = settings(max_examples=150, deadline=None)


@PROPS
@given(scenarios())
def test_closed_never_exceeds_the_position(scenario) -> None:
    position, vix, path = scenario
    out, states = _run(position, vix, path)
    closes = [a for actions in out for a in actions if a.kind in CLOSING]
    assert all(a.quantity >= 1 for a in closes)
    assert sum(a.quantity for a in closes) == states[-1][1].quantity_closed <= position.original_quantity
    assert all(a.quantity >= 0 for actions in out for a in actions)


@PROPS
@given(scenarios())
def test_no_rule_fires_twice(scenario) -> None:
    position, vix, path = scenario
    out, states = _run(position, vix, path)
    rules = [a.rule for actions in out for a in actions if a.kind != "tighten_stop"]
    for rule in ONCE:
        assert rules.count(rule) <= 1, rule
    # the same look again, with the state it produced, asks for nothing more
    cfg = SETTINGS[position.profile]
    for (when, price, underlying), (pos, state) in zip(path, states, strict=True):
        again, after = evaluate(pos, state, _market(when, price, underlying, vix), when, cfg)
        assert again == () and after == state


@PROPS
@given(scenarios())
def test_stop_is_monotone(scenario) -> None:
    position, vix, path = scenario
    out, states = _run(position, vix, path)
    stops = [fresh(position).stop_price] + [s.stop_price for _, s in states]
    assert all(b >= a for a, b in zip(stops, stops[1:]))
    announced = [a.stop_price for actions in out for a in actions if a.kind == "tighten_stop"]
    assert all(b > a for a, b in zip(announced, announced[1:]))
    assert all(p > fresh(position).stop_price for p in announced)


@PROPS
@given(scenarios())
def test_identical_input_identical_output(scenario) -> None:
    position, vix, path = scenario
    first = _run(position, vix, path)
    assert _run(position, vix, path) == first
    assert _run(position, vix, path, through_records=True) == first
