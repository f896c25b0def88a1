"""Alembic, configured in code: works from an installed package and any working directory."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from daemon.store.database import make_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# Alembic narrates every step at INFO ("Context impl SQLiteImpl."); the daemon logs the revision it reached.
logging.getLogger("alembic").setLevel(logging.WARNING)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Alembic's ini syntax interpolates %; a password containing one must survive.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None, "daemon/migrations/versions holds no revision"
    return head


def current_revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def upgrade(url: str, revision: str = "head") -> str:
    """Migrate the database at `url` to `revision` (from empty or any older one); returns the revision reached."""
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
