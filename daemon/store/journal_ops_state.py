"""The journal's write path for the rest of what a replay records: signals, decisions, positions opened,
checkpoints and meta, as `Prepared` statements on the batch's cursor (see daemon/store/journal_ops.py, whose
hot order/fill/exit operations these join in `journal_ops.FAST`).

Through the ORM these cost 0.2-1.5 ms of CPU each (a `session.get`, a unit-of-work flush, a refresh to hand
back a record nobody reads here); a 0dte replayed week writes ~5,000 of them. Same tables, same rows, same
refusals as `daemon.store.ops_signals`, `ops_positions`, `ops_state` (the reference:
tests/daemon/test_store_journal_ops.py runs both on the same records and compares every table). A rare case
(a decision id written before) is handed to the ORM operation, which decides it as it always did.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, bindparam, literal_column, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from daemon.store import ops_positions, ops_signals, ops_state
from daemon.store.models import CheckpointRow, DecisionRow, MetaRow, PositionRow, SignalRow
from daemon.store.prepared import Prepared, Statements, cursor, first
from daemon.store.types import keep_sequence_ahead
from market.types import OptionContract

_SIGNALS: Table = SignalRow.__table__  # type: ignore[assignment]
_DECISIONS: Table = DecisionRow.__table__  # type: ignore[assignment]
_POSITIONS: Table = PositionRow.__table__  # type: ignore[assignment]
_CHECKPOINTS: Table = CheckpointRow.__table__  # type: ignore[assignment]
_META: Table = MetaRow.__table__  # type: ignore[assignment]

_SIGNAL_COLUMNS = ("profile", "id", "received_at", "payload", "status", "reason")
_DECISION_COLUMNS = ("profile", "signal_id", "at", "accepted", "reason", "contracts", "notional", "multiplier",
                     "breakdown")
_POSITION_COLUMNS = ("profile", "underlying", "contract_key", "expiry", "strike", "right", "multiplier", "entry_time",
                     "entry_price", "original_qty", "open_qty", "realized_pnl", "status", "opened_by_signal_id",
                     "closed_at", "close_reason")
_CHECKPOINT_COLUMNS = ("profile", "at", "equity", "session_pnl", "drawdown", "exposure", "open_positions", "greeks",
                       "breaker_level", "state")


class _Dialect:
    def __init__(self, dialect: Dialect):
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        self.new_signal = Prepared(insert(_SIGNALS).on_conflict_do_nothing(index_elements=["profile", "id"]),
                                   dialect, _SIGNAL_COLUMNS)
        self.decision_taken = Prepared(select(_DECISIONS.c.id).where(_DECISIONS.c.id == bindparam("id")), dialect)
        self.insert_decision = Prepared(insert(_DECISIONS), dialect, _DECISION_COLUMNS)
        self.insert_decision_id = Prepared(insert(_DECISIONS), dialect, ("id", *_DECISION_COLUMNS))
        # ops_signals.record_decision: the first decision is the signal's; a later one must not rewrite it
        self.signal_decided = Prepared(update(_SIGNALS).where(
            _SIGNALS.c.profile == bindparam("p"), _SIGNALS.c.id == bindparam("sid"),
            _SIGNALS.c.status == literal_column("'received'")).values(status=bindparam("s"), reason=bindparam("r")),
            dialect)
        self.insert_position = Prepared(insert(_POSITIONS), dialect, _POSITION_COLUMNS)
        self.checkpoint_seen = Prepared(select(_CHECKPOINTS.c.id).where(
            _CHECKPOINTS.c.profile == bindparam("p"), _CHECKPOINTS.c.at == bindparam("at"),
            _CHECKPOINTS.c.equity == bindparam("equity"), _CHECKPOINTS.c.session_pnl == bindparam("pnl"),
            _CHECKPOINTS.c.open_positions == bindparam("n")), dialect)  # the first row is read: no LIMIT
        self.insert_checkpoint = Prepared(insert(_CHECKPOINTS), dialect, _CHECKPOINT_COLUMNS)
        self.meta_set = Prepared(update(_META).where(_META.c.profile == bindparam("p"), _META.c.key == bindparam("k"))
                                 .values(value=bindparam("v")), dialect)
        self.insert_meta = Prepared(insert(_META), dialect, ("profile", "key", "value"))


_STATEMENTS = Statements(_Dialect)


def record_signal(session: Session, profile: str, signal_id: str, payload: Mapping[str, Any], received_at: datetime,
                  status: str = "received", reason: str | None = None) -> None:
    # a signal id stored before: nothing written (the ORM operation's False)
    _STATEMENTS.on(session).new_signal.execute(cursor(session), ops_signals.signal_values(
        profile, signal_id, payload, received_at, status, reason))


def record_decision(session: Session, profile: str, *, signal_id: str | None, at: datetime, accepted: bool,
                    reason: str | None, contracts: int, notional: Decimal, multiplier: Decimal,
                    breakdown: Any, decision_id: int | None = None) -> None:
    cur, statements = cursor(session), _STATEMENTS.on(session)
    if decision_id is not None and first(statements.decision_taken.execute(cur, {"id": decision_id})) is not None:
        # written before: the same decision again is a no-op, another one under its id is refused
        ops_signals.record_decision(session, profile, signal_id=signal_id, at=at, accepted=accepted, reason=reason,
                                    contracts=contracts, notional=notional, multiplier=multiplier,
                                    breakdown=breakdown, decision_id=decision_id)
        return
    row = ops_signals.decision_values(profile, signal_id, at, accepted, reason, contracts, notional, multiplier,
                                      breakdown)
    if decision_id is None:
        statements.insert_decision.execute(cur, row)
    else:
        statements.insert_decision_id.execute(cur, {"id": decision_id, **row})
    if signal_id is not None:
        statements.signal_decided.execute(cur, {"p": profile, "sid": signal_id,
                                                "s": ops_signals.signal_decided(accepted), "r": reason})
    keep_sequence_ahead(session, "decisions", decision_id)


def open_position(session: Session, profile: str, contract: OptionContract, opened_at: datetime, *,
                  signal_id: str | None = None, quantity: int = 0, entry_price: Decimal | None = None) -> None:
    _STATEMENTS.on(session).insert_position.execute(cursor(session), ops_positions.opening_values(
        profile, contract, opened_at, signal_id=signal_id, quantity=quantity, entry_price=entry_price))


def record_checkpoint(session: Session, profile: str, *, at: datetime, equity: Decimal, session_pnl: Decimal,
                      drawdown: Decimal, exposure: Decimal, open_positions: int, greeks: Mapping[str, Any],
                      breaker_level: int, state: str) -> None:
    cur, statements = cursor(session), _STATEMENTS.on(session)
    if first(statements.checkpoint_seen.execute(cur, {  # natural key: a retried record is a no-op
            "p": profile, "at": at, "equity": equity, "pnl": session_pnl, "n": int(open_positions)})) is not None:
        return
    statements.insert_checkpoint.execute(cur, ops_state.checkpoint_values(
        profile, at=at, equity=equity, session_pnl=session_pnl, drawdown=drawdown, exposure=exposure,
        open_positions=open_positions, greeks=greeks, breaker_level=breaker_level, state=state))


def set_meta(session: Session, profile: str, key: str, value: str) -> None:
    cur, statements = cursor(session), _STATEMENTS.on(session)
    if statements.meta_set.execute(cur, {"p": profile, "k": key, "v": str(value)}).rowcount == 0:
        statements.insert_meta.execute(cur, {"profile": profile, "key": key, "value": str(value)})
