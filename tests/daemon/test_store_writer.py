"""The writer thread: writes never block the event loop, keep their order, and fail loudly or counted."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from market.clock import EXCHANGE_TZ
from daemon.store import Store, StoreError

T0 = datetime(2019, 2, 11, 10, 0, tzinfo=EXCHANGE_TZ)
# Long enough that the lock below is released well before it; a store that blocked the
# loop would instead fail after it, because the ticker that releases the lock never runs.
BUSY_TIMEOUT_MS = 20_000
TICKS_WHILE_LOCKED = 5


def _checkpoint_kwargs(equity: int) -> dict:
    return {"at": T0, "equity": Decimal(equity), "session_pnl": Decimal(0), "drawdown": Decimal(0),
            "exposure": Decimal(0), "open_positions": 0, "greeks": {}, "breaker_level": 0, "state": "ACTIVE"}


class TableLock:
    """Another connection holding a write lock on `signals`, as a slow disk or a busy peer would."""

    def __init__(self, url: str):
        self._url = url
        self._sqlite: sqlite3.Connection | None = None
        self._pg = None

    def acquire(self) -> None:
        parsed = make_url(self._url)
        if parsed.get_backend_name() == "sqlite":
            self._sqlite = sqlite3.connect(parsed.database, isolation_level=None)
            self._sqlite.execute("BEGIN IMMEDIATE")
        else:
            self._engine = create_engine(parsed)
            self._pg = self._engine.connect()
            self._pg.begin()
            self._pg.execute(text("LOCK TABLE signals IN ACCESS EXCLUSIVE MODE"))

    def release(self) -> None:
        if self._sqlite is not None:
            self._sqlite.execute("ROLLBACK")
            self._sqlite.close()
        if self._pg is not None:
            self._pg.rollback()
            self._pg.close()
            self._engine.dispose()


async def test_a_slow_write_does_not_block_the_event_loop(store_url):
    store = Store("0dte", store_url, busy_timeout_ms=BUSY_TIMEOUT_MS)
    await store.upgrade()
    lock = TableLock(store_url)
    lock.acquire()
    events: list[str] = []
    released = False

    async def ticker() -> None:
        nonlocal released
        for i in range(TICKS_WHILE_LOCKED):
            await asyncio.sleep(0.01)
            events.append(f"tick {i}")
        pending_while_locked = not write.done()
        lock.release()
        released = True
        events.append(f"released (write pending: {pending_while_locked})")

    async def slow_write() -> None:
        await store.record_signal("sig-slow", {}, T0)
        events.append("written")

    write = asyncio.create_task(slow_write())
    try:
        await asyncio.wait_for(asyncio.gather(ticker(), write), timeout=BUSY_TIMEOUT_MS / 1000 * 2)
    finally:
        if not released:
            lock.release()
    assert events == [f"tick {i}" for i in range(TICKS_WHILE_LOCKED)] + ["released (write pending: True)", "written"]
    assert await store.is_duplicate_signal("sig-slow")
    await store.close()


async def test_submitted_and_awaited_writes_keep_their_order(store):
    for i in range(10):
        store.submit(store.record_checkpoint, **_checkpoint_kwargs(i))
        if i % 3 == 0:
            await store.record_signal(f"s{i}", {}, T0)
    await store.drain()
    assert [c.equity for c in await store.list_checkpoints()] == [Decimal(i) for i in range(10)]
    assert store.failed_submissions == 0


async def test_drain_waits_for_everything_submitted(store):
    for i in range(50):
        store.submit(store.record_checkpoint, **_checkpoint_kwargs(i))
    await store.drain()
    assert len(await store.list_checkpoints()) == 50


async def test_a_failed_submission_is_counted_and_the_writer_goes_on(store):
    store.submit(store.record_operator_action, "reboot", who="ops", why=None, at=T0)  # type: ignore[arg-type]
    store.submit(store.record_checkpoint, **_checkpoint_kwargs(1))
    await store.drain()
    assert store.failed_submissions == 1
    assert len(await store.list_checkpoints()) == 1


async def test_submit_takes_only_this_stores_operations_with_valid_arguments(store, open_store):
    with pytest.raises(StoreError) as err:
        store.submit(store.drain)
    assert err.value.code == "not_a_store_operation"
    other = open_store()
    with pytest.raises(StoreError):
        store.submit(other.record_checkpoint, **_checkpoint_kwargs(1))
    with pytest.raises(TypeError):
        store.submit(store.record_checkpoint, equity=Decimal(1))
    await other.close()


async def test_a_cancelled_caller_does_not_break_the_writer(store):
    task = asyncio.create_task(store.record_signal("s-cancel", {}, T0))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await store.record_signal("s-next", {}, T0)
    await store.drain()
    assert await store.is_duplicate_signal("s-next")


async def test_close_is_idempotent_and_a_closed_store_says_so(open_store: Callable[[], Store]):
    store = open_store()
    await store.upgrade()
    store.submit(store.record_checkpoint, **_checkpoint_kwargs(7))
    await store.close()  # writes what was queued first
    await store.close()
    with pytest.raises(StoreError) as err:
        await store.get_trading_state()
    assert err.value.code == "store_closed"
    reopened = open_store()
    assert [c.equity for c in await reopened.list_checkpoints()] == [Decimal(7)]
    await reopened.close()
