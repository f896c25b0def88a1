"""`CoreSink`: the core's `Persist` effects written through the write-behind `Journal` (SPEC §6.2, §6.3).

One object for every driver of the core (the replay loop today, the live shell next):

    sink = CoreSink(store, JournalSettings.from_config(settings.daemon.journal), counted=True)
    sink.claim(run_id)                  # replay only: tie the store to this run, learn what it holds
    sink.append(effect.op, effect.payload)      # every Persist effect, in the core's order; never blocks
    if not sink.may_send(effect.durable):       # every PlaceOrder, right after its intent's Persist
        core.handle(OrderRefusedEvent(order_id, "store_unavailable", now))

    # live (an asyncio shell): CoreSink(store, settings, counted=False, blocking=False,
    #                                   notify=loop.call_soon_threadsafe), and
    if not await sink.may_send_async(effect.durable): ...
    for available, reason in sink.take_changes():       # between events, on the driver's thread
        core.handle(StoreStatusEvent(available, reason, now))
    status["store"] = sink.status()     # /healthz (503 while unavailable), metrics, the status JSON
    sink.flush(timeout)                 # before reading the store (reports) and at the end

What it guarantees:
- **Nothing decided waits for the store, nothing is lost.** Records go to the journal's writer thread
  in order; while the store cannot write (disk full, read-only, database down) they stay in memory,
  the journal retries the head with a doubling backoff, and `take_changes` hands the driver the
  change so the core refuses entries `store_unavailable` while exits, stops, the close-out and the
  breakers go on from memory. When the store returns the backlog is written in order.
- **Write-ahead** (SPEC §6.1): an order's intent is committed before its order is sent
  (`append("write_intent")` waits up to `durable_timeout_s` for it while the store writes). An entry
  whose intent is not committed is not sent: `may_send(True)` takes the intent back and says False.
  An exit or a stop is sent anyway (`may_send(False)` is True) with its intent still in the journal.
- **Exactly once across a kill** (`counted=True`, the replay): each batch commits, in the same
  transaction, `replay.applied` = the number of the last record in it (records are numbered in
  the order the core made them). A replay killed at any moment and run again on the same store
  re-runs its inputs and skips the records numbered up to what the store holds (`catching_up`).
  A batch retried after a COMMIT that did go through skips the records it already wrote.

Threads: `append`, `may_send`, `take_changes` from the driver's thread; `status` from any thread.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from daemon.logging import get_logger
from daemon.store.journal import Journal, JournalSettings

RUN_ID_KEY = "replay.run_id"
APPLIED_KEY = "replay.applied"
STORE_UNAVAILABLE = "store_unavailable"


class ReplayStoreMismatch(Exception):
    code = "replay_store_mismatch"


class CoreSink:
    def __init__(self, store: Any, settings: JournalSettings | None = None, *, counted: bool = True,
                 blocking: bool = True, notify: Callable[[Callable[[], None]], Any] | None = None):
        self.store = store
        self.counted = counted
        # blocking: `append("write_intent")` waits on the calling thread for the commit (a replay loop on
        # its own thread). An asyncio shell passes False and awaits `may_send_async` instead.
        self.blocking = blocking
        self.journal = Journal(store, settings, notify=notify, batch_runner=self._run_batch if counted else None)
        self.journal.add_listener(self._on_change)
        self.seq = 0  # records seen in this run (the core's Persist effects, numbered from 1)
        self.applied = 0  # records the store already held when this run started (a killed run's), skipped
        self._intent: Any = None  # the last write_intent appended, until its order goes out
        self.changes: deque[tuple[bool, str | None]] = deque()
        self._lock = threading.Lock()
        self.log = get_logger("tradingd.store.sink", profile=store.profile)

    # ------------------------------------------------------------------ start (replay)

    def claim(self, run_id: str) -> int:
        """Tie the store to this replay (or find it already is); returns the records it already holds."""
        from daemon.store.store import Store

        get_meta = Store.get_meta.__store_op__  # type: ignore[attr-defined]
        set_meta = Store.set_meta.__store_op__  # type: ignore[attr-defined]
        with self.store.transaction() as session:
            held = get_meta(session, self.store.profile, RUN_ID_KEY)
            if held is None:
                if _has_rows(session):
                    raise ReplayStoreMismatch("the store holds another run's data; give an empty --db to replay into")
                set_meta(session, self.store.profile, RUN_ID_KEY, run_id)
                set_meta(session, self.store.profile, APPLIED_KEY, "0")
                self.applied = 0
            elif held != run_id:
                raise ReplayStoreMismatch(f"the store belongs to replay {held[:12]}, not {run_id[:12]} (other "
                                          "profile, settings, data or signals): give another --db")
            else:
                self.applied = int(get_meta(session, self.store.profile, APPLIED_KEY) or 0)
        return self.applied

    @property
    def catching_up(self) -> bool:
        return self.seq < self.applied

    # ------------------------------------------------------------------ the core's effects

    def append(self, op: str, payload: Mapping[str, Any]) -> None:
        """One Persist effect, in the core's order. Never blocks on a store that cannot write."""
        self.seq += 1
        if self.seq <= self.applied:  # a killed run committed it
            self._intent = None
            return
        if op == "open_position":  # the core's own number; the store numbers positions in the same order
            payload = {k: v for k, v in payload.items() if k != "position_id"}
        record = self.journal.append_record(op, payload, tag=self.seq)
        if op == "write_intent":
            self._intent = record
            if record is not None and self.blocking and self.journal.available:
                self.journal.flush_sync(self.journal.settings.durable_timeout_s)  # write-ahead (SPEC 6.1)

    def may_send(self, durable: bool) -> bool:
        """Whether the order whose intent was just appended may go out. An entry (`durable`) only with
        its intent committed: otherwise the intent is taken back and the answer is False. An exit or a
        protective stop always (SPEC 6.2: the store never decides whether an exit happens)."""
        record, self._intent = self._intent, None
        if record is None or record.written:
            return True
        if not durable:
            self.log.warning("exit_intent_journaled", code=STORE_UNAVAILABLE, order_id=_order_id(record),
                             reason=self.journal.reason or "not committed in time")
            return True
        if self.journal.withdraw(record):
            return False
        # Being written this very moment: its outcome decides.
        self.journal.flush_sync(self.journal.settings.durable_timeout_s)
        return bool(record.written)

    async def may_send_async(self, durable: bool) -> bool:
        """`may_send` for an asyncio shell (`blocking=False`): awaits the intent's commit (write-ahead) without
        blocking the event loop, up to `durable_timeout_s` while the store writes."""
        record, self._intent = self._intent, None
        if record is None or record.written:
            return True
        timeout = self.journal.settings.durable_timeout_s
        if self.journal.available:
            await self.journal.drain(timeout)
        if record.written:
            return True
        if not durable:
            self.log.warning("exit_intent_journaled", code=STORE_UNAVAILABLE, order_id=_order_id(record),
                             reason=self.journal.reason or "not committed in time")
            return True
        if self.journal.withdraw(record):
            return False
        await self.journal.drain(timeout)
        return bool(record.written)

    def take_changes(self) -> list[tuple[bool, str | None]]:
        """Availability changes since the last call, oldest first (for `StoreStatusEvent`s)."""
        if not self.changes:
            return []
        with self._lock:
            out = list(self.changes)
            self.changes.clear()
        return out

    # ------------------------------------------------------------------ operators

    @property
    def available(self) -> bool:
        return self.journal.available

    @property
    def pending(self) -> int:
        return self.journal.pending

    def status(self) -> dict[str, Any]:
        """The status JSON's "store" block (read by /healthz, the metrics and `tradingd status`)."""
        j = self.journal
        return {"available": j.available, "reason": j.reason, "pending": j.pending, "failures": j.failures,
                "rejected": j.rejected, "over_high_water": j.over_high_water}

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything appended is committed (True), or the store is unavailable or
        `timeout` passed (False)."""
        return self.journal.flush_sync(timeout)

    def wait_flushed(self, stop: Callable[[], bool], poll_s: float = 0.1) -> bool:
        """Block until everything appended is committed, however long the store stays away, unless
        `stop()` says to give up (SIGTERM). True when flushed."""
        told = False
        while True:
            if self.journal.flush_sync(self.journal.settings.durable_timeout_s):
                return True
            if stop():
                self.log.error("journal_not_flushed", code=STORE_UNAVAILABLE, pending=self.journal.pending,
                               reason=self.journal.reason)
                return False
            if not told:
                told = True
                self.log.warning("waiting_for_store", code=STORE_UNAVAILABLE, pending=self.journal.pending,
                                 reason=self.journal.reason)
            time.sleep(poll_s)

    def close(self) -> None:
        self.journal.close()

    # ------------------------------------------------------------------ internals

    def _on_change(self, available: bool, reason: str | None) -> None:
        with self._lock:
            self.changes.append((available, reason))

    @staticmethod
    def _run_batch(session: Any, profile: str, records: list[tuple[int, Callable[..., Any], Mapping[str, Any]]]
                   ) -> list[Any]:
        """One batch in one transaction, with the count of records applied (the journal's writer thread)."""
        from daemon.store import journal_ops

        applied = int(journal_ops.get_meta(session, profile, APPLIED_KEY) or 0)
        last = records[-1][0]
        if last > applied:
            # The count first, written at once: pysqlite opens the transaction only at the first write.
            journal_ops.set_meta(session, profile, APPLIED_KEY, str(last))
        # tag <= applied: a COMMIT that went through before its connection was lost wrote these already
        return [None if tag <= applied else journal_ops.apply(session, profile, fn, payload)
                for tag, fn, payload in records]


def _order_id(record: Any) -> Any:
    request = record.payload.get("request")
    return getattr(request, "order_id", None)


def _has_rows(session: Any) -> bool:
    from sqlalchemy import func, select

    from daemon.store.models import DecisionRow, PositionRow

    return any(session.scalar(select(func.count()).select_from(model)) for model in (DecisionRow, PositionRow))
