"""Every parent order in flight (SPEC §4.2, §6.4): slicing, repricing, timeouts and pacing as one
synchronous, timer-driven state machine, shared by IB and sim, live and replay.

`Working` never reads a clock, never awaits and does no I/O. Time comes in on every call; the
caller asks `next_deadline()` and calls `on_timer(now)` then (or earlier: any call is safe at
any time). What the venue must do comes out of `take_commands()` (Place / Modify / Cancel /
SnapshotWanted), already paced by one `Pacer` (≤ max_messages_per_s) and in send order: a
command leaves the outbox only when its token is granted, and that moment is the one recorded
as the child's send time. Parents that finished come out of `take_results()`.

The rules are the old async `Executor`'s, unchanged:
- a parent above `slice_threshold` of notional goes as children of at most `child_cap` (SPEC
  §4.2's sizing, so the parent can complete inside its timeout) and never more than the size
  shown at the far touch; one child at a time, at least `child_interval_s` apart;
- a child's limit starts at mid and walks toward the far touch by `reprice_step_pct_of_spread`
  every `reprice_s`, never past mid ± `max_slippage_pct` (`child_limit`);
- an entry gives up at `parent_timeout_s`: its working child is cancelled, what filled is kept
  (`underfilled`, and `below_minimum` when under the parent's `min_quantity`);
- an exit never gives up: once the band held the walk for an interval it crosses the spread;
  on a stale quote it asks for a snapshot (`SnapshotWanted`) and crosses on the fresh quote,
  which the caller announces with `on_quote(key, now)`;
- fills are keyed by exec id (applied once), a late non-terminal status never revives a
  finished child, events for orders that are not (or no longer) ours are ignored.

Per quote nothing happens unless a parent waits on a snapshot of that key (one dict lookup).
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

import structlog

from broker.listings import round_to_tick
from broker.order_ref import build_order_ref, parent_ref
from broker.pacing import Pacer
from broker.parent import (
    ChildOrderResult,
    ExecutionError,
    ExecutionResult,
    ExecutionStatus,
    ParentOrder,
    child_limit,
    child_quantity,
    two_sided,
)
from config.models import ExecutionConfig
from market.types import Fill, OrderRequest, OrderStatus, OrderUpdate, Quote

log = structlog.get_logger(__name__)

PriceRounder = Callable[[str, Decimal, str], Decimal]  # (underlying, price, "down"|"up") -> on-tick price
NextId = Callable[[], int]
# (level, event, fields): where Working's notes go. None (the default) keeps it silent, as the
# synchronous core wants (it logs through its effects); the async adapter passes structlog.
LogSink = Callable[[str, str, dict[str, Any]], None]


def structlog_sink(level: str, event: str, fields: dict[str, Any]) -> None:
    getattr(log, level)(event, **fields)

__all__ = ["Cancel", "ExecutionError", "Modify", "Place", "QuoteSource", "SnapshotWanted", "VenueCommand",
           "Working"]


class QuoteSource(Protocol):
    def get(self, key: str) -> Quote | None: ...


@dataclass(frozen=True, slots=True)
class Place:
    request: OrderRequest


@dataclass(frozen=True, slots=True)
class Modify:
    request: OrderRequest


@dataclass(frozen=True, slots=True)
class Cancel:
    order_id: int


@dataclass(frozen=True, slots=True)
class SnapshotWanted:
    """An exit's streamed quote is stale: fetch a fresh one, store it, then call `Working.on_quote`."""

    key: str


VenueCommand = Place | Modify | Cancel | SnapshotWanted

# Phases of a parent.
_SEND, _WORK, _CANCEL = "send", "work", "cancel"


@dataclass(eq=False, slots=True)
class _Child:
    request: OrderRequest  # the latest price asked for (sent or waiting for its token)
    sent_at: datetime | None = None  # when the Place left (its token); None while it waits
    limits: list[tuple[datetime, Decimal]] = field(default_factory=list)
    status: OrderStatus = OrderStatus.PENDING_SUBMIT
    reported_filled: int = 0
    reported_avg: Decimal | None = None
    fills: dict[str, Fill] = field(default_factory=dict)
    reason: str | None = None
    crossing: bool = False
    cancel_requested: bool = False
    confirmed: OrderRequest | None = None  # the request before the last Modify (restored if it is refused)

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

    def result(self, fallback_sent_at: datetime) -> ChildOrderResult:
        status = self.status
        if self.filled >= self.request.quantity:
            status = OrderStatus.FILLED
        return ChildOrderResult(
            self.request.order_id, self.request.order_ref, self.request.quantity, self.filled, self.avg_price,
            status, self.sent_at or fallback_sent_at, tuple(self.limits),
            sum((f.commission for f in self.fills.values()), Decimal(0)), self.reason)


@dataclass(eq=False, slots=True)
class _Run:
    parent: ParentOrder
    ref: str
    next_id: NextId
    started_at: datetime
    deadline: datetime | None
    n: int
    phase: str = _SEND
    children: list[_Child] = field(default_factory=list)
    child: _Child | None = None  # the one child in flight
    arrival_mid: Decimal | None = None
    sliced: bool = False
    status: ExecutionStatus = ExecutionStatus.FILLED
    reason: str | None = None
    next_child_at: datetime | None = None
    next_reprice: datetime | None = None
    cancel_until: datetime | None = None
    step: int = 0
    held: bool = False
    snapshot_wanted: bool = False  # a SnapshotWanted is out: a fresh quote of the key wakes the run
    snapped: bool = False  # the next fresh quote came from a snapshot: price it as stale data (cross)
    snapshot: Quote | None = None  # the snapshot's answer, used once even when it is not fresh itself

    @property
    def filled(self) -> int:
        return sum(c.filled for c in self.children)

    @property
    def is_exit(self) -> bool:
        return self.parent.kind == "exit"

    def expired(self, now: datetime) -> bool:
        return self.deadline is not None and now >= self.deadline

    def wake_at(self) -> datetime | None:
        """The next moment this run has something to do on its own (None: it waits on an event)."""
        if self.phase == _SEND:
            due = self.next_child_at
        elif self.phase == _WORK:
            if self.child is not None and self.child.sent_at is None:
                return None  # its Place waits for a token: the pacer's deadline covers it (even past the timeout)
            due = self.next_reprice
        else:
            due = self.cancel_until
        if self.deadline is not None and self.phase != _CANCEL:
            due = self.deadline if due is None else min(due, self.deadline)
        return due

    def result(self) -> ExecutionResult:
        children = tuple(c.result(self.started_at) for c in self.children)
        filled = sum(c.filled for c in children)
        priced = [(c.avg_price, c.filled) for c in children if c.filled and c.avg_price is not None]
        avg = sum((p * q for p, q in priced), Decimal(0)) / sum(q for _, q in priced) if priced else None
        slippage = None
        if avg is not None and self.arrival_mid is not None:
            slippage = (avg - self.arrival_mid) * (1 if self.parent.side == "BUY" else -1)
        status = self.status
        if filled >= self.parent.quantity:
            status = ExecutionStatus.FILLED
        below = not self.is_exit and filled < self.parent.min_quantity
        return ExecutionResult(
            self.ref, self.parent.quantity, filled, avg, slippage, children, filled < self.parent.quantity,
            status, self.arrival_mid, sum((c.commission for c in children), Decimal(0)),
            None if status is ExecutionStatus.FILLED else self.reason, below)


@dataclass(eq=False, slots=True)
class _Out:
    """A command waiting for its token, with the child it concerns (None for a snapshot)."""

    command: VenueCommand
    child: _Child | None
    limit: Decimal | None = None


def _value_limit(parent: ParentOrder, request: OrderRequest) -> Decimal | None:
    """The limit a child holds, in the parent's price space (a combo's value, not its net)."""
    limit = request.limit_price
    return limit if parent.combo is None or limit is None else parent.combo.value(limit)


class Working:
    def __init__(self, cfg: ExecutionConfig, *, quotes: QuoteSource, max_quote_age_s: Decimal,
                 round_price: PriceRounder = round_to_tick, pacer: Pacer | None = None,
                 log_to: LogSink | None = None):
        self._cfg = cfg
        self._log_to = log_to
        self._quotes = quotes
        self._max_age = timedelta(seconds=float(max_quote_age_s))
        self._round_price = round_price
        self._pacer = pacer or Pacer(cfg.max_messages_per_s)
        self._interval = timedelta(seconds=float(cfg.child_interval_s))
        self._reprice = timedelta(seconds=float(cfg.reprice_s))
        self._timeout = timedelta(seconds=float(cfg.parent_timeout_s))
        self._runs: dict[str, _Run] = {}  # parent ref -> run, in start order (iteration is deterministic)
        self._by_order: dict[int, tuple[_Run, _Child]] = {}
        self._snapshot_waits: dict[str, list[_Run]] = {}  # key -> runs waiting for a fresh quote
        self._outbox: deque[_Out] = deque()
        self._ready: list[VenueCommand] = []
        self._results: list[ExecutionResult] = []
        # `next_deadline` is asked before every replayed event and changes only when a run moves, so it is
        # kept: what `_Run.wake_at` and the pacing read changes only inside `_drive`, `_release` and
        # `_forget` (every public call that changes a run goes through one of them), and each marks it stale.
        self._deadline: datetime | None = None
        self._deadline_stale = False

    @property
    def pacer(self) -> Pacer:
        return self._pacer

    @property
    def working_order_ids(self) -> list[int]:
        return [oid for oid, (_, c) in self._by_order.items() if not c.done]

    @property
    def parents(self) -> list[str]:
        """The refs of the parents in flight, in start order."""
        return list(self._runs)

    def __len__(self) -> int:
        return len(self._runs)

    # ------------------------------------------------------------------ in

    def start(self, parent: ParentOrder, now: datetime, next_id: NextId) -> str:
        """Begin working `parent` at `now`; returns its parent ref. Raises ExecutionError on bad input
        (`parent_in_flight` when the same parent ref is already worked)."""
        parent.validate()
        ref = parent_ref(parent.profile, parent.source_id, self._cfg.order_ref_prefix)
        if ref in self._runs:
            raise ExecutionError("parent_in_flight", f"{ref} is already being worked")
        deadline = None if parent.kind == "exit" else now + self._timeout
        run = _Run(parent, ref, next_id, now, deadline, parent.first_child, next_child_at=now)
        self._runs[ref] = run
        if self._log_to is not None:
            self._log_to("debug", "parent_start", dict(order_ref=ref, contract=parent.key, side=parent.side,
                                                      quantity=parent.quantity, kind=parent.kind))
        self._drive(run, now)
        self._release(now)
        return ref

    def on_update(self, update: OrderUpdate, now: datetime) -> None:
        found = self._by_order.get(update.order_id)
        if found is None:
            return
        run, child = found
        if not child.status.done:  # a late non-terminal status must not revive a finished order
            child.status = update.status
        child.reported_filled = max(child.reported_filled, update.filled)
        if update.avg_fill_price is not None:
            child.reported_avg = update.avg_fill_price
        if update.reason:
            child.reason = update.reason
        self._drive(run, now)
        self._release(now)

    def on_fill(self, fill: Fill, now: datetime) -> None:
        found = self._by_order.get(fill.order_id)
        if found is None:
            return
        run, child = found
        child.fills[fill.exec_id] = fill  # keyed by exec id: a resent execution (with its commission) counts once
        self._drive(run, now)
        self._release(now)

    def on_quote(self, key: str, now: datetime) -> None:
        """A quote of `key` arrived: wakes a run that waits on a snapshot of it once the streamed quote
        is fresh again; nothing else (one dict lookup)."""
        if not self._snapshot_waits.get(key):
            return
        if self._fresh(self._quotes.get(key), now):
            self._wake_snapshot_waiters(key, None, now)

    def on_snapshot(self, key: str, quote: Quote | None, now: datetime) -> None:
        """The answer to `SnapshotWanted(key)`: the quote (None when the snapshot failed: the run asks
        again at its next reprice). An exit prices on it once, crossing, whatever its age: it is
        the freshest the venue has."""
        if quote is None or not two_sided(quote):
            for run in self._snapshot_waits.pop(key, []):
                run.snapshot_wanted = False
            return
        self._wake_snapshot_waiters(key, quote, now)

    def _wake_snapshot_waiters(self, key: str, quote: Quote | None, now: datetime) -> None:
        for run in self._snapshot_waits.pop(key, []):
            if self._runs.get(run.ref) is not run or not run.snapshot_wanted:
                continue
            run.snapshot_wanted = False
            run.snapped = True
            run.snapshot = quote
            if run.phase == _SEND:
                if run.next_child_at is not None and run.next_child_at > now:
                    run.next_child_at = max(now, self._last_sent(run))
            elif run.phase == _WORK and run.next_reprice is not None:
                run.next_reprice = now
            self._drive(run, now)
        self._release(now)

    def on_timer(self, now: datetime) -> None:
        for run in list(self._runs.values()):
            due = run.wake_at()
            if due is not None and due <= now:
                self._drive(run, now)
        self._release(now)

    def refused(self, order_id: int, reason: str, now: datetime) -> None:
        """The venue or the shell refused a Place (e.g. `store_unavailable`: no durable intent, no
        entry): the parent stops with that reason, keeping what filled."""
        found = self._by_order.get(order_id)
        if found is None:
            return
        run, child = found
        if child.status.done:
            return
        child.status = OrderStatus.REJECTED
        child.reason = reason
        run.status, run.reason = ExecutionStatus.REJECTED, reason
        if self._log_to is not None:
            self._log_to("warning", "place_refused",
                         dict(order_ref=child.request.order_ref, order_id=order_id, code=reason))
        self._drive(run, now)
        self._release(now)

    def modify_refused(self, order_id: int, reason: str, now: datetime) -> None:
        """The venue refused a Modify (most often: it filled or was cancelled on the way): the child
        keeps the price the venue holds."""
        found = self._by_order.get(order_id)
        if found is None:
            return
        run, child = found
        if child.confirmed is not None:
            if child.limits and child.limits[-1][1] == _value_limit(run.parent, child.request):
                child.limits.pop()  # it never held that price
            child.request = child.confirmed
            child.confirmed = None
        if self._log_to is not None:
            self._log_to("warning", "modify_refused",
                         dict(order_ref=child.request.order_ref, order_id=order_id, code=reason))

    def parent_of(self, order_id: int) -> str | None:
        """The parent ref of a child still in flight."""
        found = self._by_order.get(order_id)
        return None if found is None else found[0].ref

    def submit(self, command: VenueCommand, now: datetime) -> None:
        """Send a message that is not a parent's child (a protective stop's place, change or cancel)
        through the same pacing: it leaves by `take_commands`, in order with the children's, so
        one budget (≤ max_messages_per_s) holds for everything this venue connection sends."""
        if not isinstance(command, (Place, Modify, Cancel, SnapshotWanted)):
            raise ExecutionError("bad_command", f"not a venue command: {type(command).__name__}")
        self._outbox.append(_Out(command, None))
        self._release(now)

    def is_live(self, order_id: int) -> bool:
        """`order_id` is a child of a parent still in flight."""
        return order_id in self._by_order

    def renumber(self, old_id: int, new_id: int) -> bool:
        """Give a child whose Place has not reached the venue yet another order id (an async caller
        whose ids come from an awaited allocator hands out provisional ones: see `Executor`).
        False when no parent in flight has `old_id`."""
        found = self._by_order.pop(old_id, None)
        if found is None:
            return False
        if new_id in self._by_order:
            self._by_order[old_id] = found
            raise ExecutionError("duplicate_order_id", f"order id {new_id} is already a working child")
        child = found[1]
        child.request = dataclasses.replace(child.request, order_id=new_id)
        if child.confirmed is not None:
            child.confirmed = dataclasses.replace(child.confirmed, order_id=new_id)
        self._by_order[new_id] = found

        def renamed(cmd: VenueCommand) -> VenueCommand:
            if isinstance(cmd, (Place, Modify)) and cmd.request.order_id == old_id:
                return type(cmd)(dataclasses.replace(cmd.request, order_id=new_id))
            if isinstance(cmd, Cancel) and cmd.order_id == old_id:
                return Cancel(new_id)
            return cmd

        for out in self._outbox:
            out.command = renamed(out.command)
        self._ready = [renamed(c) for c in self._ready]
        return True

    def abandon(self, ref: str, now: datetime) -> list[int]:
        """Stop working parent `ref` at once (its caller gave up): no result; returns the ids of its
        children still working, which the caller cancels at the venue."""
        run = self._runs.pop(ref, None)
        if run is None:
            return []
        working = [c.request.order_id for c in run.children if not c.done and c.sent_at is not None]
        self._forget(run)
        return working

    def shrink(self, ref: str, by: int, now: datetime) -> int:
        """Sell `by` fewer contracts in exit `ref`: someone else sold them (the position's protective stop
        filled while its cancel travelled). The child in flight is cut to what the parent may still sell:
        a Place not yet sent is resized (or dropped), a working child is modified down (or cancelled).
        Returns the contracts given up (what the parent had not filled yet, at most `by`)."""
        run = self._runs.get(ref)
        if run is None or by <= 0 or not run.is_exit:
            return 0
        parent = run.parent
        quantity = max(run.filled, parent.quantity - by)
        given_up = parent.quantity - quantity
        if given_up <= 0:
            return 0
        run.parent = dataclasses.replace(parent, quantity=quantity)
        child = run.child
        if child is not None and not child.done:
            earlier = run.filled - child.filled  # what the run's finished children sold
            keep = quantity - earlier  # the most this child may now sell in all
            if child.sent_at is None:  # its Place waits for a token: resize it, or drop it
                for out in list(self._outbox):
                    if out.child is child and isinstance(out.command, Place):
                        if keep > 0:
                            child.request = dataclasses.replace(child.request, quantity=keep)
                            out.command = Place(child.request)
                        else:
                            self._outbox.remove(out)
                            run.children.remove(child)
                            self._by_order.pop(child.request.order_id, None)
                            run.child, run.phase = None, _SEND
            elif keep <= child.filled:  # it sold all it may: nothing more of it
                if not child.cancel_requested:
                    child.cancel_requested = True
                    self._outbox.append(_Out(Cancel(child.request.order_id), child))
            elif keep < child.request.quantity:
                request = dataclasses.replace(child.request, quantity=keep)
                waiting = next((o for o in self._outbox if o.child is child and isinstance(o.command, Modify)), None)
                if waiting is not None:  # a reprice waiting for its token carries the new size too
                    waiting.command = Modify(request)
                else:
                    child.confirmed = child.request
                    self._outbox.append(_Out(Modify(request), child, _value_limit(parent, request)))
                child.request = request
        if self._log_to is not None:
            self._log_to("info", "exit_shrunk", dict(order_ref=ref, by=given_up, quantity=quantity))
        self._drive(run, now)
        self._release(now)
        return given_up

    # ------------------------------------------------------------------ out

    def next_deadline(self) -> datetime | None:
        """The earliest reprice / child / timeout / cancel-wait / pacing moment, None when idle."""
        if self._deadline_stale:
            self._deadline = self._earliest_wake()
            self._deadline_stale = False
        return self._deadline

    def _earliest_wake(self) -> datetime | None:
        best: datetime | None = None
        for run in self._runs.values():
            due = run.wake_at()
            if due is not None and (best is None or due < best):
                best = due
        if self._outbox:
            free = self._pacer.free_at
            if free is not None and (best is None or free < best):
                best = free
        return best

    def take_commands(self) -> list[VenueCommand]:
        ready, self._ready = self._ready, []
        return ready

    def take_results(self) -> list[ExecutionResult]:
        results, self._results = self._results, []
        return results

    # ------------------------------------------------------------------ the state machine

    def _drive(self, run: _Run, now: datetime) -> None:
        """Move `run` as far as it can go at `now`. A fault in one parent (a failing id allocator, a
        price the rounder refuses) ends that parent `execution_failed`, keeping what filled; the
        others go on and nothing is raised into the caller."""
        self._deadline_stale = True
        try:
            self._advance(run, now)
        except Exception as exc:  # noqa: BLE001 - one parent's fault must not stop the rest
            if self._runs.get(run.ref) is not run:
                return
            run.status, run.reason = ExecutionStatus.REJECTED, "execution_failed"
            if run.child is not None and not run.child.done and run.child.sent_at is not None:
                run.child.cancel_requested = True
                self._outbox.append(_Out(Cancel(run.child.request.order_id), run.child))
            if self._log_to is not None:
                self._log_to("error", "execution_failed", dict(order_ref=run.ref, error=repr(exc)))
            self._finish(run)

    def _advance(self, run: _Run, now: datetime) -> None:
        if self._runs.get(run.ref) is not run:
            return
        parent = run.parent
        while True:
            if run.phase == _SEND:
                if run.filled >= parent.quantity:
                    return self._finish(run)
                due = run.wake_at()
                if due is not None and now < due:
                    return
                if run.expired(now):
                    run.status = ExecutionStatus.TIMED_OUT
                    run.reason = "parent_timeout" if run.children else "no_usable_quote"
                    return self._finish(run)
                quote, stale = self._quote(run, now)
                if quote is None:  # nothing to price against yet: look again after a reprice interval
                    run.next_child_at = now + self._reprice
                    return
                if run.arrival_mid is None:
                    run.arrival_mid = quote.mid
                    notional = parent.quantity * quote.mid * parent.contract.multiplier  # type: ignore[operator]
                    run.sliced = notional > self._cfg.slice_threshold
                limit, _ = child_limit(parent.side, quote.bid, quote.ask, 0, self._cfg,  # type: ignore[arg-type]
                                       self._rounder(parent), cross=stale)
                shown = quote.ask_size if parent.side == "BUY" else quote.bid_size
                qty = child_quantity(parent, parent.quantity - run.filled, run.sliced, shown, self._cfg)
                self._send(run, qty, limit, stale, now)
                continue
            child = run.child
            assert child is not None
            if run.phase == _CANCEL:
                if child.done or (run.cancel_until is not None and now >= run.cancel_until):
                    if not child.done:
                        child.reason = "cancel_unconfirmed"
                    return self._finish(run)
                return
            # _WORK
            if child.done:
                if child.filled < child.request.quantity and not child.cancel_requested:
                    run.status = ExecutionStatus.REJECTED
                    run.reason = child.reason or f"child_{child.status.value.lower()}"
                    return self._finish(run)
                run.phase = _SEND
                run.child = None
                continue
            if child.sent_at is None:
                return  # its Place waits for a token
            if child.cancel_requested:
                return  # cut by `shrink`: its cancel is on the way, nothing to reprice
            if run.expired(now):
                self._cancel(run, child, now)
                return
            if run.next_reprice is None or now < run.next_reprice:
                return
            run.next_reprice += self._reprice
            if run.next_reprice <= now:  # woken late (a long gap between calls): keep the cadence from now
                run.next_reprice = now + self._reprice
            quote, stale = self._quote(run, now)
            if quote is None:
                continue
            run.step += 1
            # Exits cross once the band has held the walk for one interval, or at once on stale data.
            child.crossing = child.crossing or (run.is_exit and (run.held or stale))
            bid, ask = quote.bid, quote.ask
            assert bid is not None and ask is not None  # a usable quote is two-sided
            limit, run.held = child_limit(parent.side, bid, ask, run.step, self._cfg, self._rounder(parent),
                                          cross=child.crossing)
            if limit != child.request.limit_price:
                self._modify(child, limit)

    def _send(self, run: _Run, qty: int, limit: Decimal, crossing: bool, now: datetime) -> None:
        parent = run.parent
        combo = parent.combo
        request = OrderRequest(
            order_id=int(run.next_id()),
            order_ref=build_order_ref(parent.profile, parent.source_id, run.n, self._cfg.order_ref_prefix),
            contract=parent.contract, side=parent.side, quantity=qty, order_type="LMT",
            limit_price=limit if combo is None else combo.net(limit), legs=() if combo is None else combo.legs)
        run.n += 1
        child = _Child(request, crossing=crossing)
        run.children.append(child)
        run.child = child
        run.phase = _WORK
        run.step = 0
        run.held = False
        run.next_reprice = None
        run.next_child_at = None
        self._by_order[request.order_id] = (run, child)  # before the Place: an immediate fill must find it
        self._outbox.append(_Out(Place(request), child, limit))

    def _modify(self, child: _Child, limit: Decimal) -> None:
        found = self._by_order.get(child.request.order_id)
        combo = None if found is None else found[0].parent.combo
        request = dataclasses.replace(child.request, limit_price=limit if combo is None else combo.net(limit))
        # A Modify still waiting for its token is replaced: only the latest price is worth a message.
        for out in self._outbox:
            if out.child is child and isinstance(out.command, Modify):
                out.command = Modify(request)
                out.limit = limit
                child.request = request
                return
        child.confirmed = child.request  # what the venue holds if this change is refused
        child.request = request
        self._outbox.append(_Out(Modify(request), child, limit))

    def _cancel(self, run: _Run, child: _Child, now: datetime) -> None:
        """Entries at their timeout: cancel, and wait one reprice interval at most for the venue to
        confirm (late fills still count)."""
        child.cancel_requested = True
        run.status, run.reason = ExecutionStatus.TIMED_OUT, "parent_timeout"
        run.phase = _CANCEL
        run.cancel_until = None  # set when the Cancel leaves
        self._outbox.append(_Out(Cancel(child.request.order_id), child))

    def _finish(self, run: _Run) -> None:
        self._runs.pop(run.ref, None)
        self._forget(run)
        result = run.result()
        self._results.append(result)
        if self._log_to is not None:
            # debug: the engine's "order" line is the parent's summary at info; below the minimum bet warns
            self._log_to("warning" if result.below_minimum else "debug", "parent_done", dict(
                order_ref=run.ref, status=result.status.value, filled=result.filled, requested=result.requested,
                avg_price=str(result.avg_price), slippage=str(result.slippage_vs_mid),
                below_minimum=result.below_minimum))

    def _forget(self, run: _Run) -> None:
        self._deadline_stale = True
        for child in run.children:
            self._by_order.pop(child.request.order_id, None)
        waiting = self._snapshot_waits.get(run.parent.key)
        if waiting and run in waiting:
            waiting.remove(run)
            if not waiting:
                del self._snapshot_waits[run.parent.key]
        # Commands of a finished parent still leave (a Cancel above all); a Place never sent is dropped.
        for out in list(self._outbox):
            if out.child is not None and out.child in run.children and isinstance(out.command, Place):
                self._outbox.remove(out)

    # ------------------------------------------------------------------ pacing

    def _release(self, now: datetime) -> None:
        """Hand out every queued command whose token is here, in queue order."""
        self._deadline_stale = True
        outbox = self._outbox
        while outbox and self._pacer.ready(now):
            out = outbox.popleft()
            child = out.child
            command = out.command
            if child is not None and not isinstance(command, Place) and child.done:
                continue  # it filled or ended while waiting for the token: nothing to say
            self._pacer.take(now)
            self._ready.append(command)
            if child is None:
                continue  # a snapshot, or a message submitted from outside (a protective stop)
            if isinstance(command, Place):
                assert out.limit is not None
                child.sent_at = now
                child.limits.append((now, out.limit))
                found = self._by_order.get(command.request.order_id)
                if found is not None:
                    run = found[0]
                    run.next_reprice = now + self._reprice
                    run.next_child_at = now + self._interval
                if self._log_to is not None:
                    self._log_to("debug", "child_sent", dict(
                        order_ref=command.request.order_ref, order_id=command.request.order_id,
                        quantity=command.request.quantity, limit=str(out.limit)))
            elif isinstance(command, Modify):
                assert out.limit is not None
                child.limits.append((now, out.limit))
                if self._log_to is not None:
                    self._log_to("debug", "child_repriced", dict(
                        order_ref=command.request.order_ref, order_id=command.request.order_id, limit=str(out.limit)))
            elif isinstance(command, Cancel):
                found = self._by_order.get(command.order_id)
                if found is not None and found[0].phase == _CANCEL:
                    found[0].cancel_until = now + self._reprice

    # ------------------------------------------------------------------ quotes

    def _fresh(self, quote: Quote | None, now: datetime) -> bool:
        return two_sided(quote) and now - quote.received_at <= self._max_age  # type: ignore[union-attr]

    def _quote(self, run: _Run, now: datetime) -> tuple[Quote | None, bool]:
        """A usable two-sided quote, and whether it is stale data's replacement (a snapshot).

        Entries never trade on stale data (None). Exits ask for a snapshot (`SnapshotWanted`) and
        go on when `on_quote` says it came."""
        key = run.parent.key  # a combo's: its value-space quote, kept by the caller from the legs' quotes
        quote = self._quotes.get(key)
        if self._fresh(quote, now):
            stale, run.snapped, run.snapshot = run.snapped, False, None
            return quote, stale
        if not run.is_exit:
            return None, False
        snap, run.snapshot, run.snapped = run.snapshot, None, False
        if snap is not None:
            return snap, True
        if not run.snapshot_wanted:
            run.snapshot_wanted = True
            self._snapshot_waits.setdefault(key, []).append(run)
        # asked again at every retry while it stays stale (a failed snapshot says nothing back)
        if not any(isinstance(o.command, SnapshotWanted) and o.command.key == key for o in self._outbox):
            self._outbox.append(_Out(SnapshotWanted(key), None))
        return None, True

    def _last_sent(self, run: _Run) -> datetime:
        sent = [c.sent_at for c in run.children if c.sent_at is not None]
        return sent[-1] + self._interval if sent else run.started_at

    def _rounder(self, parent: ParentOrder) -> Callable[[Decimal, str], Decimal]:
        underlying = parent.contract.underlying
        round_price = self._round_price
        return lambda price, direction: round_price(underlying, price, direction)
