"""Time exits: the 0dte close-out (flat BY 15:45, or 15 min before an early close: it starts
`closeout_lead_s` earlier, two parent timeouts, 120 s, by default) and the 7dte expiry-day close
(15:30, or 30 min before an early close)."""

from __future__ import annotations

from datetime import date, time, timedelta
from decimal import Decimal

from exits import expiry_close_at, zero_dte_closeout_at, zero_dte_flat_by
from exits.closeout import expiry_close, zero_dte_closeout
from tests.exits.builders import (DAY, EXPIRY_7, SEVEN_CFG, ZERO, ZERO_CFG, at, ctx, fresh, seven_position, session, walk,
                                  zero_position)

BLACK_FRIDAY = date(2025, 11, 28)  # NYSE closes at 13:00


def test_closeout_starts_one_parent_timeout_before_1545_not_before() -> None:
    position = zero_position()
    assert ZERO_CFG.closeout_lead_s == 2 * ZERO.execution.parent_timeout_s == 120  # the default: sized from execution
    start = at(DAY, 15, 43)
    assert zero_dte_closeout(ctx(position, "10", start - timedelta(seconds=1)), fresh(position), ZERO_CFG)[0] == ()
    actions, state = zero_dte_closeout(ctx(position, "10", start), fresh(position), ZERO_CFG)
    assert [(a.kind, a.quantity, a.rule) for a in actions] == [("close", 10, "closeout")]
    assert "closeout" in state.fired
    assert actions[0].reason == "0dte close-out at 15:43:00 to be flat by 15:45"


def test_the_lead_is_configuration() -> None:
    cfg = ZERO_CFG.model_copy(update={"closeout_lead_s": Decimal(150)})
    assert zero_dte_closeout_at(session(DAY), cfg) == at(DAY, 15, 42) + timedelta(seconds=30)
    assert zero_dte_flat_by(session(DAY), cfg) == at(DAY, 15, 45)
    none = ZERO_CFG.model_copy(update={"closeout_lead_s": Decimal(0)})
    assert zero_dte_closeout_at(session(DAY), none) == at(DAY, 15, 45)
    actions, _ = zero_dte_closeout(ctx(zero_position(), "10", at(DAY, 15, 45)), fresh(zero_position()), none)
    assert actions[0].reason == "0dte close-out at 15:45"


def test_closeout_takes_what_is_left_after_a_tier() -> None:
    steps, state = walk(zero_position(), [(at(DAY, 10), "10.50"), (at(DAY, 15, 45), "10.10")])
    assert [(a.kind, a.quantity, a.rule) for a in steps[1][1]] == [("close", 7, "closeout")]
    assert state.quantity_closed == 10


def test_closeout_fires_without_a_quote_and_after_the_close() -> None:
    steps, _ = walk(zero_position(), [(at(DAY, 16, 10), None)])
    assert [a.rule for a in steps[0][1]] == ["closeout"]


def test_half_day_closeout_15_minutes_before_early_close() -> None:
    half = session(BLACK_FRIDAY, close=time(13), early=True)
    assert zero_dte_flat_by(half, ZERO_CFG) == at(BLACK_FRIDAY, 12, 45)
    assert zero_dte_closeout_at(half, ZERO_CFG) == at(BLACK_FRIDAY, 12, 43)
    position = zero_position(entered=at(BLACK_FRIDAY, 9, 45))
    early = at(BLACK_FRIDAY, 12, 43) - timedelta(seconds=1)
    assert zero_dte_closeout(ctx(position, "10", early, sess=half), fresh(position), ZERO_CFG)[0] == ()
    actions, _ = zero_dte_closeout(ctx(position, "10", at(BLACK_FRIDAY, 12, 43), sess=half), fresh(position), ZERO_CFG)
    assert actions[0].rule == "closeout"
    assert actions[0].reason == "0dte close-out at 12:43:00 to be flat by 12:45 (early close)"


def test_the_lead_defaults_to_two_parent_timeouts_unless_the_profile_sets_it() -> None:
    from config import load_settings

    slower = load_settings("0dte", env={}, overrides={"execution.parent_timeout_s": 90})
    assert slower.exits.zero_dte.closeout_lead_s == 180
    assert zero_dte_closeout_at(session(DAY), slower.exits.zero_dte) == at(DAY, 15, 42)
    own = load_settings("0dte", env={}, overrides={"exits.zero_dte.closeout_lead_s": 30})
    assert own.exits.zero_dte.closeout_lead_s == 30 and own.execution.parent_timeout_s == 60


def test_regular_day_closeout_time() -> None:
    assert zero_dte_flat_by(session(DAY), ZERO_CFG) == at(DAY, 15, 45)
    assert zero_dte_closeout_at(session(DAY), ZERO_CFG) == at(DAY, 15, 43)


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
