"""Positions, their exit-rule state and the exit events fired on them.

Long options only (SPEC §1: exposure is premium paid): BUY adds contracts, SELL takes them off.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from market.types import OptionContract
from daemon.store.errors import StoreError
from daemon.store.models import ExitEventRow, ExitStateRow, PositionRow
from daemon.store.records import ExitEventRecord, PositionRecord
from daemon.store.types import jsonable, keep_sequence_ahead, quantize_money, stored

ZERO = Decimal(0)


def opening_values(profile: str, contract: OptionContract, opened_at: datetime, *, signal_id: str | None = None,
                   quantity: int = 0, entry_price: Decimal | None = None) -> dict[str, Any]:
    """A new position's row as checked input (here and in the journal's Core path, journal_ops_state.py)."""
    if quantity < 0:
        raise StoreError(f"a position opens with a quantity >= 0, not {quantity}", "bad_quantity")
    if quantity > 0 and entry_price is None:
        raise StoreError("a position opened with contracts needs their entry_price", "missing_entry_price")
    return {"profile": profile, "underlying": contract.underlying, "contract_key": contract.key,
            "expiry": contract.expiry, "strike": contract.strike, "right": contract.right,
            "multiplier": contract.multiplier, "entry_time": opened_at,
            "entry_price": quantize_money(entry_price or ZERO), "original_qty": quantity, "open_qty": quantity,
            "realized_pnl": ZERO, "status": "open", "opened_by_signal_id": signal_id, "closed_at": None,
            "close_reason": None}


def open_position(session: Session, profile: str, contract: OptionContract, opened_at: datetime, *,
                  signal_id: str | None = None, quantity: int = 0,
                  entry_price: Decimal | None = None) -> PositionRecord:
    row = PositionRow(**opening_values(profile, contract, opened_at, signal_id=signal_id, quantity=quantity,
                                       entry_price=entry_price))
    session.add(row)
    return position_record(stored(session, row))


def close_position(session: Session, profile: str, position_id: int, closed_at: datetime, *,
                   exit_price: Decimal | None = None, reason: str | None = None) -> PositionRecord:
    row = position_row(session, profile, position_id)
    if row.open_qty > 0:
        if exit_price is None:
            raise StoreError(f"position {position_id} still has {row.open_qty} open; give the exit_price",
                             "position_still_open")
        row.realized_pnl += quantize_money((exit_price - row.entry_price) * row.open_qty * row.multiplier)
        row.open_qty = 0
    row.status = "closed"
    row.closed_at = row.closed_at or closed_at
    row.close_reason = reason or row.close_reason
    return position_record(stored(session, row))


def apply_to_position(row: PositionRow, side: str, quantity: int, price: Decimal, commission: Decimal,
                      at: datetime) -> tuple[Decimal, int]:
    """Apply one fill to a position; returns (what it realized, contracts sold beyond the open quantity)."""
    realized = -commission
    unmatched = 0
    if side == "BUY":
        total = row.open_qty + quantity
        row.entry_price = quantize_money((row.entry_price * row.open_qty + price * quantity) / total)
        if row.original_qty == 0:
            row.entry_time = at
        row.original_qty += quantity
        row.open_qty = total
        row.status, row.closed_at, row.close_reason = "open", None, None
    else:
        matched = min(quantity, row.open_qty)
        unmatched = quantity - matched
        realized += quantize_money((price - row.entry_price) * matched * row.multiplier)
        row.open_qty -= matched
        if row.open_qty == 0 and row.original_qty > 0 and row.status == "open":
            row.status, row.closed_at, row.close_reason = "closed", at, "filled"
    row.realized_pnl += realized
    return realized, unmatched


def get_position(session: Session, profile: str, position_id: int) -> PositionRecord | None:
    row = session.get(PositionRow, position_id)
    return position_record(row) if row is not None and row.profile == profile else None


def load_open_positions(session: Session, profile: str) -> list[PositionRecord]:
    rows = session.scalars(select(PositionRow).where(PositionRow.profile == profile, PositionRow.status == "open")
                           .order_by(PositionRow.entry_time, PositionRow.id))
    return [position_record(r) for r in rows]


def list_positions(session: Session, profile: str, status: str | None = None, limit: int = 100) -> list[PositionRecord]:
    query = select(PositionRow).where(PositionRow.profile == profile)
    if status is not None:
        query = query.where(PositionRow.status == status)
    rows = session.scalars(query.order_by(PositionRow.entry_time.desc(), PositionRow.id.desc()).limit(limit))
    return [position_record(r) for r in rows]


def highest_position_id(session: Session, profile: str) -> int:
    """The highest position id in the database, every profile's (the live core numbers its new ones after it)."""
    return session.scalar(select(func.max(PositionRow.id))) or 0


def save_exit_state(session: Session, profile: str, position_id: int, state: Any, at: datetime) -> None:
    position_row(session, profile, position_id)
    value = jsonable(state)
    if not isinstance(value, dict):
        raise StoreError("an exit state is a mapping or a dataclass", "bad_exit_state")
    row = session.get(ExitStateRow, position_id)
    if row is None:
        session.add(ExitStateRow(position_id=position_id, state=value, updated_at=at))
    else:
        row.state, row.updated_at = value, at


def load_exit_states(session: Session, profile: str) -> dict[int, dict[str, Any]]:
    rows = session.execute(select(ExitStateRow.position_id, ExitStateRow.state).join(PositionRow)
                           .where(PositionRow.profile == profile, PositionRow.status == "open"))
    return {position_id: state for position_id, state in rows}


def record_exit_event(session: Session, profile: str, position_id: int, *, rule: str, kind: str, quantity: int,
                      reason: str | None, at: datetime, event_id: int | None = None) -> ExitEventRecord:
    """`event_id`: given by the engine (its orderRef carries it before the row is written); writing the
    same id again is a no-op (the journal's natural key)."""
    position_row(session, profile, position_id)
    if event_id is not None and (existing := session.get(ExitEventRow, event_id)) is not None:
        if existing.profile != profile or existing.position_id != position_id or existing.rule != rule:
            raise StoreError(f"exit event id {event_id} is taken by another event", "exit_event_id_reused")
        return _exit_event(existing)
    row = ExitEventRow(id=event_id, profile=profile, position_id=position_id, rule=rule, kind=kind,
                       quantity=int(quantity), reason=reason, at=at)
    session.add(row)
    record = _exit_event(stored(session, row))
    keep_sequence_ahead(session, "exit_events", event_id)
    return record


def list_exit_events(session: Session, profile: str, position_id: int | None = None,
                     limit: int = 100) -> list[ExitEventRecord]:
    query = select(ExitEventRow).where(ExitEventRow.profile == profile)
    if position_id is not None:
        query = query.where(ExitEventRow.position_id == position_id)
    rows = session.scalars(query.order_by(ExitEventRow.at.desc(), ExitEventRow.id.desc()).limit(limit))
    return [_exit_event(r) for r in rows]


def position_row(session: Session, profile: str, position_id: int) -> PositionRow:
    row = session.get(PositionRow, position_id)
    if row is None or row.profile != profile:
        raise StoreError(f"no position {position_id} in profile {profile}", "unknown_position")
    return row


def position_record(row: PositionRow) -> PositionRecord:
    return PositionRecord(id=row.id, underlying=row.underlying, contract_key=row.contract_key, expiry=row.expiry,
                          strike=row.strike, right=row.right, multiplier=row.multiplier, entry_time=row.entry_time,
                          entry_price=row.entry_price, original_qty=row.original_qty, open_qty=row.open_qty,
                          realized_pnl=row.realized_pnl, status=row.status,  # type: ignore[arg-type]
                          opened_by_signal_id=row.opened_by_signal_id, closed_at=row.closed_at,
                          close_reason=row.close_reason)


def _exit_event(row: ExitEventRow) -> ExitEventRecord:
    return ExitEventRecord(id=row.id, position_id=row.position_id, rule=row.rule, kind=row.kind,
                           quantity=row.quantity, reason=row.reason, at=row.at)
