"""The Core (SPEC §6.4): one synchronous, deterministic state machine for the whole daemon.

    handle(event)        quotes, signals, fills, order updates, connection, operator, store status
    advance(now)         fire what is due at or before `now`: the scheduler's jobs (`Timers`), the
                         execution's reprice/child/timeout moments, signals waiting for quotes
    next_timer_at()      the earliest such moment (the shell sleeps until it; replay jumps to it)
    take_effects()       what to do, in order: Persist records first, then the orders that follow

It never awaits, never reads a clock and does no I/O: time comes in on the events and on
`advance`. So the same inputs give the same effects, byte for byte, live or in replay.

The desks each take only what they use: `EntryDesk` (signal -> decision), `ExitDesk` (exit
rules), `StopDesk` (protective stops), `BreakerDesk` (account breakers), `OperatorDesk`,
`OrderDesk` (parents in flight, over `broker.working.Working`), `SessionDesk` (session day,
VIX open, previous closes, correlations). The core owns the state they share (book, trading
control, quote table) and routes events between them.

A bad event (a malformed quote, a fill of an unknown order, a bug met by one event) is logged
with a reason code and counted; it never stops the core.
"""

from __future__ import annotations

import json
from dataclasses import replace
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from broker.parent import ParentOrder
from config.models import Settings
from daemon.control import HTTP_INTERNAL_ERROR, INTERNAL_ERROR, SignalOutcome
from daemon.core.breakers import BreakerDesk, persist_state
from daemon.core.effects import (
    CancelOrder,
    DailyReport,
    Outbox,
    RefreshModel,
    RequestSnapshot,
    SettleExpired,
    Subscribe,
    Unsubscribe,
)
from daemon.core.entries import EntryDesk, HeldView, Intake, Pending, Standing
from daemon.core.events import (
    ConnectionEvent,
    FillEvent,
    OperatorCommand,
    OrderRefusedEvent,
    OrderUpdateEvent,
    QuoteEvent,
    SignalEvent,
    StoreStatusEvent,
    SubscribeFailedEvent,
    TimerEvent,
)
from daemon import format as fmt
from daemon.core.exits import ExitDesk, pct
from daemon.core.ids import Counter
from daemon.core.ledger import apply_fill, new_position, settle_record
from daemon.core.operator import OperatorDesk
from daemon.core.orders import OrderDesk
from daemon.core.ports import ChainSource, DailyCloses, Execution, SessionLookup, SessionsBetween
from daemon.core.quotes import QuoteTable
from market.sanity import QuoteSanity, SanityLimits, Verdict
from daemon.core.regime import make_regime, run_now
from daemon.core.session import SessionDesk
from daemon.core.stops import StopDesk
from daemon.core.timers import Timers
from daemon.positions import Book, LivePosition
from daemon.store.records import PositionRecord
from daemon.trading import TradingControl
from exits import settlement
from exits.state import ExitState
from market import settled as settled_record
from market.session import EXCHANGE_TZ
from daemon.core.combos import ComboFills
from market.combo import Combo, combo_quote
from market.types import Fill, OpenOrder, OptionContract, OrderUpdate, Quote
from risk.capital import capital_base

SESSION_REFS_KEY = "engine.session_refs"
STORE_UNAVAILABLE = "store_unavailable"
ZERO = Decimal(0)
_FLOATS_MAX = 10_000  # distinct option prices kept as floats: a few thousand in a week


class Core:
    def __init__(self, settings: Settings, *, execution: Execution, chains: ChainSource, timers: Timers,
                 sessions: SessionLookup, sessions_between: SessionsBetween,
                 daily_closes: DailyCloses | None = None):
        self.settings = settings
        self.profile = settings.profile.name
        self.vix_key = settings.profile.vix_symbol
        self.timers = timers
        self.sessions = sessions
        self.out = Outbox()
        # SPEC 4.4 on every quote the core takes in (stream, snapshot, replay): counted and logged once
        # per key and reason per interval; no entry is sized on a flagged quote (`bad_market_data`).
        self.quotes = QuoteTable(QuoteSanity(SanityLimits.from_config(settings.market_data)), self._bad_quote)
        self.book = Book()
        self.control = TradingControl(settings)
        self.blocked: set[str] = set()
        self.realized_total = ZERO
        self.buying_power: Decimal | None = None
        self.net_liquidation: Decimal | None = None  # the broker's, for capital.source = "broker" (the shell reads it)
        self.store_available = True
        self.store_reason: str | None = None
        self.connected = True
        # live: the last VIX of each finished session joins the regime's history (replay brings its own closes)
        self.records_vix_closes = False
        self._snapshots_asked: dict[str, datetime] = {}  # held option key -> when a bad quote asked a snapshot
        self._jump_window = timedelta(seconds=float(settings.market_data.jump_window_s))
        self.bad_events = 0
        self.last_checkpoint: datetime | None = None
        self._next_trip: float | None = None  # see `_marked`; forgotten on every other kind of event
        self._trip_until = datetime.min.replace(tzinfo=EXCHANGE_TZ)
        self._pnl_base = 0.0
        self._pnl_terms: dict[int, list[float]] = {}  # position id -> [contracts x multiplier, session ref, mark]
        # A held option's bid and ask as floats (the exits' and the breakers' premium), by price: a Decimal
        # keeps its hash, and float() of one goes through its text (~7x a look-up). Positive prices only
        # (a bid <= 0 takes the mid), so equal keys (2.5, 2.50) have one float, and no -0.0 can differ.
        self._floats: dict[Decimal, float] = {}
        self.exec_ids: set[str] = set()
        self.order_ids = Counter()
        self.position_ids = Counter()
        self.exit_event_ids = Counter()
        self.decision_ids = Counter()
        self.pending: list[Pending] = []
        self.answers: list[tuple[int | None, SignalOutcome]] = []  # (ticket, outcome) of every signal decided
        self.signals_received = 0
        self.session = SessionDesk(settings, sessions, daily_closes)
        self.regime = make_regime(settings, self.out, self.quotes, self.book)
        self.orders = OrderDesk(execution, self.order_ids, settings.execution.order_ref_prefix)
        self.stops = StopDesk(settings, self.order_ids)
        self.exits = ExitDesk(settings, self.quotes, sessions, self.session.previous_close, self._send_exit,
                              self._follow_stop, self.exit_event_ids, market_events=self.regime.exit_events)
        self.entries = EntryDesk(settings, self.quotes, chains, self.standing, self.held, sessions_between,
                                 self.decision_ids, regime_fields=self.regime.request_fields, sessions=sessions)
        self.breakers = BreakerDesk(settings, self.control, self.book, self.exits, self.capital_base)
        self.operator = OperatorDesk(self.control, self.book, self.exits, self.blocked)
        self._by_key: dict[str, list[LivePosition]] = {}
        self._by_leg: dict[str, list[LivePosition]] = {}  # SPEC §9: a leg's key -> the combos holding it
        self.combo_fills = ComboFills()
        self._vix: float | None = None  # the last VIX as a float (the price bands' validity)
        # The latest event time seen. A quote may be stamped before it: a modelled option quote carries
        # its underlying's stamp, a snapshot its own. The core's time never runs backwards, so nothing
        # (a pending signal's sizing, an exit) is decided at a moment before one it has already seen.
        self.latest: datetime | None = None

    # ================================================================== the interface

    def take_effects(self) -> list[Any]:
        return self.out.take()

    def handle(self, event: Any) -> Any:
        """Apply one event; returns what a caller waits for (a signal's outcome, an operator command's answer)."""
        try:
            kind = type(event)
            if kind is QuoteEvent:
                return self.quote(event.quote)
            self._next_trip = None  # fills, commands, timers may move the base, the level or the session
            if kind is FillEvent:
                return self.on_fill(event.fill)
            if kind is OrderUpdateEvent:
                return self.on_update(event.update)
            if kind is SignalEvent:
                return self.on_signal(event.raw, event.source, event.at, event.ticket)
            if kind is TimerEvent:
                return self.on_timer(event.name, event.at)
            if kind is OperatorCommand:
                return self.operator.handle(event.action, event.actor, dict(event.args), event.at, self.out)
            if kind is ConnectionEvent:
                return self.on_connection(event)
            if kind is StoreStatusEvent:
                return self.on_store(event)
            if kind is OrderRefusedEvent:
                return self.on_refused(event.order_id, event.reason, event.at)
            if kind is SubscribeFailedEvent:
                return self.on_subscribe_failed(event)
            return self._bad("unknown_event", f"no handler for {kind.__name__}")
        except Exception as exc:  # noqa: BLE001 - one bad event must never stop the core
            return self._bad("event_failed", repr(exc), event_type=type(event).__name__)  # not `event`: structlog's own

    def advance(self, now: datetime) -> None:
        """Fire everything due at or before `now`, each at its own time, in time order."""
        while True:
            due = self.next_timer_at()
            if due is None or due > now:
                return
            try:
                self._fire(due)
            except Exception as exc:  # noqa: BLE001
                self._bad("timer_failed", repr(exc))

    def next_timer_at(self) -> datetime | None:
        # asked before every replayed event: the earliest of three, without building a list (the timers' and
        # Working's are kept by them, not computed here)
        due = self.timers.earliest
        deadline = self.orders.execution.next_deadline()
        if deadline is not None and (due is None or deadline < due):
            due = deadline
        for pending in self.pending:
            if due is None or pending.deadline < due:
                due = pending.deadline
        return due

    def _fire(self, at: datetime) -> None:
        if self.latest is None or at > self.latest:
            self.latest = at
        timer = self.timers.earliest
        if timer is not None and timer <= at:
            for event in self.timers.due(at):
                self.on_timer(event.name, event.at)
            return
        deadline = self.orders.execution.next_deadline()
        if deadline is not None and deadline <= at:
            self.orders.execution.on_timer(at)
            self._pump(at)
        self._check_pending(at)

    # ================================================================== start and restore

    def restore(self, *, positions: Sequence[PositionRecord] = (), exit_states: dict[int, dict[str, Any]] | None = None,
                trading_meta: str | None = None, trading_record: Any = None, blocked: Sequence[str] = (),
                realized_total: Decimal = ZERO, highest: dict[str, int] | None = None,
                seen_signals: dict[str, dict[str, Any] | None] | None = None, exec_ids: Sequence[str] = (),
                session_refs: str | None = None, combos: dict[int, dict[str, Any]] | None = None,
                combo_leg_fills: Sequence[tuple[int, Fill]] = ()) -> None:
        """The state the store held at start-up (read by the shell): the book, the trading state, the ids."""
        self.control.restore(trading_meta, trading_record)
        refs = _load_refs(session_refs)
        for record in positions:
            state = ExitState()
            raw = (exit_states or {}).get(record.id)
            if raw:
                try:
                    state = ExitState.from_record(raw)
                except Exception as exc:  # noqa: BLE001 - a damaged record must not lose the position
                    self.out.log("error", "exit_state_unreadable", position_id=record.id, error=str(exc))
            combo = None
            if (combos or {}).get(record.id):
                combo = Combo.from_record((combos or {})[record.id], record.multiplier)
            contract = combo.contract if combo is not None else OptionContract.from_key(record.contract_key,
                                                                                          record.multiplier)
            position = LivePosition(record=record, contract=contract,
                                    exit_state=state, session_ref=refs.get(record.id) or record.entry_price,
                                    entry_complete=True, combo=combo)
            self._add(position)
        self.blocked.update(blocked)
        self.realized_total = realized_total
        for name, counter in (("order", self.order_ids), ("position", self.position_ids),
                              ("exit_event", self.exit_event_ids), ("decision", self.decision_ids)):
            counter.start_after((highest or {}).get(name, 0))
        self.entries.first_decisions.update(seen_signals or {})
        self.exec_ids.update(exec_ids)
        for position_id, leg_fill in combo_leg_fills:  # SPEC §9: the units each combo order already made
            held = self.book.get(position_id)
            if held is not None and held.combo is not None:
                self.combo_fills.add(held.combo, leg_fill)
                self.orders.bind(leg_fill.order_id, position_id)
            self.exec_ids.add(leg_fill.exec_id)

    def start(self, now: datetime, open_orders: Sequence[OpenOrder] = ()) -> None:
        """After the start-up reconciliation: stops adopted and made right, interrupted exits sent again."""
        out = self.out
        self.control.reconciling = False
        self.stops.active = True
        for stop in self.stops.adopt(list(open_orders)):
            held = self.book.get(stop.position_id)
            if held is None or held.open_qty <= 0:
                out.log("warning", "protective_stop_orphan", position_id=stop.position_id,
                        order_id=stop.request.order_id)
                self.stops.cancel(stop.position_id, out)
        keys = [*self.settings.profile.underlyings, self.vix_key, *(k for p in self.book for k in _quote_keys(p))]
        out.add(Subscribe(tuple(keys)))
        for position in self.book:
            self.stops.follow(position, True, now, out)
        persist_state(self.control, "started", now, out)
        out.log("info", "engine_started", trading_state=self.control.state.value, open_positions=len(self.book),
                breaker_level=self.control.level, blocked=sorted(self.blocked),
                protective_stops=len(self.stops.resting))
        for position in self.book:
            self.exits.interrupted(position, now, out)

    # ================================================================== quotes

    def quote(self, quote: Quote) -> None:
        """`handle(QuoteEvent(quote))` without building the event: the replay's per-quote path, one call
        (`handle` comes here too)."""
        try:
            if not self.quotes.put(quote):
                return
            key = quote.key
            now = quote.received_at
            latest = self.latest
            if latest is None or now > latest:
                self.latest = now
            elif now < latest:
                now = latest
            held = self._by_key.get(key)
            if held:
                self.orders.execution.on_quote(key, now)  # a fresh quote answers an exit's snapshot request
                bid, ask = quote.bid, quote.ask
                if bid is None or ask is None or bid <= 0 or ask < bid:
                    price = float(quote.mid or 0)
                else:  # (float(bid) + float(ask)) / 2, each float kept per price (see `_floats`)
                    floats = self._floats
                    f_bid, f_ask = floats.get(bid), floats.get(ask)
                    if f_bid is None or f_ask is None:
                        if len(floats) >= _FLOATS_MAX:
                            floats.clear()
                        f_bid = floats[bid] = float(bid)
                        f_ask = floats[ask] = float(ask)
                    price = (f_bid + f_ask) / 2
                terms = self._pnl_terms
                for position in list(held):
                    position.apply_quote(quote)
                    term = terms.get(position.id)
                    if term is not None:
                        term[2] = price
                    self.exits.on_quote(position, price, self._vix, now, self.out)
                self._marked(now)
                if self.out.items:
                    self._pump(now)
            elif key == self.vix_key:
                mid = quote.mid
                self._vix = None if mid is None or mid <= 0 else float(mid)
                self.session.on_vix(quote)
            elif " " not in key:  # not `is_option_key(key)`: its own test, without the call on every quote
                self.session.on_underlying(quote)
            combos = self._by_leg.get(key)
            if combos:
                self._leg_quote(combos, now)
            if self.pending:
                self._check_pending(now)
        except Exception as exc:  # noqa: BLE001 - one bad event must never stop the core
            self._bad("event_failed", repr(exc), event_type="QuoteEvent")

    def _leg_quote(self, combos: list[LivePosition], now: datetime) -> None:
        """A leg's quote moved: each combo holding it is re-marked from all its legs (SPEC §9: exits,
        levels and breakers see the combined value) and its execution sees the combo's quote."""
        terms = self._pnl_terms
        for position in list(combos):
            quote = self._combo_quote(position)
            if quote is None:
                continue
            self.orders.execution.on_quote(quote.key, now)
            position.apply_quote(quote)
            term = terms.get(position.id)
            if term is not None and position.mark is not None:
                term[2] = float(position.mark)
            if quote.mid is not None:
                self.exits.on_quote(position, float(quote.mid), self._vix, now, self.out)
        self._marked(now)
        if self.out.items:
            self._pump(now)

    def _combo_quote(self, position: LivePosition) -> Quote | None:
        assert position.combo is not None
        quote = combo_quote(position.combo, self.quotes.get)
        if quote is not None:
            self.quotes.put_derived(quote)
        return quote

    # ================================================================== signals

    def on_signal(self, raw: Any, source: str, now: datetime, ticket: int | None = None) -> SignalOutcome | None:
        """The answer, or None while the decision waits for quotes (it follows on a later event or timer);
        either way it is also appended to `answers` under `ticket`."""
        self.signals_received += 1
        if self.latest is None or now > self.latest:
            self.latest = now
        try:
            result = self.entries.receive(raw, source, now, self.out)
            if isinstance(result, Pending):
                self.pending.append(replace(result, ticket=ticket))
                self.out.add(Subscribe(result.keys))
                return None
            return self._decided(result, None, now, ticket)
        except Exception as exc:  # noqa: BLE001 - a bug met by one signal: answered, and the next one is decided
            return self._signal_failed(exc, source, ticket)

    def _check_pending(self, now: datetime) -> None:
        for pending in list(self.pending):
            try:
                if self.entries.ready(pending, now):
                    self.pending.remove(pending)
                    self._decided(self.entries.finish(pending, now, self.out), pending, now, pending.ticket)
            except Exception as exc:  # noqa: BLE001 - as in on_signal; the other waiting signals go on
                if pending in self.pending:
                    self.pending.remove(pending)
                self._signal_failed(exc, pending.source, pending.ticket)

    def _signal_failed(self, exc: Exception, source: str, ticket: int | None) -> SignalOutcome:
        """Its caller waits on `ticket`: it hears `internal_error` (HTTP 500), never silence."""
        self.bad_events += 1
        self.out.log("error", "signal_failed", code=INTERNAL_ERROR, source=source, error=repr(exc))
        self.out.metric("observe_bad_event", code=INTERNAL_ERROR)
        outcome = SignalOutcome(False, INTERNAL_ERROR, HTTP_INTERNAL_ERROR,
                                message="internal error while deciding the signal; see the daemon log")
        self.answers.append((ticket, outcome))
        return outcome

    def on_subscribe_failed(self, event: SubscribeFailedEvent) -> None:
        """A signal waiting for quotes the broker will not stream is refused now, saying why."""
        failed = set(event.keys)
        for pending in [p for p in self.pending if failed & set(p.keys)]:
            self.pending.remove(pending)
            intake = self.entries.unquoted(pending, event.at, f"no option quotes: {event.message} ({event.code})",
                                           self.out)
            self._decided(intake, pending, event.at, pending.ticket)

    def _decided(self, intake: Intake, pending: Pending | None, now: datetime, ticket: int | None) -> SignalOutcome:
        chosen = None
        if intake.decision is not None and intake.decision.accepted:
            chosen = self._open_entry(intake, now)
        if pending is not None:
            held = set(self._by_key) | set(self._by_leg)
            unused = tuple(k for k in pending.keys if k not in (chosen or ()) and k not in held)
            if unused:
                self.out.add(Unsubscribe(unused))
        self.answers.append((ticket, intake.outcome))
        return intake.outcome

    def _open_entry(self, intake: Intake, now: datetime) -> tuple[str, ...]:
        decision, signal = intake.decision, intake.signal
        assert decision is not None and signal is not None
        out = self.out
        if intake.position_id is not None:
            position = self.book.get(intake.position_id)
            assert position is not None
        elif intake.combo is not None:
            return self._open_combo(intake, now)
        else:
            assert intake.selection is not None and intake.selection.contract is not None
            contract = intake.selection.contract
            position_id = self.position_ids()
            record = new_position(position_id, contract, now, signal.id)
            out.persist("open_position", contract=contract, opened_at=now, signal_id=signal.id,
                        position_id=position_id)
            position = LivePosition(record=record, contract=contract, exit_state=ExitState(), session_ref=ZERO)
            # The option's greeks as the quote it was sized on gives them: the book's greeks (the next
            # signal's gate) must not wait for the next quote of this key to know this position's.
            quote = self.quotes.get(position.key)
            if quote is not None:
                position.delta, position.gamma = quote.delta, quote.gamma
            self._add(position)
        out.add(Subscribe(_quote_keys(position)))
        position.entry_complete = False
        position.entry_pending += decision.contracts
        position.entry_limit = position.entry_limit or (decision.contract_value or ZERO) / position.contract.multiplier
        self.orders.start(ParentOrder(self.profile, signal.id, position.contract, "BUY", decision.contracts,
                                      kind="entry", combo=position.combo), position.id, now, out)
        self._pump(now)
        return _quote_keys(position)

    def _open_combo(self, intake: Intake, now: datetime) -> tuple[str, ...]:
        """SPEC §9: one position for the whole combo (key: the combo's), its legs recorded with it;
        one combo parent order, sliced and repriced in the combo's value space."""
        decision, signal, chosen = intake.decision, intake.signal, intake.combo
        assert decision is not None and signal is not None and chosen is not None and chosen.combo is not None
        out, combo = self.out, chosen.combo
        position_id = self.position_ids()
        record = replace(new_position(position_id, combo.contract, now, signal.id), contract_key=combo.key)
        out.persist("open_position", contract=combo.contract, opened_at=now, signal_id=signal.id,
                    position_id=position_id)
        out.persist("record_combo", position_id=position_id, combo=combo.to_record())
        position = LivePosition(record=record, contract=combo.contract, exit_state=ExitState(), session_ref=ZERO,
                                combo=combo)
        self._add(position)
        keys = _quote_keys(position)
        out.add(Subscribe(keys))
        self._combo_quote(position)
        position.entry_complete = False
        position.entry_pending += decision.contracts
        position.entry_limit = (decision.contract_value or ZERO) / combo.contract.multiplier
        out.log("info", "combo_opened", position_id=position_id, underlying=position.underlying,
                strategy=combo.strategy, structure=combo.structure, legs=combo.key,
                value_offset=str(combo.value_offset), units=decision.contracts)
        self.orders.start(ParentOrder(self.profile, signal.id, combo.contract, "BUY", decision.contracts,
                                      kind="entry", combo=combo), position.id, now, out)
        self._pump(now)
        return keys

    # ================================================================== orders and fills

    def _send_exit(self, position: LivePosition, parent: ParentOrder, now: datetime, out: Outbox) -> None:
        self.orders.start(parent, position.id, now, out)

    def _follow_stop(self, position: LivePosition, now: datetime, out: Outbox) -> None:
        self.stops.follow(position, position.id in self.book.positions, now, out)

    def _pump(self, now: datetime) -> None:
        for result in self.orders.pump(now, self.out):
            self._finished(result, now)

    def _finished(self, result: Any, now: datetime) -> None:
        out = self.out
        owner = self.orders.owners.pop(result.parent_ref, None)
        if owner is None:
            return
        position = self.book.get(owner.position_id)
        out.log("info", "order", position_id=owner.position_id, order_ref=result.parent_ref,
                underlying=None if position is None else position.underlying,
                side="BUY" if owner.kind == "entry" else "SELL", contracts=f"{result.filled}/{result.requested}",
                avg_price=fmt.price(result.avg_price), status=result.status.value,
                pnl_pct=pct(position, result.avg_price) if owner.kind == "exit" and result.avg_price and position
                else None,
                slippage=fmt.price(result.slippage_vs_mid), underfilled=result.underfilled or None,
                walk=fmt.limit_walk(result))
        out.metric("observe_order", outcome=result.status.value if not result.underfilled else "underfilled",
                   level="parent")
        if position is None:
            return
        if owner.kind == "entry":
            position.entry_pending = max(0, position.entry_pending - owner.quantity)
            position.entry_complete = position.entry_pending == 0
            if result.filled == 0 and position.record.original_qty == 0:
                out.persist("close_position", position_id=position.id, closed_at=now, reason="entry_unfilled")
                self._remove(position.id)
                out.add(Unsubscribe(_quote_keys(position)))
                out.log("warning", "entry_unfilled", position_id=position.id, underlying=position.underlying)
                return
            self.exits.evaluate(position, now, out)
        else:
            unsold = owner.quantity - result.filled
            position.pending_exit = max(0, position.pending_exit - unsold)
            if unsold > 0:
                # The rules counted these contracts as closed when they fired; unsold (refused while the
                # broker was away, timed out) they are still to close: the close-out and stops must see them.
                state = position.exit_state
                position.exit_state = replace(state, quantity_closed=max(0, state.quantity_closed - unsold))
                position.band = None
                out.persist("save_exit_state", position_id=position.id, state=position.exit_state.to_record(),
                            at=now)
            if result.filled < owner.quantity and position.id in self.book.positions:
                self.stops.follow(position, True, now, out)  # what the exit did not sell is covered again

    def on_update(self, update: OrderUpdate) -> None:
        out = self.out
        held = self.book.get(self.orders.order_positions.get(update.order_id))
        worked = update  # the execution works a combo in its value space; the store keeps the venue's net
        if held is not None and held.combo is not None and update.avg_fill_price is not None:
            worked = replace(update, avg_fill_price=held.combo.value(update.avg_fill_price))
        self.orders.execution.on_update(worked, update.at)
        self.stops.on_update(update, out)
        out.persist("update_order", update=update)
        if update.status.done:
            out.log("debug", "order", order_id=update.order_id, order_ref=update.order_ref,
                    status=update.status.value, contracts=update.filled, reason=update.reason)
        self._pump(update.at)

    def on_refused(self, order_id: int, reason: str, now: datetime) -> None:
        """The venue refused a Place, or its durable intent could not be written (`store_unavailable`)."""
        out = self.out
        out.log("warning", "order", order_id=order_id, status="rejected", reason=reason)
        out.metric("observe_order", outcome="rejected", level="child")
        self.orders.execution.refused(order_id, reason, now)
        for position_id, resting in list(self.stops.resting.items()):
            if resting.request.order_id == order_id:
                del self.stops.resting[position_id]
        self._pump(now)

    def stop_replaced(self, order_id: int, now: datetime) -> None:
        """The shell cancelled a protective stop whose change the broker refused (IB): the wanted stop is
        placed again for what the position holds (its exit, if any, already on its way)."""
        for position_id, resting in list(self.stops.resting.items()):
            if resting.request.order_id == order_id:
                del self.stops.resting[position_id]
                position = self.book.get(position_id)
                if position is not None:
                    self.stops.follow(position, True, now, self.out)
        self._pump(now)

    def modify_refused(self, order_id: int, reason: str, now: datetime) -> None:
        """The venue refused a Modify (filled or cancelled on the way): its state stands (live shell)."""
        self.orders.execution.modify_refused(order_id, reason, now)
        self._pump(now)

    def renumber(self, old_id: int, new_id: int) -> None:
        """An order went out under another id (profiles sharing an IB account's ids, live shell): everyone
        who follows it by id follows the new one; later ids come after it."""
        self.order_ids.start_after(new_id)
        self.orders.execution.renumber(old_id, new_id)
        if old_id in self.orders.order_positions:
            self.orders.order_positions[new_id] = self.orders.order_positions.pop(old_id)
        for position_id, resting in list(self.stops.resting.items()):
            if resting.request.order_id == old_id:
                self.stops.resting[position_id] = replace(resting, request=replace(resting.request, order_id=new_id))

    def adopt(self, records: Sequence[PositionRecord], blocked: Sequence[str], now: datetime) -> None:
        """What a reconciliation after start-up found at the broker (live shell): positions its orderRefs
        prove, now in the book with a stop of their own; underlyings blocked until acknowledged."""
        self.blocked.update(blocked)
        for record in records:
            if record.id in self.book.positions:
                continue
            position = LivePosition(record=record, contract=OptionContract.from_key(record.contract_key,
                                                                                    record.multiplier),
                                    exit_state=ExitState(), session_ref=record.entry_price, entry_complete=True)
            self._add(position)
            self.out.add(Subscribe((position.key,)))
            self.out.log("warning", "position_adopted", position_id=record.id, underlying=record.underlying,
                         contracts=record.open_qty, option=record.contract_key)
            self.stops.follow(position, True, now, self.out)

    def on_fill(self, fill: Fill) -> None:
        out = self.out
        if fill.exec_id in self.exec_ids:
            return  # applied once (SPEC §6.1): a replayed or reconciled execution changes nothing
        if fill.quantity <= 0 or fill.side not in ("BUY", "SELL"):
            self._bad("bad_fill", f"fill {fill.exec_id}: {fill.side} {fill.quantity}")
            return
        self.exec_ids.add(fill.exec_id)
        combo_position = self.book.get(self.orders.order_positions.get(fill.order_id))
        if combo_position is not None and combo_position.combo is not None:
            # SPEC §9: a combo fills per leg; the position moves by whole units only (docs/decisions/multileg.md)
            out.persist("record_leg_fill", fill=fill, position_id=combo_position.id)
            unit = self.combo_fills.add(combo_position.combo, fill)
            if unit is None or unit.exec_id in self.exec_ids:  # a leg ahead, or units applied before a restart
                self._pump(fill.at)
                return
            self.exec_ids.add(unit.exec_id)
            fill = unit
        at = fill.at
        by_stop = self.stops.on_fill(fill)
        if not by_stop:
            try:
                self.orders.execution.on_fill(fill, at)
            except Exception as exc:  # noqa: BLE001 - the fill happened: the position and the store still hear of it
                self._bad("callback_error", repr(exc), broker_event="fill")
        position_id = self.stops.position_of(fill.order_ref) if by_stop else self.orders.order_positions.get(
            fill.order_id)
        position = self.book.get(position_id)
        key = position.key if position is not None and position.combo is not None else None
        out.persist("apply_fill", fill=fill, position_id=position_id, **({} if key is None else {"contract_key": key}))
        before = None if position is None else position.record
        after, recorded, unmatched = apply_fill(before, fill, key)
        if position is not None and before is not None and after is not None:
            self.book.record_fill(position, recorded, before)
            position.record = after
            if fill.side == "SELL" and not by_stop:
                position.pending_exit = max(0, position.pending_exit - fill.quantity)
        self.realized_total += recorded.realized_pnl
        quote = self.quotes.get(key or fill.contract.key)
        mid = None if quote is None else quote.mid
        out.log("info", "fill", order_id=fill.order_id, order_ref=fill.order_ref, position_id=position_id,
                underlying=fill.contract.underlying, side=fill.side, contracts=fill.quantity,
                price=fmt.price(fill.price), mid=fmt.price(mid),
                slippage=None if mid is None else fmt.price((fill.price - mid) * (1 if fill.side == "BUY" else -1)),
                realized=fmt.money(recorded.realized_pnl) if fill.side == "SELL" else None, option=key or fill.contract.key)
        slip = None if not mid else (fill.price - mid) / mid * (1 if fill.side == "BUY" else -1)
        out.metric("observe_fill", side=fill.side, contracts=fill.quantity, slippage_vs_mid=slip)
        out.notify("fill", f"{fill.side} {fill.quantity} {fill.contract.key} at {fmt.price(fill.price)}"
                           + (f", realized {fmt.money_text(recorded.realized_pnl)}" if fill.side == "SELL" else ""))
        if position_id is None:
            self._bad("fill_unknown_order", f"fill {fill.exec_id} of order {fill.order_id} belongs to no position")
        if unmatched:
            out.log("error", "fill_beyond_position", order_ref=fill.order_ref, unmatched=unmatched)
        if by_stop and position is not None:
            self.exits.stop_filled(position, fill.quantity, fill.price, at, out)
            self._stop_overtook_exits(position, at)
        if after is not None and after.status == "closed" and position is not None:
            self._remove(after.id)
            self.book.closed_today.append(after.id)
            self.stops.cancel(after.id, out)
            out.add(Unsubscribe(_quote_keys(position)))
            out.log("info", "position_closed", position_id=after.id, underlying=after.underlying,
                    realized=fmt.money(after.realized_pnl), reason=after.close_reason, option=after.contract_key)
        elif position is not None:
            self.stops.follow(position, True, at, out)
        self._pump(at)

    def _stop_overtook_exits(self, position: LivePosition, at: datetime) -> None:
        """The stop sold contracts an exit is working (the stop's cancel or cut was still on its way): the
        exit gives them up. Sold twice, they would be another position's contracts on the same option
        (the account holds them together) or a short: the book and the account would part, and every
        later sell of that option would be refused `would_open_short`."""
        excess = position.pending_exit - position.open_qty
        for ref, owner in list(self.orders.owners.items()):
            if excess <= 0:
                return
            if owner.position_id == position.id and owner.kind == "exit":
                given_up = self.orders.execution.shrink(ref, excess, at)
                owner.quantity -= given_up
                position.pending_exit -= given_up
                excess -= given_up

    # ================================================================== timers (the scheduler's jobs)

    def on_timer(self, name: str, at: datetime) -> None:
        out = self.out
        if name == "session_open":
            self.settle_expired(at)  # expired while the daemon was down: settled before the day starts
            self.roll_session(at)
            self.check_breakers(at)
            out.log("info", "session_open", session=at.date().isoformat(), trading_state=self.control.state.value,
                    breaker_level=self.control.level, open_positions=len(self.book))
        elif name == "checkpoint":
            try:  # the surface and regime are information: their failure must not stop the exits
                run_now(self.regime.checkpoint(at))
            except Exception as exc:  # noqa: BLE001
                out.log("error", "regime_checkpoint_failed", code="regime_error", error=repr(exc))
            self.checkpoint(at)
        elif name == "closeout":
            for position in self.book:
                self.exits.evaluate(position, at, out)
        elif name == "correlation_refresh":
            closes = self.session.refresh_correlations(at)
            if closes:
                out.add(RefreshModel(closes))
            vix_closes = list(closes.get(self.vix_key, ()))
            if vix_closes:  # replay: the regime's VIX history is the replay's own (SPEC §10.2)
                self.regime.set_vix_history([(at.date(), v) for v in vix_closes])
            out.log("info", "correlations_refreshed", symbols=sorted(self.session.correlations))
        elif name == "expiry_settlement":
            self.settle_expired(at)
        elif name == "daily_report":
            out.add(DailyReport(at.date()))
        elif name == "prune_refused":  # Part 8: refused signals are kept `refused_retention_days`
            days = self.settings.daemon.store.refused_retention_days
            out.persist("prune_refused_signals", before=at - timedelta(days=days))
        else:
            self._bad("unknown_timer", f"no timer {name!r}")
            return
        self._pump(at)

    def settle_expired(self, at: datetime) -> list[int]:
        """SPEC §6.3: every position whose contract expired by `at` (its expiry's session closed) is
        settled: worthless or at intrinsic value from the underlying's last price (`exits.settlement`),
        recorded as an exit event (rule `expiry`) and a closing record; its orders are given up, its
        stop forgotten, and the venue told (`SettleExpired`). Returns the settled position ids."""
        out = self.out
        settled: list[int] = []
        prices: dict[str, Decimal] = {}
        expiries: set[tuple[str, date]] = set()
        for position in list(self.book):
            record = position.record
            if not settlement.is_expired(record.expiry, at, self.sessions(record.expiry)):
                continue
            if position.entry_pending or not position.entry_complete:
                self._give_up_orders(position.id, at)  # an entry still working on an expired contract
            position.entry_pending, position.entry_complete = 0, True
            if position.open_qty <= 0:
                if record.original_qty == 0:  # its entry never filled: nothing to settle, nothing held
                    out.persist("close_position", position_id=position.id, closed_at=at, reason="entry_unfilled")
                    self._remove(position.id)
                    out.add(Unsubscribe(_quote_keys(position)))
                continue
            under = self.quotes.get(position.underlying)
            spot = None if under is None else (under.last if under.last is not None and under.last > 0
                                               else under.mid)
            settled_at = settlement.settle(position.contract, position.combo, spot, position.mark)
            if settled_at.underlying_price is not None:
                prices[position.underlying] = settled_at.underlying_price
            self._settle(position, settled_at, at)
            settled.append(position.id)
            expiries.add((position.underlying, record.expiry))
        if settled:
            # the prices the venue settles from, kept: a live sim started again settles its rebuilt account
            # from them (its stored fills hold no settlement)
            for underlying, expiry in sorted(expiries):
                out.persist("set_meta", key=settled_record.key(underlying, expiry),
                            value=settled_record.value(prices.get(underlying)))
            out.add(SettleExpired(at, prices))
            self._next_trip = None  # the session P&L moved without a quote: the breakers look again
            self.check_breakers(at)
        return settled

    def _settle(self, position: LivePosition, settled: settlement.Settlement, at: datetime) -> None:
        out = self.out
        qty = position.open_qty
        self._give_up_orders(position.id, at)
        state = replace(position.exit_state, fired=position.exit_state.fired | {settlement.RULE},
                        quantity_closed=position.record.original_qty)
        position.exit_state = state
        out.persist("save_exit_state", position_id=position.id, state=state.to_record(), at=at)
        out.persist("record_exit_event", position_id=position.id, rule=settlement.RULE, kind="close", quantity=qty,
                    reason=settled.reason, at=at, event_id=self.exit_event_ids())
        out.persist("close_position", position_id=position.id, closed_at=at, exit_price=settled.price,
                    reason="expired")
        out.metric("observe_exit", rule=settlement.RULE)
        after, realized = settle_record(position.record, settled.price, at, "expired")
        # the session's P&L from the position's session reference, as a sale at the settlement would be
        self.book.session_realized += (settled.price - position.session_ref) * qty * position.multiplier
        self.realized_total += realized
        position.record = after
        position.pending_exit = 0
        self._remove(position.id)
        self.book.closed_today.append(position.id)
        self.stops.cancel(position.id, out)
        out.add(Unsubscribe(_quote_keys(position)))
        out.log("warning" if settled.underlying_price is None else "info", "exit", position_id=position.id,
                underlying=position.underlying, rule=settlement.RULE, contracts=qty, price=fmt.price(settled.price),
                pnl_pct=pct(position, settled.price), kind="close", reason=settled.reason)
        out.log("info", "position_closed", position_id=position.id, underlying=position.underlying,
                realized=fmt.money(after.realized_pnl), reason="expired", option=position.key)
        out.notify("fill", f"EXPIRED {qty} {position.key} settled at {fmt.price(settled.price)}, "
                           f"realized {fmt.money_text(after.realized_pnl)}")

    def _give_up_orders(self, position_id: int, at: datetime) -> None:
        """The parents still working for a position (a close-out nobody bid for): stopped, their children
        cancelled at the venue. An expired contract cannot trade any more."""
        for ref, owner in list(self.orders.owners.items()):
            if owner.position_id != position_id:
                continue
            del self.orders.owners[ref]
            for order_id in self.orders.execution.abandon(ref, at):
                self.out.add(CancelOrder(order_id))

    def checkpoint(self, at: datetime) -> None:
        out = self.out
        for position in self.book:
            self.exits.evaluate(position, at, out)
        self.check_breakers(at)
        session = self.sessions(at.date())
        if session is None or not session.contains(at):
            return  # outside regular hours the checkpoint only watches (overnight gaps); no snapshot row
        base = self.capital_base()
        session_pnl = self.book.session_pnl()
        greeks = self.book.greeks()
        out.persist("record_checkpoint", at=at, equity=self.equity(), session_pnl=session_pnl,
                    drawdown=max(ZERO, -session_pnl) / base if base > 0 else ZERO, exposure=self.book.exposure(),
                    open_positions=len(self.book.held()), greeks={k: str(v) for k, v in greeks.items()},
                    breaker_level=self.control.level, state=self.control.state.value)
        self.last_checkpoint = at
        out.metric("observe_checkpoint", at=at)

    def roll_session(self, now: datetime) -> bool:
        """On the first look at a new session: session P&L from zero, carried-in positions from their
        last mark, VIX's session open taken afresh."""
        session = self.session.roll(now)
        if session is None:
            return False
        last_vix = self.quotes.get(self.vix_key) if self.records_vix_closes else None
        if last_vix is not None and (vix_day := last_vix.received_at.astimezone(EXCHANGE_TZ).date()) < session.day:
            run_now(self.regime.record_vix_close(vix_day, last_vix.mid))  # cached in the store (a set_meta record)
        self.book.session_day = session.day
        self.book.start_session()
        self.out.persist("set_meta", key=SESSION_REFS_KEY, value=json.dumps(
            {"session": session.day.isoformat(), "refs": {str(p.id): str(p.session_ref) for p in self.book}}))
        return True

    def _marked(self, now: datetime) -> None:
        """After a mark changed: the breakers, skipped while the session P&L (as a float, with a margin)
        is safely above the next level's loss and the session has not changed (nothing could happen)."""
        floor = self._next_trip
        if floor is not None and now < self._trip_until:
            # the float session P&L, summed here (not in a helper: one call fewer per held option quote) in
            # the same order as ever, so the same float and the same skip
            total = self._pnl_base
            for size, ref, mark in self._pnl_terms.values():
                total += size * (mark - ref)
            if total > floor:
                return
        self.check_breakers(now)
        self._next_trip = self._trip_floor()
        # the float session P&L's terms, as of this exact check: quotes move only the marks
        self._pnl_base = float(self.book.session_realized)
        self._pnl_terms = {p.id: [float(p.open_qty * p.multiplier), float(p.session_ref), float(p.price())]
                           for p in self.book.positions.values() if p.open_qty}
        self._trip_until = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=now.tzinfo)

    def _trip_floor(self) -> float | None:
        """The session P&L (float) above which no higher breaker level can be reached, with a safety margin."""
        level = self.control.level
        levels = self.settings.breakers.levels
        if level >= len(levels):
            return None
        base = float(self.capital_base())
        loss = min(float(lv.loss_pct) for lv in levels[level:])
        return -loss * base + 1.0 + 1e-6 * base  # a dollar and a millionth of the base above the trip

    def check_breakers(self, now: datetime) -> None:
        session = self.sessions(now.date())
        if session is None:
            return
        self.roll_session(now)
        self.breakers.check(session.day, now, self.out)

    # ================================================================== connection and store

    def on_connection(self, event: ConnectionEvent) -> None:
        self.connected = event.connected
        self.out.log("info", "broker_connection", connected=event.connected, reason=event.reason)
        self.out.metric("set_broker_connected", connected=event.connected, disconnect_expected=event.expected)
        if event.connected and event.reason == "reconciling":
            self.control.reconciling = True
        elif event.connected and event.reason == "ready":
            self.control.reconciling = False
            for position in self.book:
                self.stops.follow(position, True, event.at, self.out)

    def on_store(self, event: StoreStatusEvent) -> None:
        if event.available == self.store_available:
            return
        self.store_available, self.store_reason = event.available, event.reason
        level = "info" if event.available else "error"
        self.out.log(level, "store_status", available=event.available, reason=event.reason,
                     code=None if event.available else STORE_UNAVAILABLE)
        self.out.metric("set_store_available", available=event.available)

    # ================================================================== views

    def status(self, now: datetime) -> dict[str, Any]:
        """The operator's snapshot (daemon.control.STATUS_KEYS and more); the shell adds what it owns."""
        base = self.capital_base()
        session_pnl = self.book.session_pnl()
        ages = [float(q.age_s(now)) for u in self.settings.profile.underlyings if (q := self.quotes.get(u)) is not None]
        greeks = self.book.greeks()
        return {
            "profile": self.profile, "trading_state": self.control.state.value, "breaker_level": self.control.level,
            "equity": str(self.equity()), "session_pnl": str(session_pnl),
            "drawdown": str(max(ZERO, -session_pnl) / base if base > 0 else ZERO),
            "exposure": str(self.book.exposure()), "open_positions": len(self.book.held()),
            "broker_connected": self.connected, "protective_stops": len(self.stops.resting),
            "market_data_age_s": min(ages) if ages else None,
            "last_checkpoint": None if self.last_checkpoint is None else self.last_checkpoint.isoformat(),
            "blocked_underlyings": sorted(self.blocked), "greeks": {k: str(v) for k, v in greeks.items()},
            "halt_reason": self.control.reason, "latched": self.control.latched,
            "store_available": self.store_available, "store_reason": self.store_reason,
            "bad_events": self.bad_events, "now": now.isoformat(), "regime": self.regime.status(now),
        }

    def positions(self) -> list[dict[str, Any]]:
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
                **({} if p.combo is None else {"combo": p.combo.to_record()}),  # SPEC §9: its legs
            })
        return rows

    def standing(self, now: datetime) -> Standing:
        greeks = self.book.known_greeks()
        return Standing(capital_base=self.capital_base(), trading_state=self.control.state,
                        breaker_level=self.control.level, vix_session_open=self.session.vix_open,
                        open_positions=self.book.views(), correlations=self.session.correlations,
                        buying_power=self.buying_power, portfolio_delta=greeks["delta"],
                        portfolio_gamma=greeks["gamma"], blocked=frozenset(self.blocked),
                        store_unavailable=None if self.store_available else (self.store_reason
                                                                             or "the store cannot write"))

    def held(self, position_id: int | None) -> HeldView | None:
        position = self.book.get(position_id)
        if position is None:
            return None
        return HeldView(position.id, position.key, position.underlying, position.open_qty,
                        position.record.entry_price, position.record.entry_time, position.mark)

    def capital_base(self) -> Decimal:
        return capital_base(self.settings.capital, realized_pnl=self.realized_total,
                            net_liquidation=self.net_liquidation)

    def equity(self) -> Decimal:
        return self.settings.capital.account_size + self.realized_total + self.book.unrealized()

    # ================================================================== internals

    def _add(self, position: LivePosition) -> None:
        self.book.add(position)
        self._by_key.setdefault(position.key, []).append(position)
        if position.combo is not None:
            for leg in position.combo.legs:
                self._by_leg.setdefault(leg.contract.key, []).append(position)

    def _remove(self, position_id: int) -> None:
        position = self.book.remove(position_id)
        if position is not None:
            held = self._by_key.get(position.key, [])
            if position in held:
                held.remove(position)
            if not held:
                self._by_key.pop(position.key, None)
            for leg_key in (_quote_keys(position) if position.combo is not None else ()):
                holders = self._by_leg.get(leg_key, [])
                if position in holders:
                    holders.remove(position)
                if not holders:
                    self._by_leg.pop(leg_key, None)

    def _bad_quote(self, quote: Quote, verdict: Verdict) -> None:
        self.out.metric("observe_bad_market_data", reason=verdict.reason or "unknown")
        if verdict.log:
            self.out.log("warning", "bad_market_data", key=quote.key, reason=verdict.reason, detail=verdict.detail,
                         bid=quote.bid, ask=quote.ask, stamped=quote.received_at.isoformat())
        key, now = quote.key, quote.received_at
        if key in self._by_key:
            # SPEC §4.4: a held option's exits never price on this quote; a fresh snapshot is asked (once per
            # key per jump window: IB may take seconds), and a usable answer runs the exit rules again
            asked = self._snapshots_asked.get(key)
            if asked is None or now - asked >= self._jump_window:
                self._snapshots_asked[key] = now
                self.out.add(RequestSnapshot(key))

    def _bad(self, code: str, message: str, **fields: Any) -> None:
        self.bad_events += 1
        self.out.log("error", "bad_event", code=code, error=message, **fields)
        self.out.metric("observe_bad_event", code=code)


def _quote_keys(position: LivePosition) -> tuple[str, ...]:
    """What a position is marked from: its option, or every leg of its combo."""
    if position.combo is not None:
        return tuple(leg.contract.key for leg in position.combo.legs)
    return (position.key,)


def _load_refs(text: str | None) -> dict[int, Decimal]:
    if not text:
        return {}
    try:
        data = json.loads(text)
        return {int(k): Decimal(v) for k, v in data.get("refs", {}).items()}
    except (ValueError, TypeError, ArithmeticError, AttributeError, KeyError):
        return {}


