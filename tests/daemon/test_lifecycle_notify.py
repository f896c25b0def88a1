"""`tradingd run` under systemd (Type=notify, WatchdogSec): a live run of the app (sim broker, live clock)
talks to a real AF_UNIX datagram socket given as NOTIFY_SOCKET: READY=1 after the start-up
reconciliation, STATUS= on every trading-state change, WATCHDOG=1 while healthy, STOPPING=1."""

from __future__ import annotations

import asyncio
import io
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.app import App, RunOptions


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.setenv("WATCHDOG_USEC", "100000")  # pings every 0.05 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    monkeypatch.setenv("TRADINGD_DAEMON__STATE_DIR", str(tmp_path / "state"))
    yield sock
    sock.close()


async def _next(sock: socket.socket, want: str, seen: list[str], timeout: float = 20.0) -> str:
    """The next datagram starting with `want` (every datagram is kept in `seen`)."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(timeout):
        while True:
            message = (await loop.sock_recv(sock, 4096)).decode()
            seen.append(message)
            if message.startswith(want):
                return message


async def test_a_live_run_notifies_systemd_ready_status_watchdog_and_stopping(notify_socket, tmp_path):
    out = io.StringIO()
    db = tmp_path / "notify.db"
    app = App(RunOptions(profile="0dte", broker="sim", db=f"sqlite:///{db}", api=False, json_logs=True), out=out)
    run = asyncio.ensure_future(app.run())
    seen: list[str] = []
    try:
        ready = await _next(notify_socket, "READY=1", seen)
        assert app.engine is not None and app.engine.phase == "RUNNING"
        assert app.engine.last_reconcile is not None  # ready only once the start-up reconciliation ran
        assert "STATUS=ACTIVE" in ready
        await _next(notify_socket, "WATCHDOG=1", seen)
        await app.engine.halt("drill", "test")
        halted = await _next(notify_socket, "STATUS=HALTED", seen)
        assert "drill" in halted
        await _next(notify_socket, "WATCHDOG=1", seen)  # halted is not unhealthy: the loop still runs
        app.stop()
        await _next(notify_socket, "STOPPING=1", seen)
        assert await asyncio.wait_for(run, 30) == 0
    finally:
        if not run.done():
            app.stop()
            await asyncio.wait_for(run, 30)
    assert seen.index(next(m for m in seen if m.startswith("READY=1"))) < seen.index("STOPPING=1")
    # Where the state went, printed at the end (a JSON line: the logs are JSON, stdout holds nothing else).
    assert out.getvalue().splitlines()[-1] == json.dumps({"level": "info", "event": "database", "database": str(db)})


async def test_an_unhealthy_engine_withholds_the_watchdog_ping(notify_socket, tmp_path):
    app = App(RunOptions(profile="0dte", broker="sim", db=f"sqlite:///{tmp_path / 'w.db'}", api=False,
                         json_logs=True), out=io.StringIO())
    run = asyncio.ensure_future(app.run())
    seen: list[str] = []
    try:
        await _next(notify_socket, "WATCHDOG=1", seen)
        assert app.engine is not None and app.engine._worker is not None
        app.engine._worker.cancel()  # the engine's worker died: the watchdog must stop vouching for it
        await asyncio.sleep(0.1)
        assert not app.engine.healthy()
        _drain(notify_socket)  # pings sent before it noticed
        await asyncio.sleep(0.3)  # six intervals
        assert "WATCHDOG=1" not in _drain(notify_socket)
    finally:
        app.stop()
        await asyncio.wait_for(run, 30)


def _drain(sock: socket.socket) -> list[str]:
    got = []
    while True:
        try:
            got.append(sock.recv(4096).decode())
        except BlockingIOError:
            return got
