"""The session table cached between processes (room tick: importing pandas and building XNYS was ~0.6 s CPU
of every start): a second process reads the same sessions without importing exchange_calendars; the file is
named by the library's version and the years, so another version or range builds afresh; a torn or foreign
file is rebuilt; `TRADINGD_CALENDAR_CACHE=""` turns it off."""

from __future__ import annotations

import os
import subprocess
import sys
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
    [cached] = tmp_path.glob("XNYS-1990-*-ec*.pickle")
    assert _probe(str(tmp_path)) == "13 True False"  # the same half day, the library never imported
    cached.write_bytes(b"torn")
    assert _probe(str(tmp_path)) == "13 True True"  # unreadable: built again
    assert _probe("") == "13 True True" and len(list(tmp_path.glob("*.pickle"))) == 1


def test_the_cached_table_equals_the_library_s(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADINGD_CALENDAR_CACHE", str(tmp_path))
    last = date.today().year + calendar.YEARS_AHEAD
    built = calendar._build(last)  # from the library (nothing cached in tmp_path), then saved
    path = calendar._cache_path(last)
    assert path is not None and path.exists() and path.parent == tmp_path
    assert calendar._build(last) == built == calendar._from_library(last)
