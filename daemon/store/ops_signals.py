"""Signals and decisions: every signal kept as it arrived, every decision with its breakdown."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from daemon.store.errors import StoreError
from daemon.store.models import DecisionRow, SignalRow
from daemon.store.records import DecisionRecord, SignalRecord
from daemon.store.types import jsonable, keep_sequence_ahead, stored

SIGNAL_STATUSES = ("received", "accepted", "refused")


def signal_values(profile: str, signal_id: str, payload: Mapping[str, Any], received_at: datetime,
                  status: str = "received", reason: str | None = None) -> dict[str, Any]:
    """A signal's row as checked input (here and in the journal's Core path, daemon/store/journal_ops_state.py)."""
    if not signal_id:
        raise StoreError("a signal needs an id", "missing_signal_id")
    if status not in SIGNAL_STATUSES:
        raise StoreError(f"signal status {status!r} is not one of {SIGNAL_STATUSES}", "bad_signal_status")
    return {"profile": profile, "id": signal_id, "received_at": received_at, "payload": _as_object(jsonable(payload)),
            "status": status, "reason": reason}


def record_signal(session: Session, profile: str, signal_id: str, payload: Mapping[str, Any], received_at: datetime,
                  status: str = "received", reason: str | None = None) -> bool:
    values = signal_values(profile, signal_id, payload, received_at, status, reason)
    if session.get(SignalRow, (profile, signal_id)) is not None:
        return False
    session.add(SignalRow(**values))
    return True


def is_duplicate_signal(session: Session, profile: str, signal_id: str) -> bool:
    return session.get(SignalRow, (profile, signal_id)) is not None


def get_signal(session: Session, profile: str, signal_id: str) -> SignalRecord | None:
    row = session.get(SignalRow, (profile, signal_id))
    if row is None:
        return None
    return SignalRecord(signal_id=row.id, received_at=row.received_at, payload=row.payload,
                        status=row.status, reason=row.reason)  # type: ignore[arg-type]


def decision_values(profile: str, signal_id: str | None, at: datetime, accepted: bool, reason: str | None,
                    contracts: int, notional: Decimal, multiplier: Decimal, breakdown: Any) -> dict[str, Any]:
    """A decision's row but its id (here and in the journal's Core path)."""
    return {"profile": profile, "signal_id": signal_id, "at": at, "accepted": bool(accepted), "reason": reason,
            "contracts": int(contracts), "notional": notional, "multiplier": multiplier,
            "breakdown": _as_object(jsonable(breakdown))}


def signal_decided(accepted: bool) -> str:
    """The status a signal's first decision gives it (a later decision leaves it as it is)."""
    return "accepted" if accepted else "refused"


def record_decision(session: Session, profile: str, *, signal_id: str | None, at: datetime, accepted: bool,
                    reason: str | None, contracts: int, notional: Decimal, multiplier: Decimal,
                    breakdown: Any, decision_id: int | None = None) -> DecisionRecord:
    if decision_id is not None and (existing := session.get(DecisionRow, decision_id)) is not None:
        if existing.profile != profile or existing.signal_id != signal_id:
            raise StoreError(f"decision id {decision_id} is taken by another decision", "decision_id_reused")
        return _decision(existing)  # the same record written again (a retried journal batch)
    row = DecisionRow(id=decision_id, **decision_values(profile, signal_id, at, accepted, reason, contracts, notional,
                                                        multiplier, breakdown))
    session.add(row)
    if signal_id is not None:
        signal = session.get(SignalRow, (profile, signal_id))
        # The first decision is the signal's; a later one (a duplicate resent) must not rewrite it.
        if signal is not None and signal.status == "received":
            signal.status = signal_decided(accepted)
            signal.reason = reason
    record = _decision(stored(session, row))
    keep_sequence_ahead(session, "decisions", decision_id)
    return record


def recent_decisions(session: Session, profile: str, limit: int = 50) -> list[DecisionRecord]:
    rows = session.scalars(select(DecisionRow).where(DecisionRow.profile == profile)
                           .order_by(DecisionRow.at.desc(), DecisionRow.id.desc()).limit(limit))
    return [_decision(r) for r in rows]


def first_decision(session: Session, profile: str, signal_id: str) -> DecisionRecord | None:
    row = session.scalars(select(DecisionRow).where(DecisionRow.profile == profile, DecisionRow.signal_id == signal_id)
                          .order_by(DecisionRow.at, DecisionRow.id).limit(1)).first()
    return None if row is None else _decision(row)


def prune_refused(session: Session, profile: str, before: datetime) -> dict[str, int]:
    """Part 8: delete refused signals received before `before`, with their decisions, and refused
    decisions of no stored signal (malformed bodies, resent duplicates) made before it. Accepted
    signals and every decision that led to an order are kept. Returns the rows deleted per table."""
    refused_ids = select(SignalRow.id).where(SignalRow.profile == profile, SignalRow.status == "refused",
                                             SignalRow.received_at < before)
    decisions = session.execute(delete(DecisionRow).where(
        DecisionRow.profile == profile, DecisionRow.accepted.is_(False),
        (DecisionRow.signal_id.in_(refused_ids)) | (DecisionRow.signal_id.is_(None) & (DecisionRow.at < before)))
        .execution_options(synchronize_session=False)).rowcount
    signals = session.execute(delete(SignalRow).where(
        SignalRow.profile == profile, SignalRow.status == "refused", SignalRow.received_at < before)
        .execution_options(synchronize_session=False)).rowcount
    return {"signals": int(signals or 0), "decisions": int(decisions or 0)}


def _as_object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {"value": value}


def _decision(row: DecisionRow) -> DecisionRecord:
    return DecisionRecord(id=row.id, signal_id=row.signal_id, at=row.at, accepted=row.accepted, reason=row.reason,
                          contracts=row.contracts, notional=row.notional, multiplier=row.multiplier,
                          breakdown=row.breakdown)
