"""The parent-order executor (SPEC §4.2) for the async engine: a thin adapter over `broker.working.Working`.

`Working` holds the rules (slicing with §4.2's child sizing, repricing, the slippage band,
timeouts, exits that cross, pacing) as a synchronous, timer-driven state machine. This adapter
carries its commands out over any Broker: one driver task waits on the injected clock until
`Working.next_deadline()` (or until a broker event wakes it), calls `on_timer`, and sends what
came out, in order. `execute(parent)` starts a parent and returns its ExecutionResult when
Working reports it done.

The adapter does the I/O Working must not: order ids come from the injected allocator (awaited
only when a child is really sent: Working hands out provisional negative ids and the adapter
renumbers the child), every order intent (place and modify) goes through the injected
`before_send` before the broker sees it, snapshots for exits on stale quotes are fetched from
the broker into the book, and every message still passes the shared Throttle (the engine's
stops share it). The engine forwards the broker's `on_order_update` / `on_fill` callbacks to
the same-named methods.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import itertools
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal

import structlog

from broker.base import Broker, BrokerError
from broker.listings import round_to_tick
from broker.pacing import Pacer
from broker.parent import (  # noqa: F401 - re-exported: callers import the parent's values from here
    ChildOrderResult,
    ExecutionError,
    ExecutionResult,
    ExecutionStatus,
    Kind,
    ParentOrder,
    child_limit,
    child_quantity,
    two_sided,
)
from broker.quotes import QuoteBook
from broker.throttle import Throttle
from broker.working import Cancel, Modify, Place, SnapshotWanted, VenueCommand, Working, structlog_sink
from config.models import ExecutionConfig, Settings
from market.clock import Clock
from market.types import Fill, OrderRequest, OrderUpdate

log = structlog.get_logger(__name__)

OrderIdAllocator = Callable[[], "int | Awaitable[int]"]
BeforeSend = Callable[[OrderRequest], Awaitable[None]]
PriceRounder = Callable[[str, Decimal, str], Decimal]  # (underlying, price, "down"|"up") -> on-tick price


class Executor:
    def __init__(self, broker: Broker, book: QuoteBook, clock: Clock, cfg: ExecutionConfig, *,
                 allocate_order_id: OrderIdAllocator, before_send: BeforeSend, max_quote_age_s: Decimal,
                 throttle: Throttle | None = None, round_price: PriceRounder = round_to_tick):
        self._broker = broker
        self._book = book
        self._clock = clock
        self._cfg = cfg
        self._allocate = allocate_order_id
        self._before_send = before_send
        self._throttle = throttle or Throttle(clock, cfg.max_messages_per_s)
        self._working = Working(cfg, quotes=book, max_quote_age_s=max_quote_age_s, round_price=round_price,
                                pacer=Pacer(cfg.max_messages_per_s), log_to=structlog_sink)
        self._provisional = itertools.count(-1, -1)  # ids Working hands out until the allocator's are known
        self._waiters: dict[str, asyncio.Future[ExecutionResult]] = {}
        self._wake = asyncio.Event()
        self._driver: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, broker: Broker, book: QuoteBook, clock: Clock, settings: Settings, *,
                      allocate_order_id: OrderIdAllocator, before_send: BeforeSend,
                      throttle: Throttle | None = None) -> Executor:
        return cls(broker, book, clock, settings.execution, allocate_order_id=allocate_order_id,
                   before_send=before_send, max_quote_age_s=settings.liquidity.max_quote_age_s, throttle=throttle)

    @property
    def throttle(self) -> Throttle:
        return self._throttle

    @property
    def working(self) -> Working:
        return self._working

    @property
    def working_order_ids(self) -> list[int]:
        return [oid for oid in self._working.working_order_ids if oid > 0]

    # ------------------------------------------------------------------ broker events (forwarded by the engine)

    def on_order_update(self, update: OrderUpdate) -> None:
        self._working.on_update(update, self._clock.now())
        self._after_event()

    def on_fill(self, fill: Fill) -> None:
        self._working.on_fill(fill, self._clock.now())
        self._after_event()

    def _after_event(self) -> None:
        self._hand_out_results()
        self._wake.set()  # commands may have come out, or a deadline moved

    # ------------------------------------------------------------------ the parent

    async def execute(self, parent: ParentOrder) -> ExecutionResult:
        """Work `parent` to completion (or, for entries, to the timeout). Raises ExecutionError on bad input."""
        parent.validate()
        ref = self._working.start(parent, self._clock.now(), self._next_provisional)
        done: asyncio.Future[ExecutionResult] = asyncio.get_running_loop().create_future()
        self._waiters[ref] = done
        self._hand_out_results()
        self._kick()
        try:
            return await done
        except asyncio.CancelledError:
            self._waiters.pop(ref, None)
            await self._abandon(ref)
            raise

    def _next_provisional(self) -> int:
        return next(self._provisional)

    def _hand_out_results(self) -> None:
        for result in self._working.take_results():
            waiter = self._waiters.pop(result.parent_ref, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(result)

    async def _abandon(self, ref: str) -> None:
        """The caller cancelled the parent: pull every working child (unthrottled, best effort)."""
        for order_id in self._working.abandon(ref, self._clock.now()):
            if order_id <= 0:
                continue  # never reached the broker
            try:
                await self._broker.cancel(order_id)
            except Exception:  # noqa: BLE001
                log.exception("abandon_cancel_failed", order_id=order_id)
        self._wake.set()

    # ------------------------------------------------------------------ the driver

    def _kick(self) -> None:
        self._wake.set()
        if self._driver is None or self._driver.done():
            self._driver = asyncio.get_running_loop().create_task(self._drive(), name="executor")

    async def _drive(self) -> None:
        working = self._working
        while True:
            try:
                await self._send_all()
            except Exception:  # noqa: BLE001 - the driver must outlive any one command
                log.exception("executor_command_failed")
            self._hand_out_results()
            if not len(working) and not self._waiters:
                return
            deadline = working.next_deadline()
            self._wake.clear()
            if deadline is None:
                await self._wake.wait()
            else:
                await self._wait(deadline)
            working.on_timer(self._clock.now())
            self._hand_out_results()

    async def _send_all(self) -> None:
        while commands := self._working.take_commands():
            for command in commands:
                await self._carry_out(command)
                self._hand_out_results()

    async def _carry_out(self, command: VenueCommand) -> None:
        """One command; an unexpected failure (not a broker refusal) ends its parent with that
        exception, raised from `execute()` as before: the engine logs it and gives the contracts back."""
        if isinstance(command, SnapshotWanted):
            try:
                await self._snapshot(command.key)
            except Exception:  # noqa: BLE001 - a broken snapshot is a failed one
                log.exception("exit_snapshot_failed", key=command.key, code="snapshot_failed")
                self._working.on_snapshot(command.key, None, self._clock.now())
            return
        order_id = command.order_id if isinstance(command, Cancel) else command.request.order_id
        ref = self._working.parent_of(order_id)
        try:
            await self._carry_out_order(command)
        except Exception as exc:  # noqa: BLE001
            log.exception("executor_command_failed", order_id=order_id, order_ref=ref)
            if ref is not None:
                self._working.abandon(ref, self._clock.now())
                waiter = self._waiters.pop(ref, None)
                if waiter is not None and not waiter.done():
                    waiter.set_exception(exc)

    async def _carry_out_order(self, command: VenueCommand) -> None:
        if isinstance(command, Place):
            await self._place(command.request)
        elif isinstance(command, Modify):
            await self._modify(command.request)
        elif isinstance(command, Cancel):
            await self._cancel(command.order_id)

    async def _allocate_id(self) -> int:
        value = self._allocate()
        if inspect.isawaitable(value):
            value = await value
        return int(value)

    async def _place(self, provisional: OrderRequest) -> None:
        if not self._working.is_live(provisional.order_id):
            return  # its parent was abandoned before it left
        order_id = await self._allocate_id()
        if not self._working.renumber(provisional.order_id, order_id):
            log.warning("order_id_unused", order_id=order_id, order_ref=provisional.order_ref)
            return
        request = dataclasses.replace(provisional, order_id=order_id)
        try:
            await self._before_send(request)
        except Exception as exc:  # noqa: BLE001 - no recorded intent, no order
            log.exception("before_send_failed", order_ref=request.order_ref)
            self._working.refused(order_id, f"intent_not_recorded: {type(exc).__name__}", self._clock.now())
            return
        # The token is taken last, with no await between it and the send, so the pace holds on the wire.
        await self._throttle.acquire()
        try:
            await self._broker.place(request)
        except BrokerError as exc:
            self._working.refused(order_id, exc.code, self._clock.now())  # logged there

    async def _modify(self, request: OrderRequest) -> None:
        now = self._clock.now()
        try:
            await self._before_send(request)
        except Exception:  # noqa: BLE001 - intent not recorded: keep the working price
            log.exception("before_send_failed", order_ref=request.order_ref)
            self._working.modify_refused(request.order_id, "intent_not_recorded", now)
            return
        await self._throttle.acquire()
        if not self._working.is_live(request.order_id) or request.order_id not in self._working.working_order_ids:
            return  # it filled while waiting for the throttle
        try:
            await self._broker.modify(request)
        except BrokerError as exc:  # most often: it filled or was cancelled on the way (logged there)
            self._working.modify_refused(request.order_id, exc.code, self._clock.now())

    async def _cancel(self, order_id: int) -> None:
        await self._throttle.acquire()
        if order_id not in self._working.working_order_ids:
            return
        try:
            await self._broker.cancel(order_id)
        except BrokerError as exc:
            log.warning("cancel_refused", order_id=order_id, code=exc.code)

    async def _snapshot(self, key: str) -> None:
        await self._throttle.acquire()  # a snapshot request is a message too
        try:
            snap = await self._broker.snapshot(key)
        except BrokerError as exc:
            log.warning("exit_snapshot_failed", key=key, code=exc.code)
            self._working.on_snapshot(key, None, self._clock.now())
            return
        self._book.update(snap)
        self._working.on_snapshot(key, snap, self._clock.now())

    # ------------------------------------------------------------------ waiting on the injected clock

    async def _wait(self, until: datetime) -> None:
        """Until `until` on the clock or until a broker event or a new parent wakes the driver."""
        seconds = (until - self._clock.now()).total_seconds()
        if self._wake.is_set():
            return
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        sleeper = asyncio.ensure_future(self._clock.sleep(seconds))
        waiter = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({sleeper, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waiter.cancel()
