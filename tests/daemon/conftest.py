"""Store fixtures, parametrized over SQLite (a temporary file) and PostgreSQL.

PostgreSQL is `TRADINGD_TEST_PG_URL` or postgresql+psycopg://postgres@127.0.0.1:5432/test;
when it cannot be reached those cases skip with the reason. Each PostgreSQL test gets its
own schema (through the connection's search_path), dropped afterwards, so parallel and
repeated runs never see each other's tables.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from functools import cache

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from daemon.store import Store
from tests.daemon.test_live_rig import Rig

PG_URL = os.environ.get("TRADINGD_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PROFILE = "0dte"


@cache
def _pg_unreachable_reason() -> str | None:
    try:
        engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("select 1"))
        engine.dispose()
    except Exception as exc:  # any failure to connect means: skip, saying why
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"PostgreSQL at {make_url(PG_URL).render_as_string(hide_password=True)} unreachable: {first}"
    return None


def _pg_schema_url() -> Iterator[str]:
    reason = _pg_unreachable_reason()
    if reason:
        pytest.skip(reason)
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(PG_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """An empty database: a SQLite file under tmp_path, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state' / 'tradingd-test.db'}"
    else:
        yield from _pg_schema_url()


@pytest.fixture
def open_store(store_url: str) -> Iterator[Callable[[], Store]]:
    """Opens stores on the test's database (several may be opened: a restart is a new Store); closes leftovers."""
    opened: list[Store] = []

    def opener() -> Store:
        store = Store(PROFILE, store_url)
        opened.append(store)
        return store

    yield opener
    for store in opened:
        store._engine.dispose()  # the test closes what it awaits; this only releases connections


@pytest.fixture
async def store(open_store: Callable[[], Store]) -> AsyncIterator[Store]:
    """A migrated, open store."""
    s = open_store()
    await s.upgrade()
    yield s
    await s.close()


@pytest.fixture
async def rig(tmp_path) -> AsyncIterator[Rig]:  # type: ignore[no-untyped-def]
    """The 0dte profile on SPY's bundled bars, started at midnight of DAY1 (a module may define its own)."""
    started = Rig(tmp_path, "0dte", ["SPY"])
    await started.start()
    yield started
    await started.close()
