"""Per-position loss levels on premium (SPEC §3): an alert, then closing part. The hard stop
that closes the rest is the protective stop of `exits.stops`."""

from __future__ import annotations

from config.models import PositionLevelsConfig
from exits.context import NOTHING, ExitContext, RuleResult, alert, close, remaining
from exits.numbers import money, pct, share_of
from exits.state import ExitState

ALERT = "loss_alert"
CLOSE_HALF = "loss_close_half"


def loss_alert(ctx: ExitContext, state: ExitState, cfg: PositionLevelsConfig) -> RuleResult:
    price = ctx.live_price
    if price is None or state.has_fired(ALERT) or price > ctx.price_at(cfg.alert_pct):
        return NOTHING, state
    reason = f"premium {money(price)} is {pct(ctx.profit(price))}, at or below the alert level {pct(cfg.alert_pct)}"
    return alert(state, ALERT, reason)


def loss_close_half(ctx: ExitContext, state: ExitState, cfg: PositionLevelsConfig) -> RuleResult:
    """Closes `close_half_share` of what is open then (at least one contract, so a single
    contract closes whole), once."""
    price = ctx.live_price
    if price is None or state.has_fired(CLOSE_HALF) or price > ctx.price_at(cfg.close_half_pct):
        return NOTHING, state
    quantity = share_of(remaining(ctx.position, state), cfg.close_half_share)
    reason = f"premium {money(price)} is {pct(ctx.profit(price))}, at or below {pct(cfg.close_half_pct)}"
    return close(ctx, state, quantity, CLOSE_HALF, reason, fired=(CLOSE_HALF,))
