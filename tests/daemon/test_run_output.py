"""`tradingd run`'s streams (issue 13): logs are JSON whenever stdout is not a terminal, `--json`
keeps stdout for the summary alone (logs on stderr), and SIGTERM during a replay ends with a
stop line and the partial summary instead of silence."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from daemon.logging import configure_logging

REPO = Path(__file__).resolve().parents[2]
TRADINGD = Path(sys.executable).parent / "tradingd"
REPLAY = ["run", "--profile", "0dte", "--broker", "sim", "--replay", "bundled", "--signals", "reference",
          "--api-port", "0"]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "TRADINGD_DAEMON__STATE_DIR": str(tmp_path)}
    env.pop("JOURNAL_STREAM", None)
    return env


def _start(tmp_path: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([str(TRADINGD), *REPLAY, *extra], cwd=REPO, env=_env(tmp_path), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for(path: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.1)


def _stop_after_start(proc: subprocess.Popen[str], tmp_path: Path) -> tuple[str, str]:
    """SIGTERM once the API is up (the replay is then running at 30 × real time: minutes to go)."""
    try:
        _wait_for(tmp_path / "api-url-0dte", 60)
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err[-2000:]
    return out, err


@pytest.mark.timeout(150)
def test_sigterm_in_a_replay_prints_a_stop_line_and_the_partial_summary_all_json(tmp_path: Path) -> None:
    out, _ = _stop_after_start(_start(tmp_path, "--speed", "30"), tmp_path)
    lines = [json.loads(line) for line in out.splitlines()]  # stdout is a pipe: every line is JSON
    events = [line.get("event") for line in lines]
    assert "api_listening" in events and "replay_stopped" in events
    stopped = lines[events.index("replay_stopped")]
    assert stopped["signal"] == "SIGTERM" and stopped["at"].startswith("2019-02-11")
    summary = lines[events.index("replay_summary")]
    assert summary["complete"] is False and summary["profile"] == "0dte"
    assert events.index("replay_stopped") < events.index("replay_summary") < events.index("database")


@pytest.mark.timeout(150)
def test_json_summary_alone_on_stdout_logs_on_stderr(tmp_path: Path) -> None:
    out, err = _stop_after_start(_start(tmp_path, "--speed", "30", "--json"), tmp_path)
    summary = json.loads(out)  # the whole of stdout is one JSON document
    assert summary["profile"] == "0dte" and summary["complete"] is False and "days" in summary
    assert "api_listening" in err and "replay stopped by SIGTERM" in err


def test_logs_are_json_on_a_pipe_and_apscheduler_is_quiet_at_info(tmp_path: Path) -> None:
    log_file = (tmp_path / "log.txt").open("w")
    try:
        assert configure_logging(None, stream=log_file, env={}) is True  # a file is not a terminal
        logging.getLogger("apscheduler.executors.default").info("Running job checkpoint")
        logging.getLogger("apscheduler.scheduler").warning("Run time of job was missed")
        logging.getLogger("tradingd.test").info("kept")
    finally:
        log_file.close()
        configure_logging(False, stream=sys.stderr)
    lines = [json.loads(line) for line in (tmp_path / "log.txt").read_text().splitlines()]
    assert [line["event"] for line in lines] == ["Run time of job was missed", "kept"]
