"""A start on a store already at the head migrates nothing and does not import Alembic (start-up time,
issue 8); any other store still goes through Alembic."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from daemon.store.migrate import _stored_revision, head_from_files, head_revision, upgrade

REPO = Path(__file__).resolve().parents[2]


def test_the_head_read_from_the_files_is_alembics() -> None:
    assert head_from_files() == head_revision()


def _upgrade_in_a_fresh_process(url: str) -> tuple[str, bool]:
    code = ("import sys; from daemon.store.migrate import upgrade; r = upgrade(sys.argv[1]); "
            "print(r, 'alembic' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code, url], cwd=REPO, capture_output=True, text=True, check=True)
    reached, imported = done.stdout.split()
    return reached, imported == "True"


def test_a_store_at_the_head_is_left_alone_without_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    assert _upgrade_in_a_fresh_process(url) == (head_revision(), True)  # empty: Alembic migrates it
    assert _stored_revision(url) == head_revision()
    assert _upgrade_in_a_fresh_process(url) == (head_revision(), False)  # at the head: one SELECT


def test_a_store_behind_the_head_is_migrated(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "store.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    with sqlite3.connect(path) as db:  # a store whose stamp is not the head (an older daemon's, say)
        db.execute("UPDATE alembic_version SET version_num = 'base-of-something'")
    assert _stored_revision(url) == "base-of-something"
    try:
        upgrade(url)
    except Exception as exc:  # noqa: BLE001 - Alembic, not the shortcut, judged it
        assert "base-of-something" in str(exc)
    else:
        raise AssertionError("a store behind (or beside) the head must go through Alembic")


def test_no_table_no_revision(tmp_path: Path) -> None:
    assert _stored_revision(f"sqlite:///{tmp_path / 'empty.db'}") is None
