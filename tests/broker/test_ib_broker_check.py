"""`tradingd broker check` against the fake gateway: what it prints, and the exits when it cannot connect or
the account would be refused. The CLI runs in a worker thread (its own event loop), the gateway in the test's."""

from __future__ import annotations

import asyncio
import json

import pytest

from daemon.cli import main
from tests.broker.test_ib_support import gateway
from tests.fakegw import FakeGateway


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADINGD_BROKER__IB__SNAPSHOT_TIMEOUT_S", "1")
    monkeypatch.setenv("TRADINGD_BROKER__IB__CONNECT_TIMEOUT_S", "2")


async def _cli(*argv: str) -> int:
    return await asyncio.to_thread(main, ["broker", "check", *argv])


async def test_json_report_of_a_paper_account(capsys: pytest.CaptureFixture[str]):
    async with gateway() as gw:
        gw.market.set_stock("QQQ", "400.00", "400.02")
        code = await _cli("--profile", "0dte", "--port", str(gw.port), "--client-id", "55", "--json")
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert (out["server_version"], out["account"], out["paper"], out["currency"]) == (176, "DU1234567", True, "USD")
    assert (out["net_liquidation"], out["buying_power"]) == ("100000.00", "400000.00")
    assert out["market_data"] == {"SPY": "live", "QQQ": "live", "IWM": "missing", "VIX": "live"}
    assert any("IWM" in w for w in out["warnings"])


def _entitled_market(gw: FakeGateway) -> None:
    """SPY and VIX live; QQQ without a live subscription but with delayed data; IWM with neither."""
    gw.market.set_stock("QQQ", "400.00", "400.02")
    gw.market.set_stock("IWM", "200.00", "200.02")
    gw.market.entitle("QQQ", live=False, delayed=True)
    gw.market.entitle("IWM", live=False, delayed=False)


async def test_json_reports_live_delayed_and_missing_market_data(capsys: pytest.CaptureFixture[str]):
    async with gateway() as gw:
        _entitled_market(gw)
        code = await _cli("--port", str(gw.port), "--json")
        entitlement_codes = sorted(c for _, _, c, _ in gw.errors_sent if c in (354, 10167, 10168))
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["market_data"] == {"SPY": "live", "QQQ": "delayed", "IWM": "missing", "VIX": "live"}
    assert entitlement_codes == [354, 354, 10167, 10168]  # QQQ and IWM asked live, then delayed
    (warning,) = [w for w in out["warnings"] if "market data" in w]
    assert "QQQ" in warning and "IWM" in warning and "SPY" not in warning


async def test_text_report_warns_about_delayed_and_missing_market_data(capsys: pytest.CaptureFixture[str]):
    async with gateway() as gw:
        _entitled_market(gw)
        code = await _cli("--port", str(gw.port))
    out = capsys.readouterr().out
    assert code == 0
    rows = dict(line.split()[2:] for line in out.splitlines() if line.startswith("market data"))
    assert rows == {"SPY": "live", "QQQ": "delayed", "IWM": "missing", "VIX": "live"}
    (warning,) = [line for line in out.splitlines() if line.startswith("warning: no live market data for")]
    assert "QQQ" in warning and "IWM" in warning and "SPY" not in warning and "VIX" not in warning


async def test_text_report_warns_about_a_non_usd_base_currency(capsys: pytest.CaptureFixture[str]):
    async with gateway(currency="GBP") as gw:
        code = await _cli("--port", str(gw.port))
    out = capsys.readouterr().out
    assert code == 0
    assert "DU1234567 (paper)" in out and "base currency    GBP" in out
    assert "warning: base currency is GBP, not USD" in out


async def test_a_live_account_without_live_true_exits_non_zero(capsys: pytest.CaptureFixture[str]):
    async with gateway(account="U7654321") as gw:
        code = await _cli("--port", str(gw.port), "--json")
    captured = capsys.readouterr()
    assert code == 1
    assert json.loads(captured.out)["code"] == "live_account_refused"
    assert "U7654321" in captured.err and "ib.live = true" in captured.err


async def test_no_gateway_exits_non_zero_naming_the_port(capsys: pytest.CaptureFixture[str]):
    async with gateway() as gw:
        port = gw.port
    code = await _cli("--port", str(port))
    assert code == 1
    err = capsys.readouterr().err
    assert f"127.0.0.1:{port}" in err and "4002" in err


async def test_bad_port_is_a_usage_error(capsys: pytest.CaptureFixture[str]):
    assert await _cli("--port", "70000") == 2
    assert "--port" in capsys.readouterr().err


async def _closing_server() -> asyncio.AbstractServer:
    """Accepts, then hangs up at once (a gateway that refuses the API client, or a wrong service)."""
    async def hang_up(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()
    return await asyncio.start_server(hang_up, "127.0.0.1", 0)


async def test_refused_closed_and_timed_out_are_told_apart(capsys: pytest.CaptureFixture[str]):
    async with gateway() as gw:
        port = gw.port
    assert await _cli("--port", str(port), "--json") == 1
    refused = json.loads(capsys.readouterr().out)
    server = await _closing_server()
    try:
        assert await _cli("--port", str(server.sockets[0].getsockname()[1]), "--json") == 1
    finally:
        server.close()
    closed = json.loads(capsys.readouterr().out)
    async with gateway() as gw:
        gw.stall(True)  # the socket opens, the handshake is never answered
        assert await _cli("--port", str(gw.port), "--json") == 1
    timed_out = json.loads(capsys.readouterr().out)
    assert (refused["code"], closed["code"], timed_out["code"]) == (
        "connection_refused", "connection_closed", "connect_timeout")
    assert all(r["ok"] is False and r["account"] is None and r["warnings"] for r in (refused, closed, timed_out))


async def test_an_unanswered_request_is_a_warning_and_exit_1_with_the_rest_still_reported(
        capsys: pytest.CaptureFixture[str]):
    async with gateway() as gw:
        gw.withhold_current_time = True
        code = await _cli("--port", str(gw.port), "--json")
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and out["ok"] is False and out["code"] == "timeout"
    assert out["gateway_time"] is None
    assert any("reqCurrentTime" in w for w in out["warnings"])
    assert (out["account"], out["net_liquidation"]) == ("DU1234567", "100000.00")
    assert out["market_data"]["SPY"] == "live"
