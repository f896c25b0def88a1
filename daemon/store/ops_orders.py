"""Order intents (written before placeOrder), broker order statuses and fills (applied once)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from market.types import Fill, OrderRequest, OrderStatus, OrderUpdate
from daemon.store.errors import StoreError
from daemon.store.models import FillRow, MetaRow, OrderIntentRow, OrderRow
from daemon.store.ops_positions import apply_to_position, position_record, position_row
from daemon.store.records import (
    INTENT_STATES,
    TERMINAL_INTENT_STATES,
    FillOutcome,
    FillRecord,
    IntentRecord,
    OrderRecord,
)
from daemon.store.types import from_db_time, quantize_money, stored, to_utc

HIGHEST_ORDER_ID_KEY = "highest_order_id"

# Forward only: an intent never moves back to a lower rank, and a terminal state is final.
_RANK = {"intent": 0, "sent": 1, "acked": 2, "working": 3, "filled": 4, "cancelled": 4, "rejected": 4}
_STATE_OF_STATUS = {
    OrderStatus.PENDING_SUBMIT: "sent",
    OrderStatus.SUBMITTED: "working",
    OrderStatus.PARTIALLY_FILLED: "working",
    OrderStatus.FILLED: "filled",
    OrderStatus.CANCELLED: "cancelled",
    OrderStatus.REJECTED: "rejected",
    OrderStatus.INACTIVE: "rejected",
}
_DONE_STATUSES = tuple(s.value for s in OrderStatus if s.done)


def write_intent(session: Session, profile: str, request: OrderRequest, at: datetime, *,
                 parent_ref: str | None = None, position_id: int | None = None) -> IntentRecord:
    """One INSERT on the common path (an exit's write-ahead intent waits for this commit: no ORM unit of work,
    no SELECT before and none after); the same row again is a no-op, any other use of the id is refused."""
    if request.quantity <= 0:
        raise StoreError(f"order quantity must be positive, not {request.quantity}", "bad_quantity")
    if position_id is not None:
        position_row(session, profile, position_id)
    statement = _insert_new(session).values(
        profile=profile, order_id=request.order_id, order_ref=request.order_ref, parent_ref=parent_ref,
        contract_key=request.contract.key, side=request.side, quantity=request.quantity,
        order_type=request.order_type, limit_price=request.limit_price, stop_price=request.stop_price,
        tif=request.tif, position_id=position_id, state="intent", created_at=at, updated_at=at)
    if session.execute(statement).first() is None:  # nothing inserted: the id is taken
        existing = session.get(OrderIntentRow, (profile, request.order_id))
        # The same record written again (a journal batch retried after its commit went through) is a no-op;
        # any other use of the id is refused.
        if existing is not None and existing.order_ref == request.order_ref \
                and existing.created_at == to_utc_aware(at):
            return _intent(existing)
        raise StoreError(f"order id {request.order_id} was already used", "order_id_reused")
    stamp = to_utc_aware(at)  # as the row reads back (the column types' own round trip)
    return IntentRecord(order_id=request.order_id, order_ref=request.order_ref, parent_ref=parent_ref,
                        contract_key=request.contract.key, side=request.side, quantity=request.quantity,
                        order_type=request.order_type, limit_price=_money(request.limit_price),
                        stop_price=_money(request.stop_price), tif=request.tif, position_id=position_id,
                        state="intent", created_at=stamp, updated_at=stamp)  # type: ignore[arg-type]


def _insert_new(session: Session) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING on the intent's key, in the database's own dialect."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    table = OrderIntentRow.__table__
    # RETURNING, not rowcount: psycopg reports -1 for an INSERT that SQLAlchemy runs with RETURNING
    return insert(table).on_conflict_do_nothing(index_elements=["profile", "order_id"]).returning(table.c.order_id)


def _money(value: Any) -> Any:
    return None if value is None else quantize_money(value)


def to_utc_aware(at: datetime) -> datetime:
    """`at` as a stored time reads back (exchange zone), to compare with a row's column."""
    return from_db_time(to_utc(at))


def mark_intent_sent(session: Session, profile: str, order_id: int, at: datetime) -> IntentRecord:
    return set_intent_state(session, profile, order_id, "sent", at)


def mark_intent_acked(session: Session, profile: str, order_id: int, at: datetime) -> IntentRecord:
    return set_intent_state(session, profile, order_id, "acked", at)


def set_intent_state(session: Session, profile: str, order_id: int, state: str, at: datetime) -> IntentRecord:
    if state not in INTENT_STATES:
        raise StoreError(f"intent state {state!r} is not one of {INTENT_STATES}", "bad_intent_state")
    row = session.get(OrderIntentRow, (profile, order_id))
    if row is None:
        raise StoreError(f"no order intent {order_id}", "unknown_order")
    _advance(row, state, at)
    return _intent(stored(session, row))


def _advance(row: OrderIntentRow, state: str, at: datetime) -> None:
    if row.state in TERMINAL_INTENT_STATES or _RANK[state] < _RANK[row.state]:
        return
    row.state, row.updated_at = state, at


def update_order(session: Session, profile: str, update: OrderUpdate) -> OrderRecord:
    try:
        status = OrderStatus(update.status)
    except ValueError:
        raise StoreError(f"order {update.order_id}: unknown broker status {update.status!r}", "bad_order_status") from None
    row = session.get(OrderRow, (profile, update.order_id))
    if row is None:
        row = OrderRow(profile=profile, order_id=update.order_id)
        session.add(row)
    row.order_ref, row.status, row.filled, row.remaining = update.order_ref, status.value, update.filled, update.remaining
    row.avg_fill_price, row.reason, row.updated_at = update.avg_fill_price, update.reason, update.at
    intent = session.get(OrderIntentRow, (profile, update.order_id))
    if intent is not None:
        _advance(intent, _STATE_OF_STATUS[status], update.at)
    return _order(stored(session, row))


def check_fill(fill: Fill) -> None:
    """The refusals of a fill as input (here and in the journal's Core path, daemon/store/journal_ops.py)."""
    if fill.quantity <= 0:
        raise StoreError(f"fill {fill.exec_id}: quantity must be positive, not {fill.quantity}", "bad_fill")
    if fill.side not in ("BUY", "SELL"):
        raise StoreError(f"fill {fill.exec_id}: side must be BUY or SELL, not {fill.side!r}", "bad_fill")


def apply_fill(session: Session, profile: str, fill: Fill, position_id: int | None = None,
               contract_key: str | None = None) -> FillOutcome:
    check_fill(fill)
    existing = session.get(FillRow, fill.exec_id)
    if existing is not None:
        position = None if existing.position_id is None else position_record(position_row(
            session, profile, existing.position_id))
        return FillOutcome(new=False, fill=_fill(existing), position=position)
    if position_id is None:
        intent = session.get(OrderIntentRow, (profile, fill.order_id))
        position_id = intent.position_id if intent is not None else None
    commission = quantize_money(fill.commission)
    realized, unmatched, position = -commission, 0, None
    if position_id is not None:
        position = position_row(session, profile, position_id)
        realized, unmatched = apply_to_position(position, fill.side, fill.quantity, fill.price, commission, fill.at)
    row = FillRow(exec_id=fill.exec_id, profile=profile, order_id=fill.order_id, order_ref=fill.order_ref,
                  contract_key=contract_key or fill.contract.key, side=fill.side, quantity=fill.quantity,
                  price=fill.price,
                  commission=commission, at=fill.at, position_id=position_id, realized_pnl=realized)
    session.add(row)
    record = _fill(stored(session, row))
    return FillOutcome(new=True, fill=record, unmatched_qty=unmatched,
                       position=None if position is None else position_record(stored(session, position)))


def find_intent(session: Session, profile: str, order_id: int) -> IntentRecord | None:
    row = session.get(OrderIntentRow, (profile, order_id))
    return None if row is None else _intent(row)


def intents_by_ref(session: Session, profile: str, order_ref: str) -> list[IntentRecord]:
    rows = session.scalars(select(OrderIntentRow).where(OrderIntentRow.profile == profile,
                                                        OrderIntentRow.order_ref == order_ref)
                           .order_by(OrderIntentRow.order_id))
    return [_intent(r) for r in rows]


def order_refs_starting(session: Session, profile: str, prefix: str) -> list[str]:
    # autoescape: a `_` or `%` in the prefix (profile names may hold `_`) matches itself, not a wildcard
    return list(session.scalars(select(OrderIntentRow.order_ref).where(
        OrderIntentRow.profile == profile, OrderIntentRow.order_ref.startswith(prefix, autoescape=True))
        .order_by(OrderIntentRow.order_id)))


def load_pending_intents(session: Session, profile: str) -> list[IntentRecord]:
    rows = session.scalars(select(OrderIntentRow).where(OrderIntentRow.profile == profile,
                                                        OrderIntentRow.state.not_in(TERMINAL_INTENT_STATES))
                           .order_by(OrderIntentRow.created_at, OrderIntentRow.order_id))
    return [_intent(r) for r in rows]


def list_orders(session: Session, profile: str, limit: int = 100, open_only: bool = False) -> list[OrderRecord]:
    query = select(OrderRow).where(OrderRow.profile == profile)
    if open_only:
        query = query.where(OrderRow.status.not_in(_DONE_STATUSES))
    rows = session.scalars(query.order_by(OrderRow.updated_at.desc(), OrderRow.order_id.desc()).limit(limit))
    return [_order(r) for r in rows]


def list_fills(session: Session, profile: str, limit: int = 100, since: datetime | None = None) -> list[FillRecord]:
    query = select(FillRow).where(FillRow.profile == profile)
    if since is not None:
        query = query.where(FillRow.at >= since)
    rows = session.scalars(query.order_by(FillRow.at.desc(), FillRow.exec_id.desc()).limit(limit))
    return [_fill(r) for r in rows]


def highest_order_id(session: Session, profile: str) -> int:
    intents = session.scalar(select(func.max(OrderIntentRow.order_id)).where(OrderIntentRow.profile == profile))
    orders = session.scalar(select(func.max(OrderRow.order_id)).where(OrderRow.profile == profile))
    noted = session.get(MetaRow, (profile, HIGHEST_ORDER_ID_KEY))
    return max(intents or 0, orders or 0, int(noted.value) if noted is not None else 0)


def note_order_id(session: Session, profile: str, order_id: int) -> None:
    row = session.get(MetaRow, (profile, HIGHEST_ORDER_ID_KEY))
    if row is None:
        session.add(MetaRow(profile=profile, key=HIGHEST_ORDER_ID_KEY, value=str(int(order_id))))
    elif int(order_id) > int(row.value):
        row.value = str(int(order_id))


def applied_exec_ids(session: Session, profile: str) -> set[str]:
    """Every execution applied: fills, and the leg executions of combo orders (SPEC §9)."""
    from daemon.store.models import ComboLegFillRow

    return (set(session.scalars(select(FillRow.exec_id).where(FillRow.profile == profile)))
            | set(session.scalars(select(ComboLegFillRow.exec_id).where(ComboLegFillRow.profile == profile))))


def last_execution_time(session: Session, profile: str) -> datetime | None:
    return session.scalar(select(func.max(FillRow.at)).where(FillRow.profile == profile))


def _intent(row: OrderIntentRow) -> IntentRecord:
    return IntentRecord(order_id=row.order_id, order_ref=row.order_ref, parent_ref=row.parent_ref,
                        contract_key=row.contract_key, side=row.side, quantity=row.quantity,
                        order_type=row.order_type, limit_price=row.limit_price, stop_price=row.stop_price,
                        tif=row.tif, position_id=row.position_id, state=row.state,  # type: ignore[arg-type]
                        created_at=row.created_at, updated_at=row.updated_at)


def _order(row: OrderRow) -> OrderRecord:
    return OrderRecord(order_id=row.order_id, order_ref=row.order_ref, status=row.status, filled=row.filled,
                       remaining=row.remaining, avg_fill_price=row.avg_fill_price, reason=row.reason,
                       updated_at=row.updated_at)


def _fill(row: FillRow) -> FillRecord:
    return FillRecord(exec_id=row.exec_id, order_id=row.order_id, order_ref=row.order_ref,
                      contract_key=row.contract_key, side=row.side, quantity=row.quantity, price=row.price,
                      commission=row.commission, at=row.at, position_id=row.position_id,
                      realized_pnl=row.realized_pnl)
