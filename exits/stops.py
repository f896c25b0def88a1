"""The protective stop: where it starts, when it is hit, and telling the broker when it rises.

One stop per position, held in ExitState. It starts at the higher of the hard stop (SPEC §3)
and the 7dte initial stop (§5.3) and only ever moves up (trailing, last day, break-even).
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from config.models import PositionLevelsConfig, SevenDteExitsConfig
from exits.action import ExitAction
from exits.context import NOTHING, ExitContext, RuleResult, close_all, remaining
from exits.numbers import money
from exits.position import ExitPosition
from exits.state import ExitState


def hard_stop_price(position: ExitPosition, levels: PositionLevelsConfig) -> Decimal:
    return position.entry_price * (1 + levels.hard_stop_pct)


def initial_stop(position: ExitPosition, levels: PositionLevelsConfig,
                 runner: SevenDteExitsConfig | None) -> tuple[Decimal, str]:
    """(price, rule) of the stop placed at entry."""
    stop, rule = hard_stop_price(position, levels), "hard_stop"
    if runner is not None:
        runner_stop = position.entry_price * (1 - runner.initial_stop_pct)
        if runner_stop > stop:
            stop, rule = runner_stop, "initial_stop"
    return stop, rule


def raise_stop(state: ExitState, candidate: Decimal, rule: str) -> ExitState:
    """The ratchet: a lower candidate never moves the stop down."""
    if state.stop_price is not None and candidate <= state.stop_price:
        return state
    return replace(state, stop_price=candidate, stop_rule=rule)


def stop_hit(ctx: ExitContext, state: ExitState) -> RuleResult:
    """A premium at or below the stop closes everything at once, gaps included: a jump from
    above the alert level straight through the stop skips the levels in between."""
    price = ctx.live_price
    if price is None or state.stop_price is None or price > state.stop_price:
        return NOTHING, state
    rule = state.stop_rule or "hard_stop"
    reason = f"premium {money(price)} at or below the {rule.replace('_', ' ')} {money(state.stop_price)}"
    return close_all(ctx, state, rule, reason)


def announce_stop(position: ExitPosition, state: ExitState) -> RuleResult:
    """A tighten_stop action when the stop has risen past the one last sent, sized to what is open."""
    left = remaining(position, state)
    stop = state.stop_price
    if left == 0 or stop is None or (state.stop_announced is not None and stop <= state.stop_announced):
        return NOTHING, state
    rule = state.stop_rule or "hard_stop"
    reason = f"{rule.replace('_', ' ')} raised to {money(stop)}"
    action = ExitAction("tighten_stop", left, reason, rule, stop_price=stop)
    return (action,), replace(state, stop_announced=stop)
