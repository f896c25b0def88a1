"""Part 8: thousands of generated requests against a running daemon, from its own OpenAPI document.

The daemon (engine over the sim broker, bundled SPY bars replayed to 10:00 so it has a market, the
real HTTP API on an ephemeral port) runs on its own thread and event loop; hypothesis (fixed seed:
`derandomize=True`) builds requests from `/v1/openapi.json` (schema-shaped bodies with wrong types,
junk values, extra and duplicate keys, deep nesting, binary, wrong content types, bad tokens,
unknown paths) and sends them over plain HTTP. Every answer must be a 4xx with a reason code, and
afterwards the daemon must be up with no position, order or trading-state change.

`make test` sends 2,500; the `slow` test (`make test-slow`) 25,000; TRADINGD_FUZZ_EXAMPLES scales both.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.api import start_api
from daemon.auth import Tokens
from daemon.metrics import Metrics
from tests.daemon.test_live_rig import DAY1, Rig, at

TOKENS = Tokens(api="fuzz-api-token", admin="fuzz-admin-token")
PER_EXAMPLE = 10
EXAMPLES = int(os.environ.get("TRADINGD_FUZZ_EXAMPLES", "250"))  # x PER_EXAMPLE requests: 2,500
SLOW_EXAMPLES = 10 * EXAMPLES
REASON = re.compile(r"^[a-z0-9_]+$")


class Daemon:
    """The engine and its API on a thread of their own (a running daemon, reached over TCP)."""

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.port = 0
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.rig: Rig | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._run, name="fuzzed-daemon", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001  (reported to the test)
            self.error = exc
            self.ready.set()

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        rig = self.rig = Rig(self.tmp_path, "0dte", ["SPY"], overrides={
            "daemon.api.limits.signals_per_s": 1_000_000, "daemon.api.limits.signals_burst": 1_000_000,
            "daemon.api.limits.operator_per_s": 1_000_000, "daemon.api.limits.operator_burst": 1_000_000})
        await rig.start()
        await rig.until(at(DAY1, 10, 0))
        runner, self.port = await start_api(rig.engine, rig.settings, Metrics("0dte"), TOKENS)
        self.ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()
            await rig.close()

    def call(self, coro_factory: Any) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro_factory(), self._loop).result(30)

    def start(self) -> Daemon:
        self.thread.start()
        assert self.ready.wait(120), "the daemon did not start"
        if self.error is not None:
            raise self.error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(60)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    d = Daemon(tmp_path_factory.mktemp("fuzz")).start()
    yield d
    d.stop()


def _get(port: int, path: str) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


# ------------------------------------------------------------------ strategies from the document

JSON_LEAF = st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=True) | st.text(max_size=12)
JSON_ANY = st.recursive(JSON_LEAF, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)


def _value(schema: dict[str, Any], components: dict[str, Any]) -> st.SearchStrategy[Any]:
    """A value the schema asks for (often) or anything at all (sometimes)."""
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    if "enum" in schema:
        shaped: st.SearchStrategy[Any] = st.sampled_from(schema["enum"]) | st.sampled_from(
            [v.lower() for v in schema["enum"]] + ["ſpy", "SPY ", "ＳＰＹ", ""])
    elif schema.get("type") == "number":
        shaped = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-10, 10) | st.sampled_from(
            [0.5, 0.65, 0.9, 1.0, 1.0000001, -0.0])
    elif schema.get("format") == "date-time":
        shaped = st.datetimes(timezones=st.just(timezone.utc) | st.none()).map(lambda d: d.isoformat()) | st.sampled_from(
            ["0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59+00:00", "yesterday", "2019-02-11T10:00:00"])
    elif schema.get("type") == "string":
        shaped = st.text(max_size=70) | st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,10}", fullmatch=True)
    elif schema.get("type") == "object":
        return _object(schema, components)
    else:
        shaped = JSON_LEAF
    return st.one_of(shaped, shaped, JSON_ANY)


def _object(schema: dict[str, Any], components: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    props = schema.get("properties", {})
    if not props:
        return st.dictionaries(st.text(max_size=8), JSON_ANY, max_size=4)
    return st.fixed_dictionaries({}, optional={k: _value(v, components) for k, v in props.items()}).flatmap(
        lambda d: st.dictionaries(st.text(max_size=8), JSON_ANY, max_size=2).map(
            lambda extra: {**d, **extra}) | st.just(d))


def _encode(body: Any, mode: str) -> bytes:
    if mode == "duplicate" and isinstance(body, dict) and body:
        text = json.dumps(body)
        key = json.dumps(next(iter(body)))
        return (text[:-1] + f", {key}: 1}}").encode()
    if mode == "deep":
        return b"[" * 5000 + b"]" * 5000
    if mode == "truncated":
        return json.dumps(body).encode()[:-1]
    return json.dumps(body, allow_nan=True).encode()


def requests_from(doc: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    components = doc["components"]["schemas"]
    operations = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if op.get("x-html"):  # the operator page's HTML forms (cookie sign-in): not the JSON API
                continue
            if method == "post":
                content = op.get("requestBody", {}).get("content", {}).get("application/json", {})
                weight = 6 if path == "/v1/signals" else 1  # signals reach the engine: most of the traffic
                operations.extend([(path, "POST", content.get("schema", {"type": "object"}))] * weight)
            elif op.get("security"):  # authenticated reads: only ever with a bad token (a good one is a 200)
                operations.append((path, "GET", None))
    fields = {
        "op": st.sampled_from(operations),
        "token": st.sampled_from([TOKENS.api] * 8 + [None, "", "x" * 300, "Bearer", TOKENS.api.upper()]),
        "content_type": st.sampled_from(["application/json"] * 6 + ["text/plain", "", "application/json; charset=latin-1"]),
        "mode": st.sampled_from(["json"] * 5 + ["duplicate", "deep", "truncated", "binary"]),
        "binary": st.binary(max_size=64),
        "stray_path": st.sampled_from([None] * 24 + ["/v1/signal", "/v1/signals/", "/V1/SIGNALS", "/v1/../v1/status",
                                                     "/v1/halt?x=1", "/%00"]),
    }
    return st.fixed_dictionaries(fields).flatmap(
        lambda f: (_value(f["op"][2], components) if f["op"][2] is not None else st.just(None)).map(
            lambda body: {**f, "body": body}))


def _send(conn: http.client.HTTPConnection, req: dict[str, Any], shift_from: datetime) -> tuple[int, dict[str, Any]]:
    path, method, _ = req["op"]
    path = req["stray_path"] or path
    token = req["token"]
    if method == "GET" and token is not None and token.strip() == TOKENS.api:  # HTTP trims header values
        token = "not-the-token"
    headers = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    body = req["body"]
    if isinstance(body, dict) and isinstance(body.get("created_at"), str):
        try:  # a signal dated at the replay's "now" could be a valid trade: move it a day ahead
            stamp = datetime.fromisoformat(body["created_at"])
            if stamp.tzinfo is not None and abs(stamp - shift_from) < timedelta(minutes=5):
                body = {**body, "created_at": (stamp + timedelta(days=1)).isoformat()}
        except (ValueError, OverflowError):
            pass
    data = None
    if method == "POST":
        data = req["binary"] if req["mode"] == "binary" else _encode(body, req["mode"])
        if req["content_type"]:
            headers["Content-Type"] = req["content_type"]
    conn.request(method, path, body=data, headers=headers)
    response = conn.getresponse()
    raw = response.read()
    try:
        answer = json.loads(raw)
    except ValueError:
        answer = {"unparsable": raw[:200].decode("utf-8", "replace")}
    return response.status, answer


@pytest.mark.timeout(600)  # ~30 s alone; eight rooms share two cores
def test_fuzz_every_answer_is_a_4xx_with_a_reason_and_nothing_changes(daemon: Daemon) -> None:
    _fuzz(daemon, EXAMPLES)


@pytest.mark.soak  # only `make test-slow` runs the long fuzz (issue 11)
@pytest.mark.timeout(3600)
def test_fuzz_many_more(daemon: Daemon) -> None:
    """`make test-slow` (the slow marker): ten times as many."""
    _fuzz(daemon, SLOW_EXAMPLES)


def _fuzz(daemon: Daemon, examples: int) -> None:
    status, doc = _get(daemon.port, "/v1/openapi.json")
    assert status == 200
    rig = daemon.rig
    assert rig is not None
    now = rig.clock.now()
    before = rig.engine.status()
    seen: dict[int, int] = {}
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30)

    @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(requests_from(doc), min_size=PER_EXAMPLE, max_size=PER_EXAMPLE))
    def fuzz(batch: list[dict[str, Any]]) -> None:
        nonlocal conn
        for req in batch:
            try:
                status, answer = _send(conn, req, now)
            except (http.client.HTTPException, OSError):  # the server closed the connection (e.g. after a 400)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30)
                status, answer = _send(conn, req, now)
            seen[status] = seen.get(status, 0) + 1
            assert 400 <= status < 500, (status, answer, req)
            assert isinstance(answer, dict) and REASON.match(str(answer.get("reason"))), (status, answer, req)

    fuzz()
    conn.close()
    assert sum(seen.values()) == examples * PER_EXAMPLE
    assert {400, 401, 403, 404, 422} <= set(seen), seen  # the requests reached every kind of refusal

    status, health = _get(daemon.port, "/healthz")
    assert status == 200 and health["ok"] is True
    after = rig.engine.status()
    for key in ("trading_state", "breaker_level", "open_positions", "exposure", "blocked_underlyings"):
        assert after.get(key) == before.get(key), key
    assert daemon.call(rig.store.list_orders) == []
    assert daemon.call(rig.store.list_positions) == []
    assert not rig.engine.book.held()
    assert daemon.error is None and daemon.thread.is_alive()
