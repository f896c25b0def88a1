"""7dte runner (SPEC §5.3): the peak, the trailing stop locked on it, the last-day lock and
floor, and the take-profit of the remainder at R times the initial risk."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from config.models import SevenDteExitsConfig, Threshold
from exits.context import NOTHING, ExitContext, RuleResult, close_all
from exits.numbers import money, pct
from exits.state import ExitState
from exits.stops import raise_stop

TAKE_PROFIT = "runner_take_profit"
TRAILING = "trailing_stop"
LAST_DAY = "last_day_stop"


def peak(ctx: ExitContext, state: ExitState) -> Decimal:
    """Highest premium seen, never below entry; only live quotes count."""
    best = max(state.peak_price or ctx.entry, ctx.entry)
    price = ctx.live_price
    return best if price is None else max(best, price)


def step(ctx: ExitContext, rows: tuple[Threshold, ...], peak_price: Decimal) -> Decimal | None:
    """The value of the first row (highest `at` first) whose profit the peak has reached."""
    for row in rows:
        if peak_price >= ctx.price_at(row.at):
            return row.value
    return None


def r_multiple(ctx: ExitContext, cfg: SevenDteExitsConfig, peak_price: Decimal) -> Decimal:
    found = step(ctx, cfg.r_multiples, peak_price)
    return found if found is not None else min(cfg.r_multiples, key=lambda r: r.at).value


def stop_candidate(ctx: ExitContext, cfg: SevenDteExitsConfig, peak_price: Decimal) -> tuple[Decimal, str] | None:
    """Where the trailing rules would put the stop now, or None while they do not apply.

    On the last day a running trail locks at least `last_day_lock` of the gain, and every
    stop is at least entry × `last_day_floor`. (Locking a share of a zero gain would put a
    position that never ran at break-even and leave the floor meaningless, so the last-day
    lock tightens an active trail rather than starting one.)"""
    lock = step(ctx, cfg.trail_locks, peak_price)
    trail = None if lock is None else ctx.entry + (peak_price - ctx.entry) * lock
    if ctx.dte <= cfg.last_day_dte:
        floor = ctx.entry * cfg.last_day_floor
        if lock is not None:
            floor = max(floor, ctx.entry + (peak_price - ctx.entry) * max(lock, cfg.last_day_lock))
        return floor, LAST_DAY
    return None if trail is None else (trail, TRAILING)


def ratchet(ctx: ExitContext, state: ExitState, cfg: SevenDteExitsConfig) -> ExitState:
    """Peak up, stop up; never down. Emits nothing: `stops.announce_stop` tells the broker."""
    top = peak(ctx, state)
    if top is not state.peak_price:  # `peak` hands back the stored object when it did not move: no copy then
        state = replace(state, peak_price=top)
    candidate = stop_candidate(ctx, cfg, top)
    return state if candidate is None else raise_stop(state, *candidate)


def runner_take_profit(ctx: ExitContext, state: ExitState, cfg: SevenDteExitsConfig) -> RuleResult:
    """Target = entry + entry × initial_stop_pct × R, R chosen on the peak (this quote included).

    The remainder closes once the premium trades *beyond* the target. With the SPEC tables the
    3R target of a 20 % stop is exactly +60 %, where the §5.2 worked check says "hold"; taking
    the target as a level to exceed keeps that check true for the whole policy, not only for
    the partial rule, at the cost of one tick."""
    price = ctx.live_price
    if price is None:
        return NOTHING, state
    top = peak(ctx, state)
    multiple = r_multiple(ctx, cfg, top)
    target = ctx.entry + ctx.entry * cfg.initial_stop_pct * multiple
    if price <= target:
        return NOTHING, state
    reason = (f"premium {money(price)} reached the take-profit {money(target)} "
              f"({multiple.normalize():f}R on peak {pct(ctx.profit(top))})")
    return close_all(ctx, state, TAKE_PROFIT, reason, fired=(TAKE_PROFIT,))
