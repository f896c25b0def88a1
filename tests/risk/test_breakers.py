from datetime import date
from decimal import Decimal as D

import pytest

from risk.breakers import (
    BreakerState, TradingState, effects, evaluate_breaker, level_for, resume, trading_state,
)
from tests.risk.builders import settings

CFG = settings("0dte").breakers
BASE = D(60000)
MON, TUE, WED = date(2024, 3, 4), date(2024, 3, 5), date(2024, 3, 6)


@pytest.mark.parametrize("pnl, level", [
    ("0", 0), ("1000", 0), ("-4199.99", 0), ("-4200", 1), ("-5999.99", 1), ("-6000", 2), ("-8999", 2),
    ("-9000", 3), ("-11999.99", 3), ("-12000", 4), ("-60000", 4),
])
def test_level_thresholds_at_or_below_the_loss(pnl, level):
    assert level_for(D(pnl), BASE, CFG) == level


def test_7dte_thresholds_on_its_base():
    cfg = settings("7dte").breakers
    assert [level_for(D(-x), D(100000), cfg) for x in (6999, 7000, 10000, 15000, 20000)] == [0, 1, 2, 3, 4]


def test_effects_table():
    assert effects(0).entries_allowed and effects(0).scale_ins_allowed and not effects(0).min_bet_only
    one = effects(1)
    assert one.entries_allowed and one.min_bet_only and not one.scale_ins_allowed
    two = effects(2)
    assert not two.entries_allowed and not two.close_losers
    three = effects(3)
    assert three.close_losers and three.tighten_winners_to_break_even and not three.flatten
    four = effects(4)
    assert four.flatten and four.latch and not four.entries_allowed
    with pytest.raises(ValueError):
        effects(5)


def step(state, session, pnl):
    return evaluate_breaker(state, session, D(pnl), BASE, CFG)


def test_levels_ratchet_within_a_session_and_reset_at_the_next():
    s = step(BreakerState(), MON, -4500)
    assert (s.state.level, s.event) == (1, "tripped")
    s = step(s.state, MON, -6500)
    assert (s.state.level, s.event, s.previous_level) == (2, "tripped", 1)
    s = step(s.state, MON, -1000)  # the loss shrank: no entries until the next session anyway
    assert (s.state.level, s.event) == (2, None)
    s = step(s.state, MON, -9500)
    assert s.state.level == 3 and trading_state(s.state) is TradingState.REDUCING
    s = step(s.state, TUE, 0)
    assert (s.state.level, s.event, s.state.session) == (0, "reset", TUE)
    assert trading_state(s.state) is TradingState.ACTIVE


def test_level_four_latches_across_sessions_and_restarts():
    s = step(BreakerState(), MON, -12000)
    assert (s.state.level, s.state.latched) == (4, True)
    assert trading_state(s.state) is TradingState.HALTED
    stored = BreakerState(session=s.state.session, level=s.state.level, latched=s.state.latched)  # a restart
    s = step(stored, TUE, 500)
    assert (s.state.level, s.state.latched, s.event) == (4, True, None)
    assert trading_state(s.state) is TradingState.HALTED


def test_resume_clears_the_latch():
    latched = step(BreakerState(), MON, -13000).state
    same_day = resume(latched, MON)
    assert (same_day.level, same_day.latched) == (3, False)
    again = step(same_day, MON, -13500)  # the same losses do not re-latch after an operator's resume
    assert (again.state.level, again.state.latched) == (3, False)
    assert trading_state(again.state) is TradingState.REDUCING
    next_day = step(again.state, TUE, -12000)
    assert next_day.state.latched  # a new session's own emergency latches again
    later = resume(step(BreakerState(), MON, -13000).state, WED)
    assert (later.level, later.latched, later.session) == (0, False, WED)


def test_resume_on_a_later_session_starts_clear_after_its_open_carried_the_latch():
    """SPEC §3: level 4 "latch[es] HALTED across restarts until an operator resumes"; levels 1-3
    "reset at the next session open". A latch carried into Tuesday's open, then resumed on
    Tuesday, must leave Tuesday clear, not at Monday's level 3."""
    latched = step(BreakerState(), MON, -13000).state
    carried = step(latched, TUE, 0).state  # Tuesday's open (and every tick after it) while still latched
    assert (carried.level, carried.latched, carried.session) == (4, True, MON)
    resumed = resume(carried, TUE)
    assert (resumed.level, resumed.latched) == (0, False)
    assert trading_state(step(resumed, TUE, 0).state) is TradingState.ACTIVE


def test_trading_state_precedence():
    clear = BreakerState(session=MON)
    assert trading_state(clear) is TradingState.ACTIVE
    assert trading_state(clear, reconciling=True) is TradingState.RECONCILING
    assert trading_state(clear, operator_halted=True, reconciling=True) is TradingState.HALTED
    assert trading_state(BreakerState(MON, 2), reconciling=True) is TradingState.RECONCILING
    assert trading_state(BreakerState(MON, 1)) is TradingState.ACTIVE  # entries at the minimum bet only
    assert not TradingState.RECONCILING.allows_entries and TradingState.ACTIVE.allows_entries
