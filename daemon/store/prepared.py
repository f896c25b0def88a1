"""`Prepared`: a SQLAlchemy Core statement compiled once per dialect, run on the transaction's DBAPI cursor.

Why: `Connection.execute` of an already cached statement still builds an execution context, a result
object and a parameter dict per call: ~40-60 us of CPU a statement on this machine, ~2.6 statements a
journal record, under the GIL the replay's core needs (docs/decisions/store7.md). The journal's write
path runs the same few statements tens of thousands of times a replayed week, so each is compiled once
(SQL text, parameter order, and the column types' bind processors: `UTCDateTime`, `Money`, JSON) and
handed to the driver's cursor directly. The values reach the database exactly as through
`Connection.execute`: the same SQL text, the same processors, in the same order.

The cursor is the session's own connection's, inside the batch's transaction (pysqlite opens it at the
first write on any cursor of the connection; psycopg at the first statement), so these statements commit
and roll back with the ORM operations around them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement, crud

from daemon.store.types import UTCDateTime

_CURSOR = "tradingd.cursor"  # session.info: the batch's DBAPI cursor
_REQUIRED = crud.REQUIRED  # an INSERT column's bind without a value of its own


class Prepared:
    """One statement for one dialect. `columns`: the keys an INSERT without `.values()` is compiled for
    (SQLAlchemy compiles such a statement for the keys of the parameters it is given)."""

    __slots__ = ("sql", "_names", "_get", "_processors", "_named", "_types", "_columns", "_dialect")

    def __init__(self, statement: ClauseElement, dialect: Dialect, columns: Sequence[str] | None = None):
        compiled = statement.compile(dialect=dialect, column_keys=list(columns) if columns is not None else None)
        if compiled.post_compile_params:  # an IN of bound values: give the statement literal values instead
            raise ValueError(f"{compiled.string}: expanding parameters cannot be prepared")
        self.sql: str = compiled.string
        own = {name: value for name, value in compiled.construct_params(_check=False).items()
               if value is not None and value is not _REQUIRED}
        if own:  # every value comes from the caller, so that one `itemgetter` takes them all
            raise ValueError(f"{compiled.string}: values of its own {sorted(own)}: use literal_column")
        positions = compiled.positiontup
        self._named = positions is None  # psycopg: %(name)s; pysqlite: ? in `positiontup`'s order
        names = tuple(compiled.binds) if positions is None else tuple(positions)
        self._names = names
        self._get = itemgetter(*names) if len(names) > 1 else (lambda values: (values[names[0]],))
        processors = compiled._bind_processors
        self._processors = tuple((i, _memo(processors[name]) if isinstance(compiled.binds[name].type, UTCDateTime)
                                  else processors[name]) for i, name in enumerate(names) if name in processors)
        # a SELECT's (or RETURNING's) columns: each value read back through its type, as a Result does (the
        # processors need the driver's type codes, psycopg's Numeric above all: taken at the first row read)
        self._types = tuple((key, type_) for key, _, _, type_ in compiled._result_columns)
        self._columns: tuple[tuple[str, Any], ...] | None = None
        self._dialect = dialect

    def params(self, values: Mapping[str, Any]) -> Any:
        """The driver's parameters: each value through its column type's bind processor (None too, as
        `Connection.execute` does: JSON's turns it into 'null'). A value missing is a KeyError."""
        out = list(self._get(values))
        for i, process in self._processors:
            out[i] = process(out[i])
        if self._named:
            return dict(zip(self._names, out))
        return out

    def execute(self, cursor: Any, values: Mapping[str, Any]) -> Any:
        cursor.execute(self.sql, self.params(values))
        return cursor

    def row(self, cursor: Any) -> dict[str, Any] | None:
        """The next row of what this statement returned, by column name, each value through its column type's
        result processor (`Money` back to Decimal, `UTCDateTime` to exchange time), or None."""
        found = cursor.fetchone()
        if found is None:
            return None
        columns = self._columns
        if columns is None:
            columns = self._columns = tuple(
                (key, type_._cached_result_processor(self._dialect, described[1]))
                for (key, type_), described in zip(self._types, cursor.description, strict=True))
        return {key: value if process is None else process(value) for (key, process), value in zip(columns, found)}


class _Last:
    """A time's bind processor with the last value it converted: one record's time is bound two to four times
    (an order's status and its intent's state; an intent's created_at and updated_at), and the conversion
    (to UTC, naive, ISO text on SQLite) is a pure function of an immutable datetime. The pair is one tuple,
    replaced whole, so a reader on another thread never sees one value's input with another's output."""

    __slots__ = ("process", "last")

    def __init__(self, process: Any):
        self.process = process
        self.last: tuple[Any, Any] = (_Last, None)

    def __call__(self, value: Any) -> Any:
        last = self.last
        if last[0] is value:
            return last[1]
        out = self.process(value)
        self.last = (value, out)
        return out


_LAST: dict[Any, _Last] = {}


def _memo(process: Any) -> _Last:
    """The one memo of a processor (SQLAlchemy shares a type's processor across the statements of a dialect)."""
    found = _LAST.get(process)
    if found is None:
        found = _LAST[process] = _Last(process)
    return found


class Statements:
    """Prepared statements built once per dialect name by `build(dialect) -> object with Prepared fields`."""

    def __init__(self, build: Any):
        self._build = build
        self._by_dialect: dict[str, Any] = {}

    def of(self, dialect: Dialect) -> Any:
        found = self._by_dialect.get(dialect.name)
        if found is None:
            found = self._by_dialect[dialect.name] = self._build(dialect)
        return found

    def on(self, session: Session) -> Any:
        """`of` the session's dialect, kept in session.info (`get_bind` costs more than the statement's call)."""
        found = session.info.get(self)
        if found is None:
            found = session.info[self] = self.of(session.get_bind().dialect)
        return found


def cursor(session: Session) -> Any:
    """The batch's DBAPI cursor on the session's connection (one per session: a session is one batch)."""
    found = session.info.get(_CURSOR)
    if found is None:
        found = session.info[_CURSOR] = session.connection().connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    return found


def first(cursor: Any) -> Any:
    """The first row a statement returned (RETURNING, SELECT), or None."""
    return cursor.fetchone()


def first_value(cursor: Any) -> Any:
    row = cursor.fetchone()
    return None if row is None else row[0]

