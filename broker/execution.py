"""The parent-order executor (SPEC §4.2): slicing, repricing and slippage protection over any Broker.

A parent above `slice_threshold` of notional is worked as child limit orders of at most
`max_child_contracts` (and never more than the size shown at the far touch), one child at a
time, each sent at least `child_interval_s` after the previous one. A child starts at mid and
walks toward the far touch by `reprice_step_pct_of_spread` of the spread every `reprice_s`,
never past mid ± `max_slippage_pct` of mid. Entries give up at `parent_timeout_s` (cancel, keep
what filled, underfilled). Exits never give up: once the walk is held at the band they cross
the spread (a marketable limit at the far touch) until done; an exit on a stale quote asks the
broker for a snapshot and crosses at once.

The executor does no I/O of its own: order ids come from the injected allocator, every order
intent (place and modify) goes through the injected `before_send` before the broker sees it,
all waiting is on the injected clock, and every message passes the shared Throttle. The
engine forwards the broker's `on_order_update` / `on_fill` callbacks to the same-named methods.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import structlog

from broker.base import Broker, BrokerError
from broker.listings import round_to_tick
from broker.order_ref import build_order_ref, parent_ref
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
from market.types import Fill, OrderRequest, OrderStatus, OrderUpdate, Quote
from config.models import ExecutionConfig, Settings
from market.clock import Clock

log = structlog.get_logger(__name__)

OrderIdAllocator = Callable[[], "int | Awaitable[int]"]
BeforeSend = Callable[[OrderRequest], Awaitable[None]]
PriceRounder = Callable[[str, Decimal, str], Decimal]  # (underlying, price, "down"|"up") -> on-tick price


@dataclass(eq=False)
class _Child:
    request: OrderRequest
    sent_at: datetime
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    limits: list[tuple[datetime, Decimal]] = field(default_factory=list)
    status: OrderStatus = OrderStatus.PENDING_SUBMIT
    reported_filled: int = 0
    reported_avg: Decimal | None = None
    fills: dict[str, Fill] = field(default_factory=dict)
    reason: str | None = None
    crossing: bool = False
    cancel_requested: bool = False

    @property
    def fill_qty(self) -> int:
        return sum(f.quantity for f in self.fills.values())

    @property
    def filled(self) -> int:
        return min(max(self.fill_qty, self.reported_filled), self.request.quantity)

    @property
    def done(self) -> bool:
        return self.status.done or self.filled >= self.request.quantity

    @property
    def avg_price(self) -> Decimal | None:
        qty = self.fill_qty
        if qty and qty >= self.reported_filled:
            return sum((f.price * f.quantity for f in self.fills.values()), Decimal(0)) / qty
        return self.reported_avg if self.filled else None

    def result(self) -> ChildOrderResult:
        status = self.status
        if self.filled >= self.request.quantity:
            status = OrderStatus.FILLED
        return ChildOrderResult(
            self.request.order_id, self.request.order_ref, self.request.quantity, self.filled, self.avg_price,
            status, self.sent_at, tuple(self.limits),
            sum((f.commission for f in self.fills.values()), Decimal(0)), self.reason)


@dataclass(eq=False)
class _Run:
    parent: ParentOrder
    ref: str
    deadline: datetime | None
    children: list[_Child] = field(default_factory=list)
    arrival_mid: Decimal | None = None
    sliced: bool = False
    status: ExecutionStatus = ExecutionStatus.FILLED
    reason: str | None = None

    @property
    def filled(self) -> int:
        return sum(c.filled for c in self.children)

    @property
    def is_exit(self) -> bool:
        return self.parent.kind == "exit"

    def expired(self, now: datetime) -> bool:
        return self.deadline is not None and now >= self.deadline

    def result(self) -> ExecutionResult:
        children = tuple(c.result() for c in self.children)
        filled = sum(c.filled for c in children)
        priced = [(c.avg_price, c.filled) for c in children if c.filled and c.avg_price is not None]
        avg = sum((p * q for p, q in priced), Decimal(0)) / sum(q for _, q in priced) if priced else None
        slippage = None
        if avg is not None and self.arrival_mid is not None:
            slippage = (avg - self.arrival_mid) * (1 if self.parent.side == "BUY" else -1)
        status = self.status
        if filled >= self.parent.quantity:
            status = ExecutionStatus.FILLED
        return ExecutionResult(
            self.ref, self.parent.quantity, filled, avg, slippage, children, filled < self.parent.quantity,
            status, self.arrival_mid, sum((c.commission for c in children), Decimal(0)),
            None if status is ExecutionStatus.FILLED else self.reason)


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
        self._max_quote_age_s = max_quote_age_s
        self._throttle = throttle or Throttle(clock, cfg.max_messages_per_s)
        self._round_price = round_price
        self._live: dict[int, _Child] = {}

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
    def working_order_ids(self) -> list[int]:
        return [oid for oid, c in self._live.items() if not c.done]

    # ------------------------------------------------------------------ broker events (forwarded by the engine)

    def on_order_update(self, update: OrderUpdate) -> None:
        child = self._live.get(update.order_id)
        if child is None:
            return
        if not child.status.done:  # a late non-terminal status must not revive a finished order
            child.status = update.status
        child.reported_filled = max(child.reported_filled, update.filled)
        if update.avg_fill_price is not None:
            child.reported_avg = update.avg_fill_price
        if update.reason:
            child.reason = update.reason
        child.wake.set()

    def on_fill(self, fill: Fill) -> None:
        child = self._live.get(fill.order_id)
        if child is None:
            return
        child.fills[fill.exec_id] = fill  # keyed by exec id: a resent execution (with its commission) counts once
        child.wake.set()

    # ------------------------------------------------------------------ the parent

    async def execute(self, parent: ParentOrder) -> ExecutionResult:
        """Work `parent` to completion (or, for entries, to the timeout). Raises ExecutionError on bad input."""
        parent.validate()
        now = self._clock.now()
        deadline = None if parent.kind == "exit" else now + timedelta(seconds=float(self._cfg.parent_timeout_s))
        run = _Run(parent, parent_ref(parent.profile, parent.source_id, self._cfg.order_ref_prefix), deadline)
        log.debug("parent_start", order_ref=run.ref, contract=parent.contract.key, side=parent.side,
                 quantity=parent.quantity, kind=parent.kind)
        try:
            await self._work_parent(run)
        except asyncio.CancelledError:
            await self._abandon(run)
            raise
        finally:
            for child in run.children:
                self._live.pop(child.request.order_id, None)
        result = run.result()
        # Debug: the engine's "order" line is the parent's summary (with its limit walk) at info.
        log.debug("parent_done", order_ref=run.ref, status=result.status.value, filled=result.filled,
                  requested=result.requested, avg_price=str(result.avg_price), slippage=str(result.slippage_vs_mid))
        return result

    async def _work_parent(self, run: _Run) -> None:
        parent = run.parent
        n = parent.first_child
        next_child_at = self._clock.now()
        interval = timedelta(seconds=float(self._cfg.child_interval_s))
        retry = timedelta(seconds=float(self._cfg.reprice_s))
        while run.filled < parent.quantity:
            await self._sleep_until(next_child_at if run.deadline is None else min(next_child_at, run.deadline))
            if run.expired(self._clock.now()):
                run.status = ExecutionStatus.TIMED_OUT
                run.reason = "parent_timeout" if run.children else "no_usable_quote"
                return
            quote, stale = await self._quote(run)
            if quote is None:  # nothing to price against yet: look again after a reprice interval
                next_child_at = self._clock.now() + retry
                continue
            if run.arrival_mid is None:
                run.arrival_mid = quote.mid
                notional = parent.quantity * quote.mid * parent.contract.multiplier
                run.sliced = notional > self._cfg.slice_threshold
            limit, _ = child_limit(parent.side, quote.bid, quote.ask, 0, self._cfg, self._rounder(parent),
                                   cross=stale)
            child = await self._send(run, n, self._child_quantity(run, quote), limit)
            n += 1
            if child is None:
                return
            child.crossing = stale
            next_child_at = child.sent_at + interval
            await self._work_child(run, child)
            if run.status is ExecutionStatus.TIMED_OUT:
                return
            if child.filled < child.request.quantity and not child.cancel_requested:
                run.status = ExecutionStatus.REJECTED
                run.reason = child.reason or f"child_{child.status.value.lower()}"
                return

    def _child_quantity(self, run: _Run, quote: Quote) -> int:
        shown = quote.ask_size if run.parent.side == "BUY" else quote.bid_size
        return child_quantity(run.parent, run.parent.quantity - run.filled, run.sliced, shown, self._cfg)

    async def _work_child(self, run: _Run, child: _Child) -> None:
        reprice = timedelta(seconds=float(self._cfg.reprice_s))
        next_reprice = child.sent_at + reprice
        step = 0
        held = False
        while not child.done:
            until = next_reprice if run.deadline is None else min(next_reprice, run.deadline)
            child.wake.clear()
            await self._wait(until, child.wake)
            if child.done:
                return
            now = self._clock.now()
            if run.expired(now):
                await self._cancel(child)
                run.status, run.reason = ExecutionStatus.TIMED_OUT, "parent_timeout"
                return
            if now < next_reprice:
                continue  # a partial fill or a status: keep the schedule
            next_reprice += reprice
            quote, stale = await self._quote(run)
            if quote is None:
                continue
            step += 1
            # Exits cross once the band has held the walk for one interval, or at once on stale data.
            child.crossing = child.crossing or (run.is_exit and (held or stale))
            limit, held = child_limit(run.parent.side, quote.bid, quote.ask, step, self._cfg,
                                      self._rounder(run.parent), cross=child.crossing)
            if limit != child.request.limit_price:
                await self._modify(child, limit)

    # ------------------------------------------------------------------ quotes

    async def _quote(self, run: _Run) -> tuple[Quote | None, bool]:
        """A usable two-sided quote, and whether it had to be fetched because the streamed one was stale.

        Entries never trade on stale data (None). Exits ask the broker for a fresh snapshot.
        """
        key = run.parent.contract.key
        quote = self._book.get(key)
        now = self._clock.now()
        fresh = two_sided(quote) and quote.age_s(now) <= self._max_quote_age_s  # type: ignore[union-attr]
        if fresh:
            return quote, False
        if not run.is_exit:
            return None, False
        await self._throttle.acquire()  # a snapshot request is a message too
        try:
            snap = await self._broker.snapshot(key)
        except BrokerError as exc:
            log.warning("exit_snapshot_failed", order_ref=run.ref, key=key, code=exc.code)
            return None, True
        self._book.update(snap)
        return (snap, True) if two_sided(snap) else (None, True)

    def _rounder(self, parent: ParentOrder) -> Callable[[Decimal, str], Decimal]:
        underlying = parent.contract.underlying
        return lambda price, direction: self._round_price(underlying, price, direction)

    # ------------------------------------------------------------------ messages

    async def _allocate_id(self) -> int:
        value = self._allocate()
        if inspect.isawaitable(value):
            value = await value
        return int(value)

    async def _send(self, run: _Run, n: int, quantity: int, limit: Decimal) -> _Child | None:
        parent = run.parent
        request = OrderRequest(
            order_id=await self._allocate_id(),
            order_ref=build_order_ref(parent.profile, parent.source_id, n, self._cfg.order_ref_prefix),
            contract=parent.contract, side=parent.side, quantity=quantity, order_type="LMT", limit_price=limit)
        child = _Child(request, self._clock.now())
        self._live[request.order_id] = child  # before place: an immediate fill must find its child
        run.children.append(child)
        try:
            await self._before_send(request)
        except Exception as exc:  # noqa: BLE001 - no recorded intent, no order
            log.exception("before_send_failed", order_ref=request.order_ref)
            return self._refused(run, child, f"intent_not_recorded: {type(exc).__name__}")
        # The token is taken last, with no await between it and the send, so the pace holds on the wire.
        await self._throttle.acquire()
        child.sent_at = self._clock.now()
        try:
            await self._broker.place(request)
        except BrokerError as exc:
            log.warning("place_refused", order_ref=request.order_ref, code=exc.code)
            return self._refused(run, child, exc.code)
        child.limits.append((child.sent_at, limit))
        log.debug("child_sent", order_ref=request.order_ref, order_id=request.order_id, quantity=quantity,
                  limit=str(limit))
        return child

    @staticmethod
    def _refused(run: _Run, child: _Child, reason: str) -> None:
        child.status = OrderStatus.REJECTED
        child.reason = reason
        run.status, run.reason = ExecutionStatus.REJECTED, reason
        return None

    async def _modify(self, child: _Child, limit: Decimal) -> None:
        request = dataclasses.replace(child.request, limit_price=limit)
        try:
            await self._before_send(request)
        except Exception:  # noqa: BLE001 - intent not recorded: keep the working price
            log.exception("before_send_failed", order_ref=request.order_ref)
            return
        await self._throttle.acquire()
        if child.done:
            return  # it filled while waiting for the throttle
        try:
            await self._broker.modify(request)
        except BrokerError as exc:  # most often: it filled or was cancelled on the way
            log.warning("modify_refused", order_ref=request.order_ref, code=exc.code)
            return
        child.request = request
        child.limits.append((self._clock.now(), limit))
        log.debug("child_repriced", order_ref=request.order_ref, order_id=request.order_id, limit=str(limit))

    async def _cancel(self, child: _Child) -> None:
        """Cancel and wait (one reprice interval at most) for the broker to confirm; late fills still count."""
        child.cancel_requested = True
        await self._throttle.acquire()
        if not child.done:
            try:
                await self._broker.cancel(child.request.order_id)
            except BrokerError as exc:
                log.warning("cancel_refused", order_ref=child.request.order_ref, code=exc.code)
        until = self._clock.now() + timedelta(seconds=float(self._cfg.reprice_s))
        while not child.done and self._clock.now() < until:
            child.wake.clear()
            await self._wait(until, child.wake)
        if not child.done:
            child.reason = "cancel_unconfirmed"

    async def _abandon(self, run: _Run) -> None:
        """The caller cancelled the parent: pull every working child (unthrottled, best effort)."""
        for child in run.children:
            if not child.done:
                try:
                    await self._broker.cancel(child.request.order_id)
                except Exception:  # noqa: BLE001
                    log.exception("abandon_cancel_failed", order_ref=child.request.order_ref)

    # ------------------------------------------------------------------ waiting on the injected clock

    async def _sleep_until(self, when: datetime) -> None:
        seconds = (when - self._clock.now()).total_seconds()
        if seconds > 0:
            await self._clock.sleep(seconds)

    async def _wait(self, until: datetime, wake: asyncio.Event) -> None:
        """Until `until` on the clock or until `wake` is set, whichever is first."""
        seconds = (until - self._clock.now()).total_seconds()
        if wake.is_set():
            return
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        sleeper = asyncio.ensure_future(self._clock.sleep(seconds))
        waiter = asyncio.ensure_future(wake.wait())
        try:
            await asyncio.wait({sleeper, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waiter.cancel()
