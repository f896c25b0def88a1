"""0dte tiered take-profit (SPEC §5.1).

The band is chosen by the entry's exchange time (a band applies from its `starts`, inclusive).
Every untriggered tier's target is scaled by VIX, by the time left to the session's close
and by how long the position has been held; each tier fires once.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from config.models import TierBand, ZeroDteExitsConfig
from exits.context import NOTHING, ExitContext, RuleResult, close, remaining
from exits.numbers import pct, share_of
from market.session import EXCHANGE_TZ
from exits.state import ExitState


def tier_id(number: int) -> str:
    return f"take_profit_tier_{number}"


def band_for(ctx: ExitContext, cfg: ZeroDteExitsConfig) -> TierBand:
    entered = ctx.position.entry_time.astimezone(EXCHANGE_TZ).time()
    chosen = cfg.bands[0]
    for band in cfg.bands:
        if band.starts <= entered:
            chosen = band
    return chosen


def vix_scale(vix: Decimal | None, cfg: ZeroDteExitsConfig) -> Decimal:
    """No VIX, no scaling: a missing index must not move the targets."""
    if vix is not None and vix < cfg.vix_low:
        return cfg.vix_low_scale
    if vix is not None and vix > cfg.vix_high:
        return cfg.vix_high_scale
    return Decimal(1)


def time_scale(ctx: ExitContext, cfg: ZeroDteExitsConfig) -> Decimal:
    """The tightest matching time-to-close band, times the held-too-long factor."""
    scale = Decimal(1)
    session = ctx.market.session
    if session is not None:
        left = hours(session.close - ctx.now)
        for band in cfg.time_compression:
            if left < band.below_hours:
                scale = band.scale
                break
    if hours(ctx.now - ctx.position.entry_time) > cfg.held_over_hours:
        scale *= cfg.held_scale
    return scale


def hours(span: timedelta) -> Decimal:
    """Exact hours of a timedelta (no float seconds at band edges)."""
    seconds = Decimal(span.days * 86400 + span.seconds) + Decimal(span.microseconds) / 1_000_000
    return seconds / 3600


def macro_scale(ctx: ExitContext, macro_day_scale: Decimal) -> Decimal:
    """SPEC §10.1: on a macro day (FOMC, CPI, NFP) the targets are taken sooner."""
    return macro_day_scale if ctx.market.macro_events else Decimal(1)


def tiered_take_profit(ctx: ExitContext, state: ExitState, cfg: ZeroDteExitsConfig,
                       macro_day_scale: Decimal = Decimal(1)) -> RuleResult:
    price = ctx.live_price
    if price is None:
        return NOTHING, state
    band = band_for(ctx, cfg)
    macro = macro_scale(ctx, macro_day_scale)
    scale = vix_scale(ctx.market.vix, cfg) * time_scale(ctx, cfg) * macro
    actions = []
    for number, tier in enumerate(band.tiers, start=1):
        rule = tier_id(number)
        target = tier.target * scale
        if state.has_fired(rule) or price < ctx.price_at(target):
            continue
        last = number == len(band.tiers)
        quantity = remaining(ctx.position, state) if last else share_of(ctx.position.original_quantity, tier.share)
        reason = (f"profit {pct(ctx.profit(price))} reached tier {number}/{len(band.tiers)} target {pct(target)}"
                  f" (base {pct(tier.target)} x {scale.normalize():f})")
        if macro != 1:
            reason += f"; macro day ({', '.join(ctx.market.macro_events)}) x {macro.normalize():f}"
        fired, state = close(ctx, state, quantity, rule, reason, fired=(rule,))
        actions.extend(fired)
    return tuple(actions), state
