"""Breaker level 3: winners' stops to break-even."""

from __future__ import annotations

from dataclasses import replace

import pytest

from exits import ExitInputError, tighten_to_breakeven
from tests.exits.builders import DAY, FRI, D, at, fresh, seven_position, walk, zero_position


def test_winner_stop_goes_to_entry_once() -> None:
    position = seven_position()
    actions, state = tighten_to_breakeven(position, fresh(position), D(110))
    assert [(a.kind, a.quantity, a.rule, a.stop_price) for a in actions] == [("tighten_stop", 20, "breakeven_stop", D(100))]
    assert tighten_to_breakeven(position, state, D(112)) == ((), state)


def test_loser_and_flat_are_left_alone() -> None:
    position = zero_position()
    assert tighten_to_breakeven(position, fresh(position), D("9.50"))[0] == ()
    assert tighten_to_breakeven(position, fresh(position), D("10.00"))[0] == ()


def test_a_higher_stop_is_kept() -> None:
    position = seven_position()
    state = replace(fresh(position), stop_price=D(115), stop_rule="trailing_stop", stop_announced=D(115))
    assert tighten_to_breakeven(position, state, D(130)) == ((), state)


def test_break_even_stop_is_then_hit_by_the_policy() -> None:
    position = zero_position()
    _, state = tighten_to_breakeven(position, fresh(position), D("10.40"))
    steps, _ = walk(position, [(at(DAY, 10), "10.00")], state=state)
    assert [(a.kind, a.rule, a.quantity) for a in steps[0][1]] == [("close", "breakeven_stop", 10)]


def test_bad_price_is_refused() -> None:
    with pytest.raises(ExitInputError):
        tighten_to_breakeven(zero_position(), fresh(zero_position()), D(-1))
    with pytest.raises(ExitInputError):
        tighten_to_breakeven(seven_position(), fresh(seven_position()), 1.5)  # type: ignore[arg-type]


def test_stop_for_7dte_on_entry_day() -> None:
    steps, state = walk(seven_position(), [(at(FRI, 10, 5), "101")])
    assert steps[0][1] == () and state.stop_price == D(80)
