"""`IntentLog`: the exit's write-ahead on the event loop's own thread (room tick, SPEC §6.1).

An exit or a stop must not wait on the store's writer thread: handing a record to that thread and
hearing back costs two thread wake-ups and ~8 ORM statements, each re-taking the GIL from a loop busy
with quotes (5-20 ms under load, docs/performance.md "Tick-to-order"). Instead, before such an order
is sent, the journal appends every record not yet committed (the exit's own state, its exit event and
its intent, and anything still waiting before them) to this append-only file with one `os.write`, and
the order goes out; the writer thread commits the same records to the database as before.

Crash guarantee (the same as the database's under WAL + synchronous=NORMAL, which does not fsync a
commit either): once `append` returns, the bytes are in the kernel's page cache and survive a
SIGKILL of the process. At the next start, before reconciliation reads the store, `open_for` folds
into the database the records the file holds and the database does not (`replay`): the intent is
then in the database exactly as if its commit had finished before the kill.

Which records the database already holds: every batch the journal commits also sets, in the same
transaction, `meta[MARK_KEY] = "<generation>:<seq of the batch's last record>"` (`mark`). Records in
the file of that generation up to that number are committed; the rest are applied, in order, in one
transaction that moves the mark past them. Only then is the file emptied. Re-applying a record twice
is harmless anyway (the operations are idempotent by natural key), but skipping what is committed
keeps an older exit state from overwriting a newer one.

The file is in the store's own directory (`<database>-intents`, like SQLite's `-wal`), under the same
one-daemon lock. Only a SQLite file store has one: PostgreSQL commits are fsynced on another host, a
local file would be weaker and invisible to a replacement host, so there the durable commit stays.
Frames: 4-byte length, 4-byte CRC-32, a pickle of (generation, [(seq, op, payload), ...]); a torn
last frame (a kill inside `os.write`) is ignored: its order was not sent.
"""

from __future__ import annotations

import os
import pickle
import struct
import uuid
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from daemon.logging import get_logger
from daemon.store import ops_state
from daemon.store.journal import _is_bad_record
from daemon.store.models import MetaRow

if TYPE_CHECKING:
    from daemon.store.store import Store

MARK_KEY = "journal.intent_log"
SUFFIX = "-intents"
_HEAD = struct.Struct("<II")

log = get_logger("tradingd.store.intent_log")


class IntentLog:
    """The append-only file of one daemon run (`generation`); written from the event loop's thread only."""

    def __init__(self, path: Path, generation: str):
        """Opened empty: whatever an earlier run left in the file is in the database by now (`open_for`)."""
        self.path = path
        self.generation = generation
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC, 0o600)
        self.size = 0

    def append(self, records: list[tuple[int, str, Mapping[str, Any]]]) -> None:
        """One frame, one `os.write`: on return it survives a kill of this process (raises OSError, pickling errors)."""
        body = pickle.dumps((self.generation, records), protocol=pickle.HIGHEST_PROTOCOL)
        frame = _HEAD.pack(len(body), zlib.crc32(body)) + body
        written = os.write(self._fd, frame)
        if written != len(frame):  # a full disk part-way: the torn frame is ignored at replay; the caller falls back
            raise OSError(f"short write to {self.path}: {written} of {len(frame)} bytes")
        self.size += written

    def reset(self) -> None:
        """Empty the file: every record in it is committed to the database."""
        if self.size:
            os.ftruncate(self._fd, 0)
            self.size = 0

    def close(self) -> None:
        os.close(self._fd)

    @staticmethod
    def mark_op(session: Session, profile: str, value: str) -> None:
        """The journal adds this to each batch it commits (`mark`)."""
        mark(session, profile, value)


def path_for(url: str) -> Path | None:
    """`<database file>-intents` for a SQLite file store; None otherwise (PostgreSQL, in-memory)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database).expanduser().resolve().with_name(Path(parsed.database).name + SUFFIX)


def read(path: Path) -> list[tuple[str, int, str, dict[str, Any]]]:
    """Every whole frame's records as (generation, seq, op, payload), in order; a torn tail is left out."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    out: list[tuple[str, int, str, dict[str, Any]]] = []
    at = 0
    while at + _HEAD.size <= len(data):
        size, crc = _HEAD.unpack_from(data, at)
        body = data[at + _HEAD.size: at + _HEAD.size + size]
        if len(body) < size or zlib.crc32(body) != crc:
            log.warning("intent_log_torn_tail", path=str(path), offset=at, note="a kill inside the write: not sent")
            break
        generation, records = pickle.loads(body)  # noqa: S301 - our own file, under the daemon's lock
        out.extend((generation, seq, op, payload) for seq, op, payload in records)
        at += _HEAD.size + size
    return out


def mark(session: Session, profile: str, value: str) -> None:
    """The batch's last record number, in the batch's own transaction (one UPDATE: the row exists, `open_for`)."""
    session.execute(update(MetaRow).where(MetaRow.profile == profile, MetaRow.key == MARK_KEY).values(value=value))


def _unapplied(session: Session, profile: str,
               records: list[tuple[str, int, str, dict[str, Any]]]) -> list[tuple[str, int, str, dict[str, Any]]]:
    generation, _, seq = (ops_state.get_meta(session, profile, MARK_KEY) or ":").partition(":")
    done = int(seq) if seq.isdigit() else 0
    return [r for r in records if not (r[0] == generation and r[1] <= done)]


def replay(store: Store, records: list[tuple[str, int, str, dict[str, Any]]]) -> int:
    """Apply the records the database lacks, in order, in ONE transaction that also moves the mark past
    them (the writer thread, at start). Returns how many were applied. Should a record be refused as bad
    input, they go one by one instead and that one is logged and skipped, as the journal does."""
    from daemon.store.store import Store as StoreClass  # the operations by name (store.py imports the journal)

    if not records:
        return 0
    with store.transaction() as session:
        todo = _unapplied(session, store.profile, records)
    ops = [(getattr(getattr(StoreClass, op, None), "__store_op__", None), payload) for _g, _s, op, payload in todo]
    moved = (ops_state.set_meta, {"key": MARK_KEY, "value": f"{records[-1][0]}:{records[-1][1]}"})
    if all(fn is not None for fn, _ in ops):
        try:
            store.run_batch([*ops, moved])  # type: ignore[list-item]
            return len(ops)
        except Exception as exc:  # noqa: BLE001 - sorted: a bad record is looked for below, anything else stops
            if not _is_bad_record(exc):
                raise
    applied = 0
    for (fn, payload), (_g, seq, op, _p) in zip(ops, todo):
        try:
            if fn is None:
                raise KeyError(op)
            store.run_batch([(fn, payload)])
            applied += 1
        except Exception as exc:  # noqa: BLE001
            if not _is_bad_record(exc):
                raise
            log.error("intent_log_record_refused", op=op, seq=seq, error=repr(exc))
    store.run_batch([moved])
    return applied


async def open_for(store: Store) -> IntentLog | None:
    """At start, after migrating and before reconciling: fold what a killed run left in the file into the
    database, empty it, and open it for this run. None: this store has no intent log (see the docstring)."""
    path = path_for(store.url)
    if path is None:
        return None
    records = await store.call(read, path)  # the file is read on the store's thread, not the event loop's
    applied = await store.call(replay, store, records)
    if records:
        log.warning("intent_log_replayed", path=str(path), records=len(records), applied=applied,
                    note="records the last run wrote ahead of its commits, now in the database")
    intent_log: IntentLog | None = None
    try:
        intent_log = IntentLog(path, uuid.uuid4().hex)
        # this run's mark, in a transaction of its own after the file is empty (a kill before it: nothing to replay)
        await store.call(store.run_batch, [(ops_state.set_meta, {"key": MARK_KEY,
                                                                 "value": f"{intent_log.generation}:0"})])
    except Exception as exc:  # noqa: BLE001 - nothing left to fold in: exits take the durable commit instead
        log.warning("intent_log_unavailable", code="intent_log_failed", path=str(path), error=repr(exc))
        if intent_log is not None:
            intent_log.close()
        return None
    return intent_log


__all__ = ["IntentLog", "MARK_KEY", "mark", "open_for", "path_for", "read", "replay"]
