"""`tradingd broker check --json` against a replay of a real TWS v176 paper session (shared/data/ib-captures).

The recording answers the handshake and the account requests, not contract details, market data or
`reqCurrentTime`: the probe must print all it learned, warn about what went unanswered, and exit 1.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from daemon.cli import main
from tests.fakegw.capture import CAPTURE_FILE, Capture
from tests.fakegw.replay import ReplayPeer


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADINGD_BROKER__IB__SNAPSHOT_TIMEOUT_S", "1")
    monkeypatch.setenv("TRADINGD_BROKER__IB__CONNECT_TIMEOUT_S", "2")


async def test_broker_check_json_against_the_recorded_tws_session(shared_data: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    peer = ReplayPeer(Capture.load(shared_data / CAPTURE_FILE))
    await peer.start()
    try:
        code = await asyncio.to_thread(main, ["broker", "check", "--port", str(peer.port), "--json"])
    finally:
        await peer.stop()
    captured = capsys.readouterr()
    out = json.loads(captured.out)  # stdout is the JSON report only: ib_async's own error lines stay off it
    assert code == 1
    assert out["server_version"] == 176
    assert out["account"] == "DU5509097"
    assert out["paper"] is True
    assert out["currency"] == "GBP"
    assert out["net_liquidation"] == "1040992.61"
    assert out["ok"] is False
    warnings = " | ".join(out["warnings"])
    assert "GBP" in warnings  # not the configured USD
    assert "market data" in warnings and "SPY" in warnings  # contract details / quotes never answered
    assert "reqCurrentTime" in warnings and out["gateway_time"] is None  # the recording never answers it
    assert out["market_data"] == {"SPY": "timed_out", "QQQ": "timed_out", "IWM": "timed_out", "VIX": "timed_out"}
    assert out["buying_power"] == "4153889.44"
