"""Carrying out the core's effects live: records to the journal, orders to the broker, in order.

The core hands its effects over in the order it decided them. `Effects.carry_out` does what
needs no waiting at once (log lines, metrics, notifications, market-data requests as tasks)
and queues the rest on ONE ordered lane, worked by one task:

    Persist          -> the write-behind `Journal` (`append`: never blocks); `open_position` is
                        written durably, so the store's id is known before the entry's intent
    PlaceOrder       -> its intent (the Persist just before it) made durable first, then `broker.place`:
                        an entry (`durable=True`) whose intent cannot be committed is not sent and
                        the core hears `OrderRefusedEvent(order, "store_unavailable")`; an exit or a
                        stop tries the durable write while the store writes, and otherwise journals
                        the intent and is sent anyway (SPEC §6.2: exits never wait on storage)
    ModifyOrder      -> `broker.modify` (refused: the core hears it, the venue's state stands)
    CancelOrder      -> `broker.cancel`

Why one lane: an intent must be committed before its order, and the broker must see orders in
the order the core sent them (pacing, the exit before the stop's cancel). Events keep flowing
into the core meanwhile; only the lane waits.

The core numbers positions itself; in a store shared with nobody else the store's numbers are
the same (the core starts after the store's highest). Where they differ (another profile on the
same database), `ids` maps the core's number to the store's and every later record is rewritten.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any

from broker.base import Broker, BrokerError
from broker.protective import UNANSWERED
from daemon import notifications
from daemon.core.effects import (
    CancelOrder,
    LogLine,
    MetricUpdate,
    ModifyOrder,
    Notify,
    Persist,
    PlaceOrder,
    RequestSnapshot,
    Subscribe,
    Unsubscribe,
)
from daemon.store.errors import StoreError
from daemon.store.journal import Journal, StoreUnavailable
from market.tasks import Tasks
from market.types import OrderStatus, OrderUpdate

STORE_UNAVAILABLE = "store_unavailable"
EXECUTION_FAILED = "execution_failed"  # the broker adapter raised something other than a refusal
STOP_UNCONTROLLED = "stop_uncontrolled"  # a sell held back: the broker refused to change or end the stop


class Effects:
    """The live effect lane (see the module docstring). `report(event)` hands an event back to the core."""

    def __init__(self, broker: Broker, journal: Journal, *, log: Any, metrics: Any, report: Callable[[Any], None],
                 now: Callable[[], datetime], durable_timeout_s: float, on_quote: Callable[[Any], Any],
                 modify_refused: Callable[[int, str, datetime], None],
                 renumber: Callable[[int, int], None] = lambda old, new: None,
                 stop_replaced: Callable[[int, datetime], None] = lambda order_id, now: None,
                 on_report: Callable[[Any], None] | None = None,
                 on_sent: Callable[[Any], None] | None = None, on_decided: Callable[[Any], None] | None = None):
        self.broker = broker
        self.journal = journal
        self.log = log
        self.metrics = metrics
        self.report = report
        self.now = now
        self.durable_timeout_s = durable_timeout_s
        self.on_quote = on_quote  # a snapshot's answer goes into the quote book
        self.modify_refused = modify_refused
        self.renumber = renumber  # the core hears that an order took another id (shared account ids)
        self.renamed: dict[int, int] = {}  # the core's order id -> the id it went out with
        self.stop_replaced = stop_replaced  # the core hears that a stop whose change was refused is gone
        self.uncontrolled: dict[int, str] = {}  # stop order id -> its contract: the broker refused to change or end it
        self.on_report = on_report  # the shell's daily report (the store's day summary)
        self.on_sent = on_sent  # told each order handed to the broker
        self.on_decided = on_decided  # told each order the core decided, as it joins the lane (the bench)
        self.ids: dict[int, int] = {}  # core position id -> store position id, where they differ
        self.lost: set[int] = set()  # core positions whose row could not be written (their entry was refused)
        self._lane: deque[tuple[Any, ...]] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._side = Tasks(self.log)
        self._metric_errors: set[str] = set()
        self.sent = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._work(), name="live-effects")

    async def stop(self, timeout: float = 5.0) -> None:
        """Carry out what is queued (bounded), then stop."""
        if self._task is not None and not self._task.done():
            try:
                await asyncio.wait_for(self.idle(), timeout)
            except TimeoutError:
                self.log.error("effects_not_carried_out", code="shutdown_timeout", pending=len(self._lane))
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for task in list(self._side):
            task.cancel()
        await asyncio.gather(*self._side, return_exceptions=True)

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def busy(self) -> bool:
        """Effects handed to `carry_out` are not all carried out yet (queued, or the lane is on one)."""
        return not self._idle.is_set()

    async def idle(self) -> None:
        while self._lane or not self._idle.is_set():
            await self._idle.wait()
            await asyncio.sleep(0)

    # ------------------------------------------------------------------ carrying out

    def carry_out(self, effects: list[Any]) -> None:
        """Everything the core decided for one event, in order (called on the driver, never awaits).

        An order's intent (`Persist("write_intent")`) travels with the `PlaceOrder` that follows it,
        and so do the log lines and metrics between them (the "sending" line): they are carried out
        once the intent is committed, so a line that says an order is being sent means its intent
        is on disk (the crash tests kill the process at that line)."""
        lane = self._lane
        before = len(lane)
        intent: Persist | None = None
        held: list[Any] = []  # log lines and metrics after an intent, until its order
        for effect in effects:
            kind = type(effect)
            if kind is PlaceOrder and self.on_decided is not None:
                self.on_decided(effect.request)
            if intent is not None:
                if kind is LogLine or kind is MetricUpdate:
                    held.append(effect)
                    continue
                if kind is PlaceOrder and effect.request.order_id == _order_id(intent):
                    lane.append(("place", effect, intent, held))
                    intent, held = None, []
                    continue
                lane.append(("persist", intent, held))  # an intent without its order (should not happen)
                intent, held = None, []
            if kind is Persist:
                if effect.op == "write_intent":
                    intent = effect
                else:
                    lane.append(("persist", effect, ()))
            elif kind is PlaceOrder:
                lane.append(("place", effect, None, ()))
            elif kind is LogLine:
                getattr(self.log, effect.level)(effect.event, **effect.fields)
            elif kind is MetricUpdate:
                self._metric(effect)
            elif kind is Notify:
                notifications.notify(effect.kind, effect.text)  # queued by the notifier: never blocks
            elif kind is ModifyOrder:
                lane.append(("modify", effect))
            elif kind is CancelOrder:
                lane.append(("cancel", effect))
            elif kind is Subscribe:
                self._side_task(self._subscribe(list(effect.keys)), "subscribe")
            elif kind is Unsubscribe:
                self._side_task(self._unsubscribe(list(effect.keys)), "unsubscribe")
            elif kind is RequestSnapshot:
                self._side_task(self._snapshot(effect.key), "snapshot")
            elif kind.__name__ == "DailyReport":
                if self.on_report is not None:
                    self._side_task(self._daily_report(effect.day), "daily-report")
            elif kind.__name__ == "SettleExpired":
                self._settle_expired(effect)
            elif kind.__name__ == "RefreshModel":
                pass  # live option prices are the broker's (IB) or the sim model's own realized volatility
            else:
                self.log.error("effect_unknown", code="unknown_effect", effect=kind.__name__)
        if intent is not None:
            lane.append(("persist", intent, held))
        if len(lane) > before:
            self._idle.clear()
            self._wake.set()

    def _settle_expired(self, effect: Any) -> None:
        """SPEC §6.3 (room expiry): the core settled expired positions. A sim broker settles its paper
        account the same way; IB settles at the exchange (cash for index options, shares for an exercised
        equity option), and the reconciliation with the broker's positions is the truth
        (docs/decisions/expiry.md)."""
        settle = getattr(self.broker, "settle_expired", None)
        if settle is None:
            self.log.info("expiry_settled_at_broker", prices={k: str(v) for k, v in effect.prices.items()})
            return
        try:
            settle(effect.at, effect.prices)
        except Exception as exc:  # noqa: BLE001 - a sim's bookkeeping must not stop the effects
            self.log.error("expiry_settlement_failed", code="sim_settlement_failed", error=repr(exc))

    def _held(self, held: Any) -> None:
        for effect in held:
            if type(effect) is LogLine:
                getattr(self.log, effect.level)(effect.event, **effect.fields)
            else:
                self._metric(effect)

    async def _work(self) -> None:
        lane = self._lane
        while True:
            await self._wake.wait()
            self._wake.clear()
            while lane:
                item = lane.popleft()
                # records ride in memory (and the intent log) until the next order is sent (the exit's records,
                # the stop's resize, its intent, its order): the writer thread starts their commit then, not
                # on the tick-to-order path (room tick, `Journal.hold`)
                self.journal.hold()
                try:
                    await self._one(item)
                except asyncio.CancelledError:
                    self.journal.release()
                    raise
                except Exception as exc:  # noqa: BLE001 - one failed effect must not stop the lane
                    self.log.exception("effect_failed", code="effect_failed", effect=item[0], error=repr(exc))
                if item[0] == "place" or not lane:
                    self.journal.release()
            self._idle.set()

    async def _one(self, item: tuple[Any, ...]) -> None:
        what = item[0]
        if what == "persist":
            await self._persist(item[1])
            self._held(item[2])
        elif what == "place":
            await self._place(item[1], item[2], item[3])
        elif what == "modify":
            request = item[1].request
            if request.order_id in self.renamed:  # decided before the core heard of its new id
                request = dataclasses.replace(request, order_id=self.renamed[request.order_id])
            if request.order_type == "STP" and self.broker.confirms_changes:
                await self._change_stop(request)
                return
            try:
                await self.broker.modify(request)
            except BrokerError as exc:  # filled or cancelled on the way: the venue's state stands
                self.modify_refused(request.order_id, exc.code, self.now())
        elif what == "cancel":
            order_id = self.renamed.get(item[1].order_id, item[1].order_id)
            try:
                await self.broker.cancel(order_id)
            except BrokerError as exc:  # already done at the venue: nothing to cancel
                self.log.debug("cancel_refused", order_id=order_id, code=exc.code)

    # ------------------------------------------------------------------ records

    def _payload(self, op: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        """The Store operation's arguments; None when the record belongs to a position never stored."""
        kwargs = dict(payload)
        position_id = kwargs.get("position_id")
        if position_id is not None:
            if position_id in self.lost:
                return None
            kwargs["position_id"] = self.ids.get(position_id, position_id)
        return kwargs

    async def _persist(self, effect: Persist) -> None:
        op = effect.op
        if op == "open_position":
            kwargs = dict(effect.payload)
            core_id = kwargs.pop("position_id")
            try:
                record = await self.journal.durable("open_position", **kwargs)
            except (StoreUnavailable, StoreError) as exc:
                self.lost.add(core_id)  # its entry's intent will be refused too: no order, no row
                self.log.error("position_not_stored", code=getattr(exc, "code", STORE_UNAVAILABLE),
                               position_id=core_id, error=str(exc))
                return
            if record.id != core_id:
                self.ids[core_id] = record.id
                self.log.warning("position_renumbered", position_id=core_id, stored_id=record.id,
                                 note="the store numbered it differently (another writer on this database)")
            return
        kwargs = self._payload(op, effect.payload)
        if kwargs is not None:
            self.journal.append(op, **kwargs)

    async def _intent(self, intent: Persist, durable: bool) -> bool:
        """The order's intent committed before it is sent; False: an entry that must not be sent."""
        kwargs = self._payload("write_intent", intent.payload)
        if kwargs is None:
            return False
        if durable:
            try:
                await self.journal.durable("write_intent", **kwargs)
                return True
            except (StoreUnavailable, StoreError) as exc:
                self.log.error("entry_not_sent", code=STORE_UNAVAILABLE, order_id=kwargs["request"].order_id,
                               error=str(exc))
                return False
        if self.journal.available and self.journal.intent_log is not None:  # write-ahead on the loop's thread
            if self.journal.append_record("write_intent", kwargs) is None:
                return True  # refused as bad input (logged by the journal): as `intent_refused` below
            if self.journal.write_ahead() or await self.journal.drain(self.durable_timeout_s):
                return True
            self.log.warning("exit_intent_journaled", code=STORE_UNAVAILABLE, order_id=kwargs["request"].order_id,
                             order_ref=kwargs["request"].order_ref, reason=self.journal.reason)
            return True
        if self.journal.available:  # write-ahead on a good day (Part 4); never held up on a bad one
            try:
                await self.journal.durable("write_intent", **kwargs)
                return True
            except StoreUnavailable as exc:
                self.log.warning("exit_intent_journaled", code=exc.code, order_id=kwargs["request"].order_id,
                                 order_ref=kwargs["request"].order_ref, reason=self.journal.reason)
            except StoreError as exc:
                self.log.error("intent_refused", code=exc.code, order_id=kwargs["request"].order_id, error=str(exc))
                return True
        self.journal.append("write_intent", **kwargs)
        return True

    async def _place(self, effect: PlaceOrder, intent: Persist | None, held: Any) -> None:
        if not self.broker.shares_order_ids:
            await self._send(effect.request, effect.durable, intent, held)
            return
        # Profiles on one IB account draw from ONE id sequence (SPEC §6.1): the account's turn is held from
        # the id's check to the order's place; an id another profile took meanwhile is replaced by the
        # account's floor before the intent is written, and the core is told (`renumber`) before any answer.
        floor = await self.broker.claim_order_id_floor()  # type: ignore[attr-defined]
        try:
            request = effect.request
            if request.order_id < floor:
                old = request.order_id
                request = dataclasses.replace(request, order_id=floor)
                self.renamed[old] = floor
                self.renumber(old, floor)
                self.log.info("order_renumbered", order_id=floor, previous_id=old, order_ref=request.order_ref,
                              note="another profile on this account took the id")
                if intent is not None:
                    intent = Persist(intent.op, {**intent.payload, "request": request})
                held = [_renamed_line(e, old, floor) for e in held]
            await self._send(request, effect.durable, intent, held)
        finally:
            self.broker.release_order_id_claim()  # type: ignore[attr-defined]

    async def _change_stop(self, request: Any) -> None:
        """SPEC §6.1 (IB): a protective stop is believed changed only once the gateway confirms it, and what
        follows on the lane (the exit that needs the smaller stop) waits for that. A refused change: the stop
        is cancelled, confirmed, and the core places the wanted one again (the old and the new never rest
        together). A stop the session can neither change nor cancel (placed under another client id) is
        uncontrolled: no sell of its contract leaves until it ends, and an operator is alerted."""
        order_id = request.order_id
        if order_id in self.uncontrolled:
            return
        try:
            await self.broker.modify(request, confirm=True)
            return
        except BrokerError as exc:
            refused = exc.code
        if refused in UNANSWERED:
            if refused != "timeout" or await self._stop_holds(request):
                return  # away or already ended; or the silent change is in force at the broker
        try:
            await self.broker.cancel(order_id, confirm=True)
        except BrokerError as exc:
            if exc.code in UNANSWERED:
                return
            self.uncontrolled[order_id] = request.contract.key
            self.log.error("alert", alert="protective_stop_uncontrolled", code=exc.code, order_id=order_id,
                           option=request.contract.key, contracts=request.quantity, error=str(exc))
            return
        self.log.warning("protective_stop_replacing", order_id=order_id, code=refused, contracts=request.quantity)
        self.stop_replaced(order_id, self.now())

    async def _stop_holds(self, request: Any) -> bool:
        """A change the broker did not answer in time may or may not be in force: its open orders say which."""
        try:
            held = {o.request.order_id: o.request for o in await self.broker.open_orders()}
        except BrokerError:
            return False
        found = held.get(request.order_id)
        return found is not None and (found.quantity, found.stop_price) == (request.quantity, request.stop_price)

    def order_ended(self, order_id: int) -> None:
        """An order ended at the broker: a stop that was uncontrolled no longer holds its contract's sells."""
        if self.uncontrolled.pop(order_id, None) is not None:
            self.log.warning("protective_stop_released", order_id=order_id)

    async def _send(self, request: Any, durable: bool, intent: Persist | None, held: Any) -> None:
        if self.uncontrolled and request.side == "SELL" and request.order_type != "STP" and (
                request.contract.key in self.uncontrolled.values()):
            # what the stop may still sell must not be sold twice: refused, the core gives the contracts back
            self.log.warning("order_held", code=STOP_UNCONTROLLED, order_id=request.order_id,
                             order_ref=request.order_ref)
            self.report(_refused(request.order_id, STOP_UNCONTROLLED, self.now()))
            return
        if intent is not None and not await self._intent(intent, durable):
            self.report(_refused(request.order_id, STORE_UNAVAILABLE, self.now()))
            return
        self._held(held)
        try:
            await self.broker.place(request)
        except BrokerError as exc:
            self.log.warning("order", order_id=request.order_id, order_ref=request.order_ref, status="rejected",
                             reason=exc.code)
            self._not_placed(request, exc.code)
            return
        except Exception as exc:  # noqa: BLE001 - a bug on the way out: refused, so the core gives the contracts back
            self.log.error("order_failed", code=EXECUTION_FAILED, order_id=request.order_id,
                           order_ref=request.order_ref, error=repr(exc))
            self._not_placed(request, EXECUTION_FAILED)
            return
        self.sent += 1
        if self.on_sent is not None:
            self.on_sent(request)

    def _not_placed(self, request: Any, code: str) -> None:
        now = self.now()
        self.journal.append("update_order", update=OrderUpdate(request.order_id, request.order_ref, OrderStatus.REJECTED,
                                                               0, request.quantity, None, now, code))
        self.report(_refused(request.order_id, code, now))

    # ------------------------------------------------------------------ market data and the rest

    @property
    def side_tasks(self) -> list[asyncio.Task[Any]]:
        """Snapshots, subscriptions and reports still under way (the shell's `settle` waits for them)."""
        return list(self._side)

    def _side_task(self, coro: Any, name: str) -> None:
        self._side.spawn(coro, f"live-{name}")

    async def _subscribe(self, keys: list[str]) -> None:
        try:
            await self.broker.subscribe(keys)
        except BrokerError as exc:
            self.log.warning("subscribe_failed", code=exc.code, keys=keys)
            from daemon.core.events import SubscribeFailedEvent

            self.report(SubscribeFailedEvent(tuple(keys), exc.code, str(exc), self.now()))  # a signal waiting on them

    async def _unsubscribe(self, keys: list[str]) -> None:
        try:
            await self.broker.unsubscribe(keys)
        except BrokerError as exc:
            self.log.debug("unsubscribe_failed", code=exc.code, keys=keys)

    async def _snapshot(self, key: str) -> None:
        try:
            self.on_quote(await self.broker.snapshot(key))
        except BrokerError as exc:
            self.log.debug("snapshot_failed", key=key, code=exc.code)

    async def _daily_report(self, day: Any) -> None:
        assert self.on_report is not None
        result = self.on_report(day)
        if asyncio.iscoroutine(result):
            await result

    def _metric(self, effect: MetricUpdate) -> None:
        if self.metrics is None:
            return
        try:  # `name` is a Metrics method (main's test walks every one the core emits)
            getattr(self.metrics, effect.name)(**effect.args)
        except Exception as exc:  # noqa: BLE001 - a metric must never stop trading
            if effect.name not in self._metric_errors:
                self._metric_errors.add(effect.name)
                self.log.warning("metric_failed", code="metric_error", metric=effect.name, error=repr(exc))


def _renamed_line(effect: Any, old: int, new: int) -> Any:
    if type(effect) is LogLine and effect.fields.get("order_id") == old:
        return LogLine(effect.level, effect.event, {**effect.fields, "order_id": new})
    return effect


def _order_id(intent: Persist) -> int | None:
    request = intent.payload.get("request")
    return None if request is None else request.order_id


def _refused(order_id: int, reason: str, at: datetime) -> Any:
    from daemon.core.events import OrderRefusedEvent

    return OrderRefusedEvent(order_id, reason, at)


__all__ = ["Effects", "STORE_UNAVAILABLE"]
