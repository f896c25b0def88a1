"""Dump every table of a SQLite store, row by row in primary-key order, and a digest of the dump: the
"same rows" proof for a change on the store's write path (two stores the stream bench wrote with
`bench/bench_stream_replay.py PROFILE --json --db=FILE`, one per tree, must dump identically).

Usage: python bench/dump_store.py FILE [--out=DUMP]  -> prints {"digest", "tables": {name: rows}}; with --out
the dump itself (one line per table header and per row, `repr` of each value as SQLite returns it) goes to DUMP
for a diff. Nothing is excluded: the store holds no wall-clock time (the replay's records carry virtual
time; `meta` holds the run id and the record count), and two runs of the same tree dump identically.
Values are compared as SQLite stores them (Money as integer 1/10,000ths, times as UTC text, JSON as text),
so a change in a column's encoding shows even where the ORM would read the same value back.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import sys
from pathlib import Path


def tables(db: sqlite3.Connection) -> list[str]:
    return [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]


def order_by(db: sqlite3.Connection, table: str) -> str:
    """The primary key's columns in key order; every column when the table has none."""
    info = db.execute(f'PRAGMA table_info("{table}")').fetchall()  # cid, name, type, notnull, default, pk
    keyed = sorted((r[5], r[1]) for r in info if r[5])
    columns = [name for _, name in keyed] or [r[1] for r in info]
    return ", ".join(f'"{c}"' for c in columns)


def dump(path: Path) -> tuple[list[str], dict[str, int]]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        lines: list[str] = []
        counts: dict[str, int] = {}
        for table in tables(db):
            cursor = db.execute(f'SELECT * FROM "{table}" ORDER BY {order_by(db, table)}')
            lines.append(f"## {table} {[d[0] for d in cursor.description]}")
            rows = cursor.fetchall()
            counts[table] = len(rows)
            lines.extend(repr(row) for row in rows)
        return lines, counts
    finally:
        db.close()


def main(argv: list[str]) -> int:
    paths = [a for a in argv if not a.startswith("--")]
    if len(paths) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    lines, counts = dump(Path(paths[0]))
    for arg in argv:
        if arg.startswith("--out="):
            Path(arg.split("=", 1)[1]).write_text("\n".join(lines) + "\n")
    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]
    print(json.dumps({"digest": digest, "rows": sum(counts.values()), "tables": counts}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
