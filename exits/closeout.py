"""Time-based exits that close whatever is left: the 0dte close-out (SPEC §5.1) and the 7dte
expiry-day close (§5.3).

§5.1 says 0dte positions are closed BY 15:45 (half days: 15 minutes before the early close): that
is the deadline, `zero_dte_flat_by`. The close-out starts `closeout_lead_s` earlier
(`zero_dte_closeout_at`, the one moment the scheduler's job, the core's timer and this rule share),
so the sliced exit is flat by the deadline rather than starting at it."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from config.models import SevenDteExitsConfig, ZeroDteExitsConfig
from exits.context import NOTHING, ExitContext, RuleResult, close_all
from market.session import SessionTimes
from exits.state import ExitState


def cutoff(session: SessionTimes, at: time, before_early_close_min: int) -> datetime:
    """`at` on the session's day, or `before_early_close_min` before an early close if sooner."""
    moment = session.at(at)
    if session.early_close:
        moment = min(moment, session.close - timedelta(minutes=before_early_close_min))
    return moment


def zero_dte_flat_by(session: SessionTimes, cfg: ZeroDteExitsConfig) -> datetime:
    """The deadline: every 0dte position is flat by then."""
    return cutoff(session, cfg.closeout_time, cfg.closeout_before_early_close_min)


def zero_dte_closeout_at(session: SessionTimes, cfg: ZeroDteExitsConfig) -> datetime:
    """When the close-out starts: the deadline less the lead the slicer needs to finish by it."""
    return zero_dte_flat_by(session, cfg) - timedelta(seconds=float(cfg.closeout_lead_s))


def expiry_close_at(session: SessionTimes, cfg: SevenDteExitsConfig) -> datetime:
    return cutoff(session, cfg.expiry_close_time, cfg.expiry_close_before_early_close_min)


def zero_dte_closeout(ctx: ExitContext, state: ExitState, cfg: ZeroDteExitsConfig) -> RuleResult:
    """Every 0dte position is flat by the close-out; fires on any evaluation at or after it,
    so a daemon that was down at 15:45 still closes on its first look, even days later."""
    if ctx.dte < 0:
        return _past_expiry(ctx, state, "closeout", "0dte close-out")
    session = ctx.market.session
    if session is None:
        return NOTHING, state
    return _close_from(ctx, state, zero_dte_closeout_at(session, cfg), "closeout", "0dte close-out",
                       zero_dte_flat_by(session, cfg))


def expiry_close(ctx: ExitContext, state: ExitState, cfg: SevenDteExitsConfig) -> RuleResult:
    """On expiry day what is left is sold before the close rather than left to exercise."""
    if ctx.dte < 0:
        return _past_expiry(ctx, state, "expiry_close", "expiry-day close")
    session = ctx.market.session
    if session is None or ctx.dte != 0:
        return NOTHING, state
    return _close_from(ctx, state, expiry_close_at(session, cfg), "expiry_close", "expiry-day close")


def _close_from(ctx: ExitContext, state: ExitState, at: datetime, rule: str, what: str,
                flat_by: datetime | None = None) -> RuleResult:
    if ctx.now < at:
        return NOTHING, state
    half_day = " (early close)" if ctx.market.session is not None and ctx.market.session.early_close else ""
    if flat_by is not None and flat_by != at:
        reason = f"{what} at {at:%H:%M:%S} to be flat by {flat_by:%H:%M}{half_day}"
    else:
        reason = f"{what} at {at:%H:%M}{half_day}"
    return close_all(ctx, state, rule, reason, fired=(rule,))


def _past_expiry(ctx: ExitContext, state: ExitState, rule: str, what: str) -> RuleResult:
    """Still open after its expiry day, the position missed its cut-off (a daemon that was down,
    a replayed path running on): "closed by" still holds, so it closes on this look, at any hour."""
    return close_all(ctx, state, rule, f"{what} missed: expired {ctx.position.expiry}", fired=(rule,))
