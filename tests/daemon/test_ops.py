"""`tradingd status|positions|halt|resume|flatten|ack` against a running API on a real socket."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import structlog

from config.loader import load_settings
from daemon.api import start_api
from daemon.cli import main
from daemon.metrics import Metrics
from tests.daemon.fake_control import POSITION, FakeControl


@dataclass
class Daemon:
    control: FakeControl
    url: str
    state_dir: Path


@pytest.fixture
async def daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Daemon]:
    """A daemon with generated tokens in its state dir and port 0, found by the CLI through the state dir."""
    for name in ("TRADINGD_API_TOKEN", "TRADINGD_ADMIN_TOKEN", "TRADINGD_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TRADINGD_DAEMON__STATE_DIR", str(tmp_path))
    monkeypatch.setenv("TRADINGD_DAEMON__API__PORT", "0")
    settings = load_settings("0dte")
    control = FakeControl()
    with structlog.testing.capture_logs():  # the server's log lines must not mix with the CLI's stdout
        runner, port = await start_api(control, settings, Metrics("0dte"))
        yield Daemon(control, f"http://127.0.0.1:{port}", tmp_path)
        await runner.cleanup()


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, list(argv))  # the CLI blocks; the server runs on this loop
    out, err = capsys.readouterr()
    return code, out, err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_status_human_and_json(daemon: Daemon, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = await cli(capsys, "status")
    assert (code, err) == (0, "")
    rows = out.splitlines()
    assert rows[0].split() == ["profile", "0dte"]
    assert rows[1].split() == ["trading_state", "ACTIVE"]
    assert ["broker_connected", "yes"] in [r.split() for r in rows]
    assert ["last_checkpoint", "2019-02-11T10:05:00-05:00"] in [r.split() for r in rows]
    assert len({r.index(r.split()[1]) for r in rows}) == 1  # values in one column
    code, out, _ = await cli(capsys, "status", "--json")
    assert code == 0 and json.loads(out)["session_pnl"] == "-1250.50"


async def test_positions_human_and_json(daemon: Daemon, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = await cli(capsys, "positions")
    assert (code, out) == (0, "no open positions\n")
    daemon.control.open_positions = [POSITION, {**POSITION, "position_id": "p-22", "underlying": "QQQ"}]
    code, out, _ = await cli(capsys, "positions", "--profile", "0dte")
    header, first, second, total = out.splitlines()
    assert header.split()[:3] == ["position_id", "underlying", "right"]
    assert first.split()[:3] == ["p-1", "SPY", "C"] and second.split()[:2] == ["p-22", "QQQ"]
    assert header.index("underlying") == first.index("SPY") == second.index("QQQ")  # aligned columns
    assert total == "2 open positions"
    code, out, _ = await cli(capsys, "positions", "--json")
    assert json.loads(out)["count"] == 2


async def test_halt_flatten_resume_ack(daemon: Daemon, capsys: pytest.CaptureFixture[str]) -> None:
    daemon.control.open_positions = [POSITION]
    daemon.control.blocked = {"SPY"}
    code, out, _ = await cli(capsys, "halt", "--reason", "fed minutes")
    assert code == 0 and out.startswith("halt: ok (") and "trading_state=HALTED" in out
    code, out, _ = await cli(capsys, "flatten", "--reason", "end of day", "--json")
    assert code == 0 and json.loads(out) == {"ok": True, "closing_positions": 1, "trading_state": "HALTED"}
    code, out, _ = await cli(capsys, "resume")
    assert (code, out) == (0, "resume: ok (trading_state=ACTIVE)\n")
    code, out, _ = await cli(capsys, "ack", "spy")
    assert code == 0 and out.startswith("acknowledge: ok (underlying=SPY")
    kinds = [call[0] for call in daemon.control.calls]
    assert kinds == ["halt", "flatten", "resume", "acknowledge"]
    assert daemon.control.calls[0][1] == "fed minutes"
    assert all(call[-1].startswith("api:cli:") for call in daemon.control.calls)


async def test_engine_refusal_is_one_line_exit_2(daemon: Daemon, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = await cli(capsys, "ack", "QQQ")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "refused (409 not_blocked)" in err
    code, out, _ = await cli(capsys, "resume", "--json")
    assert code == 2 and json.loads(out)["code"] == "not_halted"


async def test_admin_commands_need_the_admin_token(daemon: Daemon, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    api_token = (daemon.state_dir / "api-token").read_text().strip()
    monkeypatch.setenv("TRADINGD_ADMIN_TOKEN", api_token)  # the wrong one for admin routes
    code, _, err = await cli(capsys, "halt", "--reason", "x")
    assert code == 2 and "403 admin_required" in err
    monkeypatch.setenv("TRADINGD_API_TOKEN", "stale")
    code, _, err = await cli(capsys, "status")
    assert code == 2 and "401 invalid_token" in err
    assert daemon.control.calls == []


async def test_no_token_anywhere_says_so(daemon: Daemon, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRADINGD_DAEMON__STATE_DIR", str(tmp_path / "elsewhere"))
    code, out, err = await cli(capsys, "status", "--url", daemon.url, "--json")
    assert code == 2 and json.loads(out)["code"] == "token_missing"
    assert "TRADINGD_API_TOKEN" in err


async def test_url_override(daemon: Daemon, capsys: pytest.CaptureFixture[str],
                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADINGD_DAEMON__API__PORT", str(free_port()))  # the config points nowhere
    code, out, _ = await cli(capsys, "status", "--url", daemon.url + "/")
    assert code == 0 and "ACTIVE" in out


async def test_daemon_not_running(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                  tmp_path: Path) -> None:
    monkeypatch.setenv("TRADINGD_DAEMON__STATE_DIR", str(tmp_path))
    monkeypatch.setenv("TRADINGD_API_TOKEN", "t")
    port = free_port()
    code, out, err = await cli(capsys, "status", "--url", f"http://127.0.0.1:{port}")
    assert (code, out) == (2, "")
    assert err == f"tradingd: error: daemon not running: no answer at http://127.0.0.1:{port} (connection refused)\n"
    code, out, err = await cli(capsys, "halt", "--reason", "x", "--json", "--url", f"http://127.0.0.1:{port}")
    assert code == 2 and json.loads(out)["code"] == "daemon_not_running" and err.count("\n") == 1


async def test_port_zero_without_a_running_daemon(capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRADINGD_DAEMON__STATE_DIR", str(tmp_path))
    monkeypatch.setenv("TRADINGD_DAEMON__API__PORT", "0")
    code, _, err = await cli(capsys, "positions")
    assert code == 2 and "daemon not running" in err and "api-url-0dte" in err


async def test_something_else_on_the_port(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from aiohttp import web

    async def hello(_: web.Request) -> web.Response:
        return web.Response(text="<html>hi</html>")

    app = web.Application()
    app.router.add_get("/v1/status", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    monkeypatch.setenv("TRADINGD_API_TOKEN", "t")
    try:
        code, _, err = await cli(capsys, "status", "--url", f"http://127.0.0.1:{port}")
    finally:
        await runner.cleanup()
    assert code == 2 and "not JSON" in err


async def test_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = await cli(capsys, "halt")
    assert code == 2 and "--reason" in err
    code, _, err = await cli(capsys, "ack")
    assert code == 2 and "underlying" in err
