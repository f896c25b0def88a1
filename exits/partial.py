"""7dte partial profit-taking (SPEC §5.2): cumulative, so a jump past several thresholds closes
their shares at once and a threshold is never paid twice."""

from __future__ import annotations

from decimal import Decimal

from config.models import SevenDteExitsConfig
from exits.context import NOTHING, ExitContext, RuleResult, close
from exits.numbers import pct, share_of
from exits.state import ExitState

RULE = "partial_profit"


def threshold_id(number: int) -> str:
    return f"{RULE}_{number}"


def dte_scale(dte: int, cfg: SevenDteExitsConfig) -> Decimal:
    for band in cfg.dte_scaling:
        if dte <= band.max_dte:
            return band.scale
    return Decimal(1)


def earnings_pending(ctx: ExitContext) -> bool:
    """Earnings from today up to and including the expiry day are still ahead of the position."""
    earnings = ctx.market.earnings_date
    return earnings is not None and ctx.now.date() <= earnings <= ctx.position.expiry


def threshold_scale(ctx: ExitContext, cfg: SevenDteExitsConfig) -> Decimal:
    scale = dte_scale(ctx.dte, cfg)
    if earnings_pending(ctx):
        scale *= cfg.earnings_scale
    return scale


def partial_profit(ctx: ExitContext, state: ExitState, cfg: SevenDteExitsConfig) -> RuleResult:
    """Close round(original × Σ shares reached) − what this rule already closed."""
    price = ctx.live_price
    if price is None:
        return NOTHING, state
    scale = threshold_scale(ctx, cfg)
    reached = [n for n, t in enumerate(cfg.thresholds, start=1) if price >= ctx.price_at(t.target * scale)]
    if not reached:
        return NOTHING, state
    share = sum((cfg.thresholds[n - 1].share for n in reached), Decimal(0))
    due = share_of(ctx.position.original_quantity, share) - state.profit_closed
    new = [n for n in reached if not state.has_fired(threshold_id(n))]
    names = ", ".join(pct(cfg.thresholds[n - 1].target * scale) for n in new) or "none new"
    reason = (f"profit {pct(ctx.profit(price))} reached thresholds {names}"
              f" (x {scale.normalize():f}); cumulative share {pct(share)}")
    if earnings_pending(ctx):  # SPEC §5.2/§10.1: say why the thresholds are lower
        assert ctx.market.earnings_date is not None
        reason += (f"; earnings {ctx.market.earnings_date.isoformat()} before expiry"
                   f" {ctx.position.expiry.isoformat()} x {cfg.earnings_scale.normalize():f}")
    return close(ctx, state, max(due, 0), RULE, reason,
                 fired=tuple(threshold_id(n) for n in reached), profit_taking=True)
