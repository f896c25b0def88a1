"""The live shell (SPEC §6.4): one asyncio driver around the synchronous `Core`, over a real broker.

    broker / quote book / API / journal  ->  events (stamped by the injected clock)  ->  Core
    Core effects                         ->  `daemon.live_effects.Effects` (journal, broker, log, metrics)

What comes in is queued as the core's own events, in arrival order, and handled by one driver
task: quotes (every quote the book stores, none coalesced or dropped), fills and order updates
from the broker, connection changes, signals and operator commands from the API, the journal's
store status, and the core's timers (the driver sleeps until `core.next_timer_at()`). Before each
event the core is advanced to the event's time, so a timer due earlier fires first at its own
time. The core decides; the shell only feeds it and carries out what it decided, in order.

Start-up (as the old engine did): migrate, reconcile the store with the broker (`daemon.reconcile`:
IB through its hook inside `start()`, any other broker here), then load what the store holds
into the core (`Core.restore`), adopt and re-price the protective stops (`Core.start`), and only
then accept signals. A reconnect is reconciled again; what that finds reaches the core as events.

This object is also the `EngineControl` the API and the CLI talk to, and keeps the old engine's
operator surface (`phase`, `healthy()`, `state_text()`, `on_state`, `last_reconcile`, `journal`).
"""

from __future__ import annotations

import asyncio
import json
import time as wallclock
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.exc import DBAPIError

from broker.base import Broker, BrokerError
from broker.quotes import QuoteBook
from broker.working import Working
from config.models import Settings
from daemon import notifications as tell
from daemon.control import HTTP_NOT_ACCEPTING, ControlError, JsonDict, SignalOutcome
from daemon.core.breakers import persist_state
from daemon.core.core import SESSION_REFS_KEY, Core
from daemon.core.effects import PlaceOrder
from daemon.core.entries import signal_id_of
from daemon.core.events import (
    ConnectionEvent,
    FillEvent,
    OperatorCommand,
    OrderRefusedEvent,
    OrderUpdateEvent,
    QuoteEvent,
    SignalEvent,
    StoreStatusEvent,
)
from daemon.core.timers import Timers
from daemon.live_effects import Effects
from daemon.logging import get_logger
from daemon.reconcile import ReconcileReport, reconcile, reconciler
from daemon.scheduler import job_specs
from daemon.store import Store, intent_log
from daemon.store.journal import Journal, JournalSettings, StoreUnavailable
from daemon.trading import META_KEY
from market import calendar
from market.clock import Clock
from market.combo import is_combo_key
from market.sanity import QuoteSanity, SanityLimits
from market.session import SessionTimes
from market.tasks import Tasks
from market.types import Fill, OptionChain, OrderStatus, OrderUpdate, Quote

SessionLookup = Callable[[date], SessionTimes | None]
DailyCloses = Callable[[date], Mapping[str, Sequence[Decimal]]]
RECONCILE_KEY = "engine.last_reconcile"
RECONCILING, READY = "reconciling", "ready"
ID_BLOCK_MIN = 100_000  # ids the core numbers itself (decisions, exit events), reserved in the store at start
ZERO = Decimal(0)


class Chains:
    """The option chains the core chooses from: the listing rules around the spot (sim), or the
    chains the broker loaded (IB, `Broker.loads_chains`), fetched by the shell ahead of time."""

    def __init__(self, multiplier: int, loaded: bool):
        self.multiplier = multiplier
        self.loaded = loaded
        self.cache: dict[str, OptionChain] = {}

    def chain(self, underlying: str, day: date, spot: Decimal) -> OptionChain | None:
        if self.loaded:
            return self.cache.get(underlying)
        from broker.listings import ListingError, option_chain

        try:
            return option_chain(underlying, day, spot, self.multiplier)
        except ListingError:
            return None


@dataclass(frozen=True, slots=True)
class _Call:
    """Work for the driver that is not a core event (adopting a reconciled position, the final state)."""

    fn: Callable[[datetime], Any]


@dataclass(frozen=True, slots=True)
class _Reconciled:
    new: bool
    unmatched_qty: int = 0


class LiveShell:
    def __init__(self, settings: Settings, clock: Clock, store: Store, broker: Broker, quotes: QuoteBook, *,
                 sessions: SessionLookup = calendar.session_for, daily_closes: DailyCloses | None = None,
                 metrics: Any = None):
        self.settings = settings
        self.profile = settings.profile.name
        self.clock = clock
        self.store = store
        self.broker = broker
        self.quotes = quotes
        self.sessions = sessions
        self.metrics = metrics
        self.log = get_logger("tradingd.live", profile=self.profile)
        # SPEC §4.4 on the book too: the sim venue fills against the book, never on a flagged quote (the core
        # checks every quote again in its own table and counts it there)
        quotes.guard(QuoteSanity(SanityLimits.from_config(settings.market_data)), clock.now)
        self.journal = Journal(store, JournalSettings.from_config(settings.daemon.journal))
        self.journal.add_listener(self._on_store)
        self.history: Any = None
        live_closes = daily_closes is None  # not a replay's: the VIX history is built from the live quotes
        if daily_closes is None and broker.has_daily_closes:  # IB: closes from its history, cached in the store
            from daemon.history import DailyHistory

            self.history = DailyHistory(broker, store, settings.profile.underlyings,  # type: ignore[arg-type]
                                        sessions=settings.correlation.lookback_sessions,
                                        pace_s=float(settings.broker.ib.history_pace_s), sleep=clock.sleep)
            daily_closes = self.history.closes
        self.chains = Chains(settings.profile.contract_multiplier, broker.loads_chains)
        from daemon.replay import _closeout

        self.timers = Timers(job_specs(settings, sessions, _closeout(settings)), sessions, clock.now())
        self.core = Core(settings, execution=None, chains=self.chains, timers=self.timers,  # type: ignore[arg-type]
                         sessions=sessions, sessions_between=calendar.sessions_between, daily_closes=daily_closes)
        self.core.records_vix_closes = live_closes
        self.working = Working(settings.execution, quotes=self.core.quotes,
                               max_quote_age_s=settings.gate.max_quote_age_s)
        self.core.orders.execution = self.working
        self.effects = Effects(broker, self.journal, log=self.log, metrics=metrics, report=self._push,
                               now=clock.now, durable_timeout_s=settings.daemon.journal.durable_timeout_s,
                               on_quote=quotes.update, modify_refused=self._modify_refused,
                               renumber=self._renumber, stop_replaced=self._stop_replaced,
                               on_report=self._daily_report)
        self.phase = "STARTING"
        self.started_at: datetime | None = None
        self.last_checkpoint: datetime | None = None
        self.last_reconcile: ReconcileReport | None = None
        # SPEC §9: combo leg executions the start-up reconciliation found new; the core folds them into units
        self._start_leg_fills: list[Fill] = []
        self._known_at_start: set[str] | None = None
        self.on_state: Callable[[str], Any] | None = None
        self._announced: str | None = None
        self._events: deque[tuple[Any, asyncio.Future[Any] | None]] = deque()
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._tickets = 0
        self._wake = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._tasks = Tasks(self.log)
        self._detach_quotes: Callable[[], None] | None = None
        self._reconciling_task: asyncio.Task[Any] | None = None
        self._chains_loading: asyncio.Task[None] | None = None  # the start-up chain refresh (IB), until done
        self.signals_received = 0
        self.quotes_in = 0

    # ================================================================== lifecycle

    async def start(self) -> None:
        """Migrate, reconcile, load the store into the core, connect the streams; then accept signals."""
        self.phase = "STARTING"
        store, broker = self.store, self.broker
        await store.upgrade()
        # room tick: what a killed run wrote ahead of its commits, into the store before reconciling reads it
        self.journal.intent_log = await intent_log.open_for(store)
        self.journal.notify_with(asyncio.get_running_loop().call_soon_threadsafe)
        broker.set_listener(self)  # what the broker says from now on waits in the queue for the core
        if broker.reconciles:  # it reconciles inside start() and after every reconnect, then says "ready"
            broker.set_reconciler(reconciler(broker, store, profile=self.profile,  # type: ignore[attr-defined]
                                             prefix=self.settings.execution.order_ref_prefix, now=self.clock.now,
                                             apply_fill=self._reconciled_fill, on_update=self._reconciled_update,
                                             on_report=self._reconciled))
        await broker.start()
        if not broker.reconciles:
            try:
                self._reconciled_report(await reconcile(broker, store, profile=self.profile,  # type: ignore[arg-type]
                                                        prefix=self.settings.execution.order_ref_prefix,
                                                        now=self.clock.now(), kind="startup"))
            except BrokerError as exc:
                self.log.error("reconcile_failed", kind="startup", code=exc.code, error=str(exc))
        await self._restore()
        if self.chains.loaded:  # room tick: off the path to READY; an entry waits for it (`_chains_ready`)
            self._chains_loading = self.spawn(self._load_chains(), "chains-start")
        now = self.clock.now()
        try:
            open_orders = await broker.open_orders()
        except BrokerError as exc:
            self.log.warning("protective_stops_deferred", code=exc.code, error=str(exc))
            open_orders = []
        core = self.core
        core.connected = broker.connected
        self._detach_quotes = self.quotes.add_listener(self._on_book_quote)  # queued until the driver runs
        try:  # the streams start before signals are taken (the core subscribes them again: a no-op)
            await broker.subscribe([*self.settings.profile.underlyings, self.settings.profile.vix_symbol,
                                    *(p.key for p in core.book)])
        except BrokerError as exc:
            self.log.warning("subscribe_failed", code=exc.code)
        core.start(now, open_orders)
        for fill in self._start_leg_fills:  # after the restore: the core knows the combo each leg belongs to
            self._push(FillEvent(fill))
        self._start_leg_fills, self._known_at_start = [], None
        self.effects.start()
        self.effects.carry_out(core.take_effects())
        self._worker = asyncio.get_running_loop().create_task(self._drive(), name=f"live-{self.profile}")
        self.started_at = now
        self.phase = "RUNNING"
        self._announce()
        if self.history is not None:  # started after the pre-open refresh: correlations now, not tomorrow
            self.spawn(self.refresh_history(), "history")

    async def _restore(self) -> None:
        store, core = self.store, self.core
        snapshot = await store.load_snapshot()
        now = self.clock.now()
        session_refs = await store.get_meta(SESSION_REFS_KEY)
        realized = sum((d.realized_pnl for d in await store.summary_by_day()), ZERO)
        highest = {"order": max(snapshot.highest_order_id, await store.highest_order_id(),
                                await self.broker.next_order_id() - 1),
                   "position": await store.highest_position_id(),
                   "exit_event": await store.reserve_ids("exit_events", ID_BLOCK_MIN) - 1,
                   "decision": await store.reserve_ids("decisions", ID_BLOCK_MIN) - 1}
        core.restore(positions=snapshot.open_positions, exit_states=snapshot.exit_states,
                     trading_meta=await store.get_meta(META_KEY), trading_record=snapshot.trading_state,
                     blocked=[b.underlying for b in snapshot.blocked_underlyings if not b.acknowledged],
                     realized_total=realized, highest=highest, exec_ids=sorted(await store.applied_exec_ids()),
                     session_refs=session_refs, combos=await store.load_combos())  # SPEC §9: combo positions' legs
        core.stops.numbered(await self.store.order_refs_starting(
            f"{self.settings.execution.order_ref_prefix}:{self.profile}:stop-"))
        for intent in snapshot.pending_intents:  # fills of orders sent before the restart find their position
            if intent.position_id is not None:
                core.orders.bind(intent.order_id, intent.position_id)
        await self._resume_session(session_refs, now)
        regime = self.core.regime
        host, writes = regime.engine, regime.engine.store
        host.store = store  # the regime's VIX and skew histories, read from the real store once
        try:
            await regime.load()
        finally:
            host.store = writes  # its writes stay effects
        await regime.refresh_calendar()  # the operator's calendar source (I/O: the shell's part)

    async def _resume_session(self, refs_text: str | None, now: datetime) -> None:
        """A restart inside a session carries on its P&L: the fills since the open are summed again."""
        session = self.sessions(now.date())
        if session is None or now < session.open:
            return
        try:
            refs_day = date.fromisoformat(json.loads(refs_text or "{}").get("session", ""))
        except (ValueError, TypeError, AttributeError):
            refs_day = None
        if session.day not in (refs_day, self.core.control.breaker.session):
            return
        self.core.session.day = session.day
        self.core.book.session_day = session.day
        fills = await self.store.list_fills(limit=100_000, since=session.open)
        self.core.book.session_realized = sum((f.realized_pnl for f in fills), ZERO)

    async def stop(self) -> None:
        """A clean stop: no new signals, the state persisted, the effects carried out, the store drained."""
        if self.phase == "STOPPED":
            return
        was_running = self.phase == "RUNNING"
        self.phase = "STOPPING"
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if was_running and self._worker is not None and not self._worker.done():
            self._push(_Call(lambda now: persist_state(self.core.control, "stopped", now, self.core.out)))
            await self._quiet()
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        await self.effects.stop()
        if self._detach_quotes is not None:
            self._detach_quotes()
        try:
            await self.broker.stop()
        except BrokerError as exc:
            self.log.warning("broker_stop_failed", code=exc.code, error=str(exc))
        self._answer_all_stopped()
        await self.flush_journal()
        self.journal.close()
        if self.journal.intent_log is not None:  # what it holds is committed, or replayed at the next start
            self.journal.intent_log.close()
        await self.store.drain()
        self.phase = "STOPPED"

    def kill(self) -> None:
        """Cancel every task without a clean shutdown (crash tests)."""
        for task in [*self._tasks, *([self._worker] if self._worker else [])]:
            task.cancel()
        if self._detach_quotes is not None:
            self._detach_quotes()
        self.phase = "STOPPED"

    async def _quiet(self, timeout: float = 5.0) -> None:
        """Until the queue is empty and the effects carried out (bounded)."""
        # monotonic, not the injected clock: a bound on how long to wait, no market time is decided by it
        deadline = wallclock.monotonic() + timeout
        turns = 0
        while (self._events or self.effects.busy) and wallclock.monotonic() < deadline:
            turns += 1  # a few loop turns first (the driver is woken, not yet run), then real waits (the store)
            await (asyncio.sleep(0) if turns < 20 else asyncio.sleep(0.001))

    async def settle(self) -> None:
        """Everything queued so far handled and carried out (tests, the bench), a reconciliation under way and
        the lane's side calls (snapshots, subscriptions) included: what they bring is queued when they end."""
        await self._quiet(timeout=60.0)
        running = {t for t in (self._reconciling_task, *self.effects.side_tasks) if t is not None and not t.done()}
        if running:
            await asyncio.wait(running, timeout=60.0)
            await self._quiet(timeout=60.0)

    async def settle_fills(self) -> None:
        await self.settle()

    @property
    def busy(self) -> bool:
        """Parent orders still in flight, or effects still being carried out."""
        return bool(len(self.working)) or bool(self._events) or self.effects.busy

    def spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        return self._tasks.spawn(coro, name)

    # ================================================================== the driver

    def _push(self, event: Any, future: asyncio.Future[Any] | None = None) -> None:
        self._events.append((event, future))
        self._wake.set()

    async def _drive(self) -> None:
        loop = asyncio.get_running_loop()
        core, wake, clock = self.core, self._wake, self.clock
        while True:
            if not self._events:
                due = core.next_timer_at()
                timer: Any = None
                if due is not None:
                    delay = (due - clock.now()).total_seconds()
                    if delay <= 0:
                        wake.set()
                    elif clock.wall:
                        timer = loop.call_later(delay, wake.set)
                    else:  # a virtual clock: its own sleep, woken when the replay moves time past it
                        timer = loop.create_task(self._sleep_then_wake(delay))
                await wake.wait()
                if timer is not None:
                    timer.cancel()
            wake.clear()
            try:
                ordered = self._handle_queued()
            except Exception as exc:  # noqa: BLE001 - the driver must never die
                self.log.exception("driver_failed", code="event_failed", error=repr(exc))
                ordered = False
            if ordered:  # one loop turn for the effect lane: the order goes out before the events queued after it
                await asyncio.sleep(0)

    async def _sleep_then_wake(self, delay: float) -> None:
        await self.clock.sleep(delay)
        self._wake.set()

    def _handle_queued(self) -> bool:
        """The queued events, in order; True: stopped early, right after an event that queued an order, with
        events left (room tick2: the quotes queued behind a trigger, ~0.1 ms of the core each, would otherwise
        hold the exit's send back; `_drive` yields one loop turn to the lane, then comes back for them)."""
        core, events, carry_out = self.core, self._events, self.effects.carry_out
        # One read of the injected clock per batch: everything queued arrived by then. An event stamped by
        # another clock (IB's execution time, a gateway whose clock runs ahead of ours) never moves the
        # core's timers past the injected clock: the close-out and every timer fire on this clock alone.
        now = self.clock.now()
        while events:
            event, future = events.popleft()
            kind = type(event)
            if kind is _Call:
                core.advance(now)
                try:
                    result = event.fn(now)
                except Exception as exc:  # noqa: BLE001
                    self.log.exception("call_failed", code="event_failed", error=repr(exc))
                    result = None
            else:
                at = event.quote.received_at if kind is QuoteEvent else event.at
                if core.timers.earliest is not None or core.pending or self.working.next_deadline() is not None:
                    core.advance(at if at < now else now)
                result = core.handle(event)
            effects = core.take_effects()
            if effects:
                carry_out(effects)
            if future is not None and not (kind is SignalEvent and result is None):
                if not future.done():
                    future.set_result(result)
            if effects and events and any(type(e) is PlaceOrder for e in effects):
                return True  # the rest of the batch (its closing `advance` too) runs after the lane's turn
        core.advance(now)
        effects = core.take_effects()
        if effects:
            carry_out(effects)
        if core.answers:
            answers, core.answers = core.answers, []
            for ticket, outcome in answers:
                waiting = self._waiting.pop(ticket, None) if ticket is not None else None
                if waiting is not None and not waiting.done():
                    waiting.set_result(outcome)
        if core.last_checkpoint is not None and core.last_checkpoint != self.last_checkpoint:
            self.last_checkpoint = core.last_checkpoint
            if self.metrics is not None:
                self.metrics.update_from_status(self.status())
            if self.settings.capital.source == "broker" and self.phase == "RUNNING":
                self.spawn(self._refresh_buying_power(), "account")  # the next checkpoint measures against it
        self._announce()
        return False

    def _answer_all_stopped(self) -> None:
        stopped = SignalOutcome(False, "not_accepting", HTTP_NOT_ACCEPTING, message="the engine has stopped")
        for future in self._waiting.values():
            if not future.done():
                future.set_result(stopped)
        self._waiting.clear()
        while self._events:
            _, future = self._events.popleft()
            if future is not None and not future.done():
                future.set_result(None)

    def _renumber(self, old_id: int, new_id: int) -> None:
        """Queued ahead of anything the broker says about the new id (the lane places it after this)."""
        self._push(_Call(lambda now: self.core.renumber(old_id, new_id)))

    def _stop_replaced(self, order_id: int, now: datetime) -> None:
        self._push(_Call(lambda at: self.core.stop_replaced(order_id, at)))

    def _modify_refused(self, order_id: int, code: str, now: datetime) -> None:
        self._push(_Call(lambda at: self.core.modify_refused(order_id, code, at)))

    # ================================================================== broker callbacks (BrokerListener)

    def on_quote(self, quote: Quote) -> None:
        self.quotes.update(quote)  # IB streams here; the book tells the shell (and the sim, and the model)

    def _on_book_quote(self, quote: Quote) -> None:
        self.quotes_in += 1
        self._events.append((QuoteEvent(quote), None))
        self._wake.set()

    def on_order_update(self, update: OrderUpdate) -> None:
        if update.status.done:
            self.effects.order_ended(update.order_id)
        if update.status is OrderStatus.REJECTED and update.filled == 0:
            self._push(OrderRefusedEvent(update.order_id, update.reason or "rejected", update.at))
        self._push(OrderUpdateEvent(update))

    def on_fill(self, fill: Fill) -> None:
        self._push(FillEvent(fill))

    def on_connection(self, connected: bool, reason: str) -> None:
        """Entries wait while the broker is away and until the store is reconciled with it (SPEC §6.1)."""
        expected = self.broker.disconnect_expected
        if self.phase != "RUNNING":
            return  # start-up and shutdown: the start-up reconciliation and `Core.start` cover it
        if not connected and not expected:
            tell.notify("disconnect", f"broker disconnected outside its restart window ({reason}): "
                                      "no entries until it is back and reconciled")
        now = self.clock.now()
        if connected and reason not in (RECONCILING, READY) and not self.broker.reconciles:
            self._push(ConnectionEvent(True, RECONCILING, now, expected))
            self._reconcile_again("reconnect")
        else:
            self._push(ConnectionEvent(connected, reason, now, expected))

    def _reconcile_again(self, kind: str) -> None:
        if self._reconciling_task is not None and not self._reconciling_task.done():
            return
        self._reconciling_task = self.spawn(self._reconcile(kind), f"reconcile-{kind}")

    async def _reconcile(self, kind: str) -> None:
        """A broker without a hook reconnected (or the store came back): store vs broker, then ready."""
        await self.journal.drain(self.settings.daemon.journal.durable_timeout_s)  # the intents on disk first
        try:
            report = await reconcile(self.broker, self.store, profile=self.profile,  # type: ignore[arg-type]
                                     prefix=self.settings.execution.order_ref_prefix, now=self.clock.now(),
                                     kind=kind, apply_fill=self._reconciled_fill,  # type: ignore[arg-type]
                                     on_update=self._reconciled_update)
        except BrokerError as exc:
            self.log.error("reconcile_failed", kind=kind, code=exc.code, error=str(exc))
            return
        except (DBAPIError, OSError, StoreUnavailable) as exc:  # tried again when the store is back
            self.log.error("reconcile_failed", kind=kind, code="store_unavailable", error=repr(exc))
            return
        await self._reconciled(report)
        self._push(ConnectionEvent(True, READY, self.clock.now(), self.broker.disconnect_expected))

    async def _reconciled_fill(self, fill: Fill) -> Any:
        if self.phase != "RUNNING":  # the start-up reconciliation: straight into the store, then loaded
            if await self._is_combo_leg(fill):
                # a combo's leg is never an option fill of its own: a known one is skipped, a new one waits for
                # the core, which folds legs into whole units (daemon.core.combos)
                if self._known_at_start is None:
                    self._known_at_start = await self.store.applied_exec_ids()
                if fill.exec_id in self._known_at_start:
                    return _Reconciled(False)
                self._start_leg_fills.append(fill)
                return _Reconciled(True)
            return await self.store.apply_fill(fill)
        new = fill.exec_id not in self.core.exec_ids
        self._push(FillEvent(fill))
        return _Reconciled(new)

    async def _is_combo_leg(self, fill: Fill) -> bool:
        """The fill is a leg of one of our combo orders: its intent's position is stored under a combo key."""
        intent = await self.store.find_intent(fill.order_id)
        if intent is None or intent.position_id is None:
            return False
        position = await self.store.get_position(intent.position_id)
        return position is not None and is_combo_key(position.contract_key)

    async def _reconciled_update(self, update: OrderUpdate) -> None:
        if self.phase != "RUNNING":
            await self.store.update_order(update)
            return
        self._push(OrderUpdateEvent(update))

    def _reconciled_report(self, report: ReconcileReport) -> None:
        self.last_reconcile = report
        self.journal.append("set_meta", key=RECONCILE_KEY, value=json.dumps(report.as_dict()))

    async def _reconciled(self, report: ReconcileReport) -> None:
        """What a reconciliation found: the report stored; after start-up, adopted positions and blocked
        underlyings handed to the core (at start-up the core loads them from the store)."""
        self._reconciled_report(report)
        if self.phase != "RUNNING":
            return
        records = [r for a in report.adopted if (r := await self.store.get_position(a.position_id)) is not None
                   and r.status == "open"]
        blocked = [b.underlying for b in await self.store.blocked_underlyings()]
        self._push(_Call(lambda now: self.core.adopt(records, blocked, now)))

    # ================================================================== the store behind the journal

    def _on_store(self, available: bool, reason: str | None) -> None:
        """The journal says the store stopped (or started again) writing: entries stop (the gate's
        `store_unavailable`), /healthz answers 503, the metric and the alert follow; exits go on."""
        if available:
            self.log.warning("store_available", pending=self.journal.pending, failures=self.journal.failures)
            tell.notify("store_fault", f"store available again: {self.journal.pending} records being written "
                                       f"in order; entries resume")
        else:
            self.log.error("store_unavailable", code="store_unavailable", reason=reason, pending=self.journal.pending,
                           note="entries refused; exits, stops, the close-out and breakers go on from memory")
            tell.notify("store_fault", f"store unavailable ({reason}): entries refused; exits, stops, the "
                                       f"close-out and breakers go on from memory")
        if self.metrics is not None:
            self.metrics.set_store(available=available, pending=self.journal.pending, failures=self.journal.failures)
        self._push(StoreStatusEvent(available, reason, self.clock.now()))
        if (available and self.phase == "RUNNING" and self.core.control.reconciling and not self.broker.reconciles
                and self.broker.connected):
            self._reconcile_again("reconnect")  # a reconciliation the fault cut short, again

    async def flush_journal(self, timeout: float | None = None) -> bool:
        limit = self.settings.daemon.journal.durable_timeout_s if timeout is None else timeout
        deadline = wallclock.monotonic() + limit  # a pure timeout on the store (the market's time is not involved)
        while self.journal.pending:
            left = deadline - wallclock.monotonic()
            if left <= 0:
                self.log.error("journal_not_flushed", code="store_unavailable", pending=self.journal.pending,
                               reason=self.journal.reason)
                return False
            if not await self.journal.drain(left):
                await asyncio.sleep(min(left, self.settings.daemon.journal.retry_max_s))
        return True

    def store_status(self) -> JsonDict:
        j = self.journal
        return {"available": j.available, "reason": j.reason, "pending": j.pending, "failures": j.failures,
                "rejected": j.rejected, "over_high_water": j.over_high_water}

    # ================================================================== I/O the core asks for by time

    async def _load_chains(self) -> None:
        try:
            loaded = await self.broker.load_chains(self.settings.profile.underlyings)  # type: ignore[attr-defined]
        except BrokerError as exc:
            self.log.warning("chains_not_loaded", code=exc.code, error=str(exc))
            return
        self.chains.cache.update(loaded)
        self.log.info("chains_refreshed", underlyings=sorted(loaded))

    async def _chains_ready(self) -> None:
        """A signal taken before the start-up chain refresh ended waits for it: the core chooses its contract
        from the chains (READY=1 does not wait for them: ~1.5 s of a start on IB, docs/decisions/tick.md)."""
        task = self._chains_loading
        if task is not None and not task.done():
            await asyncio.wait({task})  # not shielded by hand: a cancelled signal leaves the refresh running

    async def refresh_history(self) -> None:
        """The daily history refresh, with a broker that serves daily closes (IB; `history` is None otherwise,
        and this does nothing): the closes behind the correlations, VIX's history seeded from the broker while
        the regime's own is short, then the correlations recomputed on the driver. The shell runs it after its
        start and after each daily report; a second call on the same day asks the broker nothing more."""
        if self.history is None:
            return
        today = self.clock.now().date()
        await self.history.refresh(today)
        try:  # VIX's percentile from IB's history while the regime's own is short (its records are effects)
            await self.core.regime.seed_vix_history(self.broker, today)
        except Exception as exc:  # noqa: BLE001 - information: never stops trading
            self.log.warning("vix_history_seed_failed", code="regime_error", error=repr(exc))
        self._push(_Call(lambda now: self.core.session.refresh_correlations(now)))

    async def _daily_report(self, day: date) -> None:
        from daemon.report import day_lines

        await self.flush_journal()
        for summary in await self.store.summary_by_day():
            if summary.session_date == day:
                for line in day_lines(summary):
                    self.log.info("daily_report", line=line)
                tell.notify("daily_report", "\n".join(day_lines(summary)))
        if self.chains.loaded:  # tomorrow's weekly and strikes, before the next open
            await self._load_chains()
        if self.history is not None:
            await self.refresh_history()

    # ================================================================== EngineControl

    @property
    def accepting_signals(self) -> bool:
        return self.phase == "RUNNING" and self.broker.connected

    async def submit_signal(self, raw: JsonDict, source: str) -> SignalOutcome:
        started = wallclock.perf_counter()
        self.signals_received += 1
        if not self.accepting_signals:
            why = "broker_disconnected" if self.phase == "RUNNING" else self.phase.lower()
            return SignalOutcome(False, "not_accepting", HTTP_NOT_ACCEPTING,
                                 message=f"the engine is not accepting signals ({why})")
        await self._chains_ready()
        await self._refresh_buying_power()
        await self._fresh_market(raw)
        sid = signal_id_of(raw)
        if sid is not None and sid not in self.core.entries.first_decisions:
            try:  # a resend of a signal an earlier run decided: answered with that first decision
                first = await self.store.first_decision(sid)
            except Exception as exc:  # noqa: BLE001 - the store away: the core refuses store_unavailable itself
                self.log.warning("duplicate_check_failed", code="store_unavailable", signal_id=sid, error=repr(exc))
                first = None
            if first is not None:
                self.core.entries.first_decisions.setdefault(sid, first.breakdown)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._tickets += 1
        ticket = self._tickets
        self._waiting[ticket] = future
        self._push(SignalEvent(raw, source, self.clock.now(), ticket))
        result = await future
        if not isinstance(result, SignalOutcome):
            return SignalOutcome(False, "internal_error", 500, message="internal error while deciding the signal")
        if self.metrics is not None:
            self.metrics.observe_latency(wallclock.perf_counter() - started)
        return result

    async def _fresh_market(self, raw: Any) -> None:
        """The signal's underlying and VIX quoted now: a snapshot for a key whose stream has not spoken
        recently (a stream just subscribed, a quiet key). The answer goes through the book, so the core
        sees it as a quote event before the signal; the core still decides on what it has."""
        underlying = raw.get("underlying") if isinstance(raw, dict) else None
        keys = [self.settings.profile.vix_symbol]
        if isinstance(underlying, str) and underlying in self.settings.profile.underlyings:
            keys.insert(0, underlying)
        if isinstance(underlying, str) and self.chains.loaded and underlying not in self.chains.cache and (
                underlying in self.settings.profile.underlyings):
            try:  # a chain the pre-open load did not get (listed since, or the load failed): asked now
                self.chains.cache[underlying] = await self.broker.chain(underlying)
            except BrokerError as exc:
                self.log.warning("chain_unavailable", code=exc.code, underlying=underlying, error=str(exc))
        now = self.clock.now()
        limit = self.settings.gate.max_quote_age_s
        for key in keys:
            quote = self.core.quotes.get(key)
            if quote is not None and quote.age_s(now) <= limit:
                continue
            try:
                self.quotes.update(await self.broker.snapshot(key))
            except BrokerError as exc:
                self.log.debug("snapshot_failed", key=key, code=exc.code)

    async def _refresh_buying_power(self) -> None:
        """The account as the core sizes against it: buying power, and the net liquidation that is the
        capital base when `capital.source = "broker"` (read before each signal and after each checkpoint)."""
        try:
            account = await self.broker.account()
            self.core.buying_power, self.core.net_liquidation = account.buying_power, account.net_liquidation
        except BrokerError as exc:
            self.core.buying_power = None
            self.log.warning("account_unavailable", code=exc.code)

    async def checkpoint(self, at: datetime) -> None:
        """Run the checkpoint job now (tests, drills): the account first when the base is the broker's."""
        if self.settings.capital.source == "broker":
            await self._refresh_buying_power()
        from daemon.core.events import TimerEvent

        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._push(TimerEvent("checkpoint", at), future)
        await future

    def capital_base(self) -> Decimal:
        return self.core.capital_base()

    def status(self) -> JsonDict:
        now = self.clock.now()
        status = self.core.status(now)
        report = self.last_reconcile
        status.update({
            "trading_state": "STARTING" if self.phase == "STARTING" else status["trading_state"],
            "broker_connected": self.broker.connected,
            "disconnect_expected": self.broker.disconnect_expected,
            "accepting_signals": self.accepting_signals,
            "last_reconcile": None if report is None else {
                "kind": report.kind, "at": report.at.isoformat(), "clean": report.clean,
                "fills_applied": len(report.fills_applied), "adopted": len(report.adopted),
                "blocked": list(report.blocked)},
            "market_open": calendar.is_regular_hours(now),
            "store": self.store_status(),
        })
        return status

    def positions(self) -> list[JsonDict]:
        return self.core.positions()

    @property
    def blocked(self) -> set[str]:
        return self.core.blocked

    @property
    def exits(self) -> Any:
        """The core's exit desk: the operator page draws each position's exit plan from its `market`."""
        return self.core.exits

    @property
    def book(self) -> Any:
        return self.core.book

    @property
    def control(self) -> Any:
        return self.core.control

    @property
    def correlations(self) -> Any:
        return self.core.session.correlations

    async def _command(self, action: str, actor: str, **args: str) -> JsonDict:
        if self.phase != "RUNNING":
            raise ControlError("not_running", "the engine is not running", 503)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._push(OperatorCommand(action, actor, self.clock.now(), args), future)
        answer = await future
        if not answer or not answer.get("ok"):
            answer = answer or {}
            raise ControlError(answer.get("error", "refused"), answer.get("message", ""),
                               404 if answer.get("error") == "not_blocked" else 409)
        return answer

    async def halt(self, reason: str, actor: str) -> JsonDict:
        answer = await self._command("halt", actor, reason=reason)
        tell.notify("halt", f"HALTED by {actor}: {reason or 'operator halt'}. No entries until resume.")
        return answer

    async def resume(self, actor: str) -> JsonDict:
        answer = await self._command("resume", actor)
        tell.notify("resume", f"resumed by {actor}: trading state {answer.get('trading_state')}, "
                              f"breaker level {answer.get('breaker_level')}")
        return answer

    async def flatten(self, reason: str, actor: str) -> JsonDict:
        answer = await self._command("flatten", actor, reason=reason)
        tell.notify("flatten", f"flatten by {actor}: {reason}; closing {len(answer.get('closing_positions', []))} "
                               "position(s)")
        return answer

    async def acknowledge(self, underlying: str, actor: str) -> JsonDict:
        return await self._command("ack", actor, underlying=underlying)

    # ================================================================== health and the status line

    def healthy(self) -> bool:
        """For the systemd watchdog: running, the driver and the effect lane alive, and during regular
        hours the 5-minute checkpoint not overdue (a stuck loop or timer stops the pings)."""
        if self.phase != "RUNNING" or self._worker is None or self._worker.done() or not self.effects.alive:
            return False
        now = self.clock.now()
        session = self.sessions(now.date())
        if session is None or not session.contains(now):
            return True
        schedule = self.settings.daemon.schedule
        since = max(t for t in (self.last_checkpoint, self.started_at, session.open) if t is not None)
        return now - since <= timedelta(minutes=schedule.checkpoint_minutes * schedule.checkpoint_overdue_after)

    def state_text(self) -> str:
        """One line for systemd's STATUS: the trading state, why, and whether the broker is there."""
        control = self.core.control
        state = control.state.value if self.phase == "RUNNING" else self.phase
        reason = control.reason
        broker = "broker connected" if self.broker.connected else (
            "broker away (expected)" if self.broker.disconnect_expected else "broker disconnected")
        store = "" if self.journal.available else f", store unavailable ({self.journal.reason})"
        return f"{state}{f' ({reason})' if reason else ''}, {broker}{store}"

    def _announce(self) -> None:
        text = self.state_text()
        if text == self._announced:
            return
        self._announced = text
        if self.metrics is not None:
            self.metrics.set_trading_state(self.core.control.state.value)
        if self.on_state is not None:
            try:
                self.on_state(text)
            except Exception as exc:  # noqa: BLE001 - a status line must never stop trading
                self.log.warning("state_listener_failed", error=repr(exc))


__all__ = ["Chains", "LiveShell"]
