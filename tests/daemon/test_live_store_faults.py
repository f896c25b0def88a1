"""The live shell over a store that stops writing (SPEC §6.2), in process on the virtual clock.

The store's writes are broken at `Store.run_batch` (the journal's only way in) with the error
SQLite raises on a full disk; the real faults are driven through the daemon process in
test_storage_faults.py. Here: the gate's place for `store_unavailable`, and exit state that
changes while the store is away reaches it, in order, when it returns.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from daemon.store import Store
from tests.daemon.test_live_rig import DAY1, Rig, at
from tests.daemon.test_store_journal import Faulty


async def until_true(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def break_store(rig: Rig) -> Faulty:
    faulty = Faulty(rig.store)
    faulty.broken = True
    await rig.engine.checkpoint(rig.clock.now())  # a record to write: the journal finds the store away
    await until_true(lambda: not rig.engine.journal.available)
    await asyncio.sleep(0.05)  # the listener's call on the loop
    return faulty


async def mend_store(rig: Rig, faulty: Faulty) -> None:
    faulty.broken = False
    await until_true(lambda: rig.engine.journal.available and rig.engine.journal.pending == 0)


async def test_store_unavailable_comes_after_underlying_blocked_and_before_confidence(rig: Rig, monkeypatch) -> None:
    told: list[tuple[str, str]] = []
    monkeypatch.setattr("daemon.live.tell.notify", lambda kind, text: told.append((kind, text)) or True)
    await rig.until(at(DAY1, 10, 28))
    faulty = await break_store(rig)
    assert told and told[0][0] == "store_fault" and "disk is full" in told[0][1]  # the operator is told
    status = rig.engine.status()
    assert status["store"]["available"] is False and "disk is full" in status["store"]["reason"]
    assert "store unavailable" in rig.engine.state_text()

    low = await rig.engine.submit_signal(rig.signal("low-1", "SPY", "bearish", 0.5, rig.clock.now()), "t")
    assert not low.accepted and low.reason == "store_unavailable", low  # not confidence_below_threshold
    good = await rig.engine.submit_signal(rig.signal("good-1", "SPY", "bearish", 0.91, rig.clock.now()), "t")
    assert not good.accepted and good.reason == "store_unavailable"
    rig.engine.core.blocked = {"SPY"}  # as a reconciliation that found an unknown SPY position leaves it
    blocked = await rig.engine.submit_signal(rig.signal("blk-1", "SPY", "bearish", 0.91, rig.clock.now()), "t")
    assert blocked.reason == "underlying_blocked"  # underlying_blocked comes first (its own reason, Part 8)
    again = await rig.engine.submit_signal(rig.signal("low-1", "SPY", "bearish", 0.5, rig.clock.now()), "t")
    assert again.reason == "duplicate_signal"  # known from memory while the store cannot be asked
    assert rig.engine.book.positions == {}

    await mend_store(rig, faulty)
    await until_true(lambda: len(told) == 2)
    assert told[1][0] == "store_fault" and "available again" in told[1][1]
    stored = {d.signal_id: d.reason for d in await rig.store.recent_decisions()}
    assert stored["low-1"] == "store_unavailable" and stored["good-1"] == "store_unavailable"
    assert stored["blk-1"] == "underlying_blocked"
    rig.engine.core.blocked = set()
    after = await rig.engine.submit_signal(rig.signal("good-2", "SPY", "bearish", 0.91, rig.clock.now()), "t")
    assert after.accepted, after  # back: entries go on


async def test_exits_go_on_while_the_store_is_away_and_every_record_reaches_it_after(rig: Rig) -> None:
    await rig.until(at(DAY1, 10, 28))
    outcome = await rig.engine.submit_signal(rig.signal("ex-1", "SPY", "bearish", 0.91, rig.clock.now()), "t")
    assert outcome.accepted, outcome
    await rig.until(at(DAY1, 10, 29))
    (position,) = rig.engine.book.positions.values()
    bought = position.open_qty
    assert bought > 0
    faulty = await break_store(rig)

    await rig.until(at(DAY1, 11, 15))  # tier 1 (10:30) and tier 2 (11:09) fire on the real path
    fired = set(position.exit_state.fired)
    assert len(fired) >= 2, fired
    assert position.open_qty < bought  # sold from memory: the exits were not held back by the store
    assert not rig.engine.journal.available and rig.engine.journal.pending > 0
    assert await _exit_events(rig.store) == []  # nothing reached the store yet

    await mend_store(rig, faulty)
    events = await _exit_events(rig.store)
    assert {rule for rule, _ in events} >= fired - {"loss_alert"}
    stored = (await rig.store.load_exit_states())[position.id]
    assert set(stored["fired"]) == fired  # the state changed in memory is the state stored
    record = await rig.store.get_position(position.id)
    assert record is not None and record.open_qty == position.open_qty
    assert record.realized_pnl == position.record.realized_pnl
    fills = await rig.store.list_fills(limit=1000)
    assert sum(f.quantity for f in fills if f.side == "SELL") == bought - position.open_qty


async def _exit_events(store: Store) -> list[tuple[str, str]]:
    return [(e.rule, e.kind) for e in await store.list_exit_events(limit=1000)]


def test_the_store_metrics_follow_the_status() -> None:
    from daemon.metrics import Metrics

    metrics = Metrics("0dte")
    metrics.update_from_status({"store": {"available": False, "reason": "disk full", "pending": 7, "failures": 3}})
    metrics.update_from_status({"store": {"available": False, "reason": "disk full", "pending": 9, "failures": 5}})
    body = metrics.render()[0].decode()
    assert 'tradingd_store_available{profile="0dte"} 0.0' in body
    assert 'tradingd_journal_pending{profile="0dte"} 9.0' in body
    assert 'tradingd_store_write_failures_total{profile="0dte"} 5.0' in body
    metrics.update_from_status({"store": {"available": True, "reason": None, "pending": 0, "failures": 5}})
    body = metrics.render()[0].decode()
    assert 'tradingd_store_available{profile="0dte"} 1.0' in body
    assert 'tradingd_store_write_failures_total{profile="0dte"} 5.0' in body



async def test_a_reconnect_while_the_store_is_away_is_reconciled_when_it_returns(rig: Rig) -> None:
    await rig.until(at(DAY1, 10, 0))
    faulty = await break_store(rig)
    real = rig.store._in_transaction

    def reads_fail_too(*args: Any) -> Any:
        if faulty.broken:
            from tests.daemon.test_store_journal import disk_full

            raise disk_full()
        return real(*args)

    rig.store._in_transaction = reads_fail_too  # type: ignore[method-assign]
    rig.engine.on_connection(False, "gateway dropped")
    rig.engine.on_connection(True, "back")
    await rig.engine.settle()
    await asyncio.sleep(0.05)
    assert rig.engine.control.reconciling  # not reconciled: entries wait, the worker lives on
    assert rig.engine.phase == "RUNNING" and rig.engine._worker is not None and not rig.engine._worker.done()
    await mend_store(rig, faulty)
    await until_true(lambda: not rig.engine.control.reconciling)
    assert rig.engine.last_reconcile is not None and rig.engine.last_reconcile.kind == "reconnect"
