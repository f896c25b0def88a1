"""One ib_async connection kept alive (SPEC §6.1): connect, paper check, heartbeat, reconnect.

States: DISCONNECTED (no new orders) -> RECONCILING (connected; the `on_up` hook resubscribes
and reconciles, the engine refuses entries) -> READY. A heartbeat (`reqCurrentTime`) that
goes unanswered, a closed socket, error 1100 or 1300 take it back to DISCONNECTED; a
reconnect loop with exponential backoff and jitter follows when the socket is gone.
Error 326 moves to the next client id. Inside IB's nightly restart window or at the
weekend a disconnect is expected (logged); outside, `alert` fires once the outage has
lasted `disconnect_alert_after_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from datetime import datetime
from enum import Enum
from typing import Any, TypeVar

import structlog
from ib_async import IB
from ib_async.ib import StartupFetch

from broker.base import BrokerError
from broker.ib import codes
from broker.ib.account import check_account
from broker.ib.windows import backoff_delays, in_restart_window
from config.models import IBConfig
from market.clock import Clock
from market.tasks import Tasks

log = structlog.get_logger("broker.ib")

T = TypeVar("T")
UpHook = Callable[[str], Awaitable[None]]
DownHook = Callable[[str], None]
AlertHook = Callable[[str, Mapping[str, Any]], None]
Pace = Callable[[], Awaitable[None]]

# ib_async draws request ids (market data, contract details) from the order-id sequence.
# Our order ids come from the engine, so request ids are moved far above them: an IB error
# for a market-data request can then never be mistaken for one about an order.
REQ_ID_BASE = 1 << 30
# What ib_async loads on connect: this client's open orders (account updates follow the paper check).
STARTUP_FETCH = StartupFetch.POSITIONS | StartupFetch.ORDERS_OPEN
# Messages ib_async sends on its own while connecting (handshake, startApi, reqPositions,
# reqOpenOrders): counted against the Throttle before it starts, so the wire never exceeds it.
CONNECT_MESSAGES = 4
# Refusals that no reconnect can cure: the operator must change the configuration.
FATAL_CODES = frozenset({"live_account_refused", "account_not_found", "account_ambiguous", "no_account"})


class ConnectionState(str, Enum):
    DISCONNECTED = "disconnected"
    RECONCILING = "reconciling"
    READY = "ready"
    STOPPED = "stopped"


class _ClientIdInUse(Exception):
    pass


class IBSession:
    def __init__(self, cfg: IBConfig, clock: Clock, *, pace: Pace,
                 ib: IB | None = None, rng: random.Random | None = None, alert: AlertHook | None = None):
        self.cfg = cfg
        self.clock = clock
        self.ib = ib or IB()
        # Execution times without a zone are the gateway's, never the host's (SPEC §6.1).
        self.ib.TimezoneTWS = cfg.gateway_timezone
        self._pace = pace
        self._rng = rng or random.Random()
        self._alert = alert or _log_alert
        self._keep_alive = True
        self.state = ConnectionState.STOPPED
        self.account = ""
        self.client_id = cfg.client_id
        self.moved_from: set[int] = set()  # client ids this session had to leave (326)
        self.next_valid_id: int | None = None
        self.down_since: datetime | None = None
        self.reconnects = 0
        self._on_up: UpHook | None = None
        self._on_down: DownHook | None = None
        self._on_ready: Callable[[str], None] | None = None
        self._connecting = False
        self._drop_reason: str | None = None
        self._up_task: asyncio.Task[None] | None = None
        self._reconnect_task: asyncio.Task[None] | None = None
        self._tasks = Tasks(log, "ib_task_failed")
        self._id_waiters: list[asyncio.Future[int]] = []
        # The decoder looks wrapper methods up on every message, so an instance attribute hooks it.
        self.ib.wrapper.nextValidId = self._on_next_valid_id  # type: ignore[method-assign]
        self.ib.disconnectedEvent += self._on_socket_closed
        self.ib.errorEvent += self._on_error

    def set_hooks(self, on_up: UpHook, on_down: DownHook, on_ready: Callable[[str], None]) -> None:
        self._on_up, self._on_down, self._on_ready = on_up, on_down, on_ready

    @property
    def socket_up(self) -> bool:
        return self.ib.isConnected()

    @property
    def disconnect_expected(self) -> bool:
        """True while disconnected inside the nightly restart window or the weekend."""
        return self.state is ConnectionState.DISCONNECTED and self._in_window(self.clock.now())

    # ------------------------------------------------------------------ lifecycle

    def alert(self, kind: str, detail: Mapping[str, Any]) -> None:
        self._alert(kind, detail)

    async def start(self, *, keep_alive: bool = True) -> None:
        """Connect once (BrokerError when it cannot or the account is refused), then keep the connection.

        `keep_alive=False` (a one-shot probe such as `broker check`): no heartbeat, no reconnect, no
        reconciliation hook; a closed socket just ends the session.
        """
        self._keep_alive = keep_alive
        self.state = ConnectionState.DISCONNECTED
        try:
            await self._connect()
        except BrokerError:
            self.state = ConnectionState.STOPPED
            raise
        if not keep_alive:
            self.state = ConnectionState.READY
            return
        self.spawn(self._heartbeat())
        up = self._came_up("connected")
        if up is not None:
            await asyncio.wait({up})  # not `await up`: a drop cancels it, which must not cancel start()

    async def stop(self) -> None:
        self.state = ConnectionState.STOPPED
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.ib.disconnect()

    async def request_next_valid_id(self) -> int:
        """Ask the gateway for its next valid order id (reqIds)."""
        self._require_socket()
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._id_waiters.append(fut)
        await self._pace()
        self.ib.client.reqIds(-1)
        try:
            return await self.within(fut, float(self.cfg.heartbeat_timeout_s))
        except TimeoutError:
            raise BrokerError("timeout", "the gateway did not answer reqIds") from None
        finally:
            if fut in self._id_waiters:
                self._id_waiters.remove(fut)

    async def within(self, awaitable: Awaitable[T], seconds: float) -> T:
        """`awaitable`'s result, or TimeoutError after `seconds` on the injected clock."""
        task = asyncio.ensure_future(awaitable)
        timer = asyncio.ensure_future(self.clock.sleep(seconds))
        try:
            await asyncio.wait({task, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
        if task.done():
            return task.result()
        task.cancel()
        raise TimeoutError

    # ------------------------------------------------------------------ connecting

    async def _connect(self) -> None:
        """Connect as our client id. On 326 (in use: often our own session the gateway has not dropped yet)
        the same id is tried again with backoff `client_id_retries` times: IB ties every order to the
        client id that placed it, so moving on loses control of the orders (stops) placed before. Only
        then the next ids, up to `client_id_attempts`; a move is alerted, and reconciliation blocks the
        underlyings whose orders the new id cannot change."""
        self._connecting = True
        first = self.client_id
        own_waits = backoff_delays(self.cfg.reconnect_initial_s, self.cfg.reconnect_max_s,
                                   self.cfg.reconnect_jitter, self._rng)
        own_retries = 0
        tried = 0
        try:
            while tried < self.cfg.client_id_attempts:
                try:
                    await self._connect_as(self.client_id)
                except _ClientIdInUse:
                    if self.client_id == first and own_retries < self.cfg.client_id_retries:
                        own_retries += 1
                        delay = next(own_waits)
                        log.warning("ib_client_id_in_use", client_id=self.client_id, retry=own_retries,
                                    wait_s=round(delay, 3))
                        await self.clock.sleep(delay)
                        continue
                    tried += 1
                    log.warning("ib_client_id_in_use", client_id=self.client_id, next_client_id=self.client_id + 1)
                    self.client_id += 1
                    continue
                try:
                    self.account = check_account(self.ib.managedAccounts(), self.cfg)
                    await self._pace()
                    await self.within(self.ib.reqAccountUpdatesAsync(self.account), float(self.cfg.connect_timeout_s))
                except TimeoutError:
                    self.ib.disconnect()
                    raise BrokerError("connect_failed", "the gateway did not send the account's values") from None
                except BrokerError:
                    self.ib.disconnect()
                    raise
                self.ib.client.updateReqId(REQ_ID_BASE)
                # Our Throttle paces every message we send; a second window inside ib_async, offset
                # from ours, would hold messages back (a heartbeat too) for up to a second.
                self.ib.client.MaxRequests = 0
                log.info("ib_connected", host=self.cfg.host, port=self.cfg.port, client_id=self.client_id,
                         account=self.account, server_version=self.ib.client.serverVersion(),
                         next_valid_id=self.next_valid_id)
                if self.client_id != first:
                    self.moved_from.add(first)
                    self._alert("ib_client_id_moved", {
                        "from_client_id": first, "to_client_id": self.client_id,
                        "message": f"client id {first} stayed in use after {own_retries} retries; orders placed "
                                   f"as client {first} can no longer be changed or cancelled by this session, "
                                   "their underlyings are blocked for entries"})
                return
            self.client_id = first  # the next attempt starts from our own id again
            raise BrokerError("326", f"client ids {first}..{first + tried - 1} are all in use at the gateway")
        finally:
            self._connecting = False

    async def _connect_as(self, client_id: int) -> None:
        in_use = asyncio.Event()
        closed = asyncio.Event()

        def on_error(_req_id: int, code: int, _msg: str, _contract: Any) -> None:
            if codes.info(code).effect is codes.Effect.CLIENT_ID_IN_USE:
                in_use.set()

        def on_api_error(_msg: str) -> None:
            closed.set()

        def on_socket_closed(_msg: str) -> None:  # ib_async says nothing when the peer hangs up mid-handshake
            if not self.ib.client.isReady():
                closed.set()

        for _ in range(CONNECT_MESSAGES):
            await self._pace()
        self.ib.errorEvent += on_error
        self.ib.client.apiError += on_api_error
        self.ib.client.conn.disconnected += on_socket_closed
        connect = asyncio.ensure_future(self.ib.connectAsync(
            self.cfg.host, self.cfg.port, client_id, timeout=float(self.cfg.connect_timeout_s),
            fetchFields=STARTUP_FETCH))
        flagged = asyncio.ensure_future(_first(in_use.wait(), closed.wait()))
        try:
            await asyncio.wait({connect, flagged}, return_when=asyncio.FIRST_COMPLETED)
            if connect.done() and not connect.cancelled() and connect.exception() is None and not in_use.is_set():
                return
            if not connect.done():
                connect.cancel()
            with contextlib.suppress(BaseException):
                await connect
            self.ib.disconnect()
            if in_use.is_set():
                raise _ClientIdInUse
            code, reason = _connect_failure(closed.is_set(), None if connect.cancelled() else connect.exception())
            raise BrokerError(code, f"cannot connect to IB at {self.cfg.host}:{self.cfg.port} "
                                    f"as client {client_id}: {reason}")
        finally:
            flagged.cancel()
            self.ib.errorEvent -= on_error
            self.ib.client.apiError -= on_api_error
            self.ib.client.conn.disconnected -= on_socket_closed

    def _on_next_valid_id(self, order_id: int) -> None:
        self.next_valid_id = order_id
        self.ib.client.updateReqId(REQ_ID_BASE)
        for fut in self._id_waiters:
            if not fut.done():
                fut.set_result(order_id)

    # ------------------------------------------------------------------ up and down

    def _came_up(self, reason: str) -> asyncio.Task[None] | None:
        """Connected (or connectivity restored): RECONCILING until the hook has run, then READY.

        A newer reason supersedes a reconciliation still running (only the latest one counts).
        """
        if self.state is ConnectionState.STOPPED:
            return None
        if self.state is ConnectionState.DISCONNECTED and self.down_since is not None:
            log.info("ib_reconnected", reason=reason, down_s=(self.clock.now() - self.down_since).total_seconds())
        self.state = ConnectionState.RECONCILING
        self.down_since = None
        if self._up_task is not None and not self._up_task.done():
            self._up_task.cancel()
        self._up_task = self.spawn(self._run_up(reason))
        return self._up_task

    async def _run_up(self, reason: str) -> None:
        try:
            if self._on_up is not None:
                await self._on_up(reason)
        except (ConnectionError, TimeoutError, BrokerError) as exc:
            log.warning("ib_reconcile_incomplete", reason=reason, error=str(exc))
            return
        except Exception:  # the hook is other rooms' code: a bug there must not kill the connection
            log.exception("ib_reconcile_failed", reason=reason)
            return
        if self.state is ConnectionState.RECONCILING and self.socket_up:
            self.state = ConnectionState.READY
            log.info("ib_ready", reason=reason)
            if self._on_ready is not None:
                self._on_ready(reason)

    def _went_down(self, reason: str) -> None:
        if self.state in (ConnectionState.DISCONNECTED, ConnectionState.STOPPED):
            return
        now = self.clock.now()
        self.state = ConnectionState.DISCONNECTED
        self.down_since = now
        expected = self._in_window(now)
        (log.info if expected else log.warning)("ib_disconnected", reason=reason, expected=expected)
        if self._up_task is not None:
            self._up_task.cancel()
        if self._on_down is not None:
            self._on_down(reason)
        self.spawn(self._watch_outage(now, reason))

    def _drop(self, reason: str) -> None:
        """Close the socket whatever it says, and reconnect."""
        self._drop_reason = reason
        # ib_async's disconnect() forgets pending requests without failing them; fail them so no caller hangs.
        self.ib.wrapper.connectionClosed()
        self.ib.disconnect()
        self._drop_reason = None
        self._went_down(reason)
        self._ensure_reconnecting()

    def _on_socket_closed(self) -> None:
        if self._connecting or self.state is ConnectionState.STOPPED:
            return
        if not self._keep_alive:
            self.state = ConnectionState.DISCONNECTED
            return
        self._went_down(self._drop_reason or "socket_closed")
        self._ensure_reconnecting()

    def _on_error(self, req_id: int, code: int, message: str, _contract: Any) -> None:
        info = codes.info(code)
        getattr(log, info.log_level)("ib_message", code=code, req_id=req_id, message=message, meaning=info.meaning)
        if self.state is ConnectionState.STOPPED or self._connecting or not self._keep_alive:
            return
        if info.effect is codes.Effect.CONNECTIVITY_LOST:
            self._went_down(str(code))
        elif info.effect in (codes.Effect.RESTORED_DATA_LOST, codes.Effect.RESTORED_DATA_KEPT):
            if self.socket_up:
                self._came_up(str(code))
        elif info.effect is codes.Effect.SOCKET_RESET:
            self._drop(str(code))
        elif info.effect is codes.Effect.PACING:
            self._alert("ib_pacing_violation", {"code": code, "message": message})

    def _ensure_reconnecting(self) -> None:
        if self.state is ConnectionState.STOPPED:
            return
        if self._reconnect_task is None or self._reconnect_task.done():
            self._reconnect_task = self.spawn(self._reconnect())

    async def _reconnect(self) -> None:
        delays = backoff_delays(self.cfg.reconnect_initial_s, self.cfg.reconnect_max_s,
                                self.cfg.reconnect_jitter, self._rng)
        for attempt, delay in enumerate(delays, start=1):
            await self.clock.sleep(delay)
            if self.state is ConnectionState.STOPPED:
                return
            try:
                await self._connect()
            except BrokerError as exc:
                if exc.code in FATAL_CODES:
                    log.critical("ib_reconnect_refused", code=exc.code, error=str(exc))
                    self._alert("ib_account_refused", {"code": exc.code, "message": str(exc)})
                    return
                log.info("ib_reconnect_failed", attempt=attempt, waited_s=round(delay, 3), error=str(exc))
                continue
            except Exception as exc:  # anything else (an OSError, a library bug) is one more failed attempt
                log.exception("ib_reconnect_failed", code="reconnect_error", attempt=attempt, error=repr(exc))
                continue
            self.reconnects += 1
            self._came_up("reconnected")
            return

    async def _heartbeat(self) -> None:
        interval = float(self.cfg.heartbeat_interval_s)
        timeout = float(self.cfg.heartbeat_timeout_s)
        while self.state is not ConnectionState.STOPPED:
            await self.clock.sleep(interval)
            try:
                await self._beat(timeout)
            except Exception:  # a dead heartbeat would never notice a dead gateway: log and beat on
                log.exception("ib_heartbeat_error", code="heartbeat_error")

    async def _beat(self, timeout: float) -> None:
        if self._connecting or not self.socket_up:
            return
        if self.state is ConnectionState.RECONCILING and (self._up_task is None or self._up_task.done()):
            self._came_up("retry")  # an earlier reconciliation did not finish
        try:
            await self._pace()
            await self.within(self.ib.reqCurrentTimeAsync(), timeout)
        except (TimeoutError, ConnectionError):
            if self.socket_up and not self._connecting and self.state is not ConnectionState.STOPPED:
                log.warning("ib_heartbeat_timeout", timeout_s=timeout)
                self._drop("heartbeat_timeout")

    async def _watch_outage(self, since: datetime, reason: str) -> None:
        wait = float(self.cfg.disconnect_alert_after_s)
        while True:
            await self.clock.sleep(wait)
            if self.state is not ConnectionState.DISCONNECTED or self.down_since != since:
                return
            if self._in_window(self.clock.now()):
                continue
            self._alert("ib_disconnected", {"since": since.isoformat(), "reason": reason,
                                            "down_s": (self.clock.now() - since).total_seconds()})
            return

    # ------------------------------------------------------------------ helpers

    def _in_window(self, now: datetime) -> bool:
        return in_restart_window(now, self.cfg.restart_window_start, self.cfg.restart_window_end)

    def _require_socket(self) -> None:
        if not self.socket_up:
            raise BrokerError("not_connected", "not connected to IB")

    def spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        return self._tasks.spawn(coro)


CONNECTION_REFUSED, CONNECTION_CLOSED, CONNECT_TIMEOUT = "connection_refused", "connection_closed", "connect_timeout"
CONNECT_FAILURES = frozenset({CONNECTION_REFUSED, CONNECTION_CLOSED, CONNECT_TIMEOUT, "connect_failed"})


def _connect_failure(closed: bool, exc: BaseException | None) -> tuple[str, str]:
    """Tell "nobody listens" from "the gateway hung up" from "no answer in time": each has another fix."""
    if isinstance(exc, ConnectionRefusedError):
        return CONNECTION_REFUSED, "connection refused (nothing listens on that port)"
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return CONNECT_TIMEOUT, "the gateway did not complete the handshake in time"
    if closed or isinstance(exc, (ConnectionError, EOFError)):
        return CONNECTION_CLOSED, "the gateway closed the connection"
    return "connect_failed", repr(exc)


async def _first(*aws: Awaitable[Any]) -> None:
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()


def _log_alert(kind: str, detail: Mapping[str, Any]) -> None:
    log.error("alert", alert=kind, **detail)
