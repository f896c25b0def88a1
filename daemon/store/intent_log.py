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
Frames: 4-byte length, 4-byte CRC-32, then the body they cover: a format byte and the records of one
`append`, (generation, [(seq, op, payload), ...]). A torn last frame (a kill inside `os.write`) is ignored:
its order was not sent. Formats (room tidy, issue 8):
- 2 (`FORMAT`): JSON with explicitly typed values (`daemon.store.intent_codec`), written since session 5;
- session 4's frames have no format byte: the body is a pickle, whose first byte is its PROTO opcode
  (0x80, `LEGACY_PICKLE`). They are read once, at the first start after the upgrade, through an
  unpickler that builds only the classes session 4's payloads held, named as session 4 named them
  (`daemon.store.intent_legacy`), never whatever a pickle asks for.
A frame whole (its CRC holds) but unreadable (another format, an unknown tag, a legacy class not on the
list) is never dropped silently: the file is kept aside as `<file>.kept-<id>`, `intent_log_unreadable` is
logged as an error with the reason, and the records before it are folded in as usual (`open_for`).
"""

from __future__ import annotations

import os
import struct
import uuid
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from daemon.logging import get_logger
from daemon.store import intent_codec, intent_legacy, ops_state
from daemon.store.journal import _is_bad_record
from daemon.store.models import MetaRow

if TYPE_CHECKING:
    from daemon.store.store import Store

MARK_KEY = "journal.intent_log"
SUFFIX = "-intents"
_HEAD = struct.Struct("<II")
FORMAT = 2  # the format byte that starts every frame's body this release writes
LEGACY_PICKLE = 0x80  # session 4's body: a pickle, no format byte (its first byte is pickle's PROTO opcode)
_FORMAT_BYTE = bytes([FORMAT])
UNREADABLE = "intent_log_unreadable"

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
        """One frame, one `os.write`: on return it survives a kill of this process. Raises OSError, and
        `intent_codec.UnencodableValue` (nothing written) for a value the log has no tag for."""
        body = _FORMAT_BYTE + intent_codec.encode(self.generation, records)
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


Entry = tuple[str, int, str, dict[str, Any]]  # (generation, seq, op, payload)


@dataclass(frozen=True)
class Contents:
    """What a file holds: the records of its whole frames in order, up to the first frame that cannot be
    read (`unreadable` says why, at byte `offset`; None: every whole frame was read)."""

    records: list[Entry]
    unreadable: str | None = None
    offset: int = 0


def read(path: Path) -> list[Entry]:
    """Every readable whole frame's records as (generation, seq, op, payload), in order; a torn tail is left out."""
    return _load(path).records


def scan(data: bytes, path: Path | None = None) -> Contents:
    """The records of `data` (a file's bytes), frame by frame (see the module's docstring)."""
    out: list[Entry] = []
    at = 0
    while at + _HEAD.size <= len(data):
        size, crc = _HEAD.unpack_from(data, at)
        body = data[at + _HEAD.size: at + _HEAD.size + size]
        if len(body) < size or zlib.crc32(body) != crc:
            log.warning("intent_log_torn_tail", path=str(path), offset=at, note="a kill inside the write: not sent")
            break
        try:
            generation, records = _decode(body)
        except intent_codec.UndecodableValue as exc:
            return Contents(out, str(exc), at)
        out.extend((generation, seq, op, payload) for seq, op, payload in records)
        at += _HEAD.size + size
    return Contents(out)


def _decode(body: bytes) -> tuple[str, list[tuple[int, str, dict[str, Any]]]]:
    version = body[0] if body else None
    if version == FORMAT:
        return intent_codec.decode(body[1:])
    if version == LEGACY_PICKLE:
        return intent_legacy.decode(body)
    raise intent_codec.UndecodableValue(f"frame format {version} is not one this release reads "
                                        f"({FORMAT}, or session 4's pickle)")


def mark(session: Session, profile: str, value: str) -> None:
    """The batch's last record number, in the batch's own transaction (one UPDATE: the row exists, `open_for`)."""
    session.execute(update(MetaRow).where(MetaRow.profile == profile, MetaRow.key == MARK_KEY).values(value=value))


def _unapplied(session: Session, profile: str, records: list[Entry]) -> list[Entry]:
    generation, _, seq = (ops_state.get_meta(session, profile, MARK_KEY) or ":").partition(":")
    done = int(seq) if seq.isdigit() else 0
    return [r for r in records if not (r[0] == generation and r[1] <= done)]


def replay(store: Store, records: list[Entry]) -> int:
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


def _load(path: Path) -> Contents:
    try:
        return scan(path.read_bytes(), path)
    except FileNotFoundError:
        return Contents([])


def _keep_aside(path: Path, contents: Contents) -> bool:
    """A whole frame this release cannot read: the file is copied to `<file>.kept-<id>` before anything
    empties it, and the operator is told why (error `intent_log_unreadable`). False: it could not be kept."""
    kept = path.with_name(f"{path.name}.kept-{uuid.uuid4().hex[:12]}")
    try:
        kept.write_bytes(path.read_bytes())
    except OSError as exc:
        log.error(UNREADABLE, code=UNREADABLE, path=str(path), offset=contents.offset, why=contents.unreadable,
                  error=repr(exc), note="not kept aside either: the file is left as it is, and not used this run")
        return False
    log.error(UNREADABLE, code=UNREADABLE, path=str(path), kept=str(kept), offset=contents.offset,
              why=contents.unreadable, folded_in=len(contents.records),
              note="the records from this offset on are not in the database: see the kept file")
    return True


async def open_for(store: Store) -> IntentLog | None:
    """At start, after migrating and before reconciling: fold what a killed run left in the file into the
    database, empty it, and open it for this run. None: this store has no intent log (see the docstring)."""
    path = path_for(store.url)
    if path is None:
        return None
    contents = await store.call(_load, path)  # the file is read on the store's thread, not the event loop's
    if contents.unreadable is not None and not await store.call(_keep_aside, path, contents):
        return None  # the file stays as it is (nothing emptied it): exits take the durable commit instead
    records = contents.records
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


__all__ = ["FORMAT", "Contents", "IntentLog", "LEGACY_PICKLE", "MARK_KEY", "UNREADABLE", "mark", "open_for",
           "path_for", "read", "replay", "scan"]
