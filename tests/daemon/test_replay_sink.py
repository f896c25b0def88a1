"""The core's store sink (daemon/store/core_sink.py): batches land whole with their count, a resumed run
skips what landed, a store that cannot write keeps everything in order and says so, an entry's intent
is durable before its order or the order is refused, an exit goes out regardless."""

from __future__ import annotations

import sqlite3
import time
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from daemon.replay import ReplayStoreMismatch, StoreSink
from daemon.store import Store
from daemon.store.core_sink import APPLIED_KEY, CoreSink
from daemon.store.journal import JournalSettings
from market.session import EXCHANGE_TZ
from market.types import OptionContract, OrderRequest

CONTRACT = OptionContract("SPY", date(2019, 2, 11), Decimal(270), "C")
NOW = datetime(2019, 2, 11, 10, 0, tzinfo=EXCHANGE_TZ)
FAST = JournalSettings(retry_initial_s=0.01, retry_max_s=0.05, durable_timeout_s=5.0)


def count(db: Path, table: str) -> int:
    with sqlite3.connect(db) as connection:
        return connection.execute(f"select count(*) from {table}").fetchone()[0]


def meta(db: Path, key: str) -> str | None:
    with sqlite3.connect(db) as connection:
        row = connection.execute("select value from meta where key = ?", (key,)).fetchone()
        return None if row is None else row[0]


def changes(sink: CoreSink) -> list[tuple[bool, str | None]]:
    """The sink's changes, once the journal has told them (its listeners run just after its waiters wake)."""
    deadline = time.monotonic() + 5
    while not sink.changes and time.monotonic() < deadline:
        time.sleep(0.01)
    return sink.take_changes()


def opening(position_id: int) -> dict[str, Any]:
    return {"contract": CONTRACT, "opened_at": NOW, "signal_id": None, "position_id": position_id}


def intent(order_id: int) -> dict[str, Any]:
    request = OrderRequest(order_id=order_id, order_ref=f"tradingd:0dte:t:{order_id}", contract=CONTRACT, side="BUY",
                           quantity=1, order_type="LMT", limit_price=Decimal("1.00"))
    return {"request": request, "at": NOW, "parent_ref": "tradingd:0dte:t", "position_id": None}


class Broken:
    """A store whose batches fail as a full disk does while `down` (the real store otherwise)."""

    def __init__(self, store: Store):
        self.store = store
        self.down = False
        self.profile = store.profile

    def run_batch(self, ops: Any) -> Any:
        if self.down:
            raise OperationalError("INSERT", {}, Exception("database or disk is full"))
        return self.store.run_batch(ops)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


@pytest.fixture
async def store(tmp_path: Path) -> Any:
    store = Store("0dte", f"sqlite:///{tmp_path / 'r.db'}")
    await store.upgrade()
    yield store
    await store.close()


async def test_a_batch_killed_half_way_leaves_nothing_and_a_resumed_run_skips_what_landed(
        store: Store, tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    sink = StoreSink(store)
    assert sink.claim("run-1") == 0
    sink.append("open_position", opening(1))
    assert sink.flush(5)
    assert meta(db, APPLIED_KEY) == "1"

    class Killed(Exception):
        pass

    def die(*args: object, **kwargs: object) -> None:
        raise Killed()

    # The process dies inside the second batch's transaction, after its first record was written.
    with pytest.raises(Killed), store.transaction() as session:
        CoreSink._run_batch(session, store.profile, [
            (2, Store.open_position.__store_op__, {"contract": CONTRACT, "opened_at": NOW}),  # type: ignore[attr-defined]
            (3, die, {}),
        ])
    assert count(db, "positions") == 1 and meta(db, APPLIED_KEY) == "1"  # nothing of the killed batch
    sink.close()
    again = StoreSink(store)
    assert again.claim("run-1") == 1
    again.append("open_position", opening(1))
    assert again.catching_up is False
    again.append("open_position", opening(2))
    assert again.flush(5)
    assert count(db, "positions") == 2 and meta(db, APPLIED_KEY) == "2"
    again.close()
    with pytest.raises(ReplayStoreMismatch):
        StoreSink(store).claim("run-2")


async def test_a_batch_retried_after_its_commit_went_through_writes_nothing_twice(store: Store, tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    sink = CoreSink(store, FAST)
    sink.claim("run-1")
    sink.append("open_position", opening(1))
    assert sink.flush(5)
    with store.transaction() as session:  # the same batch again: the connection was lost at COMMIT
        assert CoreSink._run_batch(session, store.profile, [
            (1, Store.open_position.__store_op__, {"contract": CONTRACT, "opened_at": NOW}),  # type: ignore[attr-defined]
        ]) == [None]
    assert count(db, "positions") == 1
    sink.close()


async def test_a_store_that_cannot_write_keeps_every_record_in_order_and_says_so(store: Store, tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    broken = Broken(store)
    sink = CoreSink(broken, FAST)
    sink.claim("run-1")
    sink.append("open_position", opening(1))
    assert sink.flush(5) and sink.take_changes() == []
    broken.down = True
    for i in range(2, 6):
        sink.append("open_position", opening(i))
    assert sink.flush(5) is False
    assert changes(sink) == [(False, "Exception: database or disk is full")]
    status = sink.status()
    assert status["available"] is False and status["pending"] == 4 and status["failures"] >= 1
    assert "disk is full" in status["reason"]
    assert count(db, "positions") == 1
    broken.down = False
    assert sink.wait_flushed(lambda: False, poll_s=0.01)  # the journal retries on its own
    assert changes(sink) == [(True, None)]
    assert sink.status()["available"] is True and sink.status()["pending"] == 0
    with sqlite3.connect(db) as connection:
        assert [r[0] for r in connection.execute("select id from positions order by id")] == [1, 2, 3, 4, 5]
    assert meta(db, APPLIED_KEY) == "5"
    sink.close()


async def test_an_entry_is_sent_only_with_its_intent_committed_and_an_exit_always(store: Store,
                                                                                 tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    broken = Broken(store)
    sink = CoreSink(broken, FAST)
    sink.claim("run-1")
    sink.append("write_intent", intent(1))
    assert count(db, "order_intents") == 1  # write-ahead: committed at once, before the send
    assert sink.may_send(True) is True
    broken.down = True
    sink.append("open_position", opening(1))  # found unavailable on this one
    assert sink.flush(5) is False
    sink.append("write_intent", intent(2))  # an entry's child: its intent cannot be made durable
    assert sink.may_send(True) is False
    sink.append("write_intent", intent(3))  # an exit: sent, its intent stays in the journal
    assert sink.may_send(False) is True
    broken.down = False
    assert sink.wait_flushed(lambda: False, poll_s=0.01)
    with sqlite3.connect(db) as connection:
        assert [r[0] for r in connection.execute("select order_id from order_intents order by order_id")] == [1, 3]
    sink.close()


async def test_the_backtest_collector_is_a_sink_too() -> None:
    from daemon.backtest.run import Collector

    collector = Collector()
    assert collector.may_send(True) and not collector.changes and collector.take_changes() == []


async def test_waiting_for_a_store_that_stays_away_ends_when_told_and_keeps_the_records(store: Store) -> None:
    broken = Broken(store)
    sink = CoreSink(broken, FAST)
    sink.claim("run-1")
    broken.down = True
    sink.append("open_position", opening(1))
    calls = []

    def stop() -> bool:  # SIGTERM on the third look
        calls.append(1)
        return len(calls) >= 3

    assert sink.wait_flushed(stop, poll_s=0.01) is False
    assert sink.pending == 1 and sink.status()["available"] is False
    sink.close()


async def test_an_asyncio_shell_awaits_the_write_ahead_without_blocking(store: Store, tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    broken = Broken(store)
    sink = CoreSink(broken, FAST, counted=False, blocking=False)
    sink.append("write_intent", intent(1))
    assert await sink.may_send_async(True) is True
    assert count(db, "order_intents") == 1  # committed before the answer
    broken.down = True
    sink.append("open_position", opening(1))
    assert sink.flush(5) is False
    sink.append("write_intent", intent(2))
    assert await sink.may_send_async(True) is False  # an entry: not sent, its intent taken back
    sink.append("write_intent", intent(3))
    assert await sink.may_send_async(False) is True  # an exit: sent anyway
    broken.down = False
    assert sink.wait_flushed(lambda: False, poll_s=0.01)
    with sqlite3.connect(db) as connection:
        assert [r[0] for r in connection.execute("select order_id from order_intents order by order_id")] == [1, 3]
    sink.close()
