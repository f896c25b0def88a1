"""The session table cached between processes (room tick: importing pandas and building XNYS was ~0.6 s CPU
of every start): a second process reads the same sessions without importing exchange_calendars; the file is
named by the library's version and the years, so another version or range builds afresh; a torn or foreign
file, or one whose numbers fail a check, is rebuilt, never read as a wrong calendar; `TRADINGD_CALENDAR_CACHE=""`
turns it off."""

from __future__ import annotations

import os
import subprocess
import sys
import json
from datetime import date
from pathlib import Path

import pytest

from market import calendar

REPO = Path(__file__).resolve().parents[2]
PROBE = ("import sys; from datetime import date; from market import calendar; "
         "s = calendar.session_for(date(2024, 7, 3)); "
         "print(s.close.hour, s.early_close, 'exchange_calendars' in sys.modules)")


def _probe(cache: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TRADINGD_CALENDAR_CACHE": cache}
    return subprocess.run([sys.executable, "-c", PROBE], env=env, cwd=REPO, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_a_second_process_reads_the_cached_table_without_the_library(tmp_path: Path) -> None:
    assert _probe(str(tmp_path)) == "13 True True"  # built from exchange_calendars, written
    [cached] = tmp_path.glob("XNYS-1990-*-ec*.json")
    assert _probe(str(tmp_path)) == "13 True False"  # the same half day, the library never imported
    cached.write_bytes(b"torn")
    assert _probe(str(tmp_path)) == "13 True True"  # unreadable: built again
    assert _probe("") == "13 True True" and len(list(tmp_path.glob("*.json"))) == 1


def test_the_cached_table_equals_the_library_s(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADINGD_CALENDAR_CACHE", str(tmp_path))
    last = date.today().year + calendar.YEARS_AHEAD
    built = calendar._build(last)  # from the library (nothing cached in tmp_path), then saved
    path = calendar._cache_path(last)
    assert path is not None and path.exists() and path.parent == tmp_path
    assert calendar._build(last) == built == calendar._from_library(last)


@pytest.mark.parametrize("spoil", [
    lambda t: {**t, "format": "tradingd-xnys-sessions/0"},  # another format
    lambda t: {**t, "sessions": [["day", "open", "close", "early_close"]] + t["sessions"][1:]},  # not numbers
    lambda t: {**t, "sessions": [[r[0], r[2], r[1], r[3]] for r in t["sessions"]]},  # close before open
    lambda t: {**t, "sessions": t["sessions"][::-1]},  # out of order
    lambda t: {**t, "sessions": [[r[0], r[1], r[2], int(r[3])] for r in t["sessions"]]},  # half day not a bool
    lambda t: {**t, "last": t["last"] - 365},  # other years
    lambda t: [t],  # not a table
])
def test_a_cached_table_that_fails_a_check_is_rebuilt_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               spoil) -> None:
    """Session 7: a file another build wrote was read back as sessions of strings (`open='open'`), which
    failed far away in the scheduler. Now every number is checked, and a table that fails is rebuilt."""
    monkeypatch.setenv("TRADINGD_CALENDAR_CACHE", str(tmp_path))
    last = date.today().year + calendar.YEARS_AHEAD
    built = calendar._build(last)
    path = calendar._cache_path(last)
    assert path is not None
    path.write_text(json.dumps(spoil(json.loads(path.read_text()))))
    with pytest.raises(Exception):  # noqa: B017,PT011 - each spoilt table fails one of _decode's checks
        calendar._decode(json.loads(path.read_text()), last)
    assert calendar._build(last) == built  # rebuilt from the library ...
    assert calendar._decode(json.loads(path.read_text()), last) == built  # ... and written again, whole
