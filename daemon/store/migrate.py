"""Alembic, configured in code: works from an installed package and any working directory.

Alembic (with Mako and Pygments behind it) is imported only when a migration runs: a start on a
store already at the head finds that with one SELECT (`upgrade`), which is most of a daemon's
starts and ~0.5 s of its start-up otherwise.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

from daemon.store.database import make_engine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# Alembic narrates every step at INFO ("Context impl SQLiteImpl."); the daemon logs the revision it reached.
logging.getLogger("alembic").setLevel(logging.WARNING)


_REVISION = re.compile(r"""^revision(?:\s*:[^=\n]+)?\s*=\s*['"]([^'"]+)['"]\s*$""", re.M)
_DOWN = re.compile(r"""^down_revision(?:\s*:[^=\n]+)?\s*=\s*(?:None|['"]([^'"]+)['"])\s*$""", re.M)


def head_from_files() -> str | None:
    """The head revision read from the migration files themselves (one `revision = '...'` and one
    `down_revision = '...' | None` each, one head); None when any file is not that plain (a merge
    revision, a computed id): then only Alembic may say."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        found, down = _REVISION.findall(text), _DOWN.findall(text)
        if len(found) != 1 or len(down) != 1:
            return None
        revisions.add(found[0])
        if down[0]:
            parents.add(down[0])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 and parents <= revisions else None


def _stored_revision(url: str) -> str | None:
    """The revision recorded in the database (one row of alembic_version), or None (no table, or not one row)."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except DBAPIError:
        return None
    finally:
        engine.dispose()
    return rows[0] if len(rows) == 1 else None


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Alembic's ini syntax interpolates %; a password containing one must survive.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None, "daemon/migrations/versions holds no revision"
    return head


def current_revision(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def upgrade(url: str, revision: str = "head") -> str:
    """Migrate the database at `url` to `revision` (from empty or any older one); returns the revision reached."""
    if revision == "head":
        head = head_from_files()
        if head is not None and _stored_revision(url) == head:
            return head  # nothing to migrate: Alembic is not even imported
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            config = alembic_config(url)
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
        with engine.connect() as connection:
            reached = MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
    return reached or ""
