"""No output shows more decimals than its unit: money 2, prices at the tick (2), percentages 0.1
(issue 13). The daemon's numbers are exact Decimals with ~28 places (the issue's own examples);
`status`, `positions`, `size`, `exits` and the run summary must print them at their units."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import structlog

from config.loader import load_settings
from daemon import format as fmt
from daemon.api import start_api
from daemon.cli import main
from daemon.metrics import Metrics
from daemon.report import summary_json, summary_text
from daemon.store.records import DaySummary
from tests.daemon.fake_control import POSITION, FakeControl

# The numbers, as the engine's Decimal arithmetic makes them.
UGLY_PNL = "-73.5999999999999999999999984"
UGLY_PCT = "-0.03849155558330471701058283645"
UGLY_PRICE = "3.216500000000000000000000001"

_NUMBER = re.compile(r"(?<![\w.:/-])-?\$?\d[\d,]*\.(\d+)(%?)")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:?\d{2}|Z)?")


def too_precise(text: str, places: int = 2, pct_places: int = 1) -> list[str]:
    """Every number in `text` with more places than allowed (timestamps are not numbers)."""
    text = _TIMESTAMP.sub("<time>", text)
    bad = []
    for m in _NUMBER.finditer(text):
        allowed = pct_places if m.group(2) else places
        if len(m.group(1)) > allowed:
            bad.append(m.group(0))
    return bad


# status/positions keys and the places their unit allows (drawdown: a fraction at the 0.1 % unit).
KEY_PLACES = {"drawdown": 3, "unrealized_pct": 1, "market_data_age_s": 1, "delta": 1, "gamma": 1}


def places(value: Any) -> int:
    text = str(value)
    return len(text.split(".", 1)[1]) if re.fullmatch(r"-?\d+\.\d+", text) else 0


def json_too_precise(data: Any, key: str = "") -> list[str]:
    if isinstance(data, dict):
        return [b for k, v in data.items() for b in json_too_precise(v, k)]
    if isinstance(data, list):
        return [b for v in data for b in json_too_precise(v, key)]
    if isinstance(data, str | float) and places(data) > KEY_PLACES.get(key, 2):
        return [f"{key}={data}"]
    return []


class UglyControl(FakeControl):
    def status(self) -> dict:
        return {**super().status(), "session_pnl": UGLY_PNL, "equity": "59926.4000000000000000000000016",
                "drawdown": "0.001226666666666666666666666640", "exposure": "1286.6000000000000000000000004",
                "market_data_age_s": 0.41234567, "greeks": {"delta": "120.5123456", "gamma": "8.2512",
                                                            "vega": "-40.123456", "theta": "-310.7549999"}}


@pytest.fixture
async def ugly_daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[UglyControl]:
    for name in ("TRADINGD_API_TOKEN", "TRADINGD_ADMIN_TOKEN", "TRADINGD_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TRADINGD_DAEMON__STATE_DIR", str(tmp_path))
    monkeypatch.setenv("TRADINGD_DAEMON__API__PORT", "0")
    control = UglyControl()
    control.open_positions = [{**POSITION, "entry_price": UGLY_PRICE, "mark": "3.0927000000000001",
                               "unrealized_pnl": UGLY_PNL, "unrealized_pct": UGLY_PCT,
                               "stop_price": "2.2515500000000000001"}]
    with structlog.testing.capture_logs():
        runner, _ = await start_api(control, load_settings("0dte"), Metrics("0dte"))
        yield control
        await runner.cleanup()


async def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    assert (code, err) == (0, ""), err
    return out


async def test_status_and_positions_print_at_units(ugly_daemon: UglyControl,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    status = json.loads(await _cli(capsys, "status", "--json"))
    assert status["session_pnl"] == "-73.60" and status["equity"] == "59926.40"
    assert json_too_precise(status) == []
    positions = json.loads(await _cli(capsys, "positions", "--json"))["positions"]
    assert positions[0]["unrealized_pct"] == "-3.8" and positions[0]["entry_price"] == "3.22"
    assert json_too_precise(positions) == []
    human = await _cli(capsys, "status")
    lines = dict(line.split(None, 1) for line in human.splitlines())
    assert lines["session_pnl"] == "-73.60"
    assert all(places(v) <= KEY_PLACES.get(k, 2) for k, v in lines.items()), lines
    table = await _cli(capsys, "positions")
    assert "-3.8" in table and too_precise(table) == [], table


async def test_size_prints_at_units(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["size", "--profile", "0dte", "--underlying", "SPY", "--confidence", "0.77", "--price", "3.2165",
            "--vix", "17.3"]
    human = await _cli(capsys, *argv)
    assert "ACCEPTED" in human and too_precise(human) == [], human
    data = json.loads(await _cli(capsys, *argv, "--json"))
    assert json_too_precise(data) == [] and data["contracts"] > 0


async def test_exits_print_at_units(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    quotes = tmp_path / "q.csv"
    quotes.write_text("time,price\n2019-02-11T10:05:00-05:00,4.8771\n2019-02-11T10:30:00-05:00,5.6574\n"
                      "2019-02-11T11:00:00-05:00,6.9013\n2019-02-11T11:30:00-05:00,8.1083\n"
                      "2019-02-11T12:30:00-05:00,6.3083\n")
    # A 7dte runner: partial profits, trailing stops raised at exact fractions of the peak.
    argv = ["exits", "--profile", "7dte", "--entry", "4.4517", "--contracts", "10", "--underlying", "AAPL",
            "--entry-time", "2019-02-11T10:00:00-05:00", "--quotes", str(quotes)]
    human = await _cli(capsys, *argv)
    assert "stop" in human and too_precise(human) == [], human
    data = json.loads(await _cli(capsys, *argv, "--json"))
    assert data and json_too_precise(data) == [] and too_precise(json.dumps(data)) == []


def test_run_summary_prints_at_units() -> None:
    day = DaySummary(session_date=date(2019, 2, 11), signals=6, accepted=4, refused=2,
                     refused_by_reason={"stale_market_data": 2}, trades_opened=4, trades_closed=4,
                     realized_pnl=Decimal(UGLY_PNL), commissions=Decimal("10.4000000000000001"),
                     breaker_events=1, max_breaker_level=1)
    text = summary_text([day], "0dte")
    assert "-$73.60" in text and too_precise(text) == [], text
    data = summary_json([day])
    assert data[0]["realized_pnl"] == "-73.60" and json_too_precise(data) == []


def test_the_checker_itself_catches_long_decimals() -> None:
    assert too_precise("pnl -73.5999 at 2019-02-11T10:00:00.123-05:00") == ["-73.5999"]
    assert too_precise("down -3.85%") == ["-3.85%"]
    assert json_too_precise({"unrealized_pct": "-3.85", "mark": "3.1"}) == ["unrealized_pct=-3.85"]
    assert fmt.money(UGLY_PNL) == "-73.60" and fmt.pct(UGLY_PCT) == "-3.8" and fmt.money("-0.001") == "0.00"
