"""The exits' write-ahead file (`daemon.store.intent_log`, room tick): what `Journal.write_ahead` put in
it survives a run whose writer thread never committed, and the next start folds exactly the records the
database lacks into it, in order, before anything reads the store.

A "killed run" here is a journal whose writer thread is held (a blocking job queued ahead of its flush),
so nothing it appended reaches the database; a second `Store` on the same file then starts as the next
run does (`intent_log.open_for`). The process-level proof (SIGKILL between the write-ahead and the
send, and after the send before the commit) is tests/broker/test_intent_log_kill.py.
"""

from __future__ import annotations

import threading
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from daemon.store import Store, intent_log
from daemon.store.journal import Journal, JournalSettings
from market.clock import EXCHANGE_TZ
from market.types import OptionContract, OrderRequest

T0 = datetime(2024, 3, 6, 10, 0, tzinfo=EXCHANGE_TZ)
CONTRACT = OptionContract("SPY", T0.date(), Decimal("470"), "C")
FAST = JournalSettings(retry_initial_s=0.01, retry_max_s=0.05, batch_size=50, high_water=1000, durable_timeout_s=2.0)


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tradingd-0dte.db'}"


def _exit(order_id: int, position_id: int) -> OrderRequest:
    return OrderRequest(order_id, f"tradingd:0dte:s1:exit-{order_id}", CONTRACT, "SELL", 3, "LMT", Decimal("3.30"))


async def _fresh(tmp_path: Path) -> tuple[Store, int]:
    store = Store("0dte", _url(tmp_path))
    await store.upgrade()
    position = await store.open_position(CONTRACT, T0, signal_id="s1")
    return store, position.id


def _hold(store: Store) -> threading.Event:
    """The writer thread blocked from now on: nothing appended after this reaches the database."""
    release = threading.Event()
    store.enqueue(release.wait)
    return release


async def _next_run(tmp_path: Path) -> Store:
    again = Store("0dte", _url(tmp_path))
    await again.upgrade()
    again_log = await intent_log.open_for(again)
    assert again_log is not None
    again_log.close()
    return again


async def test_an_exit_written_ahead_and_never_committed_is_in_the_store_after_the_restart(tmp_path: Path) -> None:
    store, position_id = await _fresh(tmp_path)
    journal = Journal(store, FAST)
    journal.intent_log = await intent_log.open_for(store)
    release = _hold(store)
    journal.append("save_exit_state", position_id=position_id, state={"fired": ["take_profit_1"]}, at=T0)
    journal.append("record_exit_event", position_id=position_id, rule="take_profit_1", kind="partial_close",
                   quantity=3, reason="tier 1", at=T0, event_id=12)
    journal.append("write_intent", request=_exit(21, position_id), at=T0, parent_ref="tradingd:0dte:s1",
                   position_id=position_id)
    assert journal.write_ahead()  # the order would be sent now; the run is killed before the writer commits
    again = await _next_run(tmp_path)
    try:
        intent = await again.find_intent(21)
        assert intent is not None and intent.order_ref == "tradingd:0dte:s1:exit-21"
        assert [e.id for e in await again.list_exit_events()] == [12]
        assert (await again.load_exit_states())[position_id]["fired"] == ["take_profit_1"]
        assert intent_log.path_for(_url(tmp_path)).stat().st_size == 0  # folded in, emptied  # type: ignore[union-attr]
    finally:
        journal.close()
        release.set()
        await again.close()
        await store.close()


async def test_records_the_store_committed_are_not_applied_again_over_newer_ones(tmp_path: Path) -> None:
    """The file still holds an exit state the writer committed; a newer state committed after it (never
    written ahead) must survive the restart: the mark in the store says where the file's records end."""
    store, position_id = await _fresh(tmp_path)
    journal = Journal(store, FAST)
    journal.intent_log = await intent_log.open_for(store)
    journal.append("save_exit_state", position_id=position_id, state={"fired": ["take_profit_1"]}, at=T0)
    journal.append("write_intent", request=_exit(21, position_id), at=T0, parent_ref="tradingd:0dte:s1",
                   position_id=position_id)
    assert journal.write_ahead()
    assert await journal.drain(5)
    journal.append("save_exit_state", position_id=position_id, state={"fired": ["take_profit_1", "take_profit_2"]},
                   at=T0)
    assert await journal.drain(5)  # committed, not in the file (no order followed it); the run is killed now
    assert intent_log.read(journal.intent_log.path)  # type: ignore[union-attr]
    journal.close()
    await store.close()
    again = await _next_run(tmp_path)
    try:
        assert (await again.load_exit_states())[position_id]["fired"] == ["take_profit_1", "take_profit_2"]
        assert [i.order_id for i in await again.intents_by_ref("tradingd:0dte:s1:exit-21")] == [21]
    finally:
        await again.close()


async def test_the_file_is_emptied_once_all_it_holds_is_committed(tmp_path: Path) -> None:
    store, position_id = await _fresh(tmp_path)
    journal = Journal(store, FAST)
    journal.intent_log = log = await intent_log.open_for(store)
    assert log is not None
    try:
        for order_id in (21, 22, 23):
            journal.append("write_intent", request=_exit(order_id, position_id), at=T0, parent_ref="tradingd:0dte:s1",
                           position_id=position_id)
            assert journal.write_ahead()
            assert [r[1] for r in intent_log.read(log.path)][-1] == journal._seq  # the one just written, last
            assert await journal.drain(5)
        assert len(intent_log.read(log.path)) == 1  # each write found the ones before committed: emptied first
    finally:
        journal.close()
        log.close()
        await store.close()


async def test_a_torn_last_frame_is_left_out(tmp_path: Path) -> None:
    store, position_id = await _fresh(tmp_path)
    log = await intent_log.open_for(store)
    assert log is not None
    log.append([(1, "set_meta", {"key": "a", "value": "1"})])
    log.append([(2, "set_meta", {"key": "b", "value": "2"})])
    log.close()
    with log.path.open("r+b") as f:
        f.truncate(log.path.stat().st_size - 3)  # a kill inside the second write
    assert [r[1] for r in intent_log.read(log.path)] == [1]
    await store.close()


def test_only_a_sqlite_file_store_has_one(tmp_path: Path) -> None:
    assert intent_log.path_for(_url(tmp_path)) == tmp_path / "tradingd-0dte.db-intents"
    assert intent_log.path_for("sqlite:///:memory:") is None
    assert intent_log.path_for("postgresql+psycopg://u@127.0.0.1:5432/test") is None
