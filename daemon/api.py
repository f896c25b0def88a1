"""The local HTTP API (SPEC §6): signals in, status out, operator commands, health, metrics.

Binds the loopback address of the profile's config only. Every answer is JSON except
`/metrics`. Every refusal names a stable reason code:

- signals: `{"accepted": false, "reason": code, "message": text, "decision": record|null}`
- everything else: `{"ok": false, "reason": code, "message": text}`

No exception escapes a handler: `_errors` turns anything unexpected into 500
`internal_error` and logs it; the server keeps serving.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from functools import partial
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from config.models import Settings
from daemon import api_limits
from daemon.api_limits import GuardedRunner, LogLimiter, RateLimiter, mark_head
from daemon.auth import Tokens, api_url_file, load_tokens
from daemon.control import INTERNAL_ERROR, ControlError, EngineControl, SignalOutcome
from daemon.format import present_position, present_status
from daemon.jsonparse import DUPLICATE_KEY, JSON_TOO_DEEP, JsonRefused, parse_json
from daemon.openapi import OPENAPI_PATH, openapi_document
from daemon.logging import get_logger
from daemon.metrics import Metrics
from daemon.page import routes as page

log = get_logger("daemon.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SIGNALS_PATH = "/v1/signals"
MAX_REASON_CHARS = 500
_ACTOR_RE = re.compile(r"^[A-Za-z0-9_.@:+-]{1,64}$")
_SIGNAL_STATUSES = {200, 409, 422, 500, 503}

# Reason codes the API itself answers (the engine's come from risk/reasons.py).
MISSING_TOKEN = "missing_token"
INVALID_TOKEN = "invalid_token"
ADMIN_REQUIRED = "admin_required"
UNSUPPORTED_CONTENT_TYPE = "unsupported_content_type"
BODY_TOO_LARGE = "body_too_large"
MALFORMED_JSON = "malformed_json"
BODY_NOT_OBJECT = "body_not_object"
MISSING_REASON = "missing_reason"
INVALID_REASON = "invalid_reason"
INVALID_ACTOR = "invalid_actor"
MISSING_UNDERLYING = "missing_underlying"
STATUS_UNAVAILABLE = "status_unavailable"
INVALID_SYMBOL = "invalid_symbol"
RATE_LIMITED = api_limits.RATE_LIMITED  # 429, with Retry-After
BODY_TIMEOUT = api_limits.BODY_TIMEOUT  # 408
# Refusals counted in tradingd_api_refusals_total (Part 8): who knocked without a key, who came too often.
_COUNTED = {MISSING_TOKEN, INVALID_TOKEN, ADMIN_REQUIRED, RATE_LIMITED, BODY_TIMEOUT, BODY_TOO_LARGE, MALFORMED_JSON,
            JSON_TOO_DEEP, DUPLICATE_KEY}


class ApiError(Exception):
    def __init__(self, status: int, reason: str, message: str, headers: dict[str, str] | None = None):
        self.status = status
        self.reason = reason
        self.message = message
        self.headers = headers or {}
        super().__init__(message)


def _default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return str(obj)
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    return str(obj)


_dumps = partial(json.dumps, default=_default)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=_dumps)


def _refusal(path: str, status: int, reason: str, message: str) -> web.Response:
    if path == SIGNALS_PATH:
        return _json({"accepted": False, "reason": reason, "message": message, "decision": None}, status)
    return _json({"ok": False, "reason": reason, "message": message}, status)


class _SignalLocks:
    """One lock per signal id in flight, so two concurrent posts of one id are decided one after
    the other: the second gets the first's decision (409) instead of racing it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, signal_id: str | None) -> AsyncIterator[None]:
        if signal_id is None:
            yield
            return
        lock, users = self._locks.get(signal_id, (asyncio.Lock(), 0))
        self._locks[signal_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[signal_id]
            if users <= 1:
                del self._locks[signal_id]
            else:
                self._locks[signal_id] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


class Api:
    """Routes over one EngineControl. Build with `build_app`, serve with `start_api`."""

    def __init__(self, control: EngineControl, settings: Settings, metrics: Metrics, tokens: Tokens):
        self.control = control
        self.settings = settings
        self.metrics = metrics
        self.tokens = tokens
        self.locks = _SignalLocks()
        self.limiter = RateLimiter(settings.daemon.api.limits)
        self._refusal_logs = LogLimiter()

    # -------------------------------------------------------------- plumbing

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except ApiError as exc:
            status = exc.status
            if exc.reason in _COUNTED:
                self._count_refusal(request, exc)
            answer = _refusal(request.path, exc.status, exc.reason, exc.message)
            answer.headers.update(exc.headers)
            if exc.status == 408:  # the rest of a half-read body is still on the wire: drop the connection
                answer.force_close()
            return answer
        except web.HTTPException as exc:  # aiohttp's own 404/405/413
            status = exc.status
            reason = re.sub(r"[^a-z0-9]+", "_", (exc.reason or "error").lower()).strip("_")
            return _refusal(request.path, exc.status, reason, exc.reason or "")
        except asyncio.CancelledError:
            raise
        except Exception:
            status = 500
            log.exception("api_internal_error", method=request.method, path=request.path)
            return _refusal(request.path, 500, INTERNAL_ERROR, "internal error; see the daemon log")
        finally:
            route = _route_name(request)
            self.metrics.observe_api_request(route, request.method, status)
            log.debug("api_request", method=request.method, route=route, status=status,
                      duration_ms=round((time.perf_counter() - started) * 1000, 2))

    def _count_refusal(self, request: web.Request, exc: ApiError) -> None:
        """Every refusal counted; the first of each reason and client per minute logged (a flood of
        bad tokens is visible without flooding the journal)."""
        self.metrics.observe_api_refusal(exc.reason, exc.status)
        peer = request.remote
        if self._refusal_logs.first((exc.reason, peer)):
            log.warning("api_request_refused", status=exc.status, reason=exc.reason, method=request.method,
                        route=_route_name(request), remote=peer, message=exc.message)

    def _slow_client(self, peer: Any) -> None:
        self.metrics.observe_api_refusal(api_limits.SLOW_HEADERS, 0)
        if self._refusal_logs.first((api_limits.SLOW_HEADERS, str(peer))):
            log.warning("api_client_disconnected", reason=api_limits.SLOW_HEADERS, remote=str(peer),
                        header_timeout_s=str(self.settings.daemon.api.limits.header_timeout_s))

    def _throttle(self, role: str, route_class: str) -> None:
        wait = self.limiter.retry_after(role, route_class)
        if wait is not None:
            raise ApiError(429, RATE_LIMITED, f"too many requests for this token ({route_class}); retry in {wait} s",
                           {"Retry-After": str(wait)})

    def _guard(self, role: str, handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            header = request.headers.get("Authorization", "")
            scheme, _, presented = header.partition(" ")
            if not header:
                raise ApiError(401, MISSING_TOKEN, "missing Authorization: Bearer <token>")
            if scheme.lower() != "bearer" or not presented.strip():
                raise ApiError(401, INVALID_TOKEN, "Authorization must be 'Bearer <token>'")
            got = self.tokens.role(presented.strip())
            if got is None:
                raise ApiError(401, INVALID_TOKEN, "token not recognised")
            if role == "admin" and got != "admin":
                raise ApiError(403, ADMIN_REQUIRED, "this route needs the admin token")
            # operator commands (admin POSTs) have their own small bucket; reads share the requests one
            self._throttle(got, api_limits.OPERATOR if role == "admin" and request.method == "POST"
                           else api_limits.REQUESTS)
            return await handler(request)

        return guarded

    async def _body(self, request: web.Request, required: bool = True, *, signal: bool = False) -> Any:
        """The JSON body. For signals (`signal=True`) NaN/Infinity tokens and non-object values pass
        through, so the signal rules refuse them with their SPEC reason code and the refusal is
        stored; a body that is not JSON at all is refused here and logged with an excerpt."""
        if not request.body_exists and not required:
            return {}
        if request.content_type != "application/json":
            raise ApiError(400, UNSUPPORTED_CONTENT_TYPE,
                           f"Content-Type must be application/json, not {request.content_type!r}")
        limit = self.settings.daemon.api.max_body_bytes
        limits = self.settings.daemon.api.limits
        if request.content_length is not None and request.content_length > limit:
            raise ApiError(400, BODY_TOO_LARGE, f"body larger than {limit} bytes")
        try:
            raw = await asyncio.wait_for(request.read(), float(limits.body_timeout_s))
        except web.HTTPRequestEntityTooLarge:
            raise ApiError(400, BODY_TOO_LARGE, f"body larger than {limit} bytes") from None
        except TimeoutError:
            raise ApiError(408, BODY_TIMEOUT, f"the body did not arrive within {limits.body_timeout_s} s") from None
        if not raw.strip() and not required:
            return {}
        try:
            data = parse_json(raw, max_bytes=limit, max_depth=limits.max_json_depth, allow_constants=signal)
        except JsonRefused as exc:
            if signal:
                log.warning("signal_body_refused", reason=exc.code, excerpt=raw[:200].decode("utf-8", "replace"))
            raise ApiError(400, exc.code, exc.message) from None
        if not isinstance(data, dict) and not signal:
            raise ApiError(400, BODY_NOT_OBJECT, "body must be a JSON object")
        return data

    @staticmethod
    def _actor(body: dict[str, Any]) -> str:
        actor = body.get("actor")
        if actor is None:
            return "api"
        if not isinstance(actor, str) or not _ACTOR_RE.match(actor):
            raise ApiError(400, INVALID_ACTOR, "actor must be 1-64 characters of letters, digits and _.@:+-")
        return f"api:{actor}"

    @staticmethod
    def _reason(body: dict[str, Any]) -> str:
        reason = body.get("reason")
        if reason is None or (isinstance(reason, str) and not reason.strip()):
            raise ApiError(400, MISSING_REASON, 'body needs {"reason": "<why>"}')
        if not isinstance(reason, str) or len(reason) > MAX_REASON_CHARS:
            raise ApiError(400, INVALID_REASON, f"reason must be a string of at most {MAX_REASON_CHARS} characters")
        return reason.strip()

    async def _operator(self, action: str, actor: str, call: Callable[[], Awaitable[dict[str, Any]]]) -> web.Response:
        try:
            result = await call()
        except ControlError as exc:
            log.warning("operator_command_refused", action=action, actor=actor, reason=exc.code, message=exc.message)
            return _json({"ok": False, "reason": exc.code, "message": exc.message}, exc.http_status)
        log.info("operator_command", action=action, actor=actor, result=result)
        return _json(result)

    # -------------------------------------------------------------- routes

    async def post_signal(self, request: web.Request) -> web.Response:
        raw = await self._body(request, signal=True)
        signal_id = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None
        async with self.locks.hold(signal_id):
            outcome = await self.control.submit_signal(raw, "api")
        if not isinstance(outcome, SignalOutcome):
            raise TypeError(f"submit_signal returned {type(outcome).__name__}, not SignalOutcome")
        status = outcome.http_status
        if status not in _SIGNAL_STATUSES:
            status = 200 if outcome.accepted else 422
        return _json(outcome.to_json(), status)

    async def get_status(self, request: web.Request) -> web.Response:
        return _json(present_status(self.control.status()))

    async def get_positions(self, request: web.Request) -> web.Response:
        positions = [present_position(p) for p in self.control.positions()]
        return _json({"positions": positions, "count": len(positions)})

    async def post_halt(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        reason, actor = self._reason(body), self._actor(body)
        return await self._operator("halt", actor, lambda: self.control.halt(reason, actor))

    async def post_resume(self, request: web.Request) -> web.Response:
        actor = self._actor(await self._body(request, required=False))
        return await self._operator("resume", actor, lambda: self.control.resume(actor))

    async def post_flatten(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        reason, actor = self._reason(body), self._actor(body)
        return await self._operator("flatten", actor, lambda: self.control.flatten(reason, actor))

    async def post_acknowledge(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        underlying = body.get("underlying")
        if not isinstance(underlying, str) or not underlying.strip():
            raise ApiError(400, MISSING_UNDERLYING, 'body needs {"underlying": "<symbol>"}')
        if not underlying.isascii():  # "ſpy".upper() is "SPY": only ASCII letters are ever upper-cased
            raise ApiError(400, INVALID_SYMBOL, f"{underlying!r} is not an ASCII symbol")
        symbol, actor = underlying.strip().upper(), self._actor(body)
        return await self._operator("acknowledge", actor, lambda: self.control.acknowledge(symbol, actor))

    async def get_healthz(self, request: web.Request) -> web.Response:
        # Answering at all proves the event loop turns; the state says what it does.
        try:
            status = self.control.status()
        except Exception as exc:
            log.warning("healthz_status_failed", error=f"{type(exc).__name__}: {exc}")
            return _json({"ok": False, "reason": STATUS_UNAVAILABLE, "message": str(exc)}, 503)
        keys = ("profile", "trading_state", "breaker_level", "broker_connected", "accepting_signals")
        store = status.get("store")
        if isinstance(store, dict) and store.get("available") is False:  # SPEC §6.2: entries stopped, say why
            return _json({"ok": False, "reason": "store_unavailable", "message": store.get("reason"),
                          "journal_pending": store.get("pending"), **{k: status.get(k) for k in keys}}, 503)
        return _json({"ok": True, **{k: status.get(k) for k in keys}})

    async def get_openapi(self, request: web.Request) -> web.Response:
        return _json(openapi_document(self.settings))

    async def get_metrics(self, request: web.Request) -> web.Response:
        try:
            self.metrics.update_from_status(self.control.status())
        except Exception as exc:  # a stale gauge beats a failed scrape
            log.warning("metrics_status_failed", error=f"{type(exc).__name__}: {exc}")
        body, content_type = self.metrics.render()
        response = web.Response(body=body)
        response.headers["Content-Type"] = content_type
        return response

    def app(self) -> web.Application:
        app = web.Application(middlewares=[mark_head, self._errors],
                              client_max_size=self.settings.daemon.api.max_body_bytes)
        api, admin = partial(self._guard, "api"), partial(self._guard, "admin")
        app.router.add_post(SIGNALS_PATH, api(self.post_signal))
        app.router.add_get("/v1/status", api(self.get_status))
        app.router.add_get("/v1/positions", api(self.get_positions))
        app.router.add_post("/v1/halt", admin(self.post_halt))
        app.router.add_post("/v1/resume", admin(self.post_resume))
        app.router.add_post("/v1/flatten", admin(self.post_flatten))
        app.router.add_post("/v1/acknowledge", admin(self.post_acknowledge))
        app.router.add_get("/healthz", self.get_healthz)
        app.router.add_get("/metrics", self.get_metrics)
        app.router.add_get(OPENAPI_PATH, self.get_openapi)
        page.register(app, self.control, self.settings, self.tokens)  # GET / : the operator page (SPEC §11)
        return app


def _route_name(request: web.Request) -> str:
    # The route, not the raw path: a scanner probing random paths must not mint new series.
    route = request.match_info.route
    resource = getattr(route, "resource", None)
    return resource.canonical if resource is not None else "unmatched"


def _as_metrics(settings: Settings, registry: Metrics | CollectorRegistry | None) -> Metrics:
    if isinstance(registry, Metrics):
        return registry
    return Metrics(settings.profile.name, registry)


def build_app(control: EngineControl, settings: Settings, registry: Metrics | CollectorRegistry | None = None,
              tokens: Tokens | None = None) -> web.Application:
    return _build(control, settings, registry, tokens).app()


def _build(control: EngineControl, settings: Settings, registry: Metrics | CollectorRegistry | None,
           tokens: Tokens | None) -> Api:
    tokens = tokens if tokens is not None else load_tokens(settings, create=True)
    return Api(control, settings, _as_metrics(settings, registry), tokens)


async def start_api(control: EngineControl, settings: Settings,
                    registry: Metrics | CollectorRegistry | None = None,
                    tokens: Tokens | None = None) -> tuple[web.AppRunner, int]:
    """Serve the API on the configured loopback host and port (0: any free port).

    `registry`: the engine's `Metrics` (preferred) or a CollectorRegistry to declare on.
    `tokens`: None loads them (env, files, or generated into the state dir).
    Returns the started runner (stop with `await runner.cleanup()`) and the bound port,
    which is also written to `api_url_file(settings)` for the CLI.
    """
    api = _build(control, settings, registry, tokens)
    limits = settings.daemon.api.limits
    # Slow clients (Part 8): the first head within header_timeout_s or the connection is closed (and
    # counted); an idle kept-alive connection, or a later head on it, within twice that (aiohttp's own
    # keep-alive timer, which must not beat ours to a fresh connection).
    runner = GuardedRunner(api.app(), header_timeout_s=limits.header_timeout_s, on_slow=api._slow_client,
                           handle_signals=False, access_log=None,
                           keepalive_timeout=2 * float(limits.header_timeout_s),
                           lingering_time=0)  # no waiting out a refused client's unread body
    await runner.setup()
    host = settings.daemon.api.host
    site = web.TCPSite(runner, host, settings.daemon.api.port)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    port = int(runner.addresses[0][1])
    url = f"http://{'[::1]' if ':' in host else host}:{port}"
    try:
        path = api_url_file(settings)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(url + "\n")
    except OSError as exc:  # the CLI can still be given --url
        log.warning("api_url_file_unwritable", error=str(exc))
    log.info("api_listening", url=url, profile=settings.profile.name)
    return runner, port
