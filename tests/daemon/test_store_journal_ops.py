"""The journal's Core operations (daemon/store/journal_ops.py) write what the ORM operations write: the same
records, run through each into its own empty database (SQLite, and PostgreSQL when reachable), leave every
table row for row the same, and the same bad records are refused with the same codes. The journal writes
a record nobody awaits through the Core version and a durable one through the ORM operation."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from daemon.store import Store, journal_ops, journal_ops_state
from daemon.store.errors import StoreError
from daemon.store.journal import Journal, JournalSettings
from daemon.store.models import Base
from market.session import EXCHANGE_TZ
from market.types import Fill, OptionContract, OrderRequest, OrderStatus, OrderUpdate
from tests.daemon.conftest import _pg_schema_url

CONTRACT = OptionContract("SPY", date(2019, 2, 11), Decimal(270), "C")
OTHER = OptionContract("QQQ", date(2019, 2, 11), Decimal(170), "P")
T0 = datetime(2019, 2, 11, 10, 0, tzinfo=EXCHANGE_TZ)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def intent(order_id: int, side: str = "BUY", position_id: int | None = None, ref: str | None = None,
           when: int = 0) -> dict[str, Any]:
    request = OrderRequest(order_id=order_id, order_ref=ref or f"tradingd:0dte:t:{order_id}", contract=CONTRACT,
                           side=side, quantity=2, order_type="LMT", limit_price=Decimal("1.23456"))  # type: ignore[arg-type]
    return {"request": request, "at": at(when), "parent_ref": "tradingd:0dte:t", "position_id": position_id}


def update(order_id: int, status: Any, when: int, filled: int = 0, price: str | None = None) -> dict[str, Any]:
    return {"update": OrderUpdate(order_id=order_id, order_ref=f"tradingd:0dte:t:{order_id}", status=status,
                                  filled=filled, remaining=2 - filled,
                                  avg_fill_price=None if price is None else Decimal(price), at=at(when))}


def fill(exec_id: str, order_id: int, side: str, quantity: int, price: str, when: int,
         position_id: int | None = None) -> dict[str, Any]:
    return {"fill": Fill(exec_id=exec_id, order_id=order_id, order_ref=f"tradingd:0dte:t:{order_id}",
                         contract=CONTRACT, side=side, quantity=quantity, price=Decimal(price), at=at(when),  # type: ignore[arg-type]
                         commission=Decimal("0.65") * quantity),
            "position_id": position_id}


def event(position_id: int, rule: str, when: int, event_id: int | None) -> dict[str, Any]:
    return {"position_id": position_id, "rule": rule, "kind": "full", "quantity": 1, "reason": f"{rule} hit",
            "at": at(when), "event_id": event_id}


def signal(signal_id: str, when: int, status: str = "received") -> dict[str, Any]:
    return {"signal_id": signal_id, "payload": {"underlying": "SPY", "confidence": Decimal("0.8"), "at": at(when)},
            "received_at": at(when), "status": status}


def decision(signal_id: str | None, when: int, accepted: bool, decision_id: int | None,
             reason: str | None = None) -> dict[str, Any]:
    return {"signal_id": signal_id, "at": at(when), "accepted": accepted, "reason": reason, "contracts": 2,
            "notional": Decimal("246.912"), "multiplier": Decimal(100), "decision_id": decision_id,
            "breakdown": {"steps": [Decimal("1.5"), "x"], "at": at(when), "none": None}}


def checkpoint(when: int, equity: str, positions: int = 1) -> dict[str, Any]:
    return {"at": at(when), "equity": Decimal(equity), "session_pnl": Decimal("-12.5"), "drawdown": Decimal("0.01"),
            "exposure": Decimal("1234.56789"), "open_positions": positions, "greeks": {"delta": Decimal("0.5")},
            "breaker_level": 0, "state": "running"}


# Every branch of the Core operations, with ORM operations (close a position) between them.
RECORDS: list[tuple[str, dict[str, Any]]] = [
    ("record_signal", signal("s1", 0)),
    ("record_signal", signal("s1", 1, status="refused")),  # the same id again: nothing written
    ("record_signal", signal("s2", 0)),
    ("record_decision", decision("s1", 0, True, 5)),  # the signal becomes accepted
    ("record_decision", decision("s1", 0, True, 5)),  # the same decision again: a no-op
    ("record_decision", decision("s1", 1, False, 6, reason="duplicate")),  # a later one leaves the signal as it is
    ("record_decision", decision("s2", 1, False, None, reason="halted")),  # numbered by the store; refused
    ("record_decision", decision(None, 2, False, None, reason="bad_body")),
    ("record_decision", decision("unknown", 2, True, 9)),  # a signal not stored
    ("record_checkpoint", checkpoint(0, "60000")),
    ("record_checkpoint", checkpoint(0, "60000")),  # the same checkpoint again: a no-op
    ("record_checkpoint", checkpoint(0, "60000.5")),
    ("set_meta", {"key": "replay.applied", "value": "3"}),
    ("set_meta", {"key": "replay.applied", "value": "4"}),
    ("set_meta", {"key": "other", "value": 5}),
    ("open_position", {"contract": CONTRACT, "opened_at": at(0), "signal_id": "s1"}),
    ("open_position", {"contract": OTHER, "opened_at": at(0), "quantity": 1, "entry_price": Decimal("2.5")}),
    ("write_intent", intent(1, position_id=1)),
    ("update_order", update(1, OrderStatus.PENDING_SUBMIT, 1)),
    ("update_order", update(1, OrderStatus.SUBMITTED, 2)),
    ("update_order", update(1, OrderStatus.PENDING_SUBMIT, 3)),  # lower rank: the intent stays "working"
    ("apply_fill", fill("e1", 1, "BUY", 1, "1.2", 4)),  # position from the intent
    ("apply_fill", fill("e2", 1, "BUY", 1, "1.31", 5)),  # a second lot: the entry price averages
    ("update_order", update(1, OrderStatus.FILLED, 5, filled=2, price="1.255")),
    ("update_order", update(1, OrderStatus.SUBMITTED, 6)),  # after a terminal state: the intent stays filled
    ("apply_fill", fill("e2", 1, "BUY", 1, "1.31", 5)),  # reported again: nothing changes
    ("save_exit_state", {"position_id": 1, "state": {"peak": Decimal("1.4"), "armed": False}, "at": at(7)}),
    ("save_exit_state", {"position_id": 1, "state": {"peak": Decimal("1.5"), "armed": True}, "at": at(8)}),
    ("record_exit_event", event(1, "trailing_stop", 9, 7)),
    ("record_exit_event", event(1, "trailing_stop", 9, 7)),  # the same event again: a no-op
    ("record_exit_event", event(1, "profit_target", 10, None)),
    ("write_intent", intent(2, side="SELL", position_id=1, when=10)),
    ("write_intent", intent(2, side="SELL", position_id=1, when=10)),  # the same intent again: a no-op
    ("update_order", update(2, OrderStatus.SUBMITTED, 11)),
    ("update_order", update(2, OrderStatus.PARTIALLY_FILLED, 12, filled=1)),  # the same state: its time moves on
    ("apply_fill", fill("e3", 2, "SELL", 1, "1.5", 12, position_id=1)),
    ("apply_fill", fill("e4", 2, "SELL", 2, "1.45", 13, position_id=1)),  # one beyond the open quantity: closes it
    ("save_exit_state", {"position_id": 2, "state": {"peak": "2.5"}, "at": at(13)}),
    ("close_position", {"position_id": 2, "closed_at": at(14), "exit_price": Decimal("2.75"), "reason": "closeout"}),
    ("save_exit_state", {"position_id": 2, "state": {"peak": "2.75"}, "at": at(15)}),
    ("update_order", update(99, OrderStatus.CANCELLED, 16)),  # an order without an intent
    ("apply_fill", fill("e5", 99, "BUY", 1, "0.5", 16)),  # a fill without a position
]

REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("record_signal", signal("", 20), "missing_signal_id"),
    ("record_signal", signal("s9", 20, status="maybe"), "bad_signal_status"),
    ("record_decision", decision("s2", 20, True, 5), "decision_id_reused"),
    ("open_position", {"contract": CONTRACT, "opened_at": at(20), "quantity": -1}, "bad_quantity"),
    ("open_position", {"contract": CONTRACT, "opened_at": at(20), "quantity": 1}, "missing_entry_price"),
    ("write_intent", intent(1, ref="tradingd:0dte:other:1"), "order_id_reused"),
    ("write_intent", intent(3, position_id=999), "unknown_position"),
    ("update_order", update(1, "Bogus", 20), "bad_order_status"),
    ("save_exit_state", {"position_id": 999, "state": {}, "at": at(20)}, "unknown_position"),
    ("save_exit_state", {"position_id": 1, "state": [1], "at": at(20)}, "bad_exit_state"),
    ("record_exit_event", event(1, "stop_loss", 20, 7), "exit_event_id_reused"),
    ("record_exit_event", event(999, "stop_loss", 20, None), "unknown_position"),
    ("apply_fill", fill("e9", 1, "BUY", 1, "1", 20, position_id=999), "unknown_position"),
    ("apply_fill", fill("e9", 1, "HOLD", 1, "1", 20), "bad_fill"),
]


def orm(op: str) -> Callable[..., Any]:
    return getattr(Store, op).__store_op__  # type: ignore[no-any-return]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def two_urls(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'orm.db'}", f"sqlite:///{tmp_path / 'core.db'}"
        return
    first, second = _pg_schema_url(), _pg_schema_url()
    try:
        yield next(first), next(second)
    finally:
        for schema in (first, second):
            schema.close()


async def opened(url: str) -> Store:
    store = Store("0dte", url)
    await store.upgrade()
    return store


def tables(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    with store.transaction() as session:
        return {name: sorted((tuple(r) for r in session.execute(select(table))), key=repr)
                for name, table in Base.metadata.tables.items()}


def refusal(store: Store, fn: Callable[..., Any], payload: dict[str, Any]) -> str:
    with pytest.raises(StoreError) as refused:
        store.run_batch([(fn, payload)])
    return refused.value.code


async def test_the_core_operations_write_the_same_rows_and_refuse_the_same_records(two_urls: tuple[str, str]) -> None:
    reference, core = await opened(two_urls[0]), await opened(two_urls[1])
    try:
        assert any(journal_ops.fast(orm(op)) is not orm(op) for op, _ in RECORDS)
        reference.run_batch([(orm(op), payload) for op, payload in RECORDS])  # one transaction each side
        core.run_batch([(journal_ops.fast(orm(op)), payload) for op, payload in RECORDS])
        expected = tables(reference)
        assert expected["fills"] and expected["exit_states"] and expected["exit_events"]
        assert expected["signals"] and expected["decisions"] and expected["checkpoints"] and expected["meta"]
        assert tables(core) == expected
        for op, payload, code in REFUSED:
            assert refusal(reference, orm(op), payload) == code, op
            assert refusal(core, journal_ops.fast(orm(op)), payload) == code, op
        assert tables(core) == tables(reference) == expected  # a refused record wrote nothing
    finally:
        await reference.close()
        await core.close()


async def test_the_journal_writes_a_record_nobody_awaits_in_core_and_a_durable_one_through_the_orm(
        tmp_path: Path) -> None:
    store = await opened(f"sqlite:///{tmp_path / 'j.db'}")
    seen: list[Callable[..., Any]] = []
    real = store.run_batch

    def run_batch(ops: list[Any]) -> list[Any]:
        seen.extend(fn for fn, _ in ops)
        return real(ops)

    store.run_batch = run_batch  # type: ignore[method-assign]
    journal = Journal(store, JournalSettings(durable_timeout_s=5.0))
    try:
        journal.append("open_position", contract=CONTRACT, opened_at=at(0))
        record = await journal.durable("write_intent", **intent(1, position_id=1))
        journal.append("update_order", **update(1, OrderStatus.SUBMITTED, 1))
        assert await asyncio.to_thread(journal.flush_sync, 5)
        assert record.order_id == 1 and record.state == "intent"  # the ORM operation's result, awaited
        assert seen == [journal_ops_state.open_position, orm("write_intent"), journal_ops.update_order]
    finally:
        journal.close()
        await store.close()


async def test_the_writer_keeps_one_sqlite_session_for_its_batches_and_drops_it_after_a_failure(
        tmp_path: Path) -> None:
    store = await opened(f"sqlite:///{tmp_path / 'kept.db'}")

    def meta(value: str) -> tuple[Callable[..., Any], dict[str, Any]]:
        return journal_ops.set_meta, {"key": "k", "value": value}

    def held() -> str | None:
        with store.transaction() as session:  # another connection: what is committed
            return journal_ops.get_meta(session, "0dte", "k")

    try:
        await store.call(store.run_batch, [meta("1")])
        kept = store._kept
        assert kept is not None and held() == "1"
        await store.call(store.run_batch, [meta("2")])
        assert store._kept is kept and held() == "2"  # the same session and connection, and each batch committed
        with pytest.raises(StoreError):
            await store.call(store.run_batch, [meta("3"), (orm("write_intent"), intent(1, position_id=999))])
        assert store._kept is None and held() == "2"  # rolled back whole, and the connection dropped with it
        await store.call(store.run_batch, [meta("4")])
        assert store._kept is not None and store._kept is not kept and held() == "4"
        kept = store._kept
        store.run_batch([meta("5")])  # off the writer thread: a session of its own, the kept one untouched
        assert held() == "5" and store._kept is kept
        with pytest.raises(StoreError):  # nor dropped by another thread's failure
            store.run_batch([(orm("write_intent"), intent(2, position_id=999))])
        assert store._kept is kept
    finally:
        await store.close()
    assert store._kept is None
