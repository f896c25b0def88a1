"""Golden files of record lines (one JSON line per decision or evaluation, gzipped): read, compare,
write. Shared by the golden tests that prove a speed change kept every result."""

from __future__ import annotations

import gzip
import sys
from collections.abc import Callable
from pathlib import Path


def read_lines(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return f.read().splitlines()


def assert_same_lines(golden: list[str], now: list[str]) -> None:
    """Line by line, so a failure shows the first record that moved."""
    assert len(now) == len(golden)
    for expected, got in zip(golden, now):
        assert got == expected


def write_main(path: Path, records: Callable[[], list[str]], module: str) -> None:
    """The `--write` command line of a golden test: regenerate only for an intended rule change."""
    if "--write" not in sys.argv:
        sys.exit(f"usage: python -m {module} --write")
    with gzip.GzipFile(path, "wb", mtime=0) as f:  # mtime 0: the same records give the same bytes
        f.write(("\n".join(records()) + "\n").encode())
