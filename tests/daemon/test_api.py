"""The HTTP API against a real aiohttp server on 127.0.0.1 (ephemeral port) over a FakeControl."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from config.loader import load_settings
from config.models import Settings
from daemon.api import start_api
from daemon.auth import Tokens, api_url_file
from daemon.metrics import METRIC_NAMES, Metrics
from tests.daemon.fake_control import POSITION, FakeControl

API, ADMIN = "api-secret", "admin-secret"
SIGNAL = {"id": "sig-1", "profile": "0dte", "underlying": "SPY", "direction": "bullish",
          "strategy": "directional", "confidence": 0.8, "created_at": "2019-02-11T10:00:00-05:00"}


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    return load_settings("0dte", env={}, overrides={"daemon.api.port": 0, "daemon.state_dir": str(tmp_path),
                                                   **overrides})


@dataclass
class Server:
    url: str
    port: int
    control: FakeControl
    metrics: Metrics
    session: aiohttp.ClientSession
    settings: Settings

    async def call(self, method: str, path: str, token: str | None = API, **kwargs: object) -> tuple[int, dict]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        headers.update(kwargs.pop("headers", {}))  # type: ignore[arg-type]
        async with self.session.request(method, self.url + path, headers=headers, **kwargs) as resp:
            text = await resp.text()
            return resp.status, json.loads(text)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    settings = make_settings(tmp_path, **{"daemon.api.max_body_bytes": 2048})
    control = FakeControl()
    metrics = Metrics("0dte")
    runner, port = await start_api(control, settings, metrics, Tokens(api=API, admin=ADMIN))
    async with aiohttp.ClientSession() as session:
        yield Server(f"http://127.0.0.1:{port}", port, control, metrics, session, settings)
    await runner.cleanup()


# ------------------------------------------------------------------ binding


async def test_binds_loopback_on_an_ephemeral_port_and_writes_its_url(server: Server) -> None:
    assert server.port > 0
    assert api_url_file(server.settings).read_text().strip() == server.url


async def test_generates_private_tokens_in_the_state_dir_when_none_configured(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRADINGD_API_TOKEN", raising=False)
    monkeypatch.delenv("TRADINGD_ADMIN_TOKEN", raising=False)
    runner, port = await start_api(FakeControl(), make_settings(tmp_path), Metrics("0dte"))
    try:
        api_token = (tmp_path / "api-token").read_text().strip()
        assert (tmp_path / "api-token").stat().st_mode & 0o777 == 0o600
        assert (tmp_path / "admin-token").stat().st_mode & 0o777 == 0o600
        async with aiohttp.ClientSession() as session:
            headers = {"Authorization": f"Bearer {api_token}"}
            async with session.get(f"http://127.0.0.1:{port}/v1/status", headers=headers) as resp:
                assert resp.status == 200
    finally:
        await runner.cleanup()


# ------------------------------------------------------------------ signals


async def test_accepted_signal_answers_the_decision(server: Server) -> None:
    status, body = await server.call("POST", "/v1/signals", json=SIGNAL)
    assert status == 200
    assert body["accepted"] is True and body["reason"] is None
    assert body["decision"]["signal_id"] == "sig-1" and body["decision"]["source"] == "api"


async def test_refused_signal_is_422_with_the_refusal_shape(server: Server) -> None:
    status, body = await server.call("POST", "/v1/signals", json={**SIGNAL, "underlying": "TSLA"})
    assert status == 422
    assert set(body) == {"accepted", "reason", "message", "decision"}
    assert body["accepted"] is False and body["reason"] == "unknown_underlying"


async def test_signal_is_idempotent_on_its_id(server: Server) -> None:
    first = await server.call("POST", "/v1/signals", json=SIGNAL)
    again = await server.call("POST", "/v1/signals", json=SIGNAL)
    assert first[0] == 200 and again[0] == 409
    assert again[1]["reason"] == "duplicate_signal"
    assert again[1]["decision"] == first[1]["decision"]


async def test_concurrent_posts_of_one_id_are_decided_once(server: Server) -> None:
    answers = await asyncio.gather(*(server.call("POST", "/v1/signals", json=SIGNAL) for _ in range(5)))
    statuses = sorted(status for status, _ in answers)
    assert statuses == [200, 409, 409, 409, 409]


async def test_not_accepting_is_503(server: Server) -> None:
    server.control.accepting = False
    status, body = await server.call("POST", "/v1/signals", json=SIGNAL)
    assert status == 503 and body["reason"] == "reconciling" and body["accepted"] is False


@pytest.mark.parametrize(("data", "reason"), [
    (b'{"id": "s-nan", "underlying": "ZZZ", "confidence": NaN}', "unknown_underlying"),
    (b"[1, 2]", "invalid_signal"),
])
async def test_signal_bodies_that_parse_reach_the_signal_rules(server: Server, data: bytes, reason: str) -> None:
    """NaN tokens and non-objects are the signal rules' to refuse (and the engine's to store), not the transport's."""
    status, body = await server.call("POST", "/v1/signals", data=data, headers={"Content-Type": "application/json"})
    assert status == 422 and body["reason"] == reason


@pytest.mark.parametrize(("data", "headers", "reason"), [
    (b"{not json", {"Content-Type": "application/json"}, "malformed_json"),
    (b"\xff\xfe", {"Content-Type": "application/json"}, "malformed_json"),
    (b'{"id": "x"}', {"Content-Type": "text/plain"}, "unsupported_content_type"),
    (b"x" * 4096, {"Content-Type": "application/json"}, "body_too_large"),
])
async def test_bad_bodies_are_400_with_a_reason_code(server: Server, data: bytes, headers: dict,
                                                     reason: str) -> None:
    status, body = await server.call("POST", "/v1/signals", data=data, headers=headers)
    assert status == 400
    assert body == {"accepted": False, "reason": reason, "message": body["message"], "decision": None}
    assert server.control.submissions == 0


async def test_chunked_oversized_body_is_400(server: Server) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b" " * 512

    status, body = await server.call("POST", "/v1/signals", data=chunks(),
                                     headers={"Content-Type": "application/json"})
    assert (status, body["reason"]) == (400, "body_too_large")


# ------------------------------------------------------------------ auth


@pytest.mark.parametrize("path", ["/v1/status", "/v1/positions"])
async def test_reads_need_a_token(server: Server, path: str) -> None:
    assert (await server.call("GET", path, token=None))[1]["reason"] == "missing_token"
    status, body = await server.call("GET", path, token="wrong")
    assert (status, body["reason"]) == (401, "invalid_token")


async def test_signals_need_a_token(server: Server) -> None:
    status, body = await server.call("POST", "/v1/signals", token=None, json=SIGNAL)
    assert (status, body["reason"], body["accepted"]) == (401, "missing_token", False)
    status, _ = await server.call("POST", "/v1/signals", json=SIGNAL,
                                  headers={"Authorization": f"Basic {API}"}, token=None)
    assert status == 401
    assert server.control.submissions == 0


@pytest.mark.parametrize("path", ["/v1/halt", "/v1/resume", "/v1/flatten", "/v1/acknowledge"])
async def test_admin_routes_refuse_the_api_token(server: Server, path: str) -> None:
    status, body = await server.call("POST", path, json={"reason": "x", "underlying": "SPY"})
    assert (status, body["reason"], body["ok"]) == (403, "admin_required", False)
    status, _ = await server.call("POST", path, token=None, json={"reason": "x"})
    assert status == 401
    assert server.control.calls == []


async def test_admin_token_also_reads(server: Server) -> None:
    assert (await server.call("GET", "/v1/status", token=ADMIN))[0] == 200


# ------------------------------------------------------------------ reads


async def test_status(server: Server) -> None:
    status, body = await server.call("GET", "/v1/status")
    assert status == 200 and body["trading_state"] == "ACTIVE" and body["profile"] == "0dte"


async def test_positions(server: Server) -> None:
    server.control.open_positions = [POSITION]
    status, body = await server.call("GET", "/v1/positions")
    # At their units: prices at the tick, money at the cent, the P&L share as a percentage at 0.1.
    shown = {**POSITION, "strike": "275.00", "unrealized_pct": "12.0"}
    assert status == 200 and body == {"positions": [shown], "count": 1}


# ------------------------------------------------------------------ operator commands


async def test_halt_resume_flatten_record_reason_and_actor(server: Server) -> None:
    status, body = await server.call("POST", "/v1/halt", token=ADMIN, json={"reason": "news", "actor": "cli:ops"})
    assert status == 200 and body["trading_state"] == "HALTED"
    status, body = await server.call("POST", "/v1/flatten", token=ADMIN, json={"reason": "eod"})
    assert status == 200 and body["ok"] is True
    status, body = await server.call("POST", "/v1/resume", token=ADMIN)  # no body at all
    assert status == 200 and body["trading_state"] == "ACTIVE"
    assert server.control.calls == [("halt", "news", "api:cli:ops"), ("flatten", "eod", "api"), ("resume", "api")]


@pytest.mark.parametrize(("path", "payload", "reason"), [
    ("/v1/halt", {}, "missing_reason"),
    ("/v1/halt", {"reason": "  "}, "missing_reason"),
    ("/v1/flatten", {"reason": 7}, "invalid_reason"),
    ("/v1/halt", {"reason": "x", "actor": "bad actor\n"}, "invalid_actor"),
    ("/v1/acknowledge", {"underlying": ""}, "missing_underlying"),
])
async def test_operator_bodies_are_checked(server: Server, path: str, payload: dict, reason: str) -> None:
    status, body = await server.call("POST", path, token=ADMIN, json=payload)
    assert (status, body["reason"]) == (400, reason)
    assert server.control.calls == []


async def test_acknowledge_unblocks_and_engine_refusals_keep_their_code(server: Server) -> None:
    server.control.blocked = {"SPY"}
    status, body = await server.call("POST", "/v1/acknowledge", token=ADMIN, json={"underlying": "spy"})
    assert status == 200 and body["blocked_underlyings"] == []
    status, body = await server.call("POST", "/v1/acknowledge", token=ADMIN, json={"underlying": "SPY"})
    assert (status, body["reason"], body["ok"]) == (409, "not_blocked", False)
    status, body = await server.call("POST", "/v1/resume", token=ADMIN, json={})
    assert (status, body["reason"]) == (409, "not_halted")


# ------------------------------------------------------------------ errors, health, metrics


async def test_handler_exception_is_500_and_the_server_lives_on(server: Server) -> None:
    server.control.fail_with = RuntimeError("engine bug")
    status, body = await server.call("POST", "/v1/signals", json=SIGNAL)
    assert (status, body["reason"], body["accepted"]) == (500, "internal_error", False)
    assert "engine bug" not in json.dumps(body)
    server.control.fail_with = KeyError("boom")
    status, body = await server.call("GET", "/v1/status")
    assert (status, body["reason"]) == (500, "internal_error")
    assert (await server.call("POST", "/v1/signals", json=SIGNAL))[0] == 200


async def test_unknown_route_and_method_are_json(server: Server) -> None:
    status, body = await server.call("GET", "/v1/nothing")
    assert (status, body["reason"]) == (404, "not_found")
    status, body = await server.call("GET", "/v1/halt", token=ADMIN)
    assert (status, body["reason"]) == (405, "method_not_allowed")


async def test_healthz_needs_no_token_and_reports_state(server: Server) -> None:
    status, body = await server.call("GET", "/healthz", token=None)
    assert status == 200
    assert body["ok"] is True and body["trading_state"] == "ACTIVE" and body["profile"] == "0dte"
    server.control.fail_with = RuntimeError("status broke")
    status, body = await server.call("GET", "/healthz", token=None)
    assert (status, body["reason"]) == (503, "status_unavailable")


async def test_metrics_exposes_declared_metrics_refreshed_from_status(server: Server) -> None:
    await server.call("POST", "/v1/signals", json=SIGNAL)
    async with server.session.get(server.url + "/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    assert 'tradingd_equity_dollars{profile="0dte"} 60000.0' in text
    assert 'tradingd_session_pnl_dollars{profile="0dte"} -1250.5' in text
    assert 'tradingd_breaker_level{profile="0dte"} 1.0' in text
    assert 'tradingd_trading_state{profile="0dte",state="ACTIVE"} 1.0' in text
    assert 'tradingd_portfolio_theta_dollars{profile="0dte"} -310.75' in text
    assert ('tradingd_api_requests_total{method="POST",profile="0dte",route="/v1/signals",status="200"} 1.0'
            in text)
    for name in METRIC_NAMES:
        assert f"# TYPE {name} " in text


async def test_unmatched_paths_share_one_metrics_series(server: Server) -> None:
    for path in ("/a", "/b", "/c"):
        await server.call("GET", path)
    text = server.metrics.render()[0].decode()
    assert 'route="unmatched",status="404"} 3.0' in text
