"""Account circuit breakers and the trading state (SPEC §3).

Pure: the engine feeds the session P&L (realized + unrealized, marked to mid) at every
checkpoint, stores the returned state and records an event whenever it changes. Levels 1-3
ratchet up within a session and reset at the next; the top level latches across sessions
and restarts until an operator resumes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import Enum

from config.models import BreakersConfig


class TradingState(str, Enum):
    ACTIVE = "ACTIVE"  # entries and exits
    REDUCING = "REDUCING"  # exits only
    HALTED = "HALTED"  # nothing but flattening
    RECONCILING = "RECONCILING"  # after a (re)connect, until the book matches the broker: no entries

    @property
    def allows_entries(self) -> bool:
        return self is TradingState.ACTIVE


@dataclass(frozen=True, slots=True)
class BreakerEffects:
    """What a breaker level does; each level keeps the restrictions of the levels below it."""

    level: int
    entries_allowed: bool
    min_bet_only: bool
    scale_ins_allowed: bool
    close_losers: bool
    tighten_winners_to_break_even: bool
    flatten: bool
    latch: bool


# SPEC §3's effect column, by level (0 = no breaker).
_EFFECTS = (
    BreakerEffects(0, entries_allowed=True, min_bet_only=False, scale_ins_allowed=True, close_losers=False,
                   tighten_winners_to_break_even=False, flatten=False, latch=False),
    BreakerEffects(1, entries_allowed=True, min_bet_only=True, scale_ins_allowed=False, close_losers=False,
                   tighten_winners_to_break_even=False, flatten=False, latch=False),
    BreakerEffects(2, entries_allowed=False, min_bet_only=True, scale_ins_allowed=False, close_losers=False,
                   tighten_winners_to_break_even=False, flatten=False, latch=False),
    BreakerEffects(3, entries_allowed=False, min_bet_only=True, scale_ins_allowed=False, close_losers=True,
                   tighten_winners_to_break_even=True, flatten=False, latch=False),
    BreakerEffects(4, entries_allowed=False, min_bet_only=True, scale_ins_allowed=False, close_losers=True,
                   tighten_winners_to_break_even=True, flatten=True, latch=True),
)
TOP_LEVEL = _EFFECTS[-1].level


def effects(level: int) -> BreakerEffects:
    if not 0 <= level <= TOP_LEVEL:
        raise ValueError(f"breaker level must be 0-{TOP_LEVEL}, got {level}")
    return _EFFECTS[level]


def level_for(session_pnl: Decimal, base: Decimal, cfg: BreakersConfig) -> int:
    """The highest level whose loss the session P&L has reached (P&L <= -loss_pct × base), else 0."""
    level = 0
    for row in cfg.levels:
        if session_pnl <= -row.loss_pct * base:
            level = row.level
    return level


@dataclass(frozen=True, slots=True)
class BreakerState:
    # The session last evaluated; while latched, the session the top level tripped in, so that an
    # operator's resume on a later session (after its open carried the latch) starts it clear.
    session: date | None = None
    level: int = 0
    latched: bool = False  # the top level: survives sessions and restarts until an operator resumes
    resumed_in_session: bool = False  # an operator resumed this session: the same loss does not re-latch

    @property
    def effects(self) -> BreakerEffects:
        return effects(self.level)


@dataclass(frozen=True, slots=True)
class BreakerUpdate:
    state: BreakerState
    previous_level: int
    session_pnl: Decimal

    @property
    def event(self) -> str | None:
        """`tripped` when the level rose, `reset` when a new session lowered it, else None."""
        if self.state.level > self.previous_level:
            return "tripped"
        if self.state.level < self.previous_level:
            return "reset"
        return None


def evaluate_breaker(previous: BreakerState, session: date, session_pnl: Decimal, base: Decimal,
                     cfg: BreakersConfig) -> BreakerUpdate:
    """The breaker after this session's P&L, given the state stored before it."""
    new_session = previous.session != session
    carried = TOP_LEVEL if previous.latched else (0 if new_session else previous.level)
    resumed = previous.resumed_in_session and not new_session
    reached = level_for(session_pnl, base, cfg)
    if resumed:
        reached = min(reached, TOP_LEVEL - 1)
    level = max(carried, reached)
    state = BreakerState(session=previous.session if previous.latched else session, level=level,
                         latched=previous.latched or level == TOP_LEVEL, resumed_in_session=resumed)
    return BreakerUpdate(state=state, previous_level=previous.level, session_pnl=session_pnl)


def resume(previous: BreakerState, session: date) -> BreakerState:
    """An operator's resume: clears the latch. Within the session that tripped it the losses are still
    there, so the level below the top stays (no entries); on a later session it starts clear."""
    if previous.session == session:
        return BreakerState(session=session, level=min(previous.level, TOP_LEVEL - 1), latched=False,
                            resumed_in_session=True)
    return BreakerState(session=session)


def trading_state(breaker: BreakerState, *, operator_halted: bool = False, reconciling: bool = False) -> TradingState:
    if operator_halted or breaker.latched or breaker.effects.flatten:
        return TradingState.HALTED
    if reconciling:
        return TradingState.RECONCILING
    if not breaker.effects.entries_allowed:
        return TradingState.REDUCING
    return TradingState.ACTIVE
