"""`Journal`: the write-behind journal in front of the store (SPEC §6.2).

The store never decides whether an exit happens. The core changes its state in memory and
appends one record per change here; `append` never blocks and never raises. The records are
written by the store's writer thread, strictly in the order they were appended, a batch per
transaction. When a write fails because the store cannot write (disk full, read-only file
system, database down) nothing is dropped: the journal keeps every record, says it is
unavailable and why (`available`, `reason`, the listeners), and retries the same record with
a doubling backoff until it goes through; then it flushes the rest in order and says it is
available again. A record the store refuses as bad input (a `StoreError`: it could never be
written) is logged with its reason, counted in `rejected`, and skipped, so one bad record
cannot hold back every record after it.

Writes are idempotent by natural key (order id, exec id, signal id, exit-event id, decision id,
checkpoint time; see `daemon.store.ops_*`), so a batch retried after a commit that did go
through (a connection lost at COMMIT) never duplicates a row.

`durable(op, ...)` is for what must be on disk before the broker hears of it: an entry's
order intent. It returns (the operation's result) once that record and all before it are
committed, or raises `StoreUnavailable` (code `store_unavailable`): at once when the store is
known to be unavailable, when the attempt to write it fails, or after `durable_timeout_s`. A
durable record whose write failed is withdrawn, never retried: its caller refused the entry,
so no order follows it.

Threads: `append`/`durable`/`drain` are called from the event loop (or a replay loop);
`flush_sync` blocks its caller. Listeners are told through `notify` (the engine passes its
loop's `call_soon_threadsafe`), else on the writer thread.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy.exc import DBAPIError, IntegrityError, StatementError

from config.errors import ReasonError
from daemon.store.errors import StoreError
from daemon.store.journal_ops import fast

if TYPE_CHECKING:
    from config.models import JournalConfig
    from daemon.store.store import Store

log = structlog.get_logger("tradingd.journal")

STORE_UNAVAILABLE = "store_unavailable"
Listener = Callable[[bool, "str | None"], Any]


class StoreUnavailable(ReasonError):
    """The store cannot commit now; `code` is always `store_unavailable`."""

    def __init__(self, message: str):
        super().__init__(STORE_UNAVAILABLE, message)


@dataclass(frozen=True)
class JournalSettings:
    """The journal's numbers (from `config.models.JournalConfig`; these defaults are its defaults)."""

    retry_initial_s: float = 0.05
    retry_max_s: float = 2.0
    batch_size: int = 200
    high_water: int = 50_000
    durable_timeout_s: float = 5.0

    @classmethod
    def from_config(cls, cfg: JournalConfig) -> JournalSettings:
        return cls(cfg.retry_initial_s, cfg.retry_max_s, cfg.batch_size, cfg.high_water, cfg.durable_timeout_s)


@dataclass(eq=False)
class _Record:
    seq: int
    op: str
    fn: Callable[..., Any]
    payload: Mapping[str, Any]
    durable: bool = False
    written: bool = False
    tag: int = 0  # the caller's own number (the replay's record count), handed to `batch_runner`
    done: threading.Event | None = None  # set once written, failed or withdrawn (durable only)
    result: Any = None
    error: BaseException | None = None
    waiters: list[Callable[[], None]] = field(default_factory=list)


BatchRunner = Callable[..., list[Any]]


class Journal:
    """`batch_runner(session, profile, records=[(tag, fn, payload), ...]) -> results` replaces the plain
    "each record in order" inside a batch's transaction when given: the replay's sink uses it to commit
    its record count with the batch and to skip records a lost COMMIT did write (see daemon/store/core_sink.py)."""

    def __init__(self, store: Store, settings: JournalSettings | None = None, *,
                 notify: Callable[[Callable[[], None]], Any] | None = None,
                 batch_runner: BatchRunner | None = None):
        self.store = store
        self.settings = settings or JournalSettings()
        self._notify = notify
        self._batch_runner = batch_runner
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._pending: deque[_Record] = deque()
        self._seq = 0
        self._committed_seq = 0
        self._scheduled = False  # a flush job is queued on the writer, or a retry timer is waiting
        self._retry_timer: threading.Timer | None = None
        self._attempt = 0
        self._closed = False
        self.available = True
        self.reason: str | None = None
        self.failures = 0  # failed write attempts (each retry that fails counts)
        self.rejected = 0  # records the store refused as bad input (logged, skipped)
        self.committed = 0  # records written
        self.high_water_crossings = 0
        self._over_high_water = False
        self._listeners: list[Listener] = []
        self._signatures: dict[str, tuple[Callable[..., Any], inspect.Signature, set[frozenset[str]]]] = {}
        self._batch_in_flight: list[_Record] = []
        self._drains: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[bool]]] = []
        # room tick: the exits' write-ahead file (`daemon.store.intent_log`), set by the live shell at start
        self.intent_log: Any = None  # an `IntentLog` (not imported here: intent_log imports this module)
        self._logged_seq = 0  # the last record number written to it
        self._held = False  # `hold`: records wait for `release` before the writer thread is woken

    # ------------------------------------------------------------------ the API

    @property
    def pending(self) -> int:
        """Records appended and not yet committed (nor rejected)."""
        return len(self._pending)

    @property
    def over_high_water(self) -> bool:
        return self._over_high_water

    def add_listener(self, listener: Listener) -> None:
        """`listener(available, reason)` on every change of availability."""
        self._listeners.append(listener)

    def append(self, op: str, **payload: Any) -> None:
        """Queue one record (`op` names a Store operation); never blocks, never raises."""
        self.append_record(op, payload)

    def append_record(self, op: str, payload: Mapping[str, Any], tag: int = 0) -> _Record | None:
        """`append` with the payload as a mapping and the caller's `tag`; returns the record (for
        `withdraw` and `committed_record`), None when it was refused (logged, counted in `rejected`)."""
        try:
            fn = self._resolve(op, payload)
        except StoreError as exc:
            self.rejected += 1
            log.error("journal_record_refused", code=exc.code, op=op, error=str(exc))
            return None
        record = _Record(0, op, fn, payload, tag=tag)
        self._enqueue(record)
        return record

    def withdraw(self, record: _Record) -> bool:
        """Take back a record not yet written (an entry's intent whose order will not be sent): True
        when it is gone for good; False when it was committed already or is being written now."""
        with self._lock:
            if record in self._pending and record not in self._batch_in_flight:
                self._pending.remove(record)
                record.error = StoreUnavailable(f"{record.op} was withdrawn")
                self._changed.notify_all()
                return True
        return False

    @staticmethod
    def is_committed(record: _Record) -> bool:
        return record.written

    def retry_now(self) -> None:
        """Skip the rest of the backoff: try the head record again at once (the caller has reason to
        think the store is back, or is about to wait for it)."""
        with self._lock:
            timer = self._retry_timer
            if timer is None or self._closed:
                return
            timer.cancel()
            self._retry_timer = None
        self._retry()

    async def durable(self, op: str, **payload: Any) -> Any:
        """Append, and return the operation's result once it and every record before it are committed.

        Raises `StoreUnavailable` (nothing kept) when the store is unavailable or the write fails,
        and `StoreError` when the store refuses the record itself as bad input.
        """
        if not self.available:
            raise StoreUnavailable(f"the store is unavailable: {self.reason}")
        self.release()
        fn = self._resolve(op, payload)
        loop = asyncio.get_running_loop()
        # ONE future, resolved by the writer thread (True) or by the timeout (False): the caller resumes two
        # loop turns after the commit (the thread's callback, then the task), not three as through `_wait`.
        future: asyncio.Future[bool] = loop.create_future()

        def wake() -> None:
            try:
                loop.call_soon_threadsafe(_settle, future, True)
            except RuntimeError:  # the loop is gone
                pass

        record = _Record(0, op, fn, payload, durable=True, done=threading.Event(), waiters=[wake])
        self._enqueue(record)
        timer = loop.call_later(self.settings.durable_timeout_s, _settle, future, False)
        try:
            in_time = await future
        finally:
            timer.cancel()
        if not in_time:
            self._withdraw(record)
            if not (record.done is not None and record.done.is_set()):
                raise StoreUnavailable(f"{op} was not committed within {self.settings.durable_timeout_s} s")
        if record.error is not None:
            raise record.error
        return record.result

    def hold(self) -> None:
        """Appended records wait in memory until `release` (the live lane, from an exit's records to its
        send): the writer thread's ORM work would otherwise take the GIL from the loop's thread on the
        tick-to-order path. `durable` and `drain` release first (they wait for the writer)."""
        self._held = True

    def release(self) -> None:
        with self._lock:
            self._held = False
            schedule = bool(self._pending) and not self._scheduled and not self._closed
            if schedule:
                self._scheduled = True
        if schedule:
            self._submit_flush()

    def write_ahead(self) -> bool:
        """Every record appended and not yet committed, written to the intent log before an exit's order
        is sent (on the caller's thread, no wait for the writer thread); True once it survives a kill
        of this process. False: no log, or it could not be written (the caller waits for the commit)."""
        intent_log = self.intent_log
        if intent_log is None:
            return False
        with self._lock:
            logged = self._logged_seq
            # an entry's own durable intent is left out: it is committed before its order, or withdrawn
            records = [(r.seq, r.op, r.payload) for r in self._pending if r.seq > logged and not r.durable]
            folded = not self._pending or self._pending[0].seq > logged  # all the file holds is committed
            last = self._seq
        try:
            if folded:
                intent_log.reset()
            if records:
                intent_log.append(records)
        except TypeError as exc:  # a payload type the log has no tag for: a bug, said now, not at the next start
            log.error("intent_log_unencodable", code="intent_log_unencodable", error=str(exc),
                      note="daemon/store/intent_codec.py needs a tag for it; this exit waits for the commit")
            return False
        except Exception as exc:  # noqa: BLE001 - a full disk: the commit path instead
            log.warning("intent_log_failed", code="intent_log_failed", error=repr(exc))
            return False
        self._logged_seq = last
        return True

    def flush_sync(self, timeout: float | None = None) -> bool:
        """Block until every record appended so far is committed (True), or the store is unavailable
        or `timeout` passed (False). For the replay loop and shutdown."""
        with self._lock:
            target = self._seq
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while self._committed_seq < target and self._pending_up_to(target):
                if not self.available:
                    return False
                wait = None if deadline is None else deadline - time.monotonic()
                if wait is not None and wait <= 0:
                    return False
                self._changed.wait(wait if wait is not None else 0.5)
        return True

    async def drain(self, timeout: float | None = None) -> bool:
        """Wait, without blocking the event loop, until every record appended so far is committed (True);
        False at once while the store is unavailable, when a write fails meanwhile, or after `timeout`."""
        self.release()
        with self._lock:
            target = self._seq
            if not self._pending_up_to(target):
                return True
            if not self.available:
                return False
            loop = asyncio.get_running_loop()
            future: asyncio.Future[bool] = loop.create_future()
            self._drains.append((target, loop, future))
        if not await _wait(future, timeout):
            return False
        return future.result()

    def notify_with(self, notify: Callable[[Callable[[], None]], Any] | None) -> None:
        """How listeners are called from now on (the engine: its loop's `call_soon_threadsafe`)."""
        self._notify = notify

    def close(self) -> None:
        """Stop retrying (what is still pending stays unwritten: call `flush_sync` first)."""
        with self._lock:
            self._closed = True
            if self._retry_timer is not None:
                self._retry_timer.cancel()
                self._retry_timer = None

    # ------------------------------------------------------------------ queueing

    def _resolve(self, op: str, payload: Mapping[str, Any]) -> Callable[..., Any]:
        known = self._signatures.get(op)
        if known is None:
            from daemon.store.store import Store

            method = getattr(Store, op, None)
            fn = getattr(method, "__store_op__", None)
            if fn is None:
                raise StoreError(f"{op!r} is not a store operation", "unknown_store_op")
            known = self._signatures[op] = (fn, inspect.signature(method), set())
        fn, signature, bound = known
        # Whether keyword arguments bind depends on their names alone: each set of names is checked once
        # (`Signature.bind` was ~10 us of the driver's CPU per record, room store7).
        names = frozenset(payload)
        if names not in bound:
            try:
                signature.bind(None, **payload)
            except TypeError as exc:
                raise StoreError(f"{op}: {exc}", "bad_journal_record") from None
            bound.add(names)
        return fn

    def _enqueue(self, record: _Record) -> None:
        schedule = False
        with self._lock:
            self._seq += 1
            record.seq = self._seq
            self._pending.append(record)
            if not self._scheduled and not self._closed and not self._held:
                self._scheduled = schedule = True
            crossed = len(self._pending) > self.settings.high_water and not self._over_high_water
            if crossed:
                self._over_high_water = True
                self.high_water_crossings += 1
        if crossed:
            log.error("journal_high_water", code="journal_high_water", pending=len(self._pending),
                      high_water=self.settings.high_water, available=self.available, reason=self.reason)
        if schedule:
            self._submit_flush()

    def _submit_flush(self) -> None:
        try:
            self.store.enqueue(self._flush)
        except StoreError as exc:  # the store was closed: nothing will write these
            with self._lock:
                self._scheduled = False
            log.error("journal_store_closed", code=exc.code, pending=len(self._pending))

    def _pending_up_to(self, seq: int) -> bool:
        return bool(self._pending) and self._pending[0].seq <= seq

    def _withdraw(self, record: _Record) -> None:
        with self._lock:
            if record in self._pending and record not in self._batch_in_flight:
                self._pending.remove(record)
                record.error = StoreUnavailable(f"{record.op} was withdrawn")

    # ------------------------------------------------------------------ the writer thread

    def _flush(self) -> None:
        """Runs on the store's writer thread: write batches until nothing is pending or a write fails."""
        while True:
            with self._lock:
                if not self._pending or self._closed:
                    self._scheduled = False
                    self._changed.notify_all()
                    return
                batch = self._next_batch()
                self._batch_in_flight = batch
            try:
                results = self._write(batch)
            except Exception as exc:  # noqa: BLE001 - sorted below: bad record, or the store is down
                self._batch_in_flight = []
                if _is_bad_record(exc) and len(batch) > 1:
                    try:
                        self._one_by_one(batch)  # find the bad one; the others go through
                    except _StopFlush:
                        return
                    continue
                if _is_bad_record(exc):
                    self._reject(batch[0], exc)
                    continue
                self._failed(batch, exc)
                return
            self._batch_in_flight = []
            self._written(batch, results)

    def _next_batch(self) -> list[_Record]:
        """The oldest pending records, at most `batch_size`, ending at the first durable one: its caller (an
        order waiting to be sent) waits for its own commit and everything before it, never for records
        appended after it. Order is kept: nothing jumps ahead (see docs/decisions/tick.md). Under the lock."""
        batch: list[_Record] = []
        for record in self._pending:
            batch.append(record)
            if record.durable or len(batch) >= self.settings.batch_size:
                break
        return batch

    def _write(self, batch: list[_Record]) -> list[Any]:
        """One transaction for the batch (the writer thread)."""
        # A record nobody awaits is written by the operation's Core version (daemon/store/journal_ops.py):
        # same rows, no ORM round trip; a durable one's caller reads the ORM operation's result.
        if self._batch_runner is None:
            ops = [(_writer(r), r.payload) for r in batch]
            if self.intent_log is None:
                return self.store.run_batch(ops)
            # the intent log's mark commits with the batch: a record of the file up to it is in the database
            ops.append((self.intent_log.mark_op, {"value": f"{self.intent_log.generation}:{batch[-1].seq}"}))
            return self.store.run_batch(ops)[:-1]
        records = [(r.tag, _writer(r), r.payload) for r in batch]
        [results] = self.store.run_batch([(self._batch_runner, {"records": records})])
        return list(results)

    def _one_by_one(self, batch: list[_Record]) -> None:
        for record in batch:
            try:
                [result] = self._write([record])
            except Exception as exc:  # noqa: BLE001
                if _is_bad_record(exc):
                    self._reject(record, exc)
                    continue
                self._failed([record], exc)
                raise _StopFlush from exc
            self._written([record], [result])

    def _written(self, batch: list[_Record], results: list[Any]) -> None:
        came_back = False
        with self._changed:
            for record, result in zip(batch, results):
                if self._pending and self._pending[0] is record:
                    self._pending.popleft()
                record.result = result
                record.written = True
                self._committed_seq = max(self._committed_seq, record.seq)
            self.committed += len(batch)
            self._attempt = 0
            if not self.available:
                self.available, self.reason, came_back = True, None, True
            if self._over_high_water and len(self._pending) <= self.settings.high_water:
                self._over_high_water = False
            self._changed.notify_all()
        for record in batch:
            self._finish(record)
        self._wake_drains(failed=False)
        if came_back:
            log.warning("store_available", pending=len(self._pending), failures=self.failures)
            self._tell(True, None)

    def _reject(self, record: _Record, exc: BaseException) -> None:
        error = _as_store_error(exc)
        with self._changed:
            if record in self._pending:
                self._pending.remove(record)
            self._committed_seq = max(self._committed_seq, record.seq)
            self.rejected += 1
            self._changed.notify_all()
        log.error("journal_record_refused", code=error.code, op=record.op, error=str(error))
        record.error = error
        self._finish(record)
        self._wake_drains(failed=False)

    def _failed(self, batch: list[_Record], exc: BaseException) -> None:
        reason = describe_failure(exc)
        went_down = False
        withdrawn = []
        with self._changed:
            self.failures += 1
            self._attempt += 1
            if self.available:
                self.available, went_down = False, True
            self.reason = reason
            for record in batch:  # a durable record is its caller's to refuse, never retried
                if record.durable and record in self._pending:
                    self._pending.remove(record)
                    record.error = StoreUnavailable(reason)
                    withdrawn.append(record)
            delay = min(self.settings.retry_max_s, self.settings.retry_initial_s * 2 ** (self._attempt - 1))
            if self._closed:
                self._scheduled = False
            else:
                self._retry_timer = threading.Timer(delay, self._retry)
                self._retry_timer.daemon = True
                self._retry_timer.start()
            self._changed.notify_all()
        for record in withdrawn:
            self._finish(record)
        self._wake_drains(failed=True)
        if went_down:
            log.error("store_unavailable", code=STORE_UNAVAILABLE, reason=reason, pending=len(self._pending))
            self._tell(False, reason)
        elif self._attempt in (2, 10) or self._attempt % 100 == 0:
            log.warning("store_still_unavailable", code=STORE_UNAVAILABLE, reason=reason, attempts=self._attempt,
                        pending=len(self._pending))

    def _retry(self) -> None:
        with self._lock:
            self._retry_timer = None
            if self._closed:
                self._scheduled = False
                return
        try:
            self.store.enqueue(self._flush)
        except StoreError:
            with self._lock:
                self._scheduled = False

    def _wake_drains(self, *, failed: bool) -> None:
        with self._lock:
            if not self._drains:
                return
            ready = [(loop, fut, not failed) for target, loop, fut in self._drains
                     if failed or not self._pending_up_to(target)]
            self._drains = [d for d in self._drains if failed is False and self._pending_up_to(d[0])]
        for loop, future, value in ready:
            try:
                loop.call_soon_threadsafe(lambda f=future, v=value: f.done() or f.set_result(v))
            except RuntimeError:  # the loop is gone
                pass

    def _finish(self, record: _Record) -> None:
        if record.done is not None:
            record.done.set()
        for wake in record.waiters:
            wake()

    def _tell(self, available: bool, reason: str | None) -> None:
        for listener in list(self._listeners):
            def call(listener: Listener = listener) -> None:
                try:
                    listener(available, reason)
                except Exception as exc:  # noqa: BLE001 - a listener must never stop the journal
                    log.error("journal_listener_failed", error=repr(exc))

            if self._notify is not None:
                try:
                    self._notify(call)
                    continue
                except RuntimeError:  # the loop is closed
                    pass
            call()


def _settle(future: asyncio.Future[bool], value: bool) -> None:
    if not future.done():  # the other of commit and timeout came first, or the caller was cancelled
        future.set_result(value)


async def _wait(future: asyncio.Future[Any], timeout: float | None) -> bool:
    """Await `future` until `timeout`: False when the time ran out first. Not `asyncio.wait_for`: on
    Python 3.11 it swallows a cancellation that arrives as the future completes, and a task that
    cannot be cancelled holds up the engine's stop for ever."""
    if timeout is None:
        await future
        return True
    loop = asyncio.get_running_loop()
    expired = loop.create_future()
    handle = loop.call_later(timeout, lambda: expired.done() or expired.set_result(None))
    future.add_done_callback(lambda _: expired.done() or expired.set_result(None))
    try:
        await expired
    finally:
        handle.cancel()
    return future.done()


class _StopFlush(Exception):
    """A write failed inside `_one_by_one`: `_failed` already scheduled the retry."""


def _is_bad_record(exc: BaseException) -> bool:
    """The store refused this record itself (it could never be written), as opposed to being unable to write."""
    if isinstance(exc, StoreError):
        return True
    if isinstance(exc, IntegrityError):
        return True
    if isinstance(exc, StatementError) and not isinstance(exc, DBAPIError):
        return isinstance(exc.orig, StoreError)
    return isinstance(exc, (TypeError, ValueError, ArithmeticError, KeyError, AttributeError))


def _as_store_error(exc: BaseException) -> StoreError:
    if isinstance(exc, StoreError):
        return exc
    if isinstance(exc, StatementError) and isinstance(exc.orig, StoreError):
        return exc.orig
    code = "integrity_error" if isinstance(exc, IntegrityError) else "bad_journal_record"
    return StoreError(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", code)


def describe_failure(exc: BaseException) -> str:
    """One line saying why the store cannot write: the database's own words, first line only."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    return f"{type(orig).__name__}: {text}"[:300]


def _writer(record: _Record) -> Callable[..., Any]:
    """The operation that writes `record`: the ORM one when a caller awaits its result, else its Core version."""
    return record.fn if record.durable else fast(record.fn)
