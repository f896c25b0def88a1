"""The journal's write path in SQLAlchemy Core: the hot store operations without the ORM.

The journal writes tens of thousands of records a replayed session (an intent, order statuses, exit
states and events per order); through the ORM each cost a `session.get` per row touched and a flush
per record (~5 ms of CPU each, docs/performance.md). Here each is one or two prepared statements on the
transaction's connection (`daemon.store.prepared.Prepared`: compiled once per dialect and handed to the batch's
DBAPI cursor, without an execution context per call, room store7): an upsert where the ORM read a row to decide between INSERT and UPDATE, a
guarded UPDATE where it read a row to decide whether to change it. Same tables, same rows, same
refusals (`StoreError` with the same codes) as `daemon.store.ops_*`, which stay the Store's public
operations and the reference (tests/daemon/test_store_journal_ops.py runs both on the same records and
compares every table). Signals, decisions, positions opened, checkpoints and meta are in
`daemon.store.journal_ops_state`.

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

from sqlalchemy import Table, bindparam, literal_column, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from market.types import Fill, OrderRequest, OrderStatus, OrderUpdate
from daemon.store import journal_ops_state, ops_orders, ops_positions, ops_signals, ops_state
from daemon.store.errors import StoreError
from daemon.store.models import ExitEventRow, ExitStateRow, FillRow, MetaRow, OrderIntentRow, OrderRow, PositionRow
from daemon.store.prepared import Prepared, Statements, cursor, first, first_value
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
_POSITION_SET = update(_POSITIONS).where(_POSITIONS.c.id == bindparam("pid")).values(
    entry_price=bindparam("entry_price"), entry_time=bindparam("entry_time"),
    original_qty=bindparam("original_qty"), open_qty=bindparam("open_qty"), status=bindparam("status"),
    closed_at=bindparam("closed_at"), close_reason=bindparam("close_reason"), realized_pnl=bindparam("realized_pnl"))

# ops_orders._advance as a WHERE: an intent moves to `state` only from a non-terminal state of no higher rank.
_FROM_STATES = {state: tuple(s for s, r in ops_orders._RANK.items()
                             if r <= rank and s not in TERMINAL_INTENT_STATES)
                for state, rank in ops_orders._RANK.items()}
# The states as SQL literals (our own constant names), not bound values: a `Prepared` statement is compiled
# once, without values, and every value it binds comes from its caller.
_ADVANCE = {state: update(_INTENTS).where(
    _INTENTS.c.profile == bindparam("p"), _INTENTS.c.order_id == bindparam("oid"),
    _INTENTS.c.state.in_([literal_column(f"'{s}'") for s in allowed])).values(
    state=literal_column(f"'{state}'"), updated_at=bindparam("at"))
    for state, allowed in _FROM_STATES.items()}


_INTENT_COLUMNS = ("profile", "order_id", "order_ref", "parent_ref", "contract_key", "side", "quantity", "order_type",
                   "limit_price", "stop_price", "tif", "position_id", "state", "created_at", "updated_at")
_ORDER_COLUMNS = ("profile", "order_id", "order_ref", "status", "filled", "remaining", "avg_fill_price", "reason",
                  "updated_at")
_EXIT_EVENT_COLUMNS = ("profile", "position_id", "rule", "kind", "quantity", "reason", "at")
_FILL_COLUMNS = ("exec_id", "profile", "order_id", "order_ref", "contract_key", "side", "quantity", "price",
                 "commission", "at", "position_id", "realized_pnl")


class _Dialect:
    """Every statement of the write path, compiled once for a dialect (`Prepared`: run on the batch's DBAPI
    cursor). The INSERT ... ON CONFLICT forms depend on the database."""

    def __init__(self, dialect: Dialect):
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        self.new_intent = Prepared(insert(_INTENTS).on_conflict_do_nothing(
            index_elements=["profile", "order_id"]).returning(_INTENTS.c.order_id), dialect, _INTENT_COLUMNS)
        order = insert(_ORDERS)
        self.upsert_order = Prepared(order.on_conflict_do_update(
            index_elements=["profile", "order_id"],
            set_={c: order.excluded[c] for c in ("order_ref", "status", "filled", "remaining", "avg_fill_price",
                                                 "reason", "updated_at")}), dialect, _ORDER_COLUMNS)
        state = insert(_EXIT_STATES)
        self.upsert_exit_state = Prepared(state.on_conflict_do_update(
            index_elements=["position_id"], set_={"state": state.excluded.state,
                                                  "updated_at": state.excluded.updated_at}),
            dialect, ("position_id", "state", "updated_at"))
        self.new_exit_event = Prepared(insert(_EXIT_EVENTS).on_conflict_do_nothing(
            index_elements=["id"]).returning(_EXIT_EVENTS.c.id), dialect, ("id", *_EXIT_EVENT_COLUMNS))
        self.insert_exit_event = Prepared(insert(_EXIT_EVENTS), dialect, _EXIT_EVENT_COLUMNS)
        self.insert_fill = Prepared(insert(_FILLS), dialect, _FILL_COLUMNS)
        self.advance = {state: Prepared(statement, dialect) for state, statement in _ADVANCE.items()}
        self.position_profile = Prepared(_POSITION_PROFILE, dialect)
        self.position = Prepared(_POSITION, dialect)
        self.fill_seen = Prepared(_FILL_SEEN, dialect)
        self.intent_position = Prepared(_INTENT_POSITION, dialect)
        self.position_set = Prepared(_POSITION_SET, dialect)
        self.meta_value = Prepared(_META_VALUE, dialect)


_STATEMENTS = Statements(_Dialect)


def _check_position(cur: Any, statements: _Dialect, profile: str, position_id: int) -> None:
    """`ops_positions.position_row`'s refusal, without loading the row."""
    if first_value(statements.position_profile.execute(cur, {"id": position_id})) != profile:
        raise StoreError(f"no position {position_id} in profile {profile}", "unknown_position")


# ---------------------------------------------------------------------------- the operations

def write_intent(session: Session, profile: str, request: OrderRequest, at: datetime, *,
                 parent_ref: str | None = None, position_id: int | None = None) -> None:
    if request.quantity <= 0:
        raise StoreError(f"order quantity must be positive, not {request.quantity}", "bad_quantity")
    cur, statements = cursor(session), _STATEMENTS.on(session)
    if position_id is not None:
        _check_position(cur, statements, profile, position_id)
    inserted = first(statements.new_intent.execute(cur, {
        "profile": profile, "order_id": request.order_id, "order_ref": request.order_ref, "parent_ref": parent_ref,
        "contract_key": request.contract.key, "side": request.side, "quantity": request.quantity,
        "order_type": request.order_type, "limit_price": request.limit_price, "stop_price": request.stop_price,
        "tif": request.tif, "position_id": position_id, "state": "intent", "created_at": at,
        "updated_at": at}))
    if inserted is None:  # the id is taken: the same record again is a no-op, anything else refused
        ops_orders.write_intent(session, profile, request, at, parent_ref=parent_ref, position_id=position_id)


def update_order(session: Session, profile: str, update: OrderUpdate) -> None:
    try:
        status = OrderStatus(update.status)
    except ValueError:
        raise StoreError(f"order {update.order_id}: unknown broker status {update.status!r}",
                         "bad_order_status") from None
    cur, statements = cursor(session), _STATEMENTS.on(session)
    statements.upsert_order.execute(cur, {
        "profile": profile, "order_id": update.order_id, "order_ref": update.order_ref, "status": status.value,
        "filled": update.filled, "remaining": update.remaining, "avg_fill_price": update.avg_fill_price,
        "reason": update.reason, "updated_at": update.at})
    statements.advance[ops_orders._STATE_OF_STATUS[status]].execute(
        cur, {"p": profile, "oid": update.order_id, "at": update.at})


def save_exit_state(session: Session, profile: str, position_id: int, state: Any, at: datetime) -> None:
    cur, statements = cursor(session), _STATEMENTS.on(session)
    _check_position(cur, statements, profile, position_id)
    value = jsonable(state)
    if not isinstance(value, dict):
        raise StoreError("an exit state is a mapping or a dataclass", "bad_exit_state")
    statements.upsert_exit_state.execute(cur, {"position_id": position_id, "state": value, "updated_at": at})


def record_exit_event(session: Session, profile: str, position_id: int, *, rule: str, kind: str, quantity: int,
                      reason: str | None, at: datetime, event_id: int | None = None) -> None:
    cur, statements = cursor(session), _STATEMENTS.on(session)
    _check_position(cur, statements, profile, position_id)
    row = {"profile": profile, "position_id": position_id, "rule": rule, "kind": kind, "quantity": int(quantity),
           "reason": reason, "at": at}
    if event_id is None:
        statements.insert_exit_event.execute(cur, row)
        return
    if first(statements.new_exit_event.execute(cur, {"id": event_id, **row})) is None:
        # written before: the same event again is a no-op, another one under its id is refused
        ops_positions.record_exit_event(session, profile, position_id, rule=rule, kind=kind, quantity=quantity,
                                        reason=reason, at=at, event_id=event_id)
        return
    keep_sequence_ahead(session, "exit_events", event_id)


def apply_fill(session: Session, profile: str, fill: Fill, position_id: int | None = None,
               contract_key: str | None = None) -> None:
    ops_orders.check_fill(fill)
    cur, statements = cursor(session), _STATEMENTS.on(session)
    if first(statements.fill_seen.execute(cur, {"exec_id": fill.exec_id})) is not None:
        return  # applied once already (ops_orders.apply_fill answers it without writing)
    if position_id is None:
        position_id = first_value(statements.intent_position.execute(cur, {"p": profile, "oid": fill.order_id}))
    commission = quantize_money(fill.commission)
    realized = -commission
    if position_id is not None:
        found = statements.position.row(statements.position.execute(cur, {"id": position_id}))
        if found is None or found["profile"] != profile:
            raise StoreError(f"no position {position_id} in profile {profile}", "unknown_position")
        position = SimpleNamespace(**found)  # the same arithmetic as the ORM path, on the row's values
        realized, _ = ops_positions.apply_to_position(position, fill.side, fill.quantity, fill.price,  # type: ignore[arg-type]
                                                      commission, fill.at)
        statements.position_set.execute(cur, {"pid": position_id, **{k: getattr(position, k) for k in (
            "entry_price", "entry_time", "original_qty", "open_qty", "status", "closed_at", "close_reason",
            "realized_pnl")}})
    statements.insert_fill.execute(cur, {
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
    ops_signals.record_signal: journal_ops_state.record_signal,
    ops_signals.record_decision: journal_ops_state.record_decision,
    ops_positions.open_position: journal_ops_state.open_position,
    ops_state.record_checkpoint: journal_ops_state.record_checkpoint,
    ops_state.set_meta: journal_ops_state.set_meta,
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


def end_batch(session: Session) -> None:
    """A kept session's batch is over (`Store.run_batch`): its identity map is empty, nothing to expire."""
    session.info.pop(_CORE_WROTE, None)


# ---------------------------------------------------------------------------- the replay's record count

def get_meta(session: Session, profile: str, key: str) -> str | None:
    """`ops_state.get_meta` in Core (the replay's count, read at each batch)."""
    return first_value(_STATEMENTS.on(session).meta_value.execute(cursor(session), {"p": profile, "k": key}))


set_meta = journal_ops_state.set_meta  # `ops_state.set_meta` in Core: an UPDATE, or an INSERT for a new key
