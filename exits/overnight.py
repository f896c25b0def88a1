"""7dte overnight gap watch (SPEC §5.3): outside regular hours, an adverse move of the
underlying beyond the limit from the last close flags the position to exit at the next open."""

from __future__ import annotations

from dataclasses import replace

from config.models import SevenDteExitsConfig
from exits.context import NOTHING, ExitContext, RuleResult, alert, close_all
from exits.numbers import money, pct
from exits.state import ExitState

GAP = "overnight_gap"
EXIT = "overnight_exit"


def overnight_watch(ctx: ExitContext, state: ExitState, cfg: SevenDteExitsConfig) -> RuleResult:
    """Adverse is down for a call, up for a put (a combo: its `adverse_gap`); strictly beyond `overnight_gap_pct`.
    The flag latches: a recovery before the open does not clear it."""
    underlying = ctx.market.underlying_price
    last_close = ctx.market.previous_underlying_close
    if ctx.in_regular_hours or state.exit_at_open or underlying is None or last_close is None:
        return NOTHING, state
    gap = ctx.position.adverse_gap or ("down" if ctx.position.right == "C" else "up")
    down = underlying < last_close * (1 - cfg.overnight_gap_pct)
    up = underlying > last_close * (1 + cfg.overnight_gap_pct)
    adverse = {"down": down, "up": up, "both": down or up, "none": False}[gap]
    if not adverse:
        return NOTHING, state
    move = (underlying - last_close) / last_close
    reason = (f"{ctx.position.underlying} {money(underlying)} is {pct(move)} from the close {money(last_close)} "
              f"(limit {pct(cfg.overnight_gap_pct)} adverse): exit at the open")
    actions, state = alert(state, GAP, reason)
    return actions, replace(state, exit_at_open_since=ctx.now)


def overnight_exit(ctx: ExitContext, state: ExitState) -> RuleResult:
    """A flagged position closes at the first open after the flag, or on the first look after it."""
    since = state.exit_at_open_since
    session = ctx.market.session
    if since is None or session is None or session.open <= since or ctx.now < session.open:
        return NOTHING, state
    return close_all(ctx, state, EXIT, f"overnight gap flagged at {since:%Y-%m-%d %H:%M}: exit at the open",
                     fired=(EXIT,))
