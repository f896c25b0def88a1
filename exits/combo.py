"""Exit rules of a credit combo (SPEC §9), on top of the profile's policy, as pure functions.

A combo is priced in its value space (market.combo): for a credit combo (the iron condor) the
value is width − cost to close, its entry value is the maximum loss and the credit received is
`value_offset − entry`. The profile's tier, partial, level and time rules run on that value
unchanged; a credit position adds:
- `credit_take_profit`: close what is left once `credit_take_profit_pct` of the credit is
  captured (value ≥ entry + pct × credit);
- `credit_stop`: its protective stop replaces the profile's hard stop: the loss reaches
  `credit_stop_multiple` × the credit (value ≤ entry − multiple × credit), or the maximum loss
  itself when that comes first (the stop then sits one tick above zero value).
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from config.models import MultilegConfig
from exits.context import NOTHING, ExitContext, RuleResult, close_all
from exits.numbers import money
from exits.state import ExitState

CREDIT_STOP = "credit_stop"
CREDIT_TAKE_PROFIT = "credit_take_profit"
MIN_STOP = Decimal("0.01")


def credit_of(entry_value: Decimal, value_offset: Decimal) -> Decimal:
    return value_offset - entry_value


def credit_initial_state(entry_value: Decimal, value_offset: Decimal, cfg: MultilegConfig,
                         state: ExitState | None = None) -> ExitState:
    """The state of a credit combo just opened: peak at entry, the credit stop placed."""
    credit = credit_of(entry_value, value_offset)
    stop = max(MIN_STOP, entry_value - cfg.credit_stop_multiple * credit)
    base = state or ExitState()
    return replace(base, peak_price=base.peak_price or entry_value, stop_price=stop, stop_rule=CREDIT_STOP,
                   stop_announced=stop)


def credit_take_profit(ctx: ExitContext, state: ExitState, value_offset: Decimal, cfg: MultilegConfig) -> RuleResult:
    price = ctx.live_price
    if price is None or state.has_fired(CREDIT_TAKE_PROFIT):
        return NOTHING, state
    credit = credit_of(ctx.entry, value_offset)
    if credit <= 0:
        return NOTHING, state
    target = ctx.entry + cfg.credit_take_profit_pct * credit
    if price < target:
        return NOTHING, state
    captured = (price - ctx.entry) / credit
    reason = (f"value {money(price)} captures {captured:.0%} of the {money(credit)} credit "
              f"(take profit at {cfg.credit_take_profit_pct:.0%})")
    return close_all(ctx, state, CREDIT_TAKE_PROFIT, reason, fired=(CREDIT_TAKE_PROFIT,))
