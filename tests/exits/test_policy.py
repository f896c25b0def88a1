"""The composed policy: order, gating to regular hours, restarts that never fire twice."""

from __future__ import annotations

import json
from dataclasses import replace

from exits import ExitState, evaluate
from tests.exits.builders import (DAY, FRI, SETTINGS, D, at, fresh, market, seven_position, walk,
                                  zero_position)

ZERO_PATH = [(at(DAY, 10, i), p) for i, p in enumerate(["10.30", "10.50", "9.20", "10.80", "11.00", "11.20", "11.50"])]
SEVEN_PATH = [(at(FRI, 10, i + 1), p) for i, p in enumerate(["110", "120", "92", "135", "128", "150", "140", "125"])]


def _restarted(position, path):
    """Walk the path one quote at a time, storing and reloading the state through JSON between quotes."""
    out = []
    state = fresh(position)
    for when, price in path:
        record = json.dumps(state.to_record())
        state = ExitState.from_record(json.loads(record))
        steps, state = walk(position, [(when, price)], state=state)
        sold = sum(a.quantity for a in steps[0][1] if a.kind in ("close", "partial_close"))
        position = replace(position, open_quantity=position.open_quantity - sold)
        out.append(steps[0])
    return out


def test_restart_matches_an_uninterrupted_run() -> None:
    for position, path in ((zero_position(qty=10), ZERO_PATH), (seven_position(qty=20), SEVEN_PATH)):
        straight, _ = walk(position, path)
        assert _restarted(position, path) == straight
        assert any(actions for _, actions in straight)


def test_a_restart_never_fires_a_tier_twice() -> None:
    position = zero_position()
    steps, state = walk(position, [(at(DAY, 10), "10.50")])
    reloaded = ExitState.from_record(json.loads(json.dumps(state.to_record())))
    # the fill has not arrived yet: the broker still holds all 10
    again, _ = evaluate(position, reloaded, market("10.50", at(DAY, 10, 1)), at(DAY, 10, 1), SETTINGS["0dte"])
    assert steps[0][1][0].rule == "take_profit_tier_1" and again == ()


def test_premium_rules_wait_for_regular_hours() -> None:
    position = zero_position(entered=at(DAY, 9, 45))
    actions, state = evaluate(position, fresh(position), market("12", at(DAY, 9, 0)), at(DAY, 9, 0), SETTINGS["0dte"])
    assert actions == () and state == fresh(position)


def test_no_quote_means_no_premium_rule() -> None:
    steps, state = walk(zero_position(), [(at(DAY, 10), None)])
    assert steps[0][1] == () and state == fresh(zero_position())


def test_closeout_comes_first_and_nothing_follows() -> None:
    steps, _ = walk(zero_position(), [(at(DAY, 15, 50), "11.50")])
    assert [(a.kind, a.rule, a.quantity) for a in steps[0][1]] == [("close", "closeout", 10)]


def test_a_closed_position_gets_nothing() -> None:
    position = replace(zero_position(), open_quantity=0)
    assert evaluate(position, fresh(position), market("5", at(DAY, 10)), at(DAY, 10), SETTINGS["0dte"]) == \
        ((), fresh(position))


def test_a_blank_state_starts_like_a_new_one() -> None:
    position = seven_position()
    blank, _ = evaluate(position, ExitState(), market("101", at(FRI, 11)), at(FRI, 11), SETTINGS["7dte"])
    new, _ = evaluate(position, fresh(position), market("101", at(FRI, 11)), at(FRI, 11), SETTINGS["7dte"])
    assert blank == new == ()


def test_actions_are_closes_then_stop() -> None:
    steps, state = walk(seven_position(qty=20), [(at(FRI, 10, 1), "150")])
    assert [a.kind for a in steps[0][1]] == ["partial_close", "tighten_stop"]
    assert steps[0][1][1].quantity == 5 and steps[0][1][1].stop_price == D(125)
    assert state.stop_announced == D(125)


def test_utc_now_is_read_as_exchange_time() -> None:
    from datetime import timezone

    position = zero_position()
    now_utc = at(DAY, 15, 45).astimezone(timezone.utc)
    actions, _ = evaluate(position, fresh(position), market("10", at(DAY, 15, 45)), now_utc, SETTINGS["0dte"])
    assert [a.rule for a in actions] == ["closeout"]


def test_a_quiet_look_hands_the_state_back_uncopied() -> None:
    # Speed (issue 8): a look below the peak that fires nothing moves nothing, so no rule copies
    # the frozen state (dataclasses.replace was ~15 % of a 7dte evaluation when the ratchet always did).
    position = seven_position()
    state = fresh(position)
    _, state = evaluate(position, state, market("101", at(DAY, 10)), at(DAY, 10), SETTINGS["7dte"])
    actions, again = evaluate(position, state, market("100.5", at(DAY, 10, 1)), at(DAY, 10, 1), SETTINGS["7dte"])
    assert actions == () and again is state
