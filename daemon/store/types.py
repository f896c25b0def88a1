"""Column types that behave the same on SQLite and PostgreSQL.

`UTCDateTime`: stored as UTC (timestamptz on PostgreSQL, naive UTC text on SQLite, which
has no zone), read back timezone-aware in exchange time. Naive input is refused: a time
without a zone is a bug upstream, not something to guess about.

`Money`: NUMERIC(18, 4) on PostgreSQL; on SQLite, whose NUMERIC is a float, the value is
kept as an integer count of 1/10,000ths so Decimal round-trips exactly and SUM stays exact.
Both quantize to 4 places, half-even, so the two databases agree to the last digit.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from datetime import date, datetime, time, timezone
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, TypeVar

from sqlalchemy import BigInteger, DateTime, Dialect, Numeric
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeDecorator, TypeEngine

from market.clock import EXCHANGE_TZ
from daemon.store.errors import StoreError

MONEY_PRECISION = 18
MONEY_SCALE = 4
_QUANTUM = Decimal(1).scaleb(-MONEY_SCALE)
_SCALE = 10**MONEY_SCALE

R = TypeVar("R")


def to_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise StoreError(f"naive datetime {value.isoformat()} (the store needs timezone-aware times)", "naive_datetime")
    return value.astimezone(timezone.utc)


def from_db_time(value: datetime) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(EXCHANGE_TZ)


def quantize_money(value: Decimal | int | str) -> Decimal:
    try:
        amount = Decimal(value)
        if not amount.is_finite():
            raise InvalidOperation
        return amount.quantize(_QUANTUM, rounding=ROUND_HALF_EVEN)
    except (InvalidOperation, TypeError, ValueError):
        raise StoreError(f"not a finite decimal amount: {value!r}", "bad_amount") from None


class UTCDateTime(TypeDecorator[datetime]):
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        utc = to_utc(value)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else from_db_time(value)


class Money(TypeDecorator[Decimal]):
    impl = Numeric(MONEY_PRECISION, MONEY_SCALE, asdecimal=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(MONEY_PRECISION, MONEY_SCALE, asdecimal=True))

    def process_bind_param(self, value: Decimal | int | str | None, dialect: Dialect) -> Decimal | int | None:
        if value is None:
            return None
        amount = quantize_money(value)
        return int(amount.scaleb(MONEY_SCALE)) if dialect.name == "sqlite" else amount

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return (Decimal(int(value)) / _SCALE).quantize(_QUANTUM)
        return Decimal(value).quantize(_QUANTUM)


def stored(session: Session, row: R) -> R:
    """The row as the database holds it (quantized money, exchange-time datetimes), not as assigned."""
    session.flush()
    session.refresh(row)
    return row


def jsonable(value: Any) -> Any:
    """Plain JSON of what the engine hands over: Decimals as strings (exact), times ISO 8601."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if hasattr(value, "model_dump"):  # pydantic models (signals)
        return jsonable(value.model_dump(mode="json"))
    raise StoreError(f"cannot store a {type(value).__name__} as JSON", "bad_json")


def keep_sequence_ahead(session: Session, table: str, row_id: int | None) -> None:
    """After a row was inserted with an id the engine chose (journal records carry their ids), move
    PostgreSQL's serial sequence past it, so a later insert that lets the database number it cannot
    collide. SQLite numbers from max(rowid) + 1 already."""
    if row_id is None or session.get_bind().dialect.name != "postgresql":
        return
    from sqlalchemy import text

    session.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                         f"GREATEST(:id, (SELECT last_value FROM {table}_id_seq)))"), {"id": int(row_id)})

