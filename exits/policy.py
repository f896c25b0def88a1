"""The exit policy of a profile: its rules composed in one fixed order (SPEC §5, §3).

Order, first to last; the evaluation stops as soon as nothing is left open:
  1. time: 0dte close-out / 7dte expiry-day close, 7dte exit-at-open after an overnight gap
  2. stop: (7dte) raise peak and trailing/last-day stop, then the stop hit (hard, initial,
     trailing, last-day or break-even) closes everything, gaps included
  3. loss levels: alert, then close half
  4. take-profit: 0dte tiers / 7dte partial thresholds, then the runner's take-profit
  5. tighten_stop when the stop has risen (sized to what is still open)
  6. (7dte, outside regular hours) the overnight gap watch
Every close is capped at what is still open, so the total closed never exceeds the position.
Premium rules (2-4) act only on quotes inside regular hours; time rules act at any hour.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from config.models import Settings
from config.per_settings import per_settings
from config.plain import plain
from exits import closeout, levels, overnight, partial, runner, stops, tiered
from exits.action import ExitAction
from exits.context import NOTHING, ExitContext, RuleResult, remaining
from exits.errors import ExitInputError
from exits.market import MarketSnapshot
from exits.position import ExitPosition
from exits.state import ExitState

Step = Callable[[ExitContext, ExitState], RuleResult]


def new_state(position: ExitPosition, settings: Settings) -> ExitState:
    """The state of a position just opened: peak at entry, the initial stop placed."""
    stop, rule = stops.initial_stop(position, settings.position_levels, settings.exits.seven_dte
                                    if position.profile == "7dte" else None)
    return ExitState(peak_price=position.entry_price, stop_price=stop, stop_rule=rule, stop_announced=stop)


def evaluate(position: ExitPosition, state: ExitState, market: MarketSnapshot, now: datetime,
             settings: Settings) -> tuple[tuple[ExitAction, ...], ExitState]:
    """(actions, new state) for one look at the position. Same input, same output."""
    if position.profile != settings.profile.name:
        raise ExitInputError("profile_mismatch",
                             f"position is {position.profile}, settings are {settings.profile.name}")
    ctx = ExitContext(position, market, now)
    if state.stop_price is None:
        state = replace(new_state(position, settings), fired=state.fired,
                        quantity_closed=state.quantity_closed, profit_closed=state.profit_closed,
                        exit_at_open_since=state.exit_at_open_since)
    actions: list[ExitAction] = []
    left = remaining(position, state)
    for step in _steps(settings):
        if left == 0:
            break
        fired, moved = step(ctx, state)
        if fired:
            actions.extend(fired)
        if moved is not state:  # most steps hand the state back untouched: what remains is unchanged
            state = moved
            left = remaining(position, state)
    return tuple(actions), state


# Speed, not a rule: the steps depend only on the (frozen) settings, so they are built once per
# Settings object rather than once per evaluation.
@per_settings
def _steps(settings: Settings) -> tuple[Step, ...]:
    # The rules read their config on every look (~40 reads a 7dte evaluation): plain attributes
    # answer with the very same values without pydantic's `__getattr__` hook (config/plain.py).
    settings = plain(settings)
    lv = settings.position_levels
    loss = (
        lambda c, s: levels.loss_alert(c, s, lv),
        lambda c, s: levels.loss_close_half(c, s, lv),
    )
    announce: Step = lambda c, s: stops.announce_stop(c.position, s)  # noqa: E731
    zero = settings.exits.zero_dte
    events = settings.regime.events
    macro_scale = events.macro_day_target_scale if events.enabled else Decimal(1)
    if settings.profile.name == "0dte" and zero is not None:
        return (
            lambda c, s: closeout.zero_dte_closeout(c, s, zero),
            stops.stop_hit,
            *loss,
            lambda c, s: tiered.tiered_take_profit(c, s, zero, macro_scale),
            announce,
        )
    seven = settings.exits.seven_dte
    if seven is None:  # Settings validation makes this unreachable; keep the error named anyway
        raise ExitInputError("profile_mismatch", f"no exit rules configured for {settings.profile.name}")
    return (
        lambda c, s: closeout.expiry_close(c, s, seven),
        overnight.overnight_exit,
        lambda c, s: (NOTHING, runner.ratchet(c, s, seven)),
        stops.stop_hit,
        *loss,
        lambda c, s: partial.partial_profit(c, s, seven),
        lambda c, s: runner.runner_take_profit(c, s, seven),
        announce,
        lambda c, s: overnight.overnight_watch(c, s, seven),
    )
