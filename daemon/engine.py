"""The engine: one asyncio loop where quotes, signals, fills, order updates and timer events meet.

    quote/signal -> risk (decision) -> broker/execution (orders) -> fills -> store -> exits -> broker

Clock, broker and quote book are injected, so `tradingd run` (live clock, IB or sim) and a
replay (virtual clock, sim over recorded bars) run this same code. Broker callbacks and quote
book notifications only queue work; one worker task applies fills and evaluates exits in
arrival order, awaiting the store, so every fill and every exit-state change is committed
before anything that depends on it is sent. Signals are decided one at a time under a lock.

Pieces: `entries.SignalDesk` (signal -> decision), `positions.Book` (open positions, marks,
session P&L), `trading.TradingControl` (breakers, halt, reconciling), `exiting.ExitDesk` (exit
rules, breaker effects, flatten), `protection.StopDesk` (the stops resting at the broker),
`broker.execution.Executor` (parent orders), `daemon.reconcile` (store vs broker after every
(re)connect, before entries are accepted).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time as wallclock
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.exc import DBAPIError

from broker.base import Broker, BrokerError
from broker.execution import Executor
from broker.quote_model import OptionQuoteModel, is_option_key
from broker.quotes import QuoteBook
from broker.throttle import Throttle
from market.types import Fill, OptionContract, OrderRequest, OrderUpdate, Quote
from config.models import Settings
from market import calendar
from market.clock import Clock
from daemon.control import (
    HTTP_INTERNAL_ERROR,
    HTTP_NOT_ACCEPTING,
    HTTP_REFUSED,
    INTERNAL_ERROR,
    ControlError,
    JsonDict,
    SignalOutcome,
)
from daemon.entries import SignalDesk
from daemon.exiting import ExitDesk
from daemon import format as fmt
from daemon import notifications as tell
from daemon.logging import get_logger
from daemon.positions import Book, LivePosition
from daemon.regime import RegimeDesk
from daemon.protection import StopDesk
from daemon.history import DailyHistory
from daemon.reconcile import ReconcileReport, reconcile, reconciler
from daemon.sending import OrderIds, RecordingBroker, paces_itself
from daemon.store import Store
from daemon.store.journal import Journal, JournalSettings, StoreUnavailable
from daemon.store.records import PositionRecord
from daemon.trading import META_KEY, TradingControl
from market.sanity import QuoteSanity, SanityLimits, Verdict
from market.session import EXCHANGE_TZ, SessionTimes
from exits.state import ExitState
from risk.capital import capital_base
from risk.correlation import correlation_matrix
from risk.decision import Decision
from risk.numbers import InvalidInput
from risk.request import SizingRequest, parse_correlations
from risk.signal import Signal

SessionLookup = Callable[[date], SessionTimes | None]
DailyCloses = Callable[[date], Mapping[str, Sequence[Decimal]]]
SESSION_REFS_KEY = "engine.session_refs"
RECONCILE_KEY = "engine.last_reconcile"
# The connection reasons of a broker that reconciles through a hook (IBBroker, `set_reconciler`):
# "reconciling" after every (re)connect while its reconciler runs, "ready" once it returned.
RECONCILING, READY = "reconciling", "ready"
SETTLE_ROUNDS = 1000  # a bound, not a tuning knob: one event never needs more than a few
ZERO = Decimal(0)


class Engine:
    def __init__(self, settings: Settings, clock: Clock, store: Store, broker: Broker, quotes: QuoteBook, *,
                 quote_model: OptionQuoteModel | None = None, sessions: SessionLookup = calendar.session_for,
                 daily_closes: DailyCloses | None = None, metrics: Any = None):
        self.settings = settings
        self.profile = settings.profile.name
        self.clock = clock
        self.store = TrackedStore(store)
        # Room journal (SPEC §6.2): every record of a state change goes through the write-behind
        # journal; the store is read (start-up, reconciliation, reports) but never waited on to act.
        self.journal = Journal(store, JournalSettings.from_config(settings.daemon.journal))
        self.journal.add_listener(self._on_store)
        # Ids the engine gives its exit events and decisions (journal records carry them; an exit's
        # orderRef names its event before the row exists), reserved from the store in blocks.
        self._ids = {table: IdBlock(table, settings.daemon.journal.id_block) for table in ("exit_events", "decisions")}
        self._exec_ids: set[str] = set()  # every fill applied: "exactly once" decided in memory
        self._intent_positions: dict[int, int | None] = {}  # order id -> position id, as its intent says
        self.seen_signals: set[str] = set()  # signal ids received by this process (the store may lag)
        self.broker = broker
        self.quotes = quotes
        self.quote_model = quote_model
        # SPEC §4.4 on every quote path (stream, snapshot, sim, replay): they all write through this book.
        quotes.guard(QuoteSanity(SanityLimits.from_config(settings.market_data)), clock.now, self._bad_quote)
        self.sessions = sessions
        self.daily_closes = daily_closes
        # Live (IB): the closes come from the broker's historical data, cached in the store (SPEC §2.5, §6.1).
        self.history: DailyHistory | None = None
        if daily_closes is None and broker.has_daily_closes:
            self.history = DailyHistory(broker, store, settings.profile.underlyings,  # type: ignore[arg-type]
                                        sessions=settings.correlation.lookback_sessions,
                                        pace_s=float(settings.broker.ib.history_pace_s), sleep=clock.sleep)
            self.daily_closes = self.history.closes
        self.metrics = metrics
        self.log = get_logger("tradingd.engine", profile=self.profile)
        self.book = Book()
        self.control = TradingControl(settings)
        self.desk = SignalDesk(self)
        self.exits = ExitDesk(self)
        self.regime = RegimeDesk(self)  # SPEC §10: calendar, surfaces, VIX history -> values for risk/exits
        # One bucket paces every outgoing message: the broker's own when it has one (IB), which the
        # executor then shares (its order messages count twice there: slower, never over the limit).
        self.throttle: Throttle = broker.throttle or Throttle(
            clock, settings.execution.max_messages_per_s)
        # Profiles sharing an IB account share its order ids: each id is taken in the account's turn.
        self.order_ids = (OrderIds(broker.claim_order_id_floor, broker.release_order_id_claim)  # type: ignore[attr-defined]
                          if broker.shares_order_ids else OrderIds())
        self.executor = Executor.from_settings(RecordingBroker(broker, self._record_refusal, clock.now, self.order_ids),
                                               quotes, clock, settings, allocate_order_id=self.allocate_order_id,
                                               before_send=self._before_send, throttle=self.throttle)
        pace = None if paces_itself(broker) else self.throttle.acquire
        self.stops = StopDesk(self, RecordingBroker(broker, self._record_refusal, clock.now, self.order_ids,
                                                    acquire=pace))
        self._broker_reconciles = broker.reconciles
        self.last_reconcile: ReconcileReport | None = None
        self.signals_received = 0
        self.started_at: datetime | None = None
        self.on_state: Callable[[str], Any] | None = None  # told the trading state's text when it changes
        self._announced: str | None = None
        self.blocked: set[str] = set()
        self.correlations: dict[str, dict[str, Decimal]] = {}
        self.previous_close: dict[str, Decimal] = {}
        self.vix_open: Decimal | None = None
        self.realized_total = ZERO
        self.phase = "STARTING"
        self.last_checkpoint: datetime | None = None
        self._intents_written: set[int] = set()
        self._order_positions: dict[str, int] = {}  # parent orderRef -> position id
        self._signal_lock = asyncio.Lock()
        self._events: deque[tuple[str, Any]] = deque()
        self._dirty: dict[str, Quote] = {}
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._worker: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._detach_quotes: Callable[[], None] | None = None
        self._last_underlying: dict[str, Decimal] = {}

    # ================================================================== lifecycle

    async def start(self) -> None:
        """Migrate, load state, connect, reconcile (SPEC §6); then accept signals."""
        self.phase = "STARTING"
        await self.store.upgrade()
        self.journal.notify_with(asyncio.get_running_loop().call_soon_threadsafe)
        snapshot = await self.store.load_snapshot()
        for block in self._ids.values():
            block.add(await self.store.reserve_ids(block.table, block.size))
        self._exec_ids = await self.store.applied_exec_ids()
        self._intent_positions.update({i.order_id: i.position_id for i in snapshot.pending_intents})
        self.control.restore(await self.store.get_meta(META_KEY), snapshot.trading_state)
        refs_session, refs = _load_refs(await self.store.get_meta(SESSION_REFS_KEY))
        for record in snapshot.open_positions:
            self.book.add(self._live_position(record, snapshot.exit_states.get(record.id), refs.get(record.id)))
        await self._resume_session(refs_session)
        await self.regime.load()
        await self.regime.refresh_calendar()
        self.blocked = {b.underlying for b in snapshot.blocked_underlyings if not b.acknowledged}
        self.realized_total = sum((d.realized_pnl for d in await self.store.summary_by_day()), ZERO)
        self.control.reconciling = True
        self.broker.set_listener(self)
        if self._broker_reconciles:  # it reconciles inside start() and after every reconnect, then says "ready"
            self.broker.set_reconciler(self._reconciler())  # type: ignore[attr-defined]
        await self.broker.start()
        # Reconciliation remembers every id it saw at the broker: the max rule covers them too.
        self.order_ids.start_after(max(await self.store.highest_order_id(), await self.broker.next_order_id() - 1))
        self._detach_quotes = self.quotes.add_listener(self._on_book_quote)
        self._worker = asyncio.get_running_loop().create_task(self._work(), name=f"engine-{self.profile}")
        await self.broker.subscribe([*self.settings.profile.underlyings, self.settings.profile.vix_symbol,
                                     *(p.key for p in self.book)])
        if not self._broker_reconciles and await self._reconcile("startup") is not None:
            self.control.reconciling = False
        await self._start_stops()
        await self._persist_state("started")
        self.started_at = self.clock.now()
        self.phase = "RUNNING"
        self._announce()
        self.log.info("engine_started", trading_state=self.control.state.value, open_positions=len(self.book),
                      breaker_level=self.control.level, blocked=sorted(self.blocked),
                      protective_stops=len(self.stops.stops.all))
        await self.exits.resume_interrupted(self.clock.now())
        if self.history is not None:  # started after the pre-open refresh: correlations now, not tomorrow
            self.spawn(self.refresh_correlations(self.clock.now()), name="history")

    async def stop(self) -> None:
        """A clean stop: no new signals, working parents pulled, state persisted, store drained."""
        self.phase = "STOPPING"
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.order_ids.release()  # a sender cancelled between its id and its place
        await self.settle()
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        if self._detach_quotes is not None:
            self._detach_quotes()
        await self.broker.stop()
        await self._persist_state("stopped")
        await self.flush_journal()
        self.journal.close()
        await self.store.drain()
        self.phase = "STOPPED"

    def kill(self) -> None:
        """Cancel every task of the engine without a clean shutdown (crash tests)."""
        for task in [*self._tasks, *([self._worker] if self._worker else [])]:
            task.cancel()
        if self._detach_quotes is not None:
            self._detach_quotes()
        self.phase = "STOPPED"

    def spawn(self, coro: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            self.log.error("task_failed", code="task_failed", task=task.get_name(), error=repr(exc), exc_info=exc)

    async def settle(self) -> None:
        """Let everything the last event started run until it waits on the clock again: the worker idle
        and no store call in flight (replay determinism: virtual time never runs ahead of the database)."""
        for _ in range(SETTLE_ROUNDS):
            await self.clock.turns()
            if self.store.inflight:
                await self.store.raw.drain()
            elif self.journal.pending and self.journal.available:
                await self.journal.drain()  # a replay's virtual time waits for the store while it writes
            elif not (self._idle.is_set() and not self._events and not self._dirty):
                await self._idle.wait()
            else:
                return

    async def settle_fills(self) -> None:
        """Wait until every queued broker event has been applied (not to be called by the worker itself)."""
        while self._events or self._dirty or not self._idle.is_set():
            await self._idle.wait()
            await self.clock.turns()

    @property
    def busy(self) -> bool:
        return bool(self._tasks)

    # ================================================================== broker and book callbacks

    # These four are called by the broker from inside its own machinery (ib_async's decoder and
    # events, the sim's matching): they never raise into it, and a fill or an update is queued for
    # the worker whatever happens to the executor's or the stop desk's bookkeeping of it.

    def on_quote(self, quote: Quote) -> None:
        # IB streams here; the book tells the engine (and the model, and the sim)
        self._guarded("quote", self.quotes.update, quote)

    def on_order_update(self, update: OrderUpdate) -> None:
        self._guarded("order_update", self.executor.on_order_update, update)
        self._guarded("order_update", self.stops.on_order_update, update)
        self._push("update", update)

    def on_fill(self, fill: Fill) -> None:
        self._guarded("fill", self.executor.on_fill, fill)
        self._push("fill", fill)

    def on_connection(self, connected: bool, reason: str) -> None:
        self._guarded("connection", self._on_connection, connected, reason)

    def _guarded(self, event: str, call: Callable[..., Any], *args: Any) -> None:
        try:
            call(*args)
        except Exception as exc:  # noqa: BLE001 - a broker callback must never raise into the broker
            self.log.exception("broker_callback_failed", code="callback_error", broker_event=event, error=repr(exc))

    def _on_connection(self, connected: bool, reason: str) -> None:
        """Entries wait while the broker is away and until the store is reconciled with it (SPEC §6.1).

        A broker with a reconciler hook (IB) runs `daemon.reconcile` itself on every (re)connect,
        between "reconciling" and "ready"; any other broker's reconnect is reconciled here, once.
        """
        self.log.info("broker_connection", connected=connected, reason=reason)
        if not connected and not self.disconnect_expected and self.phase == "RUNNING":  # not our own stop
            tell.notify("disconnect", f"broker disconnected outside its restart window ({reason}): "
                                      "no entries until it is back and reconciled")
        if self.metrics is not None:
            self.metrics.set_broker_connected(connected, disconnect_expected=self.disconnect_expected)
        if connected and reason == RECONCILING:
            self.control.reconciling = True
        elif connected and reason == READY:
            self.control.reconciling = False
            if self.phase == "RUNNING":
                self._push("ready", reason)
        elif connected and self.phase == "RUNNING" and not self._broker_reconciles:
            self.control.reconciling = True
            self._push("reconnected", reason)
        self._announce()

    @property
    def disconnect_expected(self) -> bool:
        """The broker is away inside its restart window (IB's nightly restart, the weekend): no alert."""
        return bool(self.broker.disconnect_expected)

    def _on_book_quote(self, quote: Quote) -> None:
        self._dirty[quote.key] = quote
        self._idle.clear()
        self._wake.set()

    def _push(self, kind: str, payload: Any) -> None:
        self._events.append((kind, payload))
        self._idle.clear()
        self._wake.set()

    async def _work(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._events or self._dirty:
                try:
                    if self._events:
                        kind, payload = self._events.popleft()
                        await self._handle_event(kind, payload)
                    else:
                        key = next(iter(self._dirty))
                        await self._handle_quote(self._dirty.pop(key))
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - one bad event must not stop the engine
                    self.log.exception("event_failed", code="event_failed", error=repr(exc))
            self._idle.set()

    async def _handle_event(self, kind: str, payload: Any) -> None:
        if kind == "fill":
            await self.exits.apply_fill(payload)
        elif kind == "update":
            self.journal.append("update_order", update=payload)
            if payload.status.done:
                self.log.debug("order", order_id=payload.order_id, order_ref=payload.order_ref,
                               status=payload.status.value, contracts=payload.filled, reason=payload.reason)
        elif kind == "reconnected":
            if await self._reconcile("reconnect") is not None:
                self.control.reconciling = False
                self._announce()
            await self._after_connect()
        elif kind == "ready":
            await self._after_connect()

    async def _handle_quote(self, quote: Quote) -> None:
        now = self.clock.now()
        key = quote.key
        if key == self.settings.profile.vix_symbol:
            self._track_vix_open(quote, now)
            return
        if not is_option_key(key):
            if quote.mid is not None:
                self._last_underlying[key] = quote.mid
            return
        marked = False
        for position in self.book.by_key(key):
            position.apply_quote(quote)
            marked = True
            await self.exits.evaluate(position, now)
        if marked:
            await self.exits.check_breakers(now)

    def _track_vix_open(self, quote: Quote, now: datetime) -> None:
        """VIX's session open: its first print at or after the open (SPEC §3's 20 % spike rule)."""
        session = self.sessions(now.date())
        if session is None or quote.received_at < session.open or session.day != self.book.session_day:
            return
        if self.vix_open is None:
            self.vix_open = quote.mid

    # ================================================================== orders

    async def allocate_order_id(self) -> int:
        """The next id; the one after waits until this one was placed or given up (ids go out in order)."""
        return await self.order_ids.take()

    async def _before_send(self, request: OrderRequest) -> None:
        """Every order intent is committed before the broker sees it (SPEC §6.1); a modify keeps its intent."""
        if request.order_id in self._intents_written:
            return
        await self.write_intent(request, self._order_positions.get(request.order_ref.rsplit(":", 1)[0]))

    async def write_intent(self, request: OrderRequest, position_id: int | None) -> None:
        """Commit the intent of a new order, tied to its position so its fills find it (SPEC §6.1, §6.2).

        An entry (BUY) is sent only once its intent is committed: no durable intent, no entry
        (`StoreUnavailable`). An exit or a protective stop (SELL) is committed first while the store
        writes; while it cannot, the intent stays in the journal and the order goes out anyway
        (reconciliation knows it by its orderRef after a crash).
        """
        record = {"request": request, "at": self.clock.now(), "parent_ref": request.order_ref.rsplit(":", 1)[0],
                  "position_id": position_id}
        try:
            if request.side == "BUY":
                await self.journal.durable("write_intent", **record)
            else:
                try:
                    await self.journal.durable("write_intent", **record)
                except StoreUnavailable as exc:
                    self.journal.append("write_intent", **record)
                    self.log.warning("exit_intent_journaled", code=exc.code, order_id=request.order_id,
                                     order_ref=request.order_ref, reason=self.journal.reason)
        except BaseException:  # no intent, no order: its id is given up
            self.order_ids.done(request.order_id)
            raise
        self._intent_positions[request.order_id] = position_id
        self._intents_written.add(request.order_id)
        self.log.debug("order", order_id=request.order_id, order_ref=request.order_ref,
                       underlying=request.contract.underlying, side=request.side, contracts=request.quantity,
                       type=request.order_type, limit=request.limit_price, stop=request.stop_price, status="sending")
        if self.metrics is not None:
            self.metrics.observe_order("submitted", level="child")

    async def _record_refusal(self, update: OrderUpdate) -> None:
        """The broker refused to take an order: its intent is closed as rejected, with the reason, at once."""
        self.log.warning("order", order_id=update.order_id, order_ref=update.order_ref, status="rejected",
                         reason=update.reason)
        if self.metrics is not None:
            self.metrics.observe_order("rejected", level="child")
        self.journal.append("update_order", update=update)

    async def _apply_update(self, update: OrderUpdate) -> None:
        """An order status found by reconciliation: everyone who follows orders hears it, then the store."""
        self.executor.on_order_update(update)
        self.stops.on_order_update(update)
        self.journal.append("update_order", update=update)
        return None

    async def ensure_quotes(self, keys: Sequence[str]) -> None:
        """Subscribe `keys`; any still without a fresh quote gets a snapshot (IB streams take a moment)."""
        await self.broker.subscribe(list(keys))
        now = self.clock.now()
        for key in keys:
            quote = self.quotes.get(key)
            if quote is None or quote.age_s(now) > self.settings.gate.max_quote_age_s:
                try:
                    self.quotes.update(await self.broker.snapshot(key))
                except BrokerError as exc:
                    self.log.debug("snapshot_failed", key=key, code=exc.code)

    async def release_quotes(self, keys: Sequence[str]) -> None:
        """Unsubscribe option keys no position holds (IB's market-data lines are few; the model reprices each)."""
        held = {p.key for p in self.book}
        unused = [k for k in keys if k not in held]
        if unused:
            await self.broker.unsubscribe(unused)

    def bind_order(self, parent_ref: str, position_id: int) -> None:
        self._order_positions[parent_ref] = position_id

    def order_position(self, order_ref: str | None) -> int | None:
        """The position an order of this process works for, by its orderRef's parent."""
        return None if not order_ref else self._order_positions.get(order_ref.rsplit(":", 1)[0])

    # ================================================================== signals (EngineControl)

    @property
    def accepting_signals(self) -> bool:
        """Signals are answered (while reconciling: refused with a stored decision); not before the engine
        runs, nor while the broker is away."""
        return self.phase == "RUNNING" and self.broker.connected

    async def submit_signal(self, raw: JsonDict, source: str) -> SignalOutcome:
        started = wallclock.perf_counter()
        self.signals_received += 1
        if not self.accepting_signals:
            why = "broker_disconnected" if self.phase == "RUNNING" else self.phase.lower()
            return SignalOutcome(False, "not_accepting", HTTP_NOT_ACCEPTING,
                                 message=f"the engine is not accepting signals ({why})")
        async with self._signal_lock:
            try:
                await self.refresh_buying_power()
                intake = await self.desk.decide(raw, source)
                if intake.decision is not None and intake.decision.accepted:
                    await self.exits.open_entry(intake)
            except StoreUnavailable as exc:  # the store stopped writing between the gate and the entry's intent
                self.log.error("entry_not_sent", code=exc.code, source=source, error=str(exc))
                return SignalOutcome(False, exc.code, HTTP_REFUSED, message=f"no entry: {exc}")
            except Exception as exc:  # noqa: BLE001 - a bug met by one signal must not stop the daemon (or a replay)
                self.log.exception("signal_failed", code=INTERNAL_ERROR, source=source, error=repr(exc))
                return SignalOutcome(False, INTERNAL_ERROR, HTTP_INTERNAL_ERROR,
                                     message="internal error while deciding the signal; see the daemon log")
        if self.metrics is not None:
            self.metrics.observe_latency(wallclock.perf_counter() - started)
        return intake.outcome

    def sizing_request(self, signal: Signal, price: Decimal, quote: Quote | None, now: datetime,
                       liquidity_ok: bool) -> SizingRequest:
        vix_quote = self.quotes.get(self.settings.profile.vix_symbol)
        greeks = self.book.known_greeks()
        return SizingRequest(
            signal=signal, price=price, capital_base=self.capital_base(), now=now,
            vix=None if vix_quote is None else vix_quote.mid, vix_session_open=self.vix_open,
            vix_quote_age_s=None if vix_quote is None else vix_quote.age_s(now),
            open_positions=self.book.views(), correlations=self.correlations,
            buying_power=self._buying_power, breaker_level=self.control.level,
            trading_state=self.control.state, quote_age_s=None if quote is None else quote.age_s(now),
            liquidity_ok=liquidity_ok, duplicate=False,
            option_delta=None if quote is None else quote.delta, option_gamma=None if quote is None else quote.gamma,
            portfolio_delta=greeks["delta"], portfolio_gamma=greeks["gamma"],
            **self.regime.request_fields(signal.underlying, quote, now, None if vix_quote is None else vix_quote.mid))

    _buying_power: Decimal | None = None
    _net_liquidation: Decimal | None = None  # the broker's, for capital.source = "broker" (SPEC §6.1)

    async def refresh_buying_power(self) -> None:
        try:
            account = await self.broker.account()
            self._buying_power, self._net_liquidation = account.buying_power, account.net_liquidation
        except BrokerError as exc:
            self._buying_power = None
            self.log.warning("account_unavailable", code=exc.code)

    def capital_base(self) -> Decimal:
        return capital_base(self.settings.capital, realized_pnl=self.realized_total,
                            net_liquidation=self._net_liquidation)

    def sessions_since(self, start: datetime, now: datetime) -> int:
        return max(0, len(calendar.sessions_between(start.date(), now.date())) - 1)

    def log_decision(self, decision: Decision, signal: Signal | None, selection: Any) -> None:
        contract = getattr(selection, "contract", None)
        self.log.info("decision", signal_id=decision.signal_id, underlying=decision.underlying,
                      accepted=decision.accepted, reason=decision.reason,
                      direction=None if signal is None else signal.direction,
                      confidence=None if signal is None else signal.confidence,
                      contracts=decision.contracts, multiplier=fmt.ratio(decision.multiplier),
                      bet=fmt.money(decision.notional),
                      option=None if contract is None else contract.key, message=decision.message or None)
        self.observe_decision(decision.accepted, decision.reason)

    def _bad_quote(self, quote: Quote, verdict: Verdict) -> None:
        if self.metrics is not None:
            self.metrics.observe_bad_market_data(verdict.reason or "unknown")

    def observe_decision(self, accepted: bool, reason: str | None) -> None:
        if self.metrics is not None:
            self.metrics.observe_decision(accepted=accepted, reason=reason)

    # ================================================================== operators (EngineControl)

    def status(self) -> JsonDict:
        now = self.clock.now()
        base = self.capital_base()
        session_pnl = self.book.session_pnl()
        freshest = [self.quotes.get(u) for u in self.settings.profile.underlyings]
        ages = [float(q.age_s(now)) for q in freshest if q is not None]
        greeks = self.book.greeks()
        return {
            "profile": self.profile,
            "trading_state": self.phase if self.phase in ("STARTING",) else self.control.state.value,
            "breaker_level": self.control.level,
            "equity": str(self.equity()),
            "session_pnl": str(session_pnl),
            "drawdown": str(max(ZERO, -session_pnl) / base if base > 0 else ZERO),
            "exposure": str(self.book.exposure()),
            "open_positions": len(self.book.held()),
            "broker_connected": self.broker.connected,
            "disconnect_expected": self.disconnect_expected,
            "protective_stops": len(self.stops.stops.all),
            "last_reconcile": None if self.last_reconcile is None else {
                "kind": self.last_reconcile.kind, "at": self.last_reconcile.at.isoformat(),
                "clean": self.last_reconcile.clean, "fills_applied": len(self.last_reconcile.fills_applied),
                "adopted": len(self.last_reconcile.adopted), "blocked": list(self.last_reconcile.blocked)},
            "market_data_age_s": min(ages) if ages else None,
            "last_checkpoint": None if self.last_checkpoint is None else self.last_checkpoint.isoformat(),
            "blocked_underlyings": sorted(self.blocked),
            "accepting_signals": self.accepting_signals,
            "greeks": {k: str(v) for k, v in greeks.items()},
            "regime": self.regime.status(now),
            "halt_reason": self.control.reason,
            "latched": self.control.latched,
            "market_open": calendar.is_regular_hours(now),
            "store": self.store_status(),
            "now": now.isoformat(),
        }

    def equity(self) -> Decimal:
        return self.settings.capital.account_size + self.realized_total + self.book.unrealized()

    def positions(self) -> list[JsonDict]:
        rows = []
        for p in self.book:
            pct = p.unrealized_pct
            rows.append({
                "position_id": p.id, "underlying": p.underlying, "right": p.record.right,
                "strike": str(p.record.strike), "expiry": p.record.expiry.isoformat(), "contracts": p.open_qty,
                "entry_price": str(p.record.entry_price), "mark": None if p.mark is None else str(p.mark),
                "unrealized_pnl": str(p.unrealized), "unrealized_pct": None if pct is None else str(pct),
                "opened_at": p.record.entry_time.isoformat(), "contract": p.key,
                "stop_price": None if p.exit_state.stop_price is None else str(p.exit_state.stop_price),
                "rules_fired": sorted(p.exit_state.fired), "closing": p.pending_exit,
            })
        return rows

    async def halt(self, reason: str, actor: str) -> JsonDict:
        now = self.clock.now()
        self.control.halt(reason or "operator halt")
        self.journal.append("record_operator_action", action="halt", who=actor, why=reason, at=now)
        await self._persist_state(reason or "operator halt")
        self.log.warning("operator_halt", actor=actor, reason=reason)
        tell.notify("halt", f"HALTED by {actor}: {reason or 'operator halt'}. No entries until resume.")
        self._observe_operator("halt")
        return {"ok": True, "trading_state": self.control.state.value, "latched": True}

    async def resume(self, actor: str) -> JsonDict:
        now = self.clock.now()
        if not self.control.latched:
            raise ControlError("not_halted", f"trading state is {self.control.state.value}, nothing to resume")
        self.control.resume(now.date())
        self.journal.append("record_operator_action", action="resume", who=actor, why=None, at=now)
        await self._persist_state(f"resumed by {actor}")
        self.log.warning("operator_resume", actor=actor, trading_state=self.control.state.value,
                         breaker_level=self.control.level)
        tell.notify("resume", f"resumed by {actor}: trading state {self.control.state.value}, "
                              f"breaker level {self.control.level}")
        self._observe_operator("resume")
        return {"ok": True, "trading_state": self.control.state.value, "breaker_level": self.control.level}

    async def flatten(self, reason: str, actor: str) -> JsonDict:
        now = self.clock.now()
        self.journal.append("record_operator_action", action="flatten", who=actor, why=reason, at=now,
                            detail={"positions": [p.id for p in self.book]})
        closing = await self.exits.close_all("operator_flatten", f"operator flatten by {actor}: {reason}", now)
        self.log.warning("operator_flatten", actor=actor, reason=reason, positions=closing)
        tell.notify("flatten", f"flatten by {actor}: {reason}; closing {len(closing)} position(s)")
        self._observe_operator("flatten")
        return {"ok": True, "trading_state": self.control.state.value, "closing_positions": closing}

    async def acknowledge(self, underlying: str, actor: str) -> JsonDict:
        symbol = (underlying or "").strip().upper()
        if symbol not in self.blocked:
            raise ControlError("not_blocked", f"{symbol or underlying!r} is not blocked", 404)
        now = self.clock.now()
        self.journal.append("ack_underlying", underlying=symbol, who=actor, at=now)
        self.journal.append("record_operator_action", action="ack", who=actor, why=None, at=now,
                            detail={"underlying": symbol})
        self.blocked.discard(symbol)
        self._observe_operator("ack")
        return {"ok": True, "underlying": symbol, "blocked_underlyings": sorted(self.blocked)}

    def _observe_operator(self, action: str) -> None:
        if self.metrics is not None:
            self.metrics.observe_operator_action(action)

    async def _persist_state(self, reason: str | None) -> None:
        now = self.clock.now()
        self.journal.append("set_meta", key=META_KEY, value=self.control.to_meta())
        self.journal.append("set_trading_state", state=self.control.state.value, since=now,
                            breaker_level=self.control.level, latched=self.control.latched,
                            reason=self.control.reason or reason)
        if self.metrics is not None:
            self.metrics.set_trading_state(self.control.state.value)
            self.metrics.set_breaker_level(self.control.level)
        self._announce()

    persist_state = _persist_state

    def state_text(self) -> str:
        """One line for systemd's STATUS: the trading state, why, and whether the broker is there."""
        state = self.control.state.value if self.phase == "RUNNING" else self.phase
        reason = self.control.reason
        broker = "broker connected" if self.broker.connected else (
            "broker away (expected)" if self.disconnect_expected else "broker disconnected")
        store = "" if self.journal.available else f", store unavailable ({self.journal.reason})"
        return f"{state}{f' ({reason})' if reason else ''}, {broker}{store}"

    def _announce(self) -> None:
        """Tell `on_state` (systemd STATUS) and the metrics when the trading state's text changes."""
        text = self.state_text()
        if text == self._announced:
            return
        self._announced = text
        if self.metrics is not None:
            self.metrics.set_trading_state(self.control.state.value)
        if self.on_state is not None:
            try:
                self.on_state(text)
            except Exception as exc:  # noqa: BLE001 - a status line must never stop trading
                self.log.warning("state_listener_failed", error=repr(exc))

    # ================================================================== the store behind the journal (room journal)

    def store_status(self) -> JsonDict:
        j = self.journal
        return {"available": j.available, "reason": j.reason, "pending": j.pending, "failures": j.failures,
                "rejected": j.rejected, "over_high_water": j.over_high_water}

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
        if (available and self.phase == "RUNNING" and self.control.reconciling and not self._broker_reconciles
                and self.broker.connected):
            self._push("reconnected", "store_available")  # a reconciliation the fault cut short, again
        self._announce()

    async def flush_journal(self, timeout: float | None = None) -> bool:
        """Wait until the journal is written (True), retrying through an unavailable store until
        `timeout` (default: the journal's durable timeout); False, logged, when records remain."""
        limit = self.settings.daemon.journal.durable_timeout_s if timeout is None else timeout
        deadline = wallclock.monotonic() + limit
        while self.journal.pending:
            left = deadline - wallclock.monotonic()
            if left <= 0:
                self.log.error("journal_not_flushed", code="store_unavailable", pending=self.journal.pending,
                               reason=self.journal.reason)
                return False
            if not await self.journal.drain(left):
                await asyncio.sleep(min(left, self.settings.daemon.journal.retry_max_s))
        return True

    def next_exit_event_id(self) -> int:
        return self._next_id("exit_events")

    def next_decision_id(self) -> int:
        return self._next_id("decisions")

    def _next_id(self, table: str) -> int:
        block = self._ids[table]
        if block.wants_more() and self.phase == "RUNNING":
            block.refilling = True
            self.spawn(self._reserve(block), name=f"reserve-{table}")
        return block.take(self.log)

    async def _reserve(self, block: IdBlock) -> None:
        try:
            block.add(await self.store.reserve_ids(block.table, block.size))
        except Exception as exc:  # noqa: BLE001 - retried at the next id; the current block goes on
            self.log.warning("id_reservation_failed", code="store_unavailable", table=block.table, error=repr(exc))
        finally:
            block.refilling = False

    def healthy(self) -> bool:
        """For the systemd watchdog: the engine runs, its worker lives, and during regular hours the
        5-minute checkpoint is not overdue (a stuck scheduler or loop stops the pings)."""
        if self.phase != "RUNNING" or self._worker is None or self._worker.done():
            return False
        now = self.clock.now()
        session = self.sessions(now.date())
        if session is None or not session.contains(now):
            return True
        schedule = self.settings.daemon.schedule
        since = max(t for t in (self.last_checkpoint, self.started_at, session.open) if t is not None)
        return now - since <= timedelta(minutes=schedule.checkpoint_minutes * schedule.checkpoint_overdue_after)

    # ================================================================== scheduled jobs (scheduler.JobHandlers)

    async def checkpoint(self, at: datetime) -> None:
        started = wallclock.perf_counter()
        if self.settings.capital.source == "broker":  # breakers and drawdown measure against net liquidation
            await self.refresh_buying_power()
        try:  # the surface and regime are information: their failure must not stop the exits below
            await self.regime.checkpoint(at)
        except Exception as exc:  # noqa: BLE001
            self.log.exception("regime_checkpoint_failed", code="regime_error", error=repr(exc))
        for position in self.book:
            await self.exits.evaluate(position, at)
        await self.exits.check_breakers(at)
        session = self.sessions(at.date())
        if session is None or not session.contains(at):
            return  # outside regular hours the checkpoint only watches (overnight gaps); no snapshot row
        base = self.capital_base()
        session_pnl = self.book.session_pnl()
        greeks = self.book.greeks()
        self.journal.append("record_checkpoint", at=at, equity=self.equity(), session_pnl=session_pnl,
                            drawdown=max(ZERO, -session_pnl) / base if base > 0 else ZERO,
                            exposure=self.book.exposure(), open_positions=len(self.book.held()),
                            greeks={k: str(v) for k, v in greeks.items()}, breaker_level=self.control.level,
                            state=self.control.state.value)
        self.last_checkpoint = at
        if self.metrics is not None:
            self.metrics.update_from_status(self.status())
            self.metrics.observe_checkpoint(wallclock.perf_counter() - started, at)

    async def _resume_session(self, refs_session: date | None) -> None:
        """A restart inside a session carries on its P&L: the fills since the open are summed again
        (their realized P&L is against the entry, exact for positions opened this session)."""
        now = self.clock.now()
        session = self.sessions(now.date())
        if session is None or now < session.open or session.day not in (refs_session, self.control.breaker.session):
            return
        self.book.session_day = session.day
        fills = await self.store.list_fills(limit=100_000, since=session.open)
        self.book.session_realized = sum((f.realized_pnl for f in fills), ZERO)

    async def session_open(self, at: datetime) -> None:
        await self.roll_session(at)
        await self.exits.check_breakers(at)  # a new session resets levels 1-3
        self.log.info("session_open", session=at.date().isoformat(), trading_state=self.control.state.value,
                      breaker_level=self.control.level, open_positions=len(self.book))

    async def roll_session(self, now: datetime) -> bool:
        """On the first look at a new session (whichever job or quote comes first): session P&L starts
        from zero, carried-in positions from their last mark, VIX's session open is taken afresh."""
        session = self.sessions(now.date())
        if session is None or self.book.session_day == session.day:
            return False
        self.book.session_day = session.day
        last_vix = self.quotes.get(self.settings.profile.vix_symbol)
        vix_day = None if last_vix is None else last_vix.received_at.astimezone(EXCHANGE_TZ).date()
        live = self.daily_closes is None or self.history is not None  # replay brings its own closes
        if live and last_vix is not None and vix_day is not None and vix_day < session.day:
            await self.regime.record_vix_close(vix_day, last_vix.mid)  # live VIX history, cached in the store
        self.vix_open = None
        self.previous_close.update(self._last_underlying)
        self.book.start_session()
        self.journal.append("set_meta", key=SESSION_REFS_KEY, value=json.dumps({
            "session": session.day.isoformat(), "refs": {str(p.id): str(p.session_ref) for p in self.book}}))
        return True

    async def closeout(self, at: datetime) -> None:
        for position in self.book:
            await self.exits.evaluate(position, at)

    async def refresh_chains(self, at: datetime) -> None:
        """Pre-open: the broker loads the underlyings' option chains again (a new weekly, strikes per expiry)."""
        if self.broker.loads_chains:
            loaded = await self.broker.load_chains(self.settings.profile.underlyings)  # type: ignore[attr-defined]
            self.log.info("chains_refreshed", underlyings=sorted(loaded))

    async def refresh_correlations(self, at: datetime) -> None:
        await self.regime.refresh_calendar()  # the operator's calendar source, once a day before the open
        if self.history is not None:
            await self.history.refresh(at.date())
            await self.regime.seed_vix_history(self.broker, at.date())  # live: VIX's percentile from IB's history
        if self.daily_closes is None:
            return
        closes = self.daily_closes(at.date())
        matrix = correlation_matrix(closes, self.settings.correlation.lookback_sessions)
        try:  # validated once per refresh, not once per signal (a CorrelationTable is taken as is)
            self.correlations = parse_correlations(matrix)  # type: ignore[assignment]
        except InvalidInput:  # left raw: every sizing refuses it with its reason, as before
            self.correlations = matrix
        vix_closes = list(closes.get(self.settings.profile.vix_symbol, ()))
        if vix_closes:  # replay: the regime's VIX history is the replay's own (SPEC §10.2)
            self.regime.set_vix_history([(at.date(), v) for v in vix_closes])  # only the values are read
        if self.quote_model is not None:
            from broker.pricing import realized_vol

            window = self.settings.broker.sim.model.realized_window
            for symbol, series in closes.items():
                self.quote_model.set_realized_vol(symbol, realized_vol(list(series), window))
        self.log.info("correlations_refreshed", symbols=sorted(self.correlations))

    async def prune_refused(self, at: datetime) -> None:
        """Refused signals are kept `refused_retention_days` (Part 8): a flood cannot grow the store forever."""
        days = self.settings.daemon.store.refused_retention_days
        deleted = await self.store.prune_refused_signals(at - timedelta(days=days))
        self.log.info("refused_signals_pruned", retention_days=days, **deleted)

    async def daily_report(self, at: datetime) -> None:
        from daemon.report import day_lines

        for day in await self.store.summary_by_day():
            if day.session_date == at.date():
                for line in day_lines(day):
                    self.log.info("daily_report", line=line)
                tell.notify("daily_report", "\n".join(day_lines(day)))

    # ================================================================== state

    def _live_position(self, record: PositionRecord, exit_record: dict[str, Any] | None,
                       session_ref: Decimal | None) -> LivePosition:
        state = ExitState()
        if exit_record:
            try:
                state = ExitState.from_record(exit_record)
            except Exception as exc:  # noqa: BLE001 - a damaged record must not lose the position
                self.log.error("exit_state_unreadable", position_id=record.id, error=str(exc))
        position = LivePosition(record=record, contract=OptionContract.from_key(record.contract_key, record.multiplier),
                                exit_state=state, session_ref=session_ref or record.entry_price,
                                entry_complete=True)
        quote = self.quotes.get(record.contract_key)
        if quote is not None:
            position.apply_quote(quote)
        return position

    def _reconciler(self) -> Callable[[str], Awaitable[ReconcileReport]]:
        """The hook a reconciling broker (IB) awaits after every (re)connect: the first is the start-up one."""
        return reconciler(self.broker, self.store, profile=self.profile,  # type: ignore[arg-type]
                          prefix=self.settings.execution.order_ref_prefix, now=self.clock.now,
                          apply_fill=self.exits.apply_fill, on_update=self._apply_update, on_report=self._reconciled)

    async def _reconcile(self, kind: str) -> ReconcileReport | None:
        """Store vs broker (`daemon.reconcile`), for brokers without a hook; None when the broker failed us."""
        try:
            report = await reconcile(self.broker, self.store, profile=self.profile,  # type: ignore[arg-type]
                                     prefix=self.settings.execution.order_ref_prefix, now=self.clock.now(),
                                     kind=kind, apply_fill=self.exits.apply_fill,  # type: ignore[arg-type]
                                     on_update=self._apply_update)
        except BrokerError as exc:
            self.log.error("reconcile_failed", kind=kind, code=exc.code, error=str(exc))
            return None
        except (DBAPIError, OSError, StoreUnavailable) as exc:  # the store cannot be read or written (SPEC §6.2):
            # entries wait (RECONCILING); tried again when the store is back (`_on_store`)
            self.log.error("reconcile_failed", kind=kind, code="store_unavailable", error=repr(exc))
            return None
        await self._reconciled(report)
        return report

    async def _reconciled(self, report: ReconcileReport) -> None:
        """Take in what reconciliation found: adopted positions into the book, blocked underlyings; the report stored."""
        self.last_reconcile = report
        self.journal.append("set_meta", key=RECONCILE_KEY, value=json.dumps(report.as_dict()))
        adopted = []
        for found in report.adopted:
            record = await self.store.get_position(found.position_id)
            if record is not None and record.status == "open" and record.id not in self.book.positions:
                self.book.add(self._live_position(record, None, None))
                adopted.append(record.id)
                self.log.warning("position_adopted", position_id=record.id, underlying=record.underlying,
                                 contracts=record.open_qty, entry_price=record.entry_price, option=record.contract_key,
                                 order_refs=list(found.order_refs))
        self.blocked = {b.underlying for b in await self.store.blocked_underlyings()}
        if adopted and self._worker is not None:  # at an IB start-up, start() subscribes the whole book next
            await self.broker.subscribe([self.book.positions[i].key for i in adopted])
        for position_id in adopted:
            self.stops.follow_soon(self.book.positions[position_id])

    async def _start_stops(self) -> None:
        """Adopt the stops resting at the broker and place the missing ones; retried after the next connect."""
        try:
            self.stops.start(await self.broker.open_orders())
        except BrokerError as exc:
            self.log.warning("protective_stops_deferred", code=exc.code, error=str(exc))

    async def _after_connect(self) -> None:
        if self.stops.active:
            self.stops.resync()
        else:
            await self._start_stops()


class IdBlock:
    """Ids reserved from the store (`Store.reserve_ids`), handed out in order; the next block is asked
    for once half of the current one is used. Run dry (a store away for a very long time): the ids go
    on past the block, logged, which only matters to a second daemon sharing the database."""

    def __init__(self, table: str, size: int):
        self.table = table
        self.size = size
        self.blocks: deque[list[int]] = deque()  # [next, last]
        self.refilling = False

    def add(self, first: int) -> None:
        self.blocks.append([first, first + self.size - 1])

    def left(self) -> int:
        return sum(last - nxt + 1 for nxt, last in self.blocks)

    def wants_more(self) -> bool:
        return not self.refilling and self.left() < self.size // 2

    def take(self, log: Any) -> int:
        while len(self.blocks) > 1 and self.blocks[0][0] > self.blocks[0][1]:
            self.blocks.popleft()
        block = self.blocks[0]
        if block[0] > block[1]:
            log.error("id_block_exhausted", code="id_block_exhausted", table=self.table, next_id=block[0])
        block[0] += 1
        return block[0] - 1


class TrackedStore:
    """The store, counting the calls in flight, so `settle` knows when the database has caught up."""

    def __init__(self, store: Store):
        self.raw = store
        self.inflight = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.raw, name)
        if not inspect.iscoroutinefunction(attr) or name in ("drain", "close", "upgrade"):
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            self.inflight += 1
            try:
                return await attr(*args, **kwargs)
            finally:
                self.inflight -= 1

        return call


def _load_refs(text: str | None) -> tuple[date | None, dict[int, Decimal]]:
    if not text:
        return None, {}
    try:
        data = json.loads(text)
        return (date.fromisoformat(data["session"]),
                {int(k): Decimal(v) for k, v in data.get("refs", {}).items()})
    except (ValueError, TypeError, ArithmeticError, AttributeError, KeyError):
        return None, {}
