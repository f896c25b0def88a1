"""7dte overnight gap (SPEC §5.3): flag outside regular hours, exit at the next open."""

from __future__ import annotations

from datetime import date

import pytest

from exits import evaluate
from exits.overnight import overnight_exit, overnight_watch
from tests.exits.builders import SEVEN, SEVEN_CFG, D, at, ctx, fresh, market, seven_position, session

MON, TUE = date(2025, 3, 3), date(2025, 3, 4)


def _watch(position, when, underlying, state=None, last_close="100"):
    c = ctx(position, "100", when, underlying_price=D(underlying), previous_underlying_close=D(last_close))
    return overnight_watch(c, state or fresh(position), SEVEN_CFG)


@pytest.mark.parametrize(("right", "underlying", "flags"), [
    ("C", "96.9", True), ("C", "97", False), ("C", "105", False),
    ("P", "103.1", True), ("P", "103", False), ("P", "90", False),
])
def test_adverse_move_beyond_three_percent_flags(right, underlying, flags) -> None:
    actions, state = _watch(seven_position(right=right), at(MON, 17), underlying)
    assert state.exit_at_open is flags
    assert [a.kind for a in actions] == (["alert"] if flags else [])


def test_no_flag_inside_regular_hours() -> None:
    actions, state = _watch(seven_position(), at(MON, 11), "90")
    assert actions == () and not state.exit_at_open


def test_flag_is_raised_once() -> None:
    position = seven_position()
    _, flagged = _watch(position, at(MON, 17), "96")
    assert _watch(position, at(MON, 17, 5), "95", flagged) == ((), flagged)


def test_flagged_position_closes_at_the_next_open_not_before() -> None:
    position = seven_position()
    _, flagged = _watch(position, at(MON, 17), "96")
    same_evening = ctx(position, None, at(MON, 17, 5))
    pre_open = ctx(position, None, at(TUE, 9, 25))
    the_open = ctx(position, "90", at(TUE, 9, 30))
    assert overnight_exit(same_evening, flagged)[0] == ()
    assert overnight_exit(pre_open, flagged)[0] == ()
    actions, _ = overnight_exit(the_open, flagged)
    assert [(a.kind, a.quantity, a.rule) for a in actions] == [("close", 20, "overnight_exit")]


def test_pre_market_flag_exits_at_that_mornings_open() -> None:
    position = seven_position()
    _, flagged = _watch(position, at(TUE, 8), "96")
    assert overnight_exit(ctx(position, "95", at(TUE, 9, 30)), flagged)[0][0].rule == "overnight_exit"


def test_through_the_policy() -> None:
    position = seven_position()
    evening = market("100", at(MON, 17), underlying_price=D("96.5"), previous_underlying_close=D(100))
    actions, state = evaluate(position, fresh(position), evening, at(MON, 17), SEVEN)
    assert [(a.kind, a.rule) for a in actions] == [("alert", "overnight_gap")]
    open_no_quote = market(None, at(TUE, 9, 30), sess=session(TUE))
    actions, state = evaluate(position, state, open_no_quote, at(TUE, 9, 30), SEVEN)
    assert [(a.kind, a.rule, a.quantity) for a in actions] == [("close", "overnight_exit", 20)]


@pytest.mark.parametrize(("gap", "underlying", "flags"), [
    ("both", "96.9", True), ("both", "103.1", True), ("both", "102", False),  # an iron condor: either way
    ("none", "90", False), ("none", "110", False),  # a long straddle gains on any gap
])
def test_a_combo_says_which_gap_is_adverse(gap, underlying, flags) -> None:
    from dataclasses import replace

    actions, state = _watch(replace(seven_position(right="P"), adverse_gap=gap), at(MON, 17), underlying)
    assert state.exit_at_open is flags
