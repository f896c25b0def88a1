"""The write-behind journal (SPEC §6.2): never blocks or raises, keeps every record through a store
that cannot write, retries with backoff, flushes strictly in order, never duplicates a row, and
refuses a durable write at once while the store is away.

The store's failures here are injected at `Store.run_batch` (the journal's only way to write) as
the OperationalError SQLite and PostgreSQL raise; the real faults (a full tmpfs, a read-only
remount, a stopped PostgreSQL) are driven through the daemon in test_storage_faults.py.
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from daemon.store import Store
from daemon.store.journal import STORE_UNAVAILABLE, Journal, JournalSettings, StoreUnavailable
from market.clock import EXCHANGE_TZ
from market.types import OptionContract, OrderRequest

T0 = datetime(2019, 2, 11, 10, 0, tzinfo=EXCHANGE_TZ)
FAST = JournalSettings(retry_initial_s=0.01, retry_max_s=0.05, batch_size=4, high_water=5, durable_timeout_s=2.0)
CONTRACT = OptionContract("SPY", datetime(2019, 2, 11).date(), Decimal("270"), "C")


def disk_full() -> OperationalError:
    return OperationalError("INSERT INTO checkpoints", {}, Exception("database or disk is full"))


class Faulty:
    """Wraps `store.run_batch`: while `broken`, every write fails as a full disk does; `commit_then_fail`
    makes the next batch commit and then report a failure (a connection lost at COMMIT)."""

    def __init__(self, store: Store):
        self.store = store
        self.broken = False
        self.commit_then_fail = False
        self.attempts = 0
        self._real = store.run_batch
        store.run_batch = self.run_batch  # type: ignore[method-assign]

    def run_batch(self, ops: list[Any]) -> list[Any]:
        self.attempts += 1
        if self.broken:
            raise disk_full()
        result = self._real(ops)
        if self.commit_then_fail:
            self.commit_then_fail = False
            raise disk_full()
        return result


def checkpoint(i: int) -> dict[str, Any]:
    return {"at": T0 + timedelta(minutes=5 * i), "equity": Decimal(60000 + i), "session_pnl": Decimal(i),
            "drawdown": Decimal(0), "exposure": Decimal(0), "open_positions": 0, "greeks": {}, "breaker_level": 0,
            "state": "ACTIVE"}


async def wait_for(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


async def test_records_are_written_in_order_and_append_returns_at_once(store: Store) -> None:
    journal = Journal(store, FAST)
    for i in range(10):
        journal.append("record_checkpoint", **checkpoint(i))
    assert await journal.drain(5)
    assert journal.pending == 0 and journal.committed == 10
    assert [c.equity for c in await store.list_checkpoints()] == [Decimal(60000 + i) for i in range(10)]


async def test_append_never_raises_on_a_bad_record_and_counts_it(store: Store) -> None:
    journal = Journal(store, FAST)
    journal.append("no_such_operation", x=1)
    journal.append("record_checkpoint", nonsense=True)
    journal.append("save_exit_state", position_id=999, state={"fired": []}, at=T0)  # refused by the store
    journal.append("record_checkpoint", **checkpoint(1))  # a bad record does not hold back the next one
    assert await journal.drain(5)
    assert journal.rejected == 3
    assert [c.equity for c in await store.list_checkpoints()] == [Decimal(60001)]
    assert journal.available


async def test_a_store_that_cannot_write_keeps_every_record_and_flushes_in_order_when_it_returns(store: Store) -> None:
    changes: list[tuple[bool, str | None]] = []
    journal = Journal(store, FAST)
    journal.add_listener(lambda ok, why: changes.append((ok, why)))
    faulty = Faulty(store)
    journal.append("record_checkpoint", **checkpoint(0))
    assert await journal.drain(5)
    faulty.broken = True
    for i in range(1, 8):
        journal.append("record_checkpoint", **checkpoint(i))
    await wait_for(lambda: bool(changes))
    assert not journal.available and journal.reason is not None and "disk is full" in journal.reason
    assert changes == [(False, journal.reason)]
    assert not await journal.drain(0.2)  # never "flushed" while the store is away
    attempts = faulty.attempts
    await wait_for(lambda: faulty.attempts >= attempts + 3)  # it keeps trying, with backoff
    assert journal.pending == 7 and journal.failures >= 3
    faulty.broken = False
    await wait_for(lambda: journal.available and journal.pending == 0 and len(changes) == 2)
    assert changes[-1] == (True, None)
    assert [c.equity for c in await store.list_checkpoints()] == [Decimal(60000 + i) for i in range(8)]


async def test_retries_back_off_up_to_the_configured_ceiling(store: Store) -> None:
    journal = Journal(store, JournalSettings(retry_initial_s=0.02, retry_max_s=0.08, batch_size=10, high_water=100))
    faulty = Faulty(store)
    faulty.broken = True
    stamps: list[float] = []
    real = faulty.run_batch

    def stamped(ops: list[Any]) -> list[Any]:
        stamps.append(time.monotonic())
        return real(ops)

    store.run_batch = stamped  # type: ignore[method-assign]
    journal.append("record_checkpoint", **checkpoint(0))
    await wait_for(lambda: len(stamps) >= 6, timeout=5)
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert gaps[0] >= 0.015 and gaps[1] >= 0.035  # 0.02, 0.04, ...
    assert max(gaps) < 0.5 and gaps[-1] >= 0.07  # ... capped at 0.08
    faulty.broken = False
    await wait_for(lambda: journal.pending == 0)
    journal.close()


async def test_a_retried_batch_whose_commit_went_through_writes_no_row_twice(store: Store) -> None:
    journal = Journal(store, FAST)
    faulty = Faulty(store)
    position = await store.open_position(CONTRACT, T0, signal_id="s1")
    request = OrderRequest(order_id=7, order_ref="tradingd:0dte:s1:1", contract=CONTRACT, side="BUY", quantity=2,
                           order_type="LMT", limit_price=Decimal("1.25"))
    faulty.commit_then_fail = True
    journal.append("record_signal", signal_id="s2", payload={"id": "s2"}, received_at=T0)
    journal.append("record_decision", signal_id="s2", at=T0, accepted=False, reason="confidence_below_threshold",
                   contracts=0, notional=Decimal(0), multiplier=Decimal(0), breakdown={}, decision_id=41)
    journal.append("write_intent", request=request, at=T0, parent_ref="tradingd:0dte:s1", position_id=position.id)
    journal.append("record_exit_event", position_id=position.id, rule="take_profit_1", kind="partial_close",
                   quantity=1, reason="tier 1", at=T0, event_id=12)
    await wait_for(lambda: journal.pending == 0 and journal.available)
    assert journal.failures == 1 and journal.rejected == 0
    assert [d.id for d in await store.recent_decisions()] == [41]
    assert [e.id for e in await store.list_exit_events()] == [12]
    assert [i.order_id for i in await store.intents_by_ref("tradingd:0dte:s1:1")] == [7]
    assert (await store.get_signal("s2")).status == "refused"  # type: ignore[union-attr]


async def test_durable_returns_the_result_once_committed(store: Store) -> None:
    journal = Journal(store, FAST)
    journal.append("record_checkpoint", **checkpoint(0))
    record = await journal.durable("open_position", contract=CONTRACT, opened_at=T0, signal_id="s1")
    assert record.id > 0 and journal.pending == 0
    assert len(await store.list_checkpoints()) == 1  # everything before it is committed too


async def test_durable_is_refused_at_once_while_the_store_is_unavailable_and_nothing_is_kept(store: Store) -> None:
    journal = Journal(store, FAST)
    faulty = Faulty(store)
    faulty.broken = True
    journal.append("record_checkpoint", **checkpoint(0))
    await wait_for(lambda: not journal.available)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as err:
        await journal.durable("open_position", contract=CONTRACT, opened_at=T0, signal_id="s1")
    assert err.value.code == STORE_UNAVAILABLE and time.monotonic() - started < 0.5
    assert journal.pending == 1
    faulty.broken = False
    await wait_for(lambda: journal.pending == 0)
    assert await store.list_positions() == []


async def test_a_durable_write_that_fails_is_withdrawn_and_the_rest_retried(store: Store) -> None:
    journal = Journal(store, FAST)
    faulty = Faulty(store)
    faulty.broken = True
    journal.append("record_checkpoint", **checkpoint(0))
    with pytest.raises(StoreUnavailable):
        await journal.durable("open_position", contract=CONTRACT, opened_at=T0, signal_id="s1")
    journal.append("record_checkpoint", **checkpoint(1))
    faulty.broken = False
    await wait_for(lambda: journal.pending == 0 and journal.available)
    assert await store.list_positions() == []
    assert len(await store.list_checkpoints()) == 2


async def test_above_the_high_water_mark_it_counts_and_keeps_every_record(store: Store) -> None:
    journal = Journal(store, FAST)
    faulty = Faulty(store)
    faulty.broken = True
    for i in range(12):
        journal.append("record_checkpoint", **checkpoint(i))
    assert journal.over_high_water and journal.high_water_crossings == 1
    faulty.broken = False
    await wait_for(lambda: journal.pending == 0)
    assert not journal.over_high_water
    assert len(await store.list_checkpoints()) == 12


async def test_listeners_are_told_through_notify(store: Store) -> None:
    loop = asyncio.get_running_loop()
    threads: list[int] = []
    journal = Journal(store, FAST, notify=loop.call_soon_threadsafe)
    journal.add_listener(lambda ok, why: threads.append(threading.get_ident()))
    faulty = Faulty(store)
    faulty.broken = True
    journal.append("record_checkpoint", **checkpoint(0))
    await wait_for(lambda: bool(threads))
    faulty.broken = False
    await wait_for(lambda: len(threads) == 2)
    assert set(threads) == {threading.get_ident()}  # on the loop's thread, not the writer's


def test_flush_sync_blocks_until_written(tmp_path: Any) -> None:
    async def scenario() -> None:
        store = Store("0dte", f"sqlite:///{tmp_path / 'j.db'}")
        await store.upgrade()
        journal = Journal(store, FAST)
        for i in range(5):
            journal.append("record_checkpoint", **checkpoint(i))
        assert journal.flush_sync(5)
        assert journal.pending == 0
        assert len(await store.list_checkpoints()) == 5
        await store.close()

    asyncio.run(scenario())


async def test_id_blocks_never_overlap_between_daemons_sharing_a_database(store: Store) -> None:
    other = Store("7dte", store.url)
    try:
        first = await store.reserve_ids("exit_events", 10)
        second = await other.reserve_ids("exit_events", 10)
        third = await store.reserve_ids("exit_events", 10)
        assert first == 1 and second == 11 and third == 21
        assert await store.reserve_ids("decisions", 5) == 1  # one counter per table
        journal = Journal(store, FAST)
        position = await store.open_position(CONTRACT, T0, signal_id="s1")
        journal.append("record_exit_event", position_id=position.id, rule="take_profit_1", kind="partial_close",
                       quantity=1, reason="tier 1", at=T0, event_id=first)
        assert await journal.drain(5)
        assert await store.reserve_ids("exit_events", 10) == 31  # never below the rows either
    finally:
        await other.close()


async def test_retry_now_skips_the_rest_of_the_backoff(store: Store) -> None:
    faulty = Faulty(store)
    journal = Journal(store, JournalSettings(retry_initial_s=30, retry_max_s=30, durable_timeout_s=2.0))
    faulty.broken = True
    journal.append("record_checkpoint", **checkpoint(0))
    await wait_for(lambda: not journal.available)
    faulty.broken = False
    await asyncio.sleep(0.2)
    assert journal.pending == 1  # the backoff (30 s) still runs
    journal.retry_now()
    await wait_for(lambda: journal.pending == 0 and journal.available)
    journal.close()


async def test_a_withdrawn_record_is_never_written_and_the_others_are(store: Store) -> None:
    faulty = Faulty(store)
    journal = Journal(store, FAST)
    faulty.broken = True
    first = journal.append_record("record_checkpoint", checkpoint(0))
    await wait_for(lambda: not journal.available)
    second = journal.append_record("record_checkpoint", checkpoint(1))
    assert second is not None and journal.withdraw(second) and not second.written
    faulty.broken = False
    await wait_for(lambda: journal.pending == 0 and journal.available)
    assert first is not None and first.written and not journal.withdraw(first)  # too late: it is committed
    assert [c.equity for c in await store.list_checkpoints()] == [Decimal(60000)]
    journal.close()


async def test_a_batch_runner_writes_the_batch_in_its_own_way_in_one_transaction(store: Store) -> None:
    seen: list[list[int]] = []

    def runner(session: Any, profile: str, records: list[Any]) -> list[Any]:
        seen.append([tag for tag, _, _ in records])
        return [fn(session, profile, **payload) for _, fn, payload in records]

    journal = Journal(store, FAST, batch_runner=runner)
    for i in range(6):
        journal.append_record("record_checkpoint", checkpoint(i), tag=100 + i)
    assert await journal.drain(5)
    assert [t for batch in seen for t in batch] == list(range(100, 106))
    assert all(len(batch) <= FAST.batch_size for batch in seen)
    assert len(await store.list_checkpoints()) == 6
    journal.close()


class Batches:
    """Wraps `store.run_batch` to record each transaction's operations, in order."""

    def __init__(self, store: Store):
        self.seen: list[list[str]] = []
        self._real = store.run_batch
        store.run_batch = self.run_batch  # type: ignore[method-assign]

    def run_batch(self, ops: list[Any]) -> list[Any]:
        self.seen.append([fn.__name__ for fn, _ in ops])
        return self._real(ops)


async def test_a_durable_record_commits_without_the_records_appended_after_it(store: Store) -> None:
    """tick (issue 8): an order waiting for its intent waits for what came before it, never for what came
    after: the batch that carries a durable record ends at it (order is kept: nothing jumps ahead)."""
    batches = Batches(store)
    journal = Journal(store, JournalSettings(batch_size=200, durable_timeout_s=5.0))
    release = threading.Event()
    store.enqueue(lambda: release.wait(5))  # the writer is busy: everything below queues up behind it
    journal.append("record_checkpoint", **checkpoint(0))
    durable = asyncio.ensure_future(journal.durable("open_position", contract=CONTRACT, opened_at=T0,
                                                    signal_id="s1"))
    await asyncio.sleep(0.05)
    for i in range(1, 4):
        journal.append("record_checkpoint", **checkpoint(i))
    release.set()
    record = await durable
    assert record.id > 0
    assert await journal.drain(5)
    assert batches.seen[0] == ["record_checkpoint", "open_position"]  # the one before it, itself, nothing after
    assert [op for batch in batches.seen for op in batch] == ["record_checkpoint", "open_position",
                                                               *["record_checkpoint"] * 3]
    assert [c.equity for c in await store.list_checkpoints()] == [Decimal(60000 + i) for i in range(4)]
    journal.close()


async def test_a_durable_write_not_committed_in_time_is_refused_and_withdrawn(store: Store) -> None:
    journal = Journal(store, JournalSettings(durable_timeout_s=0.2))
    release = threading.Event()
    store.enqueue(lambda: release.wait(5))  # the writer is stuck (a lock held elsewhere)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as err:
        await journal.durable("open_position", contract=CONTRACT, opened_at=T0, signal_id="s1")
    assert err.value.code == STORE_UNAVAILABLE and 0.15 <= time.monotonic() - started < 2.0
    assert journal.pending == 0  # withdrawn: its caller refused the entry, so it is never written
    release.set()
    journal.append("record_checkpoint", **checkpoint(0))
    assert await journal.drain(5)
    assert await store.list_positions() == [] and len(await store.list_checkpoints()) == 1
    journal.close()
