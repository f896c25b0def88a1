"""Part 8: the API under hostile input and load, against a real server on an ephemeral port."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from structlog.testing import capture_logs

from daemon.api import start_api
from daemon.api_limits import RateLimiter, TokenBucket
from daemon.auth import Tokens
from daemon.jsonparse import JsonRefused, nesting_depth, parse_json
from daemon.metrics import Metrics
from daemon.openapi import OPENAPI_PATH
from tests.daemon.fake_control import FakeControl
from tests.daemon.test_api import ADMIN, API, SIGNAL, Server, make_settings


async def _serve(tmp_path: Path, **overrides: object) -> tuple[object, Server]:
    settings = make_settings(tmp_path, **overrides)
    control, metrics = FakeControl(), Metrics("0dte")
    runner, port = await start_api(control, settings, metrics, Tokens(api=API, admin=ADMIN))
    session = aiohttp.ClientSession()
    return runner, Server(f"http://127.0.0.1:{port}", port, control, metrics, session, settings)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    runner, srv = await _serve(tmp_path)
    yield srv
    await srv.session.close()
    await runner.cleanup()  # type: ignore[attr-defined]


def _metric(srv: Server, name: str, **labels: str) -> float:
    value = srv.metrics.registry.get_sample_value(name, {"profile": "0dte", **labels})
    return value or 0.0


# ------------------------------------------------------------------ JSON


def test_nesting_depth_ignores_brackets_in_strings() -> None:
    assert nesting_depth(b'{"a": "[[[[{{{{", "b": [1, [2]]}') == 3
    assert nesting_depth(b'"\\"[[["') == 0


@pytest.mark.parametrize("raw, code", [(b"[" * 30000 + b"]" * 30000, "json_too_deep"),
                                       (b'{"a": 1, "a": 2}', "duplicate_key"),
                                       (b'{"a": {"b": 1, "b": 1}}', "duplicate_key"),
                                       (b"{", "malformed_json"), (b"\xff", "malformed_json"),
                                       (b"[1]" * 40000, "body_too_large")])
def test_parse_json_refuses_with_a_reason(raw: bytes, code: str) -> None:
    with pytest.raises(JsonRefused) as err:
        parse_json(raw, max_bytes=65536, max_depth=16)
    assert err.value.code == code


async def test_deep_nesting_is_400_not_500(server: Server) -> None:
    deep = "[" * 30000 + "]" * 30000
    for path, token in (("/v1/signals", API), ("/v1/halt", ADMIN)):
        status, body = await server.call("POST", path, token=token, data=deep,
                                         headers={"Content-Type": "application/json"})
        assert (status, body["reason"]) == (400, "json_too_deep"), path
    signal = json.dumps({**SIGNAL, "confidence": [[[[[[[[[[[[[[[[[[0.8]]]]]]]]]]]]]]]]]]})
    status, body = await server.call("POST", "/v1/signals", data=signal, headers={"Content-Type": "application/json"})
    assert (status, body["reason"]) == (400, "json_too_deep")
    assert server.control.submissions == 0


async def test_duplicate_keys_are_refused(server: Server) -> None:
    body = '{"id": "d-1", "profile": "0dte", "underlying": "SPY", "direction": "bullish", "strategy": "directional",' \
           ' "confidence": 0.1, "confidence": 0.9, "created_at": "2019-02-11T10:00:00-05:00"}'
    status, answer = await server.call("POST", "/v1/signals", data=body, headers={"Content-Type": "application/json"})
    assert (status, answer["reason"]) == (400, "duplicate_key") and "confidence" in answer["message"]
    assert server.control.submissions == 0


async def test_a_non_ascii_symbol_is_not_folded(server: Server) -> None:
    status, body = await server.call("POST", "/v1/acknowledge", token=ADMIN, json={"underlying": "ſpy"})
    assert (status, body["reason"]) == (400, "invalid_symbol")
    status, body = await server.call("POST", "/v1/acknowledge", token=ADMIN, json={"underlying": "spy"})
    assert status != 400 and body.get("reason") != "invalid_symbol"  # operators may type ASCII lower case


# ------------------------------------------------------------------ auth refusals


async def test_401_and_403_are_counted_and_logged(server: Server) -> None:
    import structlog

    saved = structlog.get_config()  # an earlier test may have left a level filter above warning
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(0))
    try:
        await _refusals_counted_and_logged(server)
    finally:
        structlog.configure(**saved)


async def _refusals_counted_and_logged(server: Server) -> None:
    with capture_logs() as logs:
        assert (await server.call("GET", "/v1/status", token=None))[0] == 401
        assert (await server.call("GET", "/v1/status", token="wrong"))[0] == 401
        assert (await server.call("GET", "/v1/status", token="wrong"))[0] == 401
        assert (await server.call("POST", "/v1/halt", token=API, json={"reason": "x"}))[0] == 403
    assert _metric(server, "tradingd_api_refusals_total", reason="missing_token", status="401") == 1
    assert _metric(server, "tradingd_api_refusals_total", reason="invalid_token", status="401") == 2
    assert _metric(server, "tradingd_api_refusals_total", reason="admin_required", status="403") == 1
    refused = [e["reason"] for e in logs if e["event"] == "api_request_refused"]
    assert refused == ["missing_token", "invalid_token", "admin_required"]  # the 2nd invalid_token: once a minute


# ------------------------------------------------------------------ rate limits


def test_token_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(2.0, 3, lambda: now[0])
    assert [bucket.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take() == pytest.approx(0.5)
    now[0] = 0.5
    assert bucket.take() == 0.0


def test_operator_routes_have_their_own_bucket(tmp_path: Path) -> None:
    limits = make_settings(tmp_path).daemon.api.limits
    limiter = RateLimiter(limits, now=lambda: 0.0)
    for _ in range(limits.signals_burst):
        assert limiter.retry_after("api", "requests") is None
    assert limiter.retry_after("api", "requests") is not None
    assert limiter.retry_after("admin", "operator") is None  # untouched by the signal flood
    for _ in range(limits.operator_burst - 1):
        assert limiter.retry_after("admin", "operator") is None
    assert limiter.retry_after("admin", "operator") == 1  # 1/s: one token in 1 s


async def test_a_flood_is_answered_429_while_healthz_stays_fast(tmp_path: Path) -> None:
    runner, srv = await _serve(tmp_path, **{"daemon.api.limits.signals_per_s": 1, "daemon.api.limits.signals_burst": 10})
    try:
        async def one(k: int) -> tuple[int, str | None, str | None]:
            async with srv.session.post(srv.url + "/v1/signals", json={**SIGNAL, "id": f"f-{k}"},
                                        headers={"Authorization": f"Bearer {API}"}) as resp:
                body = await resp.json()
                return resp.status, body.get("reason"), resp.headers.get("Retry-After")

        flood = asyncio.gather(*(one(k) for k in range(300)))
        await asyncio.sleep(0.05)
        started = time.perf_counter()
        async with srv.session.get(srv.url + "/healthz") as resp:
            assert resp.status == 200
        healthz_s = time.perf_counter() - started
        answers = await flood
        limited = [a for a in answers if a[0] == 429]
        assert len(limited) >= 250 and all(a[1] == "rate_limited" and a[2] and int(a[2]) >= 1 for a in limited)
        assert srv.control.submissions == len(answers) - len(limited)  # a refused one never reached the engine
        assert healthz_s < 2.0, healthz_s
        # the admin's operator bucket is its own: an operator is never locked out by a signal flood
        async with srv.session.post(srv.url + "/v1/halt", json={"reason": "flood"},
                                    headers={"Authorization": f"Bearer {ADMIN}"}) as resp:
            assert resp.status == 200
        assert _metric(srv, "tradingd_api_refusals_total", reason="rate_limited", status="429") == len(limited)
    finally:
        await srv.session.close()
        await runner.cleanup()  # type: ignore[attr-defined]


# ------------------------------------------------------------------ slow clients


async def test_a_slow_header_client_is_disconnected(tmp_path: Path) -> None:
    runner, srv = await _serve(tmp_path, **{"daemon.api.limits.header_timeout_s": "0.3"})
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(b"POST /v1/signals HTTP/1.1\r\nHost: x\r\n")  # and never the end of the head
        await writer.drain()
        started = time.perf_counter()
        data = await asyncio.wait_for(reader.read(), timeout=5)  # EOF: the server closed the connection
        assert data == b"" and time.perf_counter() - started < 3
        writer.close()
        assert _metric(srv, "tradingd_api_refusals_total", reason="slow_headers", status="0") == 1
        # a normal client on a fresh connection is unaffected
        async with srv.session.get(srv.url + "/healthz") as resp:
            assert resp.status == 200
    finally:
        await srv.session.close()
        await runner.cleanup()  # type: ignore[attr-defined]


async def test_a_slow_body_is_answered_408_and_disconnected(tmp_path: Path) -> None:
    runner, srv = await _serve(tmp_path, **{"daemon.api.limits.body_timeout_s": "0.3"})
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(b"POST /v1/signals HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Authorization: Bearer " + API.encode() + b"\r\nContent-Length: 100\r\n\r\n{\"id\"")
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout=5)
        assert data.startswith(b"HTTP/1.1 408") and b"body_timeout" in data
        writer.close()
        assert srv.control.submissions == 0
    finally:
        await srv.session.close()
        await runner.cleanup()  # type: ignore[attr-defined]


# ------------------------------------------------------------------ OpenAPI


async def test_openapi_lists_every_route(server: Server) -> None:
    async with server.session.get(server.url + OPENAPI_PATH) as resp:
        assert resp.status == 200
        doc = await resp.json()
    assert doc["openapi"].startswith("3.")
    described = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    runner_app = None
    from daemon.api import build_app

    runner_app = build_app(FakeControl(), server.settings, Metrics("0dte"), Tokens(api=API, admin=ADMIN))
    served = {(r.resource.canonical, r.method) for r in runner_app.router.routes()
              if r.method != "HEAD" and r.resource is not None}
    assert served == described
    assert doc["components"]["schemas"]["Signal"]["properties"]["underlying"]["enum"] == ["SPY", "QQQ", "IWM"]
