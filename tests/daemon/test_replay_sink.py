"""The replay's store sink: a batch lands whole or not at all, with its count; a resumed run skips it."""

from __future__ import annotations

import sqlite3
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from daemon.replay import ReplayStoreMismatch, StoreSink
from daemon.store import Store
from market.session import EXCHANGE_TZ
from market.types import OptionContract

CONTRACT = OptionContract("SPY", date(2019, 2, 11), Decimal(270), "C")
NOW = datetime(2019, 2, 11, 10, 0, tzinfo=EXCHANGE_TZ)


def count(db: Path, table: str) -> int:
    with sqlite3.connect(db) as connection:
        return connection.execute(f"select count(*) from {table}").fetchone()[0]


async def test_a_batch_killed_half_way_leaves_nothing_and_a_resumed_run_skips_what_landed(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    store = Store("0dte", f"sqlite:///{db}")
    await store.upgrade()
    try:
        sink = StoreSink(store)
        assert sink.claim("run-1") == 0
        sink.append("open_position", {"contract": CONTRACT, "opened_at": NOW, "signal_id": None, "position_id": 1})
        sink.flush()
        sink.append("open_position", {"contract": CONTRACT, "opened_at": NOW, "signal_id": None, "position_id": 2})
        sink.append("no_such_operation", {})  # logged ... and here the process dies

        class Killed(BaseException):
            pass

        def die(*args: object, **kwargs: object) -> None:
            raise Killed()

        sink.log = type("Log", (), {"error": staticmethod(die)})()
        with pytest.raises(Killed):
            sink.flush()
        assert count(db, "positions") == 1  # the killed batch left nothing (pysqlite savepoints commit otherwise)
        again = StoreSink(store)
        assert again.claim("run-1") == 1
        again.append("open_position", {"contract": CONTRACT, "opened_at": NOW, "signal_id": None, "position_id": 1})
        again.append("open_position", {"contract": CONTRACT, "opened_at": NOW, "signal_id": None, "position_id": 2})
        again.flush()
        assert count(db, "positions") == 2
        with pytest.raises(ReplayStoreMismatch):
            StoreSink(store).claim("run-2")
    finally:
        await store.close()
