"""Per-session-date summary of a run, for the end-of-run report (SPEC §8)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from market.clock import EXCHANGE_TZ
from daemon.store.models import BreakerEventRow, DecisionRow, FillRow, PositionRow, SignalRow
from daemon.store.records import DaySummary

ZERO = Decimal(0)


@dataclass
class _Day:
    signals: int = 0
    accepted: int = 0
    refused_by_reason: Counter[str] = field(default_factory=Counter)
    opened: int = 0
    closed: int = 0
    realized: Decimal = ZERO
    commissions: Decimal = ZERO
    breaker_events: int = 0
    max_level: int = 0


def summary_by_day(session: Session, store_profile: str, profile: str | None = None) -> list[DaySummary]:
    profile = profile or store_profile
    days: defaultdict[date, _Day] = defaultdict(_Day)
    for (at,) in session.execute(select(SignalRow.received_at).where(SignalRow.profile == profile)):
        days[_session_date(at)].signals += 1
    for at, accepted, reason in session.execute(
            select(DecisionRow.at, DecisionRow.accepted, DecisionRow.reason).where(DecisionRow.profile == profile)):
        day = days[_session_date(at)]
        if accepted:
            day.accepted += 1
        else:
            day.refused_by_reason[reason or "unspecified"] += 1
    for at, realized, commission in session.execute(
            select(FillRow.at, FillRow.realized_pnl, FillRow.commission).where(FillRow.profile == profile)):
        day = days[_session_date(at)]
        day.realized += realized
        day.commissions += commission
    _count_positions(session, profile, days)
    for at, level in session.execute(
            select(BreakerEventRow.at, BreakerEventRow.level).where(BreakerEventRow.profile == profile)):
        day = days[_session_date(at)]
        day.breaker_events += 1
        day.max_level = max(day.max_level, level)
    return [_summary(d, days[d]) for d in sorted(days)]


def _count_positions(session: Session, profile: str, days: defaultdict[date, _Day]) -> None:
    """Trades opened and closed; P&L realized without a fill (e.g. expired worthless) goes to the closing day."""
    sums = session.execute(select(FillRow.position_id, func.sum(FillRow.realized_pnl))
                           .where(FillRow.profile == profile, FillRow.position_id.is_not(None))
                           .group_by(FillRow.position_id))
    by_fills = {position_id: total for position_id, total in sums}
    rows = session.execute(select(PositionRow.id, PositionRow.entry_time, PositionRow.closed_at,
                                  PositionRow.realized_pnl)
                           .where(PositionRow.profile == profile, PositionRow.original_qty > 0))
    for position_id, entry_time, closed_at, realized in rows:
        days[_session_date(entry_time)].opened += 1
        if closed_at is not None:
            day = days[_session_date(closed_at)]
            day.closed += 1
            day.realized += realized - (by_fills.get(position_id) or ZERO)


def _session_date(at: datetime) -> date:
    return at.astimezone(EXCHANGE_TZ).date()


def _summary(session_date: date, day: _Day) -> DaySummary:
    return DaySummary(session_date=session_date, signals=day.signals, accepted=day.accepted,
                      refused=sum(day.refused_by_reason.values()), refused_by_reason=dict(day.refused_by_reason),
                      trades_opened=day.opened, trades_closed=day.closed, realized_pnl=day.realized,
                      commissions=day.commissions, breaker_events=day.breaker_events,
                      max_breaker_level=day.max_level)
