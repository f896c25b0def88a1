"""One daemon per state (SPEC §6.2): taken before anything touches the broker, held for the process's life.

Two daemons on one store would hand out the same order ids, apply each other's fills and
fight over the protective stops. So `tradingd run` takes this lock first and refuses to start,
with the reason, when another process holds it:

- SQLite: an `fcntl` lock on `<database file>.<profile>.lock` beside the database (the state directory);
  the kernel releases it when the process dies, however it dies, so a crash never leaves a
  stale lock behind. A file lock, not the database's own locks: those are per transaction.
- PostgreSQL: `pg_try_advisory_lock` on one connection kept open, keyed by the database, the
  schema (search_path) and the profile, so two profiles may share a database. The server
  releases it when that session ends.

The key includes the profile in both cases: the 0dte and 7dte daemons are two daemons by design.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from daemon.store.errors import StoreError

STORE_LOCKED = "store_locked"


class StoreLock:
    """`acquire()` or StoreError(`store_locked`); `release()` (idempotent). Also a context manager."""

    def __init__(self, url: str, profile: str):
        self.url = url
        self.profile = profile
        self._fd: int | None = None
        self._pg: Any = None
        self._engine: Any = None
        self.where = ""

    def acquire(self) -> StoreLock:
        parsed = make_url(self.url)
        if parsed.get_backend_name() == "sqlite":
            if not parsed.database or parsed.database == ":memory:":
                return self  # a private in-memory database: nobody else can open it
            self._lock_file(Path(parsed.database).expanduser().resolve())
        else:
            self._lock_postgres()
        return self

    def reacquire(self) -> bool:
        """PostgreSQL only: after the server came back (its restart ended the session that held the
        advisory lock), take it again. False when another daemon took it meanwhile."""
        if make_url(self.url).get_backend_name() != "postgresql":
            return True
        if self._pg is not None:
            try:
                self._pg.exec_driver_sql("SELECT 1")
                return True  # the session survived: the lock is still ours
            except Exception:  # noqa: BLE001 - a dead session: take the lock again on a new one
                pass
        self.release()
        try:
            self._lock_postgres()
        except StoreError:
            return False
        return True

    def release(self) -> None:
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None
        if self._pg is not None:
            try:
                self._pg.close()  # ending the session releases the advisory lock
            except Exception:  # noqa: BLE001 - a dead connection has released it already
                pass
            self._pg = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def __enter__(self) -> StoreLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    # ------------------------------------------------------------------ SQLite

    def _lock_file(self, database: Path) -> None:
        path = database.with_name(f"{database.name}.{self.profile}.lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            fd = os.open(path, os.O_RDONLY)  # a read-only state dir: flock works on any descriptor
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            raise StoreError(f"{STORE_LOCKED}: another tradingd ({holder or 'pid unknown'}) already runs on "
                             f"{database}; one daemon per state directory", STORE_LOCKED) from None
        with contextlib.suppress(OSError):  # a read-only lock file: the lock holds, only the pid note is missing
            os.ftruncate(fd, 0)
            os.write(fd, f"pid {os.getpid()}\n".encode())
        self._fd = fd
        self.where = str(path)

    # ------------------------------------------------------------------ PostgreSQL

    def _lock_postgres(self) -> None:
        from daemon.store.database import make_engine

        self._engine = make_engine(self.url)
        connection = self._engine.connect()
        try:
            database, schema = connection.execute(text("SELECT current_database(), current_schema()")).one()
            key = advisory_key(f"{database}/{schema}/{self.profile}")
            got = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar()
            connection.commit()
        except Exception:
            connection.close()
            self._engine.dispose()
            self._engine = None
            raise
        if not got:
            connection.close()
            self._engine.dispose()
            self._engine = None
            raise StoreError(f"{STORE_LOCKED}: another tradingd already runs profile {self.profile} on PostgreSQL "
                             f"database {database}, schema {schema}; one daemon per database", STORE_LOCKED)
        self._pg = connection
        self.where = f"postgresql {database}/{schema} advisory lock {key}"


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for `pg_try_advisory_lock`."""
    return int.from_bytes(hashlib.sha256(f"tradingd:{name}".encode()).digest()[:8], "big", signed=True)


def _read(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return os.read(fd, 100).decode(errors="replace").strip()
    except OSError:
        return ""
