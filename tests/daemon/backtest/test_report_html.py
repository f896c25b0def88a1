"""The report's HTML renders in headless chromium with no console errors, and a screenshot is taken.

`.ci/run` installs chromium where it is missing, so CI always runs this; elsewhere it is skipped
with a clear message when no chromium is on PATH."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import date
from pathlib import Path

import pytest

from daemon.backtest import load_dataset, run_replay
from daemon.backtest.report import write_report
from daemon.backtest.run import replay_settings

CONSOLE = re.compile(r":CONSOLE[:(]")


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no chromium on PATH: the report's headless-browser check is skipped (.ci/run installs it)")


def _render(page: Path, shot: Path, profile_dir: Path) -> str:
    """Load `page` headless, screenshot it; returns chromium's log (console messages included)."""
    done = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           f"--user-data-dir={profile_dir}", "--enable-logging=stderr", "--v=0",
                           f"--screenshot={shot}", "--window-size=1280,2400", page.as_uri()],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stderr


def test_the_check_sees_a_console_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><script>console.error('x'); missing();</script></body></html>")
    log = _render(bad, tmp_path / "bad.png", tmp_path / "profile")
    assert CONSOLE.search(log), "a page with console errors must be caught"


def test_report_html_renders_without_console_errors(tmp_path: Path) -> None:
    data = load_dataset("bundled")
    window = (date(2019, 2, 11), date(2019, 2, 12))
    result = run_replay(replay_settings("0dte", data), data, "reference", window)
    write_report([result], tmp_path / "report")
    shot = tmp_path / "report.png"
    log = _render(tmp_path / "report" / "report.html", shot, tmp_path / "profile")
    console = [line for line in log.splitlines() if CONSOLE.search(line)]
    assert not console, console
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
