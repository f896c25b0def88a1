"""`Store`: the daemon's state (SPEC §6), reachable from the event loop without blocking it.

Every operation runs on one writer thread, in the order it was asked for, each in its own
transaction; the coroutine awaits its result through a future. `submit` queues a write and
returns at once (checkpoints, logs); `drain` waits until everything queued is written.
Times passed in come from the engine's clock (virtual in replay); the store never reads
the wall clock. Values handed back are frozen records (`daemon.store.records`).

The operations themselves live in `daemon.store.ops_*` as plain functions of a session;
each method below only declares the public signature and documents it.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.exc import StatementError
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker

from market.types import Fill, OptionContract, OrderRequest, OrderUpdate
from daemon.store import journal_ops, ops_combos, ops_orders, ops_positions, ops_signals, ops_state, summary
from daemon.store.database import DEFAULT_BUSY_TIMEOUT_MS, default_url, make_engine
from daemon.store.errors import StoreError
from daemon.store.migrate import upgrade
from daemon.store.records import (
    BlockedUnderlying,
    BreakerEventRecord,
    CheckpointRecord,
    DaySummary,
    DecisionRecord,
    ExitEventRecord,
    FillOutcome,
    FillRecord,
    IntentRecord,
    IntentState,
    OperatorAction,
    OperatorActionRecord,
    OrderRecord,
    PositionRecord,
    PositionStatus,
    SignalRecord,
    SignalStatus,
    StoreSnapshot,
    TradingStateRecord,
)
from daemon.store.writer import Writer

if TYPE_CHECKING:
    from config.models import Settings

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def _operation(op: Callable[..., Any]) -> Callable[[F], F]:
    """Bind a public method (signature + docstring) to the session function `op(session, profile, ...)`."""

    def bind(method: F) -> F:
        signature = inspect.signature(method)

        @functools.wraps(method)
        async def run(self: Store, *args: Any, **kwargs: Any) -> Any:
            signature.bind(self, *args, **kwargs)  # a wrong call fails here, in the caller's frame
            return await self._writer.call(self._in_transaction, op, args, kwargs)

        run.__store_op__ = op  # type: ignore[attr-defined]
        return run  # type: ignore[return-value]

    return bind


class Store:
    """One profile's state in SQLite (default) or PostgreSQL.

    `url` None means `sqlite:///<state_dir>/tradingd-<profile>.db` (the directory is created).
    Construct it anywhere; use it from a running event loop. Call `await upgrade()` once at
    start (the daemon does), and `await close()` at the end.
    """

    def __init__(self, profile: str, url: str | None = None, *, state_dir: str | Path = "var",
                 busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS):
        if not profile:
            raise StoreError("a store needs a profile name", "bad_profile")
        self.profile = profile
        self.url = url or default_url(state_dir, profile)
        self._engine = make_engine(self.url, busy_timeout_ms=busy_timeout_ms)
        self._sessions = sessionmaker(self._engine, expire_on_commit=False)
        self._writer = Writer(name=f"tradingd-store-{profile}")
        self._kept: tuple[Connection, Session] | None = None  # the journal's batch session (SQLite; writer thread)

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        store = settings.daemon.store
        return cls(settings.profile.name, store.url, state_dir=settings.daemon.state_dir,
                   busy_timeout_ms=store.busy_timeout_ms)

    # ------------------------------------------------------------------ lifecycle

    async def upgrade(self) -> str:
        """Apply every Alembic migration (from empty or any older revision); returns the head revision."""
        return await self._writer.call(upgrade, self.url)

    def submit(self, operation: Callable[..., Awaitable[Any]], /, *args: Any, **kwargs: Any) -> None:
        """Queue `operation` (a write method of this store, e.g. `store.record_checkpoint`) without waiting.

        It is written in order with everything else; a failure is logged and counted in
        `failed_submissions`, never raised to the caller. Bad arguments raise here at once.
        """
        op = getattr(getattr(operation, "__func__", None), "__store_op__", None)
        if op is None or getattr(operation, "__self__", None) is not self:
            raise StoreError("submit takes a store operation of this store, e.g. store.record_checkpoint",
                             "not_a_store_operation")
        inspect.signature(operation).bind(*args, **kwargs)
        self._writer.submit(self._in_transaction, op, args, kwargs)

    async def drain(self) -> None:
        """Return once every write queued before this call (awaited or submitted) is committed."""
        await self._writer.drain()

    @property
    def failed_submissions(self) -> int:
        return self._writer.failed

    async def close(self) -> None:
        """Finish queued writes, stop the writer thread and release connections. Idempotent."""
        if self._kept is not None:
            try:
                await self._writer.call(self._drop_batch_session)  # on the thread that used it
            except StoreError:  # the writer was closed already
                self._drop_batch_session()
        await self._writer.close()
        self._engine.dispose()

    def transaction(self) -> Any:
        """A synchronous transaction on the calling thread (`with store.transaction() as session:`), for the
        replay loop's batches: nothing else may write meanwhile (the writer thread is idle in a replay)."""
        return self._sessions.begin()

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run `fn(*args)` on the writer thread, in order with every other call; return its result."""
        return await self._writer.call(fn, *args)

    def enqueue(self, fn: Callable[[], Any]) -> None:
        """Run `fn()` on the writer thread, in order with every other call (the journal's flushes)."""
        self._writer.submit(fn)

    def run_batch(self, ops: list[tuple[Callable[..., Any], Mapping[str, Any]]]) -> list[Any]:
        """Run session functions `op(session, profile, **payload)` in ONE transaction, in order; on the
        writer thread (the journal's flush). Any failure rolls the whole batch back and is raised. The
        journal's Core operations (`daemon.store.journal_ops`) may be among them."""
        kept = self._batch_session()
        try:
            if kept is None:
                with self._sessions.begin() as session:
                    return [journal_ops.apply(session, self.profile, op, payload) for op, payload in ops]
            session = kept
            with session.begin():
                # the transaction takes the connection now: the ops may reach it through the DBAPI cursor
                # kept in session.info, which SQLAlchemy does not see (its COMMIT would then commit nothing)
                session.connection()
                results = [journal_ops.apply(session, self.profile, op, payload) for op, payload in ops]
            session.expunge_all()  # nothing is kept from one batch to the next but the connection
            journal_ops.end_batch(session)
            return results
        except StatementError as exc:
            if kept is not None:
                self._drop_batch_session()
            if isinstance(exc.orig, StoreError):
                raise exc.orig from None
            raise
        except BaseException:
            if kept is not None:  # only the kept session's own thread drops it
                self._drop_batch_session()
            raise

    def _batch_session(self) -> Session | None:
        """SQLite: one session on one connection kept for the journal's batches (the writer thread's), instead
        of a session, a pool checkout, a reset and a check-in per batch: ~75 us of CPU a transaction, one
        transaction per order intent in a replay (room store7). Dropped after any failure, so a batch retried
        after a fault starts on a fresh connection as before. PostgreSQL: None (a fresh session per batch,
        whose checkout pings the server: a connection kept idle would meet a restarted server as a failure).
        None too off the writer thread (a test's direct call): one session is never used by two threads."""
        if not self._writer.on_thread():
            return None
        if self._kept is None and self._engine.dialect.name == "sqlite":
            connection = self._engine.connect()
            self._kept = (connection, Session(bind=connection, expire_on_commit=False))
        return None if self._kept is None else self._kept[1]

    def _drop_batch_session(self) -> None:
        kept, self._kept = self._kept, None
        if kept is None:
            return
        connection, session = kept
        try:
            session.close()
            connection.close()
        except Exception:  # noqa: BLE001 - a connection that failed may fail to close: it is dropped either way
            connection.invalidate()

    def _in_transaction(self, op: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
        try:
            with self._sessions.begin() as session:
                return op(session, self.profile, *args, **kwargs)
        except StatementError as exc:
            if isinstance(exc.orig, StoreError):  # a column type refused a value: report it as ours
                raise exc.orig from None
            raise

    # ------------------------------------------------------------------ signals and decisions

    @_operation(ops_signals.record_signal)
    async def record_signal(self, signal_id: str, payload: Mapping[str, Any], received_at: datetime,
                            status: SignalStatus = "received", reason: str | None = None) -> bool:
        """Store a signal as it arrived. False (and nothing written) when its id is already stored."""
        ...

    @_operation(ops_signals.is_duplicate_signal)
    async def is_duplicate_signal(self, signal_id: str) -> bool:
        """True when a signal with this id was already stored (by any earlier run on this database)."""
        ...

    @_operation(ops_signals.get_signal)
    async def get_signal(self, signal_id: str) -> SignalRecord | None:
        ...

    @_operation(ops_signals.record_decision)
    async def record_decision(self, *, signal_id: str | None, at: datetime, accepted: bool, reason: str | None,
                              contracts: int, notional: Decimal, multiplier: Decimal,
                              breakdown: Any, decision_id: int | None = None) -> DecisionRecord:
        """Store a decision with its full breakdown (any dataclass/mapping; Decimals kept as strings).

        Also sets the signal's status to accepted/refused and its reason, when the signal is stored.
        """
        ...

    @_operation(ops_signals.recent_decisions)
    async def recent_decisions(self, limit: int = 50) -> list[DecisionRecord]:
        """Newest first."""
        ...

    @_operation(ops_signals.first_decision)
    async def first_decision(self, signal_id: str) -> DecisionRecord | None:
        """The decision the signal with this id got when it first arrived (what a resend is answered with)."""
        ...

    @_operation(ops_signals.prune_refused)
    async def prune_refused_signals(self, before: datetime) -> dict[str, int]:
        """Delete refused signals (and their decisions) older than `before` (Part 8 retention)."""
        ...

    # ------------------------------------------------------------------ orders and fills

    @_operation(ops_orders.write_intent)
    async def write_intent(self, request: OrderRequest, at: datetime, *, parent_ref: str | None = None,
                           position_id: int | None = None) -> IntentRecord:
        """Record the order we are about to send; returns only once committed. Call BEFORE placeOrder.

        `position_id` ties exit (and stop) orders to their position so their fills find it.
        Raises StoreError(`order_id_reused`) if the order id was ever written before.
        """
        ...

    @_operation(ops_orders.mark_intent_sent)
    async def mark_intent_sent(self, order_id: int, at: datetime) -> IntentRecord:
        """placeOrder returned. Never moves an intent back from a later state."""
        ...

    @_operation(ops_orders.mark_intent_acked)
    async def mark_intent_acked(self, order_id: int, at: datetime) -> IntentRecord:
        """The broker acknowledged the order."""
        ...

    @_operation(ops_orders.set_intent_state)
    async def set_intent_state(self, order_id: int, state: IntentState, at: datetime) -> IntentRecord:
        """Move an intent forward (intent -> sent -> acked/working -> filled/cancelled/rejected); terminal stays."""
        ...

    @_operation(ops_orders.update_order)
    async def update_order(self, update: OrderUpdate) -> OrderRecord:
        """Store the broker's status for an order id and move its intent to match."""
        ...

    @_operation(ops_orders.apply_fill)
    async def apply_fill(self, fill: Fill, position_id: int | None = None,
                         contract_key: str | None = None) -> FillOutcome:
        """Apply an execution exactly once (by exec id), with its position, in one transaction.

        The position is `position_id`, else the one its intent was written with, else none
        (the fill is stored alone). BUY adds to the position (average entry price, original
        and open quantity); SELL reduces the open quantity and realizes
        (price - entry) x qty x multiplier; every commission is subtracted from realized P&L.
        The position closes when its open quantity reaches zero. `new` False: seen before,
        nothing changed.
        """
        ...

    @_operation(ops_orders.find_intent)
    async def find_intent(self, order_id: int) -> IntentRecord | None:
        ...

    @_operation(ops_orders.intents_by_ref)
    async def intents_by_ref(self, order_ref: str) -> list[IntentRecord]:
        """Every intent carrying this orderRef (matching broker open orders at reconcile)."""
        ...

    @_operation(ops_orders.order_refs_starting)
    async def order_refs_starting(self, prefix: str) -> list[str]:
        """Every intent's orderRef that starts with `prefix` (e.g. all protective stops), oldest id first."""
        ...

    @_operation(ops_orders.load_pending_intents)
    async def load_pending_intents(self) -> list[IntentRecord]:
        """Intents not yet filled/cancelled/rejected, oldest first: what a restart must reconcile."""
        ...

    @_operation(ops_orders.list_orders)
    async def list_orders(self, limit: int = 100, open_only: bool = False) -> list[OrderRecord]:
        """Broker order statuses, newest update first."""
        ...

    @_operation(ops_orders.list_fills)
    async def list_fills(self, limit: int = 100, since: datetime | None = None) -> list[FillRecord]:
        """Fills newest first; `since` keeps those at or after it."""
        ...

    @_operation(ops_orders.highest_order_id)
    async def highest_order_id(self) -> int:
        """The highest order id this profile ever wrote (intents, or `note_order_id`); 0 when none."""
        ...

    @_operation(ops_orders.note_order_id)
    async def note_order_id(self, order_id: int) -> None:
        """Remember an order id as used even without an intent (e.g. seen at the broker)."""
        ...

    @_operation(ops_orders.applied_exec_ids)
    async def applied_exec_ids(self) -> set[str]:
        """The exec id of every fill applied in this profile (the engine's in-memory "seen once")."""
        ...

    @_operation(ops_orders.last_execution_time)
    async def last_execution_time(self) -> datetime | None:
        """Time of the latest fill applied; executions since then are asked for at reconcile."""
        ...

    # ------------------------------------------------------------------ positions and exits

    @_operation(ops_positions.highest_position_id)
    async def highest_position_id(self) -> int:
        """The highest position id any profile holds in this database; 0 when none."""
        ...

    @_operation(ops_positions.open_position)
    async def open_position(self, contract: OptionContract, opened_at: datetime, *, signal_id: str | None = None,
                            quantity: int = 0, entry_price: Decimal | None = None) -> PositionRecord:
        """Create an open position. Usual entry: quantity 0, then its fills (apply_fill with its id) fill it.

        Adoption of a broker position: quantity and entry_price as the broker reports them.
        """
        ...

    @_operation(ops_combos.record_combo)
    async def record_combo(self, position_id: int, combo: dict[str, Any]) -> None:
        """SPEC §9: a combo position's legs and value offset (its row takes the combo's key)."""
        ...

    @_operation(ops_combos.record_leg_fill)
    async def record_leg_fill(self, fill: Fill, position_id: int | None = None) -> bool:
        """One leg execution of a combo order, stored once by exec id."""
        ...

    @_operation(ops_combos.load_combos)
    async def load_combos(self) -> dict[int, dict[str, Any]]:
        """The combo of every open combo position: position id -> its record (for Core.restore)."""
        ...

    @_operation(ops_positions.close_position)
    async def close_position(self, position_id: int, closed_at: datetime, *, exit_price: Decimal | None = None,
                             reason: str | None = None) -> PositionRecord:
        """Mark a position closed. With contracts still open `exit_price` is required (e.g. 0 at
        expiry worthless) and realizes them; StoreError(`position_still_open`) otherwise."""
        ...

    @_operation(ops_positions.get_position)
    async def get_position(self, position_id: int) -> PositionRecord | None:
        ...

    @_operation(ops_positions.load_open_positions)
    async def load_open_positions(self) -> list[PositionRecord]:
        """Open positions, oldest first."""
        ...

    @_operation(ops_positions.list_positions)
    async def list_positions(self, status: PositionStatus | None = None, limit: int = 100) -> list[PositionRecord]:
        """Positions newest first, optionally only open or closed."""
        ...

    @_operation(ops_positions.save_exit_state)
    async def save_exit_state(self, position_id: int, state: Any, at: datetime) -> None:
        """Replace the position's exit-rule state (a mapping or dataclass, stored as JSON)."""
        ...

    @_operation(ops_positions.load_exit_states)
    async def load_exit_states(self) -> dict[int, dict[str, Any]]:
        """Exit state of each open position that has one, by position id (Decimals come back as strings)."""
        ...

    @_operation(ops_positions.record_exit_event)
    async def record_exit_event(self, position_id: int, *, rule: str, kind: str, quantity: int,
                                reason: str | None, at: datetime, event_id: int | None = None) -> ExitEventRecord:
        """Every exit rule that fired, whether or not an order followed. `event_id` given: written once."""
        ...
    @_operation(ops_positions.list_exit_events)
    async def list_exit_events(self, position_id: int | None = None, limit: int = 100) -> list[ExitEventRecord]:
        """Newest first."""
        ...

    # ------------------------------------------------------------------ trading state, breakers, operators

    @_operation(ops_state.get_trading_state)
    async def get_trading_state(self) -> TradingStateRecord | None:
        """The stored state, None on a fresh database (the engine then starts ACTIVE)."""
        ...

    @_operation(ops_state.set_trading_state)
    async def set_trading_state(self, state: str, *, since: datetime, breaker_level: int = 0,
                                latched: bool = False, reason: str | None = None) -> TradingStateRecord:
        """Persist the trading state; `latched` (level-4 halt) survives restarts until set False."""
        ...

    @_operation(ops_state.record_breaker_event)
    async def record_breaker_event(self, *, level: int, from_state: str, to_state: str, session_pnl: Decimal,
                                   at: datetime, reason: str | None = None) -> BreakerEventRecord:
        ...

    @_operation(ops_state.list_breaker_events)
    async def list_breaker_events(self, since: datetime | None = None, limit: int = 100) -> list[BreakerEventRecord]:
        """Newest first."""
        ...

    @_operation(ops_state.record_operator_action)
    async def record_operator_action(self, action: OperatorAction, *, who: str, why: str | None, at: datetime,
                                     detail: Mapping[str, Any] | None = None) -> OperatorActionRecord:
        """halt / resume / flatten / ack, with who asked and why."""
        ...

    @_operation(ops_state.list_operator_actions)
    async def list_operator_actions(self, limit: int = 100) -> list[OperatorActionRecord]:
        """Newest first."""
        ...

    @_operation(ops_state.record_checkpoint)
    async def record_checkpoint(self, *, at: datetime, equity: Decimal, session_pnl: Decimal, drawdown: Decimal,
                                exposure: Decimal, open_positions: int, greeks: Mapping[str, Any],
                                breaker_level: int, state: str) -> None:
        """One 5-minute snapshot row. Low value: usually `store.submit(store.record_checkpoint, ...)`."""
        ...

    @_operation(ops_state.list_checkpoints)
    async def list_checkpoints(self, since: datetime | None = None) -> list[CheckpointRecord]:
        """Oldest first (the equity curve)."""
        ...

    @_operation(ops_state.block_underlying)
    async def block_underlying(self, underlying: str, *, reason: str, at: datetime,
                               detail: Mapping[str, Any] | None = None) -> BlockedUnderlying:
        """Block entries on an underlying (unknown broker position at start-up) until acknowledged.

        Blocking again with the same reason keeps an earlier acknowledgement; a new reason re-blocks.
        """
        ...

    @_operation(ops_state.ack_underlying)
    async def ack_underlying(self, underlying: str, *, who: str, at: datetime) -> BlockedUnderlying | None:
        """Operator acknowledgement; None when that underlying was never blocked."""
        ...

    @_operation(ops_state.blocked_underlyings)
    async def blocked_underlyings(self, include_acknowledged: bool = False) -> list[BlockedUnderlying]:
        ...

    @_operation(ops_state.get_meta)
    async def get_meta(self, key: str) -> str | None:
        ...

    @_operation(ops_state.set_meta)
    async def set_meta(self, key: str, value: str) -> None:
        ...

    @_operation(ops_state.meta_with_prefix)
    async def meta_with_prefix(self, prefix: str) -> dict[str, str]:
        ...

    # ------------------------------------------------------------------ start-up and reports

    @_operation(ops_state.reserve_ids)
    async def reserve_ids(self, table: str, count: int) -> int:
        """Reserve `count` ids of an engine-numbered table (`exit_events`, `decisions`) for this daemon,
        database-wide; returns the first."""
        ...

    @_operation(ops_state.load_snapshot)
    async def load_snapshot(self) -> StoreSnapshot:
        """Everything the engine loads at start, read in one transaction."""
        ...

    @_operation(summary.summary_by_day)
    async def summary_by_day(self, profile: str | None = None) -> list[DaySummary]:
        """Per session date (exchange time): signals, accepted, refused by reason, trades opened and
        closed, realized P&L, commissions, breaker events. `profile` defaults to this store's."""
        ...
