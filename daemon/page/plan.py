"""A position's exit plan, for the operator: what will close it next, and where (SPEC §5, §11).

A pure function over the same inputs the exit policy evaluates (position, exit state, market
snapshot, now, settings), using the exit rules' own pieces (bands, scales, rule ids), so the
page shows the targets the policy would act on now, not a second reading of the config.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from config.models import Settings
from exits.breakeven import BREAKEVEN
from exits.closeout import expiry_close_at, zero_dte_closeout_at
from exits.context import ExitContext
from exits.market import MarketSnapshot
from exits.partial import threshold_id, threshold_scale
from exits.position import ExitPosition
from exits.state import ExitState
from exits.runner import LAST_DAY, TRAILING
from exits.stops import initial_stop
from exits.tiered import band_for, tier_id, time_scale, vix_scale
from market.session import SessionTimes

# Stop rules that moved the stop up from where it started: shown as the trailing stop.
TRAILING_RULES = (TRAILING, LAST_DAY, BREAKEVEN)


@dataclass(frozen=True)
class ExitPlan:
    next_target: Decimal | None  # the premium of the next profit tier / threshold
    next_target_name: str | None  # "tier 2/3 +10.0%"; "runner take-profit" when only the runner is left
    stop: Decimal | None  # the protective stop now (hard or initial stop unless raised)
    stop_rule: str | None
    trailing_stop: Decimal | None  # the stop when a trailing rule raised it, else None
    forced_close: datetime | None  # 0dte close-out or 7dte expiry-day close


def exit_plan(position: ExitPosition, state: ExitState, market: MarketSnapshot, now: datetime,
              settings: Settings, expiry_session: SessionTimes | None) -> ExitPlan:
    """`expiry_session`: the session of the position's expiry day (its forced close is on it)."""
    ctx = ExitContext(position, market, now)
    target, name = _next_target(ctx, state, settings)
    stop, rule = state.stop_price, state.stop_rule
    if stop is None:
        stop, rule = initial_stop(position, settings.position_levels, settings.exits.seven_dte)
    trailing = stop if rule in TRAILING_RULES else None
    forced = None
    if expiry_session is not None:
        if settings.exits.zero_dte is not None:
            forced = zero_dte_closeout_at(expiry_session, settings.exits.zero_dte)
        elif settings.exits.seven_dte is not None:
            forced = expiry_close_at(expiry_session, settings.exits.seven_dte)
    return ExitPlan(target, name, stop, rule, trailing, forced)


def _next_target(ctx: ExitContext, state: ExitState, settings: Settings) -> tuple[Decimal | None, str | None]:
    zero, seven = settings.exits.zero_dte, settings.exits.seven_dte
    if zero is not None:
        band = band_for(ctx, zero)
        scale = vix_scale(ctx.market.vix, zero) * time_scale(ctx, zero)
        for number, tier in enumerate(band.tiers, start=1):
            if not state.has_fired(tier_id(number)):
                target = tier.target * scale
                return ctx.price_at(target), f"tier {number}/{len(band.tiers)} {_pct(target)}"
        return None, None
    if seven is not None:
        scale = threshold_scale(ctx, seven)
        for number, threshold in enumerate(seven.thresholds, start=1):
            if not state.has_fired(threshold_id(number)):
                target = threshold.target * scale
                return ctx.price_at(target), f"threshold {number}/{len(seven.thresholds)} {_pct(target)}"
        return None, "runner: trailing stop and take-profit"
    return None, None


def _pct(fraction: Decimal) -> str:
    return f"{fraction * 100:+.1f}%"
