"""The tables (SPEC §6 state). Every row carries its profile, so one PostgreSQL database can
hold both daemons. Money in `Money` (exact Decimal), times in `UTCDateTime`.

Changing anything here needs an Alembic revision in `daemon/migrations/versions/`; a test
compares the migrated schema with these models.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from daemon.store.types import Money, UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Profile = String(16)
Key = String(64)
ComboKey = String(200)  # SPEC §9: a position's or fill's key may be a combo's (four legs of an iron condor)
Reason = String(200)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), Decimal: Money(), dict[str, Any]: JSON()}


class SignalRow(Base):
    __tablename__ = "signals"

    profile: Mapped[str] = mapped_column(Profile, primary_key=True)
    id: Mapped[str] = mapped_column(String(128), primary_key=True)  # unique per profile: duplicates are refused
    received_at: Mapped[datetime]
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Reason)

    __table_args__ = (Index("ix_signals_profile_received_at", "profile", "received_at"),)


class DecisionRow(Base):
    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    profile: Mapped[str] = mapped_column(Profile)
    signal_id: Mapped[str | None] = mapped_column(String(128), index=True)
    at: Mapped[datetime]
    accepted: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(Reason)
    contracts: Mapped[int] = mapped_column(Integer)
    notional: Mapped[Decimal]
    multiplier: Mapped[Decimal]
    breakdown: Mapped[dict[str, Any]]

    __table_args__ = (Index("ix_decisions_profile_at", "profile", "at"),)


class OrderIntentRow(Base):
    __tablename__ = "order_intents"

    # Order ids are per IB client id, so unique per profile (each daemon has its own client id).
    profile: Mapped[str] = mapped_column(Profile, primary_key=True)
    order_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    order_ref: Mapped[str] = mapped_column(String(128), index=True)
    parent_ref: Mapped[str | None] = mapped_column(String(128))
    contract_key: Mapped[str] = mapped_column(Key)
    side: Mapped[str] = mapped_column(String(4))
    quantity: Mapped[int] = mapped_column(Integer)
    order_type: Mapped[str] = mapped_column(String(8))
    limit_price: Mapped[Decimal | None]
    stop_price: Mapped[Decimal | None]
    tif: Mapped[str] = mapped_column(String(8))
    position_id: Mapped[int | None] = mapped_column(ForeignKey("positions.id"))
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (Index("ix_order_intents_profile_state", "profile", "state"),)


class OrderRow(Base):
    __tablename__ = "orders"

    # Order ids are per IB client id, so unique per profile (each daemon has its own client id).
    profile: Mapped[str] = mapped_column(Profile, primary_key=True)
    order_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    order_ref: Mapped[str] = mapped_column(String(128), index=True)
    status: Mapped[str] = mapped_column(String(32))
    filled: Mapped[int] = mapped_column(Integer)
    remaining: Mapped[int] = mapped_column(Integer)
    avg_fill_price: Mapped[Decimal | None]
    reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime]

    __table_args__ = (Index("ix_orders_profile_updated_at", "profile", "updated_at"),)


class FillRow(Base):
    __tablename__ = "fills"

    # The broker's execution id, unique: a fill is applied exactly once, however often it is reported.
    exec_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    profile: Mapped[str] = mapped_column(Profile)
    order_id: Mapped[int] = mapped_column(Integer, index=True)
    order_ref: Mapped[str] = mapped_column(String(128))
    contract_key: Mapped[str] = mapped_column(ComboKey)
    side: Mapped[str] = mapped_column(String(4))
    quantity: Mapped[int] = mapped_column(Integer)
    price: Mapped[Decimal]
    commission: Mapped[Decimal]
    at: Mapped[datetime]
    position_id: Mapped[int | None] = mapped_column(ForeignKey("positions.id"), index=True)
    realized_pnl: Mapped[Decimal]

    __table_args__ = (Index("ix_fills_profile_at", "profile", "at"),)


class PositionRow(Base):
    __tablename__ = "positions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    profile: Mapped[str] = mapped_column(Profile)
    underlying: Mapped[str] = mapped_column(String(16))
    contract_key: Mapped[str] = mapped_column(ComboKey)
    expiry: Mapped[date] = mapped_column(Date)
    strike: Mapped[Decimal]
    right: Mapped[str] = mapped_column(String(1))
    multiplier: Mapped[int] = mapped_column(Integer)
    entry_time: Mapped[datetime]
    entry_price: Mapped[Decimal]
    original_qty: Mapped[int] = mapped_column(Integer)
    open_qty: Mapped[int] = mapped_column(Integer)
    realized_pnl: Mapped[Decimal]
    status: Mapped[str] = mapped_column(String(8))
    opened_by_signal_id: Mapped[str | None] = mapped_column(String(128))
    closed_at: Mapped[datetime | None]
    close_reason: Mapped[str | None] = mapped_column(Reason)

    __table_args__ = (Index("ix_positions_profile_status", "profile", "status"),)


class ComboPositionRow(Base):
    """SPEC §9: a multi-leg position's legs and value offset (market.combo); the position row holds
    the combo's key and its value-space prices."""

    __tablename__ = "combo_positions"

    position_id: Mapped[int] = mapped_column(ForeignKey("positions.id"), primary_key=True)
    profile: Mapped[str] = mapped_column(Profile)
    strategy: Mapped[str] = mapped_column(String(16))
    structure: Mapped[str] = mapped_column(String(16))
    value_offset: Mapped[Decimal]
    legs: Mapped[dict[str, Any]]  # {"legs": [{"contract", "side", "ratio"}, ...]}


class ComboLegFillRow(Base):
    """One leg execution of a combo order, as the broker reported it (the position moves by the
    whole units these make up: `fills` holds those, priced in value space)."""

    __tablename__ = "combo_leg_fills"

    exec_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    profile: Mapped[str] = mapped_column(Profile)
    order_id: Mapped[int] = mapped_column(Integer, index=True)
    order_ref: Mapped[str] = mapped_column(String(128))
    position_id: Mapped[int | None] = mapped_column(ForeignKey("positions.id"), index=True)
    contract_key: Mapped[str] = mapped_column(Key)
    side: Mapped[str] = mapped_column(String(4))
    quantity: Mapped[int] = mapped_column(Integer)
    price: Mapped[Decimal]
    commission: Mapped[Decimal]
    at: Mapped[datetime]


class ExitStateRow(Base):
    __tablename__ = "exit_states"

    position_id: Mapped[int] = mapped_column(ForeignKey("positions.id"), primary_key=True)
    state: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]


class ExitEventRow(Base):
    __tablename__ = "exit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    profile: Mapped[str] = mapped_column(Profile)
    position_id: Mapped[int] = mapped_column(ForeignKey("positions.id"), index=True)
    rule: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    quantity: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(Reason)
    at: Mapped[datetime]


class BreakerEventRow(Base):
    __tablename__ = "breaker_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    profile: Mapped[str] = mapped_column(Profile)
    level: Mapped[int] = mapped_column(Integer)
    from_state: Mapped[str] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    session_pnl: Mapped[Decimal]
    reason: Mapped[str | None] = mapped_column(Reason)
    at: Mapped[datetime]

    __table_args__ = (Index("ix_breaker_events_profile_at", "profile", "at"),)


class TradingStateRow(Base):
    __tablename__ = "trading_state"

    profile: Mapped[str] = mapped_column(Profile, primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    breaker_level: Mapped[int] = mapped_column(Integer)
    latched: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(Reason)
    since: Mapped[datetime]


class OperatorActionRow(Base):
    __tablename__ = "operator_actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    profile: Mapped[str] = mapped_column(Profile)
    action: Mapped[str] = mapped_column(String(16))
    who: Mapped[str] = mapped_column(String(64))
    why: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any]]
    at: Mapped[datetime]


class CheckpointRow(Base):
    __tablename__ = "checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    profile: Mapped[str] = mapped_column(Profile)
    at: Mapped[datetime]
    equity: Mapped[Decimal]
    session_pnl: Mapped[Decimal]
    drawdown: Mapped[Decimal]
    exposure: Mapped[Decimal]
    open_positions: Mapped[int] = mapped_column(Integer)
    greeks: Mapped[dict[str, Any]]
    breaker_level: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))

    __table_args__ = (Index("ix_checkpoints_profile_at", "profile", "at"),)


class BlockedUnderlyingRow(Base):
    __tablename__ = "blocked_underlyings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    profile: Mapped[str] = mapped_column(Profile)
    underlying: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Reason)
    detail: Mapped[dict[str, Any]]
    blocked_at: Mapped[datetime]
    acknowledged: Mapped[bool] = mapped_column(Boolean)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    acknowledged_at: Mapped[datetime | None]

    __table_args__ = (UniqueConstraint("profile", "underlying"),)


class MetaRow(Base):
    __tablename__ = "meta"

    profile: Mapped[str] = mapped_column(Profile, primary_key=True)  # "" for database-wide keys
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
