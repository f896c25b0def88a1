"""The CLI finds its daemon through the state dir (issue 13): a daemon started with a non-default
`--api-port`, the only running profile when none is named, a clear word when several run."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import structlog

from config.loader import load_settings
from daemon.api import start_api
from daemon.app import RunOptions, forget_api_url, quote_source_problem
from daemon.auth import api_url_file
from daemon.cli import main
from daemon.metrics import Metrics
from tests.daemon.fake_control import FakeControl


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("TRADINGD_API_TOKEN", "TRADINGD_ADMIN_TOKEN", "TRADINGD_PROFILE", "TRADINGD_DAEMON__API__PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TRADINGD_DAEMON__STATE_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
async def start() -> AsyncIterator[Callable[..., Any]]:
    """Start a profile's API as `tradingd run --profile P --api-port N` does (the override is the
    daemon's alone: the CLI's own settings still say the profile's default port)."""
    runners = []

    async def _start(profile: str, port: int) -> tuple[FakeControl, int]:
        settings = load_settings(profile, overrides={"daemon.api.port": port})
        control = FakeControl(profile=profile)
        runner, bound = await start_api(control, settings, Metrics(profile))
        runners.append((runner, settings, bound))
        return control, bound

    with structlog.testing.capture_logs():
        yield _start
        for runner, settings, bound in runners:
            await runner.cleanup()
            forget_api_url(settings, bound)


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def test_finds_a_daemon_started_on_a_non_default_port(state_dir: Path, start: Any,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    assert port != load_settings("0dte").daemon.api.port  # what the CLI alone would have tried
    control, bound = await start("0dte", port)
    assert bound == port
    code, out, err = await cli(capsys, "status", "--profile", "0dte", "--json")
    assert (code, err) == (0, "") and json.loads(out)["profile"] == "0dte"
    code, out, err = await cli(capsys, "halt", "--reason", "test", "--json")  # no --profile: the only one running
    assert (code, err) == (0, "") and json.loads(out)["trading_state"] == "HALTED"
    assert control.calls[0][0] == "halt"


async def test_defaults_to_the_only_running_profile_and_names_several(state_dir: Path, start: Any,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    await start("7dte", free_port())
    code, out, _ = await cli(capsys, "status", "--json")
    assert code == 0 and json.loads(out)["profile"] == "7dte"
    await start("0dte", free_port())
    code, out, err = await cli(capsys, "positions", "--json")
    assert code == 2 and json.loads(out)["code"] == "ambiguous_profile" and "0dte, 7dte" in err
    code, out, _ = await cli(capsys, "status", "--profile", "0dte", "--json")
    assert code == 0 and json.loads(out)["profile"] == "0dte"


async def test_a_stopped_daemon_leaves_no_url_and_the_cli_says_not_running(
        state_dir: Path, start: Any, capsys: pytest.CaptureFixture[str]) -> None:
    settings = load_settings("0dte", overrides={"daemon.api.port": 0})
    runner, port = await start_api(FakeControl(), settings, Metrics("0dte"))
    assert api_url_file(settings).read_text().strip() == f"http://127.0.0.1:{port}"
    await runner.cleanup()
    forget_api_url(settings, port)
    assert not api_url_file(settings).exists()
    code, out, err = await cli(capsys, "status", "--json")
    assert code == 2 and json.loads(out)["code"] == "daemon_not_running" and "api-url-0dte" in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("tradingd ") and out.split()[1][0].isdigit()


def test_sim_without_a_quote_source_refuses_to_start_saying_why(state_dir: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--profile", "0dte", "--broker", "sim", "--no-api", "--json"]) == 2
    captured = capsys.readouterr()
    answer = json.loads(captured.out)
    assert answer["code"] == "sim_needs_quote_source"
    assert "--replay" in captured.err and "stale_market_data" in captured.err
    # The profile's own broker.kind is sim: the bare command refuses too; a replay or IB does not.
    assert quote_source_problem(RunOptions(profile="0dte")) is not None
    assert quote_source_problem(RunOptions(profile="0dte", broker="sim", replay="bundled")) is None
    assert quote_source_problem(RunOptions(profile="0dte", broker="ib")) is None
