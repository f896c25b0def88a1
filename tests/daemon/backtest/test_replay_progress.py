"""`tradingd replay`'s progress bar (events/s) is drawn on a terminal and nowhere else: the real
command in a real process, once under a pseudo-terminal and once with its output piped."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

import pytest

BAR = re.compile(r"\r0dte new \[[#.]{30}\] +\d+% [\d,]+ events [\d,]+ events/s")
ARGS = ["-m", "daemon.cli", "replay", "--profile", "0dte", "--from", "2019-02-13", "--to", "2019-02-13",
        "--sizing", "new"]


def _env() -> dict[str, str]:
    root = Path(__file__).resolve().parents[3]
    return {**os.environ, "PYTHONPATH": str(root), "COLUMNS": "120"}


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_a_terminal_shows_the_progress_bar_with_events_per_second(tmp_path: Path) -> None:
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, *ARGS, "--report", str(tmp_path / "rep")], stdin=slave, stdout=slave,
                            stderr=slave, env=_env(), close_fds=True)
    os.close(slave)
    out = b""
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 300)
            if not ready:
                break
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
    finally:
        code = proc.wait(timeout=300)
        os.close(master)
    text = out.decode("utf-8", "replace")
    assert code == 0, text[-2000:]
    bars = BAR.findall(text)
    assert bars, text[-2000:]
    assert re.search(r"\r0dte new \[#{30}\] 100% ", text), "the bar ends full"
    assert re.search(r"replay 0dte new: [\d,]+ events in [\d.]+ s = [\d,]+ events/s", text)  # the closing line


def test_no_bar_when_the_output_is_not_a_terminal(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, *ARGS, "--report", str(tmp_path / "rep")], capture_output=True,
                          text=True, env=_env(), timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "\r" not in done.stderr and "\r" not in done.stdout
    assert not BAR.search(done.stderr) and "[##" not in done.stderr
    # the end still says how fast it went
    assert re.search(r"replay 0dte new: [\d,]+ events in [\d.]+ s = [\d,]+ events/s", done.stderr)
