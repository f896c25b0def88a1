"""The journal's write path in SQLAlchemy Core: the hot store operations without the ORM.

The journal writes tens of thousands of records a replayed session (an intent, order statuses, exit
states and events per order); through the ORM each cost a `session.get` per row touched and a flush
per record (~5 ms of CPU each, docs/performance.md). Here each is one or two prepared statements on the
transaction's connection: an upsert where the ORM read a row to decide between INSERT and UPDATE, a
guarded UPDATE where it read a row to decide whether to change it. Same tables, same rows, same
refusals (`StoreError` with the same codes) as `daemon.store.ops_*`, which stay the Store's public
operations and the reference (tests/daemon/test_store_journal_ops.py runs both on the same records and
compares every table).

These return nothing: only a record nobody awaits takes this path (the journal gives a durable record,
whose caller reads its result, to the ORM operation). A rare case (an id written before: a retried batch
or a reused id) is handed to the ORM operation, which decides it as it always did.

`apply(session, profile, fn, payload)` runs one record either way. An ORM operation after a Core write
in the same transaction must not read rows from the session's identity map that a Core statement has
changed since (the session knows nothing of it): the map is expired before it; and the ORM's pending
changes are flushed before a Core statement, so the statements run in the records' order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from market.types import Fill, OrderRequest, OrderStatus, OrderUpdate
from daemon.store import ops_orders, ops_positions, ops_state
from daemon.store.errors import StoreError
from daemon.store.models import ExitEventRow, ExitStateRow, FillRow, MetaRow, OrderIntentRow, OrderRow, PositionRow
from daemon.store.records import TERMINAL_INTENT_STATES
from daemon.store.types import jsonable, keep_sequence_ahead, quantize_money

_CORE_WROTE = "tradingd.core_wrote"  # session.info: a Core statement wrote since the ORM last read

_INTENTS: Table = OrderIntentRow.__table__  # type: ignore[assignment]
_ORDERS: Table = OrderRow.__table__  # type: ignore[assignment]
_POSITIONS: Table = PositionRow.__table__  # type: ignore[assignment]
_EXIT_STATES: Table = ExitStateRow.__table__  # type: ignore[assignment]
_EXIT_EVENTS: Table = ExitEventRow.__table__  # type: ignore[assignment]
_FILLS: Table = FillRow.__table__  # type: ignore[assignment]
_META: Table = MetaRow.__table__  # type: ignore[assignment]

_POSITION_PROFILE = select(_POSITIONS.c.profile).where(_POSITIONS.c.id == bindparam("id"))
_POSITION = select(_POSITIONS).where(_POSITIONS.c.id == bindparam("id"))
_FILL_SEEN = select(_FILLS.c.exec_id).where(_FILLS.c.exec_id == bindparam("exec_id"))
_INTENT_POSITION = select(_INTENTS.c.position_id).where(
    _INTENTS.c.profile == bindparam("p"), _INTENTS.c.order_id == bindparam("oid"))
_META_VALUE = select(_META.c.value).where(_META.c.profile == bindparam("p"), _META.c.key == bindparam("k"))
_META_SET = update(_META).where(_META.c.profile == bindparam("p"), _META.c.key == bindparam("k")).values(
    value=bindparam("v"))
_POSITION_SET = update(_POSITIONS).where(_POSITIONS.c.id == bindparam("pid")).values(
    entry_price=bindparam("entry_price"), entry_time=bindparam("entry_time"),
    original_qty=bindparam("original_qty"), open_qty=bindparam("open_qty"), status=bindparam("status"),
    closed_at=bindparam("closed_at"), close_reason=bindparam("close_reason"), realized_pnl=bindparam("realized_pnl"))

# ops_orders._advance as a WHERE: an intent moves to `state` only from a non-terminal state of no higher rank.
_FROM_STATES = {state: tuple(s for s, r in ops_orders._RANK.items()
                             if r <= rank and s not in TERMINAL_INTENT_STATES)
                for state, rank in ops_orders._RANK.items()}
_ADVANCE = {state: update(_INTENTS).where(
    _INTENTS.c.profile == bindparam("p"), _INTENTS.c.order_id == bindparam("oid"),
    _INTENTS.c.state.in_(allowed)).values(state=state, updated_at=bindparam("at"))
    for state, allowed in _FROM_STATES.items()}


class _Dialect:
    """The statements whose form depends on the database (INSERT ... ON CONFLICT), built once per dialect."""

    def __init__(self, name: str):
        if name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        self.new_intent = insert(_INTENTS).on_conflict_do_nothing(
            index_elements=["profile", "order_id"]).returning(_INTENTS.c.order_id)
        order = insert(_ORDERS)
        self.upsert_order = order.on_conflict_do_update(
            index_elements=["profile", "order_id"],
            set_={c: order.excluded[c] for c in ("order_ref", "status", "filled", "remaining", "avg_fill_price",
                                                 "reason", "updated_at")})
        state = insert(_EXIT_STATES)
        self.upsert_exit_state = state.on_conflict_do_update(
            index_elements=["position_id"], set_={"state": state.excluded.state,
                                                  "updated_at": state.excluded.updated_at})
        self.new_exit_event = insert(_EXIT_EVENTS).on_conflict_do_nothing(
            index_elements=["id"]).returning(_EXIT_EVENTS.c.id)
        self.insert_exit_event = insert(_EXIT_EVENTS)
        self.insert_fill = insert(_FILLS)


_DIALECTS: dict[str, _Dialect] = {}


def _statements(conn: Connection) -> _Dialect:
    name = conn.dialect.name
    found = _DIALECTS.get(name)
    if found is None:
        found = _DIALECTS[name] = _Dialect(name)
    return found


def _check_position(conn: Connection, profile: str, position_id: int) -> None:
    """`ops_positions.position_row`'s refusal, without loading the row."""
    if conn.execute(_POSITION_PROFILE, {"id": position_id}).scalar() != profile:
        raise StoreError(f"no position {position_id} in profile {profile}", "unknown_position")


# ---------------------------------------------------------------------------- the operations

def write_intent(session: Session, profile: str, request: OrderRequest, at: datetime, *,
                 parent_ref: str | None = None, position_id: int | None = None) -> None:
    if request.quantity <= 0:
        raise StoreError(f"order quantity must be positive, not {request.quantity}", "bad_quantity")
    conn = session.connection()
    if position_id is not None:
        _check_position(conn, profile, position_id)
    inserted = conn.execute(_statements(conn).new_intent, {
        "profile": profile, "order_id": request.order_id, "order_ref": request.order_ref, "parent_ref": parent_ref,
        "contract_key": request.contract.key, "side": request.side, "quantity": request.quantity,
        "order_type": request.order_type, "limit_price": request.limit_price, "stop_price": request.stop_price,
        "tif": request.tif, "position_id": position_id, "state": "intent", "created_at": at,
        "updated_at": at}).first()
    if inserted is None:  # the id is taken: the same record again is a no-op, anything else refused
        ops_orders.write_intent(session, profile, request, at, parent_ref=parent_ref, position_id=position_id)


def update_order(session: Session, profile: str, update: OrderUpdate) -> None:
    try:
        status = OrderStatus(update.status)
    except ValueError:
        raise StoreError(f"order {update.order_id}: unknown broker status {update.status!r}",
                         "bad_order_status") from None
    conn = session.connection()
    conn.execute(_statements(conn).upsert_order, {
        "profile": profile, "order_id": update.order_id, "order_ref": update.order_ref, "status": status.value,
        "filled": update.filled, "remaining": update.remaining, "avg_fill_price": update.avg_fill_price,
        "reason": update.reason, "updated_at": update.at})
    conn.execute(_ADVANCE[ops_orders._STATE_OF_STATUS[status]],
                 {"p": profile, "oid": update.order_id, "at": update.at})


def save_exit_state(session: Session, profile: str, position_id: int, state: Any, at: datetime) -> None:
    conn = session.connection()
    _check_position(conn, profile, position_id)
    value = jsonable(state)
    if not isinstance(value, dict):
        raise StoreError("an exit state is a mapping or a dataclass", "bad_exit_state")
    conn.execute(_statements(conn).upsert_exit_state,
                 {"position_id": position_id, "state": value, "updated_at": at})


def record_exit_event(session: Session, profile: str, position_id: int, *, rule: str, kind: str, quantity: int,
                      reason: str | None, at: datetime, event_id: int | None = None) -> None:
    conn = session.connection()
    _check_position(conn, profile, position_id)
    row = {"profile": profile, "position_id": position_id, "rule": rule, "kind": kind, "quantity": int(quantity),
           "reason": reason, "at": at}
    statements = _statements(conn)
    if event_id is None:
        conn.execute(statements.insert_exit_event, row)
        return
    if conn.execute(statements.new_exit_event, {"id": event_id, **row}).first() is None:
        # written before: the same event again is a no-op, another one under its id is refused
        ops_positions.record_exit_event(session, profile, position_id, rule=rule, kind=kind, quantity=quantity,
                                        reason=reason, at=at, event_id=event_id)
        return
    keep_sequence_ahead(session, "exit_events", event_id)


def apply_fill(session: Session, profile: str, fill: Fill, position_id: int | None = None,
               contract_key: str | None = None) -> None:
    ops_orders.check_fill(fill)
    conn = session.connection()
    if conn.execute(_FILL_SEEN, {"exec_id": fill.exec_id}).first() is not None:
        return  # applied once already (ops_orders.apply_fill answers it without writing)
    if position_id is None:
        position_id = conn.execute(_INTENT_POSITION, {"p": profile, "oid": fill.order_id}).scalar()
    commission = quantize_money(fill.commission)
    realized = -commission
    if position_id is not None:
        found = conn.execute(_POSITION, {"id": position_id}).mappings().first()
        if found is None or found["profile"] != profile:
            raise StoreError(f"no position {position_id} in profile {profile}", "unknown_position")
        position = SimpleNamespace(**found)  # the same arithmetic as the ORM path, on the row's values
        realized, _ = ops_positions.apply_to_position(position, fill.side, fill.quantity, fill.price,  # type: ignore[arg-type]
                                                      commission, fill.at)
        conn.execute(_POSITION_SET, {"pid": position_id, **{k: getattr(position, k) for k in (
            "entry_price", "entry_time", "original_qty", "open_qty", "status", "closed_at", "close_reason",
            "realized_pnl")}})
    conn.execute(_statements(conn).insert_fill, {
        "exec_id": fill.exec_id, "profile": profile, "order_id": fill.order_id, "order_ref": fill.order_ref,
        "contract_key": contract_key or fill.contract.key, "side": fill.side, "quantity": fill.quantity,
        "price": fill.price, "commission": commission, "at": fill.at, "position_id": position_id,
        "realized_pnl": realized})


FAST: dict[Callable[..., Any], Callable[..., Any]] = {
    ops_orders.write_intent: write_intent,
    ops_orders.update_order: update_order,
    ops_positions.save_exit_state: save_exit_state,
    ops_positions.record_exit_event: record_exit_event,
    ops_orders.apply_fill: apply_fill,
}


def fast(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The Core version of the store operation `fn` when there is one, else `fn`."""
    return FAST.get(fn, fn)


def apply(session: Session, profile: str, fn: Callable[..., Any], payload: Mapping[str, Any]) -> Any:
    """One record in the batch's transaction, in order with the ORM operations around it (module docstring)."""
    if fn in _CORE:
        session.flush()  # the ORM's pending rows first: the records' order is the statements' order
        session.info[_CORE_WROTE] = True
    elif session.info.pop(_CORE_WROTE, False):
        session.expire_all()  # rows a Core statement changed are read again, not taken from the identity map
    return fn(session, profile, **payload)


_CORE = frozenset(FAST.values())


# ---------------------------------------------------------------------------- the replay's record count

def get_meta(session: Session, profile: str, key: str) -> str | None:
    """`ops_state.get_meta` in Core (the replay's count, read at each batch)."""
    return session.connection().execute(_META_VALUE, {"p": profile, "k": key}).scalar()


def set_meta(session: Session, profile: str, key: str, value: str) -> None:
    """`ops_state.set_meta` in Core: an UPDATE, or the ORM operation for a key not yet there (once)."""
    if session.connection().execute(_META_SET, {"p": profile, "k": key, "v": str(value)}).rowcount == 0:
        ops_state.set_meta(session, profile, key, value)
        session.flush()
