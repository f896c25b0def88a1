"""Engines: the default SQLite file per profile, its pragmas, and PostgreSQL by URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from daemon.store.errors import StoreError

# Used when no configuration is at hand (tests, scripts); the daemon passes
# `settings.daemon.store.busy_timeout_ms`.
DEFAULT_BUSY_TIMEOUT_MS = 5000
SUPPORTED_DIALECTS = ("sqlite", "postgresql")


def default_url(state_dir: str | Path, profile: str) -> str:
    """`sqlite:///<state_dir>/tradingd-<profile>.db`, the directory created, the path absolute
    so that a later change of working directory cannot point the daemon at another file."""
    directory = Path(state_dir).expanduser().resolve()
    directory.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{directory / f'tradingd-{profile}.db'}"


def make_engine(url: str, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(f"not a database URL: {url!r}", "bad_store_url") from None
    if parsed.get_backend_name() not in SUPPORTED_DIALECTS:
        raise StoreError(f"unsupported database {parsed.get_backend_name()!r}; use sqlite or postgresql+psycopg",
                         "bad_store_url")
    if parsed.get_backend_name() == "postgresql":
        if parsed.get_driver_name() != "psycopg":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(parsed)
    _sqlite_pragmas(engine, busy_timeout_ms)
    return engine


def _sqlite_pragmas(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # WAL: readers (status commands, a second process) never block the writer.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        # NORMAL is durable across process crashes under WAL; only power loss may drop the last commits.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
