"""Engines: the default per-profile SQLite file, its pragmas, and URLs the store refuses."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from config import load_settings
from daemon.store import Store, StoreError, default_url
from daemon.store.database import make_engine


def test_default_url_is_an_absolute_per_profile_file_in_a_created_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = default_url("var/state", "7dte")
    assert url == f"sqlite:///{tmp_path / 'var' / 'state' / 'tradingd-7dte.db'}"
    assert (tmp_path / "var" / "state").is_dir()


def test_sqlite_connections_use_wal_busy_timeout_and_normal_sync(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}", busy_timeout_ms=1234)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 1234
            assert connection.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    finally:
        engine.dispose()


def test_postgresql_url_without_driver_uses_psycopg():
    engine = make_engine("postgresql://postgres@127.0.0.1:5432/test")
    assert engine.dialect.driver == "psycopg"
    engine.dispose()


@pytest.mark.parametrize("url", ["mysql://x@localhost/db", "not a url", "oracle://x"])
def test_unsupported_urls_are_refused_with_a_reason(url):
    with pytest.raises(StoreError) as err:
        make_engine(url)
    assert err.value.code == "bad_store_url"


def test_store_from_settings_uses_the_profiles_state_dir(tmp_path):
    settings = load_settings("0dte", env={}, overrides={"daemon.state_dir": str(tmp_path / "s")})
    store = Store.from_settings(settings)
    assert store.profile == "0dte" and store.url.endswith("/s/tradingd-0dte.db")
    store._engine.dispose()


def test_a_store_needs_a_profile():
    with pytest.raises(StoreError) as err:
        Store("", "sqlite://")
    assert err.value.code == "bad_profile"
