"""Trading state (the latch), breaker events, operator actions, checkpoints, blocked underlyings, meta."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Integer, Text, cast, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from daemon.store import ops_combos, ops_orders, ops_positions
from daemon.store.errors import StoreError
from daemon.store.models import (
    BlockedUnderlyingRow,
    BreakerEventRow,
    CheckpointRow,
    DecisionRow,
    ExitEventRow,
    MetaRow,
    OperatorActionRow,
    TradingStateRow,
)
from daemon.store.records import (
    BlockedUnderlying,
    BreakerEventRecord,
    CheckpointRecord,
    OperatorActionRecord,
    StoreSnapshot,
    TradingStateRecord,
)
from daemon.store.types import jsonable, stored

OPERATOR_ACTIONS = ("halt", "resume", "flatten", "ack")


def get_trading_state(session: Session, profile: str) -> TradingStateRecord | None:
    row = session.get(TradingStateRow, profile)
    return None if row is None else _trading_state(row)


def set_trading_state(session: Session, profile: str, state: str, *, since: datetime, breaker_level: int = 0,
                      latched: bool = False, reason: str | None = None) -> TradingStateRecord:
    if not state:
        raise StoreError("a trading state needs a name", "bad_trading_state")
    row = session.get(TradingStateRow, profile)
    if row is None:
        row = TradingStateRow(profile=profile)
        session.add(row)
    row.state, row.since, row.breaker_level = state, since, int(breaker_level)
    row.latched, row.reason = bool(latched), reason
    return _trading_state(stored(session, row))


def record_breaker_event(session: Session, profile: str, *, level: int, from_state: str, to_state: str,
                         session_pnl: Decimal, at: datetime, reason: str | None = None) -> BreakerEventRecord:
    existing = session.scalar(select(BreakerEventRow).where(  # natural key: a retried record is a no-op
        BreakerEventRow.profile == profile, BreakerEventRow.level == int(level), BreakerEventRow.at == at,
        BreakerEventRow.to_state == to_state).limit(1))
    if existing is not None:
        return _breaker_event(existing)
    row = BreakerEventRow(profile=profile, level=int(level), from_state=from_state, to_state=to_state,
                          session_pnl=session_pnl, reason=reason, at=at)
    session.add(row)
    return _breaker_event(stored(session, row))


def list_breaker_events(session: Session, profile: str, since: datetime | None = None,
                        limit: int = 100) -> list[BreakerEventRecord]:
    query = select(BreakerEventRow).where(BreakerEventRow.profile == profile)
    if since is not None:
        query = query.where(BreakerEventRow.at >= since)
    rows = session.scalars(query.order_by(BreakerEventRow.at.desc(), BreakerEventRow.id.desc()).limit(limit))
    return [_breaker_event(r) for r in rows]


def record_operator_action(session: Session, profile: str, action: str, *, who: str, why: str | None, at: datetime,
                           detail: Mapping[str, Any] | None = None) -> OperatorActionRecord:
    if action not in OPERATOR_ACTIONS:
        raise StoreError(f"operator action {action!r} is not one of {OPERATOR_ACTIONS}", "bad_operator_action")
    if not who:
        raise StoreError("an operator action needs who asked for it", "missing_operator")
    existing = session.scalar(select(OperatorActionRow).where(  # natural key: a retried record is a no-op
        OperatorActionRow.profile == profile, OperatorActionRow.action == action, OperatorActionRow.who == who,
        OperatorActionRow.at == at).limit(1))
    if existing is not None:
        return _operator_action(existing)
    row = OperatorActionRow(profile=profile, action=action, who=who, why=why, at=at,
                            detail=jsonable(dict(detail or {})))
    session.add(row)
    return _operator_action(stored(session, row))


def list_operator_actions(session: Session, profile: str, limit: int = 100) -> list[OperatorActionRecord]:
    rows = session.scalars(select(OperatorActionRow).where(OperatorActionRow.profile == profile)
                           .order_by(OperatorActionRow.at.desc(), OperatorActionRow.id.desc()).limit(limit))
    return [_operator_action(r) for r in rows]


def checkpoint_values(profile: str, *, at: datetime, equity: Decimal, session_pnl: Decimal, drawdown: Decimal,
                      exposure: Decimal, open_positions: int, greeks: Mapping[str, Any], breaker_level: int,
                      state: str) -> dict[str, Any]:
    """A checkpoint's row (here and in the journal's Core path, journal_ops_state.py)."""
    return {"profile": profile, "at": at, "equity": equity, "session_pnl": session_pnl, "drawdown": drawdown,
            "exposure": exposure, "open_positions": int(open_positions), "greeks": jsonable(dict(greeks)),
            "breaker_level": int(breaker_level), "state": state}


def record_checkpoint(session: Session, profile: str, *, at: datetime, equity: Decimal, session_pnl: Decimal,
                      drawdown: Decimal, exposure: Decimal, open_positions: int, greeks: Mapping[str, Any],
                      breaker_level: int, state: str) -> None:
    if session.scalar(select(CheckpointRow.id).where(  # natural key: a retried record is a no-op
            CheckpointRow.profile == profile, CheckpointRow.at == at, CheckpointRow.equity == equity,
            CheckpointRow.session_pnl == session_pnl, CheckpointRow.open_positions == int(open_positions))
            .limit(1)) is not None:
        return
    session.add(CheckpointRow(**checkpoint_values(profile, at=at, equity=equity, session_pnl=session_pnl,
                                                  drawdown=drawdown, exposure=exposure,
                                                  open_positions=open_positions, greeks=greeks,
                                                  breaker_level=breaker_level, state=state)))


def list_checkpoints(session: Session, profile: str, since: datetime | None = None) -> list[CheckpointRecord]:
    query = select(CheckpointRow).where(CheckpointRow.profile == profile)
    if since is not None:
        query = query.where(CheckpointRow.at >= since)
    rows = session.scalars(query.order_by(CheckpointRow.at, CheckpointRow.id))
    return [CheckpointRecord(at=r.at, equity=r.equity, session_pnl=r.session_pnl, drawdown=r.drawdown,
                             exposure=r.exposure, open_positions=r.open_positions, greeks=r.greeks,
                             breaker_level=r.breaker_level, state=r.state) for r in rows]


def block_underlying(session: Session, profile: str, underlying: str, *, reason: str, at: datetime,
                     detail: Mapping[str, Any] | None = None) -> BlockedUnderlying:
    if not underlying or not reason:
        raise StoreError("blocking needs an underlying and a reason", "bad_block")
    row = _blocked_row(session, profile, underlying)
    if row is None:
        row = BlockedUnderlyingRow(profile=profile, underlying=underlying)
        session.add(row)
    elif row.acknowledged and row.reason == reason:
        return _blocked(row)  # the operator already accepted this very discrepancy
    row.reason, row.detail, row.blocked_at = reason, jsonable(dict(detail or {})), at
    row.acknowledged, row.acknowledged_by, row.acknowledged_at = False, None, None
    return _blocked(stored(session, row))


def ack_underlying(session: Session, profile: str, underlying: str, *, who: str,
                   at: datetime) -> BlockedUnderlying | None:
    if not who:
        raise StoreError("an acknowledgement needs who gave it", "missing_operator")
    row = _blocked_row(session, profile, underlying)
    if row is None:
        return None
    if not row.acknowledged:
        row.acknowledged, row.acknowledged_by, row.acknowledged_at = True, who, at
    return _blocked(stored(session, row))


def blocked_underlyings(session: Session, profile: str, include_acknowledged: bool = False) -> list[BlockedUnderlying]:
    query = select(BlockedUnderlyingRow).where(BlockedUnderlyingRow.profile == profile)
    if not include_acknowledged:
        query = query.where(BlockedUnderlyingRow.acknowledged.is_(False))
    return [_blocked(r) for r in session.scalars(query.order_by(BlockedUnderlyingRow.underlying))]


def get_meta(session: Session, profile: str, key: str) -> str | None:
    row = session.get(MetaRow, (profile, key))
    return None if row is None else row.value


def meta_with_prefix(session: Session, profile: str, prefix: str) -> dict[str, str]:
    """Every meta record of the profile whose key starts with `prefix` (key -> value)."""
    query = select(MetaRow).where(MetaRow.profile == profile, MetaRow.key.startswith(prefix, autoescape=True))
    return {row.key: row.value for row in session.scalars(query)}


def set_meta(session: Session, profile: str, key: str, value: str) -> None:
    row = session.get(MetaRow, (profile, key))
    if row is None:
        session.add(MetaRow(profile=profile, key=key, value=str(value)))
    else:
        row.value = str(value)


# Tables whose ids the engine gives (journal records carry them): one id space per table, shared by every
# profile on the database, handed out in blocks so two daemons sharing a database never give the same id.
_ENGINE_NUMBERED = {"exit_events": ExitEventRow, "decisions": DecisionRow}


def reserve_ids(session: Session, profile: str, table: str, count: int) -> int:
    """Reserve `count` ids of `table` for this daemon; returns the first. Atomic across daemons: the
    database-wide counter row is created if missing, then incremented in one UPDATE (a row lock on
    PostgreSQL, the write lock on SQLite) before it is read back."""
    model = _ENGINE_NUMBERED.get(table)
    if model is None or count <= 0:
        raise StoreError(f"cannot reserve {count} ids of {table!r}", "bad_id_reservation")
    key = f"ids.{table}"
    highest = int(session.scalar(select(func.max(model.id))) or 0)
    insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else pg_insert
    session.execute(insert(MetaRow).values(profile="", key=key, value=str(highest))
                    .on_conflict_do_nothing(index_elements=["profile", "key"]))
    session.execute(update(MetaRow).where(MetaRow.profile == "", MetaRow.key == key)
                    .values(value=cast(cast(MetaRow.value, Integer) + count, Text)))
    end = int(session.scalar(select(MetaRow.value).where(MetaRow.profile == "", MetaRow.key == key)) or 0)
    start = max(end - count + 1, highest + 1)  # a table written around the counter (tests): never below its rows
    if start + count - 1 > end:
        session.execute(update(MetaRow).where(MetaRow.profile == "", MetaRow.key == key)
                        .values(value=str(start + count - 1)))
    return start


def load_snapshot(session: Session, profile: str) -> StoreSnapshot:
    return StoreSnapshot(
        trading_state=get_trading_state(session, profile),
        open_positions=tuple(ops_positions.load_open_positions(session, profile)),
        exit_states=ops_positions.load_exit_states(session, profile),
        pending_intents=tuple(ops_orders.load_pending_intents(session, profile)),
        blocked_underlyings=tuple(blocked_underlyings(session, profile)),
        highest_order_id=ops_orders.highest_order_id(session, profile),
        last_execution_time=ops_orders.last_execution_time(session, profile),
        combos=ops_combos.load_combos(session, profile),
        combo_leg_fills=ops_combos.open_leg_fills(session, profile),
    )


def _blocked_row(session: Session, profile: str, underlying: str) -> BlockedUnderlyingRow | None:
    return session.scalar(select(BlockedUnderlyingRow).where(BlockedUnderlyingRow.profile == profile,
                                                             BlockedUnderlyingRow.underlying == underlying))


def _trading_state(row: TradingStateRow) -> TradingStateRecord:
    return TradingStateRecord(state=row.state, breaker_level=row.breaker_level, latched=row.latched,
                              reason=row.reason, since=row.since)


def _breaker_event(row: BreakerEventRow) -> BreakerEventRecord:
    return BreakerEventRecord(id=row.id, level=row.level, from_state=row.from_state, to_state=row.to_state,
                              session_pnl=row.session_pnl, reason=row.reason, at=row.at)


def _operator_action(row: OperatorActionRow) -> OperatorActionRecord:
    return OperatorActionRecord(id=row.id, action=row.action, who=row.who, why=row.why,  # type: ignore[arg-type]
                                at=row.at, detail=row.detail)


def _blocked(row: BlockedUnderlyingRow) -> BlockedUnderlying:
    return BlockedUnderlying(underlying=row.underlying, reason=row.reason, detail=row.detail,
                             blocked_at=row.blocked_at, acknowledged=row.acknowledged,
                             acknowledged_by=row.acknowledged_by, acknowledged_at=row.acknowledged_at)
