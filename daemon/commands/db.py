"""`tradingd db upgrade [--profile P] [--url URL] [--json]`: apply the Alembic migrations.

Without --url or --profile: the profile in $TRADINGD_PROFILE, else every built-in profile's
store (a fresh install runs the bare command once and both profiles are ready)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from daemon.cli import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    db = sub.add_parser("db", help="database commands")
    db_sub = db.add_subparsers(dest="db_command", metavar="SUBCOMMAND", parser_class=type(db))
    up = db_sub.add_parser("upgrade", help="migrate the state database to the newest schema")
    up.add_argument("--profile", help="profile whose database to migrate (its [daemon.store] url or state_dir; "
                                      "default: $TRADINGD_PROFILE, else every built-in profile)")
    up.add_argument("--url", help="database URL (sqlite:///path or postgresql+psycopg://...); overrides the profile's")
    up.add_argument("--json", action="store_true", help="print JSON")
    up.set_defaults(func=run_upgrade)


def store_url(profile: str | None, url: str | None) -> str:
    """The URL `db upgrade` works on: --url, else the profile's configured or default database."""
    from daemon.store.database import default_url

    if url:
        return url
    if not profile:
        raise UsageError("give --profile or --url", "usage")
    from config.loader import load_settings

    settings = load_settings(profile)
    return settings.daemon.store.url or default_url(settings.daemon.state_dir, settings.profile.name)


def default_urls(profile: str | None, url: str | None) -> list[str]:
    """The stores a bare `db upgrade` migrates: the named one, else $TRADINGD_PROFILE's, else every
    built-in profile's (deduplicated: two profiles may share one database URL)."""
    import os

    from config.loader import available_profiles

    if url or profile or os.environ.get("TRADINGD_PROFILE"):
        return [store_url(profile or os.environ.get("TRADINGD_PROFILE"), url)]
    return list(dict.fromkeys(store_url(name, None) for name in available_profiles()))


def run_upgrade(args: argparse.Namespace) -> int:
    urls = default_urls(args.profile, args.url)
    results = [_upgrade_one(url, args.json) for url in urls]
    if args.json:
        print(json.dumps(results[0] if len(results) == 1 else results))
    return 0


def _upgrade_one(url: str, as_json: bool) -> dict[str, object]:
    from daemon.store.errors import StoreError
    from daemon.store.migrate import current_revision, upgrade

    shown = _redacted(url)
    _refuse_missing_directory(url, shown)
    try:
        before = current_revision(url)
        after = upgrade(url)
    except StoreError as exc:
        raise UsageError(str(exc), exc.code) from None
    except SQLAlchemyError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"cannot migrate {shown}: {first_line}", "store_unavailable") from None
    if not as_json and before == after:
        print(f"{shown}: already at revision {after}")
    elif not as_json:
        print(f"{shown}: migrated from {before or 'empty'} to revision {after}")
    return {"url": shown, "from_revision": before, "revision": after, "changed": before != after}


def _refuse_missing_directory(url: str, shown: str) -> None:
    """A SQLite file named by URL lives in a folder that must already exist: a typo in --url must not
    quietly create a new folder and an empty database there (the profile's default state dir is made
    by `default_url`, before this check)."""
    try:
        parsed = make_url(url)
    except Exception:  # an unparsable URL is reported by the store itself
        return
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return
    folder = Path(parsed.database).expanduser().parent
    if not folder.is_dir():
        raise UsageError(f"cannot migrate {shown}: the folder {folder} does not exist", "store_dir_missing")


def _redacted(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is reported by the store itself
        return url
