"""Time exits: the 0dte close-out (15:45, or 15 min before an early close) and the 7dte
expiry-day close (15:30, or 30 min before an early close)."""

from __future__ import annotations

from datetime import date, time

from exits import expiry_close_at, zero_dte_closeout_at
from exits.closeout import expiry_close, zero_dte_closeout
from tests.exits.builders import (DAY, EXPIRY_7, SEVEN_CFG, ZERO_CFG, at, ctx, fresh, seven_position, session, walk,
                                  zero_position)

BLACK_FRIDAY = date(2025, 11, 28)  # NYSE closes at 13:00


def test_closeout_at_1545_not_before() -> None:
    position = zero_position()
    assert zero_dte_closeout(ctx(position, "10", at(DAY, 15, 44)), fresh(position), ZERO_CFG)[0] == ()
    actions, state = zero_dte_closeout(ctx(position, "10", at(DAY, 15, 45)), fresh(position), ZERO_CFG)
    assert [(a.kind, a.quantity, a.rule) for a in actions] == [("close", 10, "closeout")]
    assert "closeout" in state.fired


def test_closeout_takes_what_is_left_after_a_tier() -> None:
    steps, state = walk(zero_position(), [(at(DAY, 10), "10.50"), (at(DAY, 15, 45), "10.10")])
    assert [(a.kind, a.quantity, a.rule) for a in steps[1][1]] == [("close", 7, "closeout")]
    assert state.quantity_closed == 10


def test_closeout_fires_without_a_quote_and_after_the_close() -> None:
    steps, _ = walk(zero_position(), [(at(DAY, 16, 10), None)])
    assert [a.rule for a in steps[0][1]] == ["closeout"]


def test_half_day_closeout_15_minutes_before_early_close() -> None:
    half = session(BLACK_FRIDAY, close=time(13), early=True)
    assert zero_dte_closeout_at(half, ZERO_CFG) == at(BLACK_FRIDAY, 12, 45)
    position = zero_position(entered=at(BLACK_FRIDAY, 9, 45))
    assert zero_dte_closeout(ctx(position, "10", at(BLACK_FRIDAY, 12, 44), sess=half), fresh(position), ZERO_CFG)[0] == ()
    actions, _ = zero_dte_closeout(ctx(position, "10", at(BLACK_FRIDAY, 12, 45), sess=half), fresh(position), ZERO_CFG)
    assert actions[0].rule == "closeout" and "early close" in actions[0].reason


def test_regular_day_closeout_time() -> None:
    assert zero_dte_closeout_at(session(DAY), ZERO_CFG) == at(DAY, 15, 45)


def test_expiry_day_close_at_1530() -> None:
    position = seven_position()
    assert expiry_close(ctx(position, "100", at(EXPIRY_7, 15, 29)), fresh(position), SEVEN_CFG)[0] == ()
    actions, _ = expiry_close(ctx(position, "100", at(EXPIRY_7, 15, 30)), fresh(position), SEVEN_CFG)
    assert [(a.kind, a.quantity, a.rule) for a in actions] == [("close", 20, "expiry_close")]


def test_no_expiry_close_the_day_before() -> None:
    position = seven_position()
    day_before = date(2025, 3, 6)
    assert expiry_close(ctx(position, "100", at(day_before, 15, 45)), fresh(position), SEVEN_CFG)[0] == ()


def test_expiry_on_a_half_day_closes_30_minutes_before_the_early_close() -> None:
    half = session(BLACK_FRIDAY, close=time(13), early=True)
    assert expiry_close_at(half, SEVEN_CFG) == at(BLACK_FRIDAY, 12, 30)
    position = seven_position(entered=at(date(2025, 11, 21), 10), expiry=BLACK_FRIDAY)
    actions, _ = expiry_close(ctx(position, "100", at(BLACK_FRIDAY, 12, 30), sess=half), fresh(position), SEVEN_CFG)
    assert [a.rule for a in actions] == ["expiry_close"]
