"""Alembic migrations: from empty on both databases, and the migrated schema equals the models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, Table, inspect

from daemon.cli import main
from daemon.store.database import make_engine
from daemon.store.migrate import current_revision, head_revision, upgrade
from daemon.store.models import Base

TABLES = {
    "signals", "decisions", "order_intents", "orders", "fills", "positions", "exit_states", "exit_events",
    "breaker_events", "trading_state", "operator_actions", "checkpoints", "blocked_underlyings", "meta",
}


def _diff(url: str, metadata: MetaData) -> list:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return compare_metadata(context, metadata)
    finally:
        engine.dispose()


def test_upgrade_from_empty_creates_every_table_at_head(store_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the Alembic config is built in code, not found in the working directory
    assert current_revision(store_url) is None
    assert upgrade(store_url) == head_revision()
    engine = make_engine(store_url)
    try:
        assert TABLES <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert upgrade(store_url) == head_revision()  # a second run is a no-op


def test_migrated_schema_matches_the_models(store_url):
    upgrade(store_url)
    assert _diff(store_url, Base.metadata) == []


def test_schema_comparison_would_see_a_difference(store_url):
    upgrade(store_url)
    changed = MetaData()
    for table in Base.metadata.sorted_tables:
        table.to_metadata(changed)
    Table("not_migrated", changed, Column("id", Integer, primary_key=True))
    diffs = _diff(store_url, changed)
    assert [d[0] for d in diffs] == ["add_table"] and diffs[0][1].name == "not_migrated"


def test_db_upgrade_command_reports_revision_as_json(store_url, capsys):
    if store_url.startswith("sqlite:///"):  # db upgrade --url makes no folders (Part 8)
        Path(store_url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    assert main(["db", "upgrade", "--url", store_url, "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["revision"] == head_revision() and first["from_revision"] is None and first["changed"]
    assert main(["db", "upgrade", "--url", store_url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["changed"] is False


def test_db_upgrade_with_profile_uses_its_state_dir(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TRADINGD_DAEMON__STATE_DIR", str(tmp_path / "state"))
    assert main(["db", "upgrade", "--profile", "7dte", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["url"].endswith("tradingd-7dte.db")
    assert (tmp_path / "state" / "tradingd-7dte.db").exists()


def test_bare_db_upgrade_migrates_every_profiles_store(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("TRADINGD_PROFILE", raising=False)
    monkeypatch.setenv("TRADINGD_DAEMON__STATE_DIR", str(tmp_path))
    assert main(["db", "upgrade", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert sorted(Path(r["url"]).name for r in out) == ["tradingd-0dte.db", "tradingd-7dte.db"]
    assert all(r["revision"] == head_revision() for r in out)
    monkeypatch.setenv("TRADINGD_PROFILE", "7dte")
    assert main(["db", "upgrade"]) == 0
    assert capsys.readouterr().out.strip().endswith(f"tradingd-7dte.db: already at revision {head_revision()}")


@pytest.mark.parametrize("argv, code", [
    (["db", "upgrade", "--url", "mysql://nobody@localhost/x", "--json"], "bad_store_url"),
    (["db", "upgrade", "--url", "postgresql+psycopg://nobody@127.0.0.1:1/x", "--json"], "store_unavailable"),
])
def test_db_upgrade_bad_input_is_one_line_exit_2(argv, code, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out)["code"] == code
    assert len(captured.err.strip().splitlines()) == 1


def test_db_upgrade_refuses_a_missing_directory(tmp_path, capsys):
    """Part 8: a typo in --url must not quietly create a folder and an empty database."""
    missing = tmp_path / "nonexistent" / "dir"
    assert main(["db", "upgrade", "--url", f"sqlite:///{missing}/x.db", "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["code"] == "store_dir_missing"
    assert not missing.exists() and not missing.parent.exists()


def test_a_migration_stopped_half_way_leaves_nothing_behind_on_sqlite(tmp_path, monkeypatch) -> None:
    """A process killed in the middle of `upgrade` (the crash harness found it: the next start failed on
    `table ... already exists`) must leave no table behind: the whole upgrade is one transaction."""
    import sqlite3

    from alembic import op

    from daemon.store import migrate

    url = f"sqlite:///{tmp_path / 'half.db'}"
    real = op.create_table
    made: list[str] = []

    def create_then_die(name, *args, **kwargs):  # type: ignore[no-untyped-def]
        if len(made) == 3:
            raise KeyboardInterrupt("killed half-way through the migration")
        made.append(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(op, "create_table", create_then_die)
    with pytest.raises(KeyboardInterrupt):
        migrate.upgrade(url)
    monkeypatch.setattr(op, "create_table", real)
    with sqlite3.connect(tmp_path / "half.db") as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert not (tables & set(made)), tables  # the three tables made before the "kill" were rolled back
    migrate.upgrade(url)  # and the next start migrates cleanly
    assert migrate.current_revision(url) == migrate.head_revision()
