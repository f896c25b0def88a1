"""What one client may ask of the API (Part 8): per-token rate limits and slow-client deadlines.

- `RateLimiter`: one token bucket per (token role, route class); over it, the answer is 429 with
  Retry-After. Operator routes have their own, smaller bucket, so a flood of signals never locks
  an operator out of `halt`, and a stuck operator script cannot flood the daemon either.
- `GuardedRunner`: an aiohttp AppRunner whose connections must deliver their first request head
  within `header_timeout_s` or are closed (a slow-header client holds no connection open for
  long). Later heads on a kept-alive connection are bounded by aiohttp's keep-alive timeout,
  which `start_api` sets to twice that.
- `LogLimiter`: one log line per key per interval (a flood is counted in full, logged once).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from aiohttp import web

from config.models import ApiLimitsConfig

RATE_LIMITED = "rate_limited"
SLOW_HEADERS = "slow_headers"
BODY_TIMEOUT = "body_timeout"

OPERATOR = "operator"
REQUESTS = "requests"


class TokenBucket:
    """`rate` tokens a second up to `burst`; `take()` is 0.0 when allowed, else the seconds to wait."""

    def __init__(self, rate: float, burst: int, now: Callable[[], float]):
        self.rate, self.burst, self._now = rate, float(burst), now
        self._tokens, self._at = float(burst), now()

    def take(self) -> float:
        now = self._now()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate


class RateLimiter:
    def __init__(self, cfg: ApiLimitsConfig, now: Callable[[], float] = time.monotonic):
        self.cfg, self._now = cfg, now
        self._buckets: dict[tuple[str, str], TokenBucket] = {}

    def retry_after(self, role: str, route_class: str) -> int | None:
        """None when the request may go ahead; otherwise whole seconds to wait (Retry-After, >= 1)."""
        bucket = self._buckets.get((role, route_class))
        if bucket is None:
            rate, burst = ((self.cfg.operator_per_s, self.cfg.operator_burst) if route_class == OPERATOR
                           else (self.cfg.signals_per_s, self.cfg.signals_burst))
            bucket = self._buckets[(role, route_class)] = TokenBucket(float(rate), burst, self._now)
        wait = bucket.take()
        return None if wait <= 0 else max(1, math.ceil(wait))


class LogLimiter:
    def __init__(self, interval_s: float = 60.0, now: Callable[[], float] = time.monotonic, max_keys: int = 10_000):
        self.interval_s, self._now, self._max = interval_s, now, max_keys
        self._last: dict[Any, float] = {}

    def first(self, key: Any) -> bool:
        now = self._now()
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            return False
        if len(self._last) >= self._max:
            self._last = {k: v for k, v in self._last.items() if now - v < self.interval_s}
        self._last[key] = now
        return True


# ---------------------------------------------------------------------------- slow request heads


class _HeadDeadline(asyncio.Protocol):
    """Wraps one aiohttp RequestHandler: closes the connection when no complete request head has
    arrived within `timeout_s` of connecting. The head is known to be complete when aiohttp hands
    the request to the app (`head_seen`, called by the `mark_head` middleware)."""

    def __init__(self, inner: Any, timeout_s: float, on_slow: Callable[[Any], None]):
        self._inner, self._timeout_s, self._on_slow = inner, timeout_s, on_slow
        self._transport: Any = None
        self._timer: asyncio.TimerHandle | None = None
        self.heads = 0

    def connection_made(self, transport: Any) -> None:
        self._transport = transport
        self._inner.connection_made(transport)
        self._timer = asyncio.get_running_loop().call_later(self._timeout_s, self._expire)

    def head_seen(self) -> None:
        self.heads += 1
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        if self.heads == 0 and self._transport is not None and not self._transport.is_closing():
            peer = self._transport.get_extra_info("peername")
            self._transport.close()
            self._on_slow(peer)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


@dataclass
class _GuardedServer:
    """aiohttp's web.Server with each connection's protocol wrapped in a `_HeadDeadline`."""

    inner: Any
    timeout_s: float
    on_slow: Callable[[Any], None]

    def __call__(self) -> _HeadDeadline:
        return _HeadDeadline(self.inner(), self.timeout_s, self.on_slow)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class GuardedRunner(web.AppRunner):
    def __init__(self, app: web.Application, *, header_timeout_s: Decimal | float,
                 on_slow: Callable[[Any], None], **kwargs: Any):
        super().__init__(app, **kwargs)
        self._header_timeout_s = float(header_timeout_s)
        self._on_slow = on_slow

    async def _make_server(self) -> Any:
        return _GuardedServer(await super()._make_server(), self._header_timeout_s, self._on_slow)


@web.middleware
async def mark_head(request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
    """The request's head is complete: its connection's head deadline is met."""
    transport = request.transport
    protocol = transport.get_protocol() if transport is not None else None
    if isinstance(protocol, _HeadDeadline):
        protocol.head_seen()
    return await handler(request)
