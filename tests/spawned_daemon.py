"""A tradingd process for the crash and restart tests: started, its JSON log lines read as they come,
SIGKILLed or stopped, and started again on the same database (tests/broker/test_ib_crash.py,
test_ib_combo_crash.py, test_live_restart.py, tests/daemon/test_live_restart_sim.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[1]
TOKEN = "crash-test-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    """One daemon process; its JSON log lines are collected as they come."""

    def __init__(self, proc: asyncio.subprocess.Process, api_port: int):
        self.proc = proc
        self.api_port = api_port
        self.lines: list[dict[str, Any]] = []
        self._new = asyncio.Event()
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            with contextlib.suppress(ValueError):
                self.lines.append(json.loads(raw))
                self._new.set()

    async def wait_line(self, match: Callable[[dict[str, Any]], bool], timeout: float = 30.0) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        seen = 0
        while True:
            for line in self.lines[seen:]:
                if match(line):
                    return line
            seen = len(self.lines)
            if self.proc.returncode is not None:
                raise AssertionError(f"the daemon exited ({self.proc.returncode}) before: {match}")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"no such log line within {timeout} s")
            self._new.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new.wait(), remaining)

    async def post_signal(self, raw: dict[str, Any]) -> dict[str, Any]:
        async with aiohttp.ClientSession() as http, http.post(
                f"http://127.0.0.1:{self.api_port}/v1/signals", json=raw,
                headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
            return await resp.json()

    async def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        await self.proc.wait()
        await self._reader

    async def terminate(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 30)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        with contextlib.suppress(Exception):
            await self._reader


@contextlib.asynccontextmanager
async def spawn(module: str, args: Sequence[str], tmp_path: Path, env: Mapping[str, str],
                log_to: Path | None = None) -> AsyncIterator[Daemon]:
    """`python -m module *args --api-port <free>` with the API tokens and a state dir under tmp_path; yielded
    once its API listens, stopped (SIGTERM) at the end. `log_to`: every line it said is appended there, for
    a failure's reader."""
    api_port = free_port()
    environ = {**os.environ, "PYTHONPATH": str(REPO), "TRADINGD_API_TOKEN": TOKEN,
               "TRADINGD_ADMIN_TOKEN": TOKEN + "-admin", "TRADINGD_DAEMON__STATE_DIR": str(tmp_path / "state"),
               **env}
    environ.pop("JOURNAL_STREAM", None)  # under systemd the child would log to the journal, not to our pipe
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, *args, "--api-port", str(api_port), cwd=REPO, env=environ,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    d = Daemon(proc, api_port)
    try:
        await d.wait_line(lambda line: line.get("event") == "api_listening", timeout=60)
        yield d
    finally:
        await d.terminate()
        if log_to is not None:
            with log_to.open("a") as log:
                log.writelines(f"{line}\n" for line in d.lines)


def tradingd_run(broker: str, db: str, *, debug: bool = True) -> list[str]:
    """`tradingd run`'s arguments for the 0dte profile with JSON logs (debug: the per-order "sending" line)."""
    return ["run", "--profile", "0dte", "--broker", broker, "--db", db, "--json-logs",
            "--log-level", "debug" if debug else "info"]


async def lines_after_start(run: contextlib.AbstractAsyncContextManager[Daemon],
                            settle_s: float) -> list[dict[str, Any]]:
    """Start the daemon again, wait for `engine_started` and `settle_s` more (stops re-priced, streams settled),
    stop it; its log lines."""
    async with run as again:
        await again.wait_line(lambda ln: ln.get("event") == "engine_started")
        await asyncio.sleep(settle_s)
        return again.lines


def directional(sid: str, confidence: float, created_at: str) -> dict[str, Any]:
    """A 0dte bullish SPY signal."""
    return {"id": sid, "profile": "0dte", "underlying": "SPY", "direction": "bullish", "strategy": "directional",
            "confidence": confidence, "created_at": created_at}
