"""Replay as a plain synchronous loop: recorded quotes and signals, the core's timers, the sim venue.

    for each recorded event, in time order:
        fire what is due before it (the core's timers, the venue's latency), each at its own time
        hand it to the core (a quote also reprices the options something holds, and reaches the venue)
        carry out the core's effects until nothing is left: orders to the venue, whose fills and
        updates go back to the core at once; records to the store sink; log lines to the log

No asyncio, no clock: time is the events' own. The option model (`broker.quote_model`)
reprices only the options that are subscribed (held, being chosen, or being worked), on
their underlying's ticks. Every replay prints its events per second.
"""

from __future__ import annotations

import heapq
import logging
import threading
import itertools
import time as wallclock
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

from broker.base import BrokerError
from broker.listings import ListingError, option_chain
from broker.quote_model import OptionQuoteModel, is_option_key
from broker.quotes import QuoteBook
from broker.sim_venue import SimVenue
from broker.working import Cancel, Modify, Place, Working
from config.models import Settings
from daemon.bars import Bar
from daemon.core.core import Core
from daemon.core.effects import (
    CancelOrder,
    DailyReport,
    LogLine,
    MetricUpdate,
    Notify,
    ModifyOrder,
    Persist,
    PlaceOrder,
    RefreshModel,
    RequestSnapshot,
    SettleExpired,
    Subscribe,
    Unsubscribe,
)
from daemon.core.events import (
    FillEvent,
    OrderRefusedEvent,
    OrderUpdateEvent,
    SignalEvent,
    StoreStatusEvent,
)
from daemon.core.timers import Timers
from daemon.feed import DEFAULT_TICKS_PER_BAR, bar_path, underlying_quote
from daemon.logging import get_logger
from daemon.notifications import notify
from daemon.scheduler import job_specs
from daemon.signals.jsonl import TimedSignal
from market import calendar
from market.types import Fill, OptionChain, OrderUpdate, Quote

_LEVELS = {name.lower(): level for name, level in logging.getLevelNamesMapping().items()}  # "info" -> 20
_QUOTE, _BAR, _SIGNAL = 0, 1, 2  # at the same instant: quotes first, then the bar they complete, then signals

BarListener = Callable[[Bar], Any]  # a bar -> a raw signal (or None): the reference source


class ReplaySink(Protocol):
    """Where the core's Persist records go: `daemon.store.core_sink.CoreSink` (the store, through the
    journal) or `daemon.backtest.run.Collector` (memory)."""

    seq: int  # records seen so far
    changes: Any  # truthy when the store's availability changed (then `take_changes`)

    @property
    def catching_up(self) -> bool: ...  # a resumed run re-running what the store already holds

    def append(self, op: str, payload: dict[str, Any]) -> None: ...

    def may_send(self, durable: bool) -> bool: ...  # False: an entry whose intent could not be made durable

    def take_changes(self) -> list[tuple[bool, str | None]]: ...


class SimChains:
    """The sim's option chains: the listing rules around the underlying's price (as `SimBroker.chain`)."""

    def __init__(self, multiplier: int):
        self.multiplier = multiplier

    def chain(self, underlying: str, day: date, spot: Decimal) -> OptionChain | None:
        try:
            return option_chain(underlying, day, spot, self.multiplier)
        except ListingError:
            return None


class StepClock:
    """The replay's time for the option model (it asks `now()`; nothing sleeps)."""

    wall = False

    def __init__(self, start: datetime):
        self.at = start

    def now(self) -> datetime:
        return self.at

    async def sleep(self, seconds: float) -> None:  # pragma: no cover - the model never sleeps
        raise RuntimeError("the replay clock does not sleep")

    async def turns(self) -> None:  # pragma: no cover - nothing waits on the replay's clock
        return None


@dataclass
class ReplayStats:
    quotes: int = 0
    option_quotes: int = 0
    bars: int = 0
    signals: int = 0
    fills: int = 0
    orders: int = 0
    records: int = 0
    days: set[date] = field(default_factory=set)
    wall_s: float = 0.0
    cpu_s: float = 0.0  # this process's CPU time over the loop: the figure that load on other cores moves least

    @property
    def events_per_s(self) -> float:
        return self.quotes / self.wall_s if self.wall_s > 0 else 0.0


def recorded_events(bars: dict[str, Sequence[Bar]], signals: Sequence[TimedSignal], index_symbols: frozenset[str],
                    ticks_per_bar: int = DEFAULT_TICKS_PER_BAR) -> Iterator[tuple[datetime, int, int, Any]]:
    seq = itertools.count()

    def per_symbol(symbol: str, series: Sequence[Bar]) -> Iterator[tuple[datetime, int, int, Any]]:
        index = symbol in index_symbols
        for bar in series:
            for at, price in bar_path(bar, ticks_per_bar):
                yield at, _QUOTE, next(seq), underlying_quote(symbol, price, at, index)
            yield bar.end, _BAR, next(seq), bar

    streams = [per_symbol(s, b) for s, b in bars.items()]
    streams.append(((s.at, _SIGNAL, next(seq), s) for s in signals))
    return heapq.merge(*streams, key=lambda e: (e[0], e[1], e[2]))


class Replay:
    def __init__(self, settings: Settings, start: datetime, *, sink: ReplaySink | None = None,
                 bar_listener: BarListener | None = None, signal_source: str = "replay",
                 daily_closes: Callable[[date], Any] | None = None, log_effects: bool = True,
                 on_report: Callable[[date], None] | None = None, clock: StepClock | None = None,
                 inbox: Any = None, speed: float = 0.0):
        self.settings = settings
        self.clock = clock or StepClock(start)
        self.sink = sink
        self.bar_listener = bar_listener
        self.signal_source = signal_source
        self.log_effects = log_effects
        self.log = get_logger("tradingd.replay", profile=settings.profile.name)
        self.market = QuoteBook()  # the recorded and modelled market the model reads
        self.model = OptionQuoteModel(self.market, self.clock, settings.broker.sim.model, settings.profile.vix_symbol,
                                      settings.profile.contract_multiplier)
        # The modelled quotes to hand on, in the order written: the model's own (straight to the list) and
        # those others write into the market (a backtest's snapshot answer). One list for the whole replay.
        self._modelled: list[Quote] = []
        self.model.written = self.market.modelled = self._modelled
        self._vix_key = settings.profile.vix_symbol
        self.timers = Timers(job_specs(settings, calendar.session_for, _closeout(settings)), calendar.session_for,
                             start)
        self.core = Core(settings, execution=None, chains=SimChains(settings.profile.contract_multiplier),  # type: ignore[arg-type]
                         timers=self.timers, sessions=calendar.session_for,
                         sessions_between=calendar.sessions_between, daily_closes=daily_closes)
        self.working = Working(settings.execution, quotes=self.core.quotes,
                               max_quote_age_s=settings.gate.max_quote_age_s)
        self.core.orders.execution = self.working
        self.venue = SimVenue(settings.broker.sim, quotes=self.core.quotes, cash=settings.capital.account_size)
        self.stats = ReplayStats()
        self.stopping = False  # set from another thread (SIGTERM): the loop ends after the current event
        self.speed = speed  # 0: as fast as possible; N: each gap between events waited 1/N in real time
        self._woken = threading.Event()
        self.reports: list[date] = []
        self.on_report = on_report
        self.inbox = inbox  # signals and operator commands from the API (daemon.shell.Inbox), between events

    # ------------------------------------------------------------------ the loop

    def run(self, events: Iterable[tuple[datetime, int, int, Any]], until: datetime | None = None) -> ReplayStats:
        started = wallclock.perf_counter()
        cpu = wallclock.process_time()
        core = self.core
        core.start(self.clock.at)
        self._drain(self.clock.at)
        stats = self.stats
        sink = self.sink
        changes = None if sink is None else sink.changes
        quiet = sink is not None and sink.catching_up
        if quiet:  # re-running what a killed run already did: the log said it then
            logging.disable(logging.CRITICAL)
        previous: datetime | None = None
        # looked up once, not per event (none of them changes during a run)
        speed, clock, out = self.speed, self.clock, core.out
        until_due, on_quote, drain = self._until, self._quote, self._drain
        for at, kind, _, payload in events:
            if speed > 0 and previous is not None and at > previous:
                self._woken.wait((at - previous).total_seconds() / speed)
            previous = at
            if self.stopping:
                break
            if quiet and not sink.catching_up:
                quiet = False
                logging.disable(logging.NOTSET)
                self.log.warning("replay_caught_up", at=at.isoformat(), records=sink.seq)
            if changes:
                self._store_changed()
            until_due(at)
            clock.at = at
            if kind == _QUOTE:
                stats.quotes += 1
                on_quote(payload, at)
            elif kind == _BAR:
                stats.bars += 1
                if self.bar_listener is not None:
                    raw = self.bar_listener(payload)
                    if raw is not None:
                        stats.signals += 1
                        self._account()
                        core.handle(SignalEvent(raw, self.signal_source, at))
            else:
                stats.signals += 1
                self._account()
                core.handle(SignalEvent(payload.raw, f"{self.signal_source}:{payload.line_no}", at))
            if out.items:  # most events leave no effect
                drain(at)
            inbox = self.inbox
            if inbox is not None:
                if not inbox.empty() and (self._account() or inbox.drain(core, at)):
                    self._drain(at)
                inbox.answer(core)
        if until is not None and not self.stopping:
            self._until(until)
        if quiet:
            logging.disable(logging.NOTSET)
        if self.inbox is not None:
            self.inbox.answer(core)
            self.inbox.close()
        stats.wall_s = wallclock.perf_counter() - started
        stats.cpu_s = wallclock.process_time() - cpu
        return stats

    def stop(self) -> None:
        self.stopping = True
        self._woken.set()

    def _store_changed(self) -> None:
        """The store stopped (or started again) writing: the core hears it at the replay's time (SPEC 6.2:
        entries refused `store_unavailable`, exits go on)."""
        assert self.sink is not None
        at = self.clock.at
        for available, reason in self.sink.take_changes():
            self.core.handle(StoreStatusEvent(available, reason, at))
        self._drain(at)

    def _account(self) -> None:
        """The venue's buying power as the core sizes against it (the live shell asks the broker)."""
        self.core.buying_power = self.venue.account().buying_power

    def _until(self, limit: datetime) -> None:
        """Fire everything due before `limit` (core timers, venue latency), each at its own time."""
        core, venue = self.core, self.venue
        while True:
            a, b = core.next_timer_at(), venue.next_deadline()
            if (a is None or a > limit) and (b is None or b > limit):
                return
            due = a if b is None else b if a is None else min(a, b)
            self.clock.at = due
            if b is not None and b <= due:
                venue.advance(due)
                self._venue_events()
            else:
                core.advance(due)
            self._drain(due)

    def _quote(self, quote: Quote, at: datetime) -> None:
        # The venue sees a quote before the daemon does (a resting stop triggers at the exchange first).
        self.market.update(quote)
        venue = self.venue
        if quote.key in venue.resting:  # `on_quote`'s own first test: nothing rests on most keys
            venue.on_quote(quote, at)
        if venue.events:  # `_venue_events`' own first test, without the call after most quotes
            self._venue_events()
        self.core.quote(quote)
        key = quote.key
        if key == self._vix_key:
            self.model.refresh()
        elif key in self.model._tracked:
            self.model.refresh(key)
        if self._modelled:
            self._forward_modelled(at)

    def _forward_modelled(self, at: datetime) -> None:
        modelled = self._modelled
        if not modelled:
            return
        quotes = modelled[:]  # what is written while these are handed on waits for the next call
        modelled.clear()
        self.stats.option_quotes += len(quotes)
        core, venue = self.core, self.venue
        resting, events, on_quote = venue.resting, venue.events, core.quote
        for quote in quotes:
            if quote.key in resting:
                venue.on_quote(quote, at)
            if events:
                self._venue_events()
            on_quote(quote)

    def _venue_events(self) -> None:
        if not self.venue.has_events:  # after most quotes nothing happened at the venue: take no (empty) list
            return
        core = self.core
        for event in self.venue.take_events():
            if isinstance(event, Fill):
                self.stats.fills += 1
                core.handle(FillEvent(event))
            elif isinstance(event, OrderUpdate):
                if event.status.value == "Rejected" and event.filled == 0:
                    core.handle(OrderRefusedEvent(event.order_id, event.reason or "rejected", event.at))
                core.handle(OrderUpdateEvent(event))

    def _drain(self, now: datetime) -> None:
        """Carry out the core's effects until none are left (the venue answers synchronously)."""
        core, venue = self.core, self.venue
        out = core.out
        while True:
            if not out.items:  # after most events the core decided nothing: no (empty) list taken
                return
            effects = core.take_effects()
            for effect in effects:
                kind = type(effect)
                if kind is Persist:
                    self.stats.records += 1
                    if self.sink is not None:
                        self.sink.append(effect.op, effect.payload)
                elif kind is LogLine:
                    # not rendered at all when `logging.disable` drops its level anyway (a backtest's
                    # warnings and below, a resumed replay catching up, the bench): structlog's processors
                    # would build the line and the stdlib logger throw it away
                    if self.log_effects and logging.root.manager.disable < _LEVELS.get(effect.level, logging.CRITICAL):
                        getattr(self.log, effect.level)(effect.event, **effect.fields)
                elif kind is MetricUpdate:
                    pass
                elif kind is Notify:
                    if self.log_effects:  # not while a resumed replay catches up: it was told the first time
                        notify(effect.kind, effect.text)
                elif kind is PlaceOrder:
                    self.stats.orders += 1
                    if self.sink is not None and not self.sink.may_send(effect.durable):
                        # no durable intent, no entry (SPEC 6.2): the core hears why
                        core.handle(OrderRefusedEvent(effect.request.order_id, "store_unavailable", now))
                        continue
                    try:
                        venue.place(Place(effect.request), now)
                    except BrokerError as exc:
                        core.handle(OrderRefusedEvent(effect.request.order_id, exc.code, now))
                elif kind is ModifyOrder:
                    try:
                        venue.modify(Modify(effect.request), now)
                    except BrokerError as exc:  # filled or cancelled on the way: the venue's state stands
                        self.working.modify_refused(effect.request.order_id, exc.code, now)
                elif kind is CancelOrder:
                    try:
                        venue.cancel(Cancel(effect.order_id), now)
                    except BrokerError as exc:  # already done at the venue: nothing to cancel
                        self.log.debug("cancel_refused", order_id=effect.order_id, code=exc.code)
                elif kind is Subscribe:
                    added = self.model.track(effect.keys)
                    for underlying in sorted({k.split(" ", 1)[0] for k in added}):
                        self.model.refresh(underlying)
                elif kind is Unsubscribe:
                    self.model.untrack(effect.keys)
                elif kind is RequestSnapshot:
                    if is_option_key(effect.key):
                        self.model.refresh_key(effect.key)
                elif kind is RefreshModel:
                    from broker.pricing import realized_vol

                    window = self.settings.broker.sim.model.realized_window
                    for symbol, series in effect.closes.items():
                        self.model.set_realized_vol(symbol, realized_vol(list(series), window))
                elif kind is SettleExpired:  # the exchange settles its book as the core settled its own
                    venue.settle_expired(effect.at, effect.prices)
                elif kind is DailyReport:
                    self.reports.append(effect.day)
                    if self.on_report is not None:
                        self.on_report(effect.day)
            self._forward_modelled(now)
            self._venue_events()


def _closeout(settings: Settings) -> Callable[[Any], Any] | None:
    from exits.closeout import zero_dte_closeout_at

    zero = settings.exits.zero_dte
    return (lambda s: zero_dte_closeout_at(s, zero)) if zero is not None else None


# The replay's store sink is the core's sink over the write-behind journal (room journal, SPEC 6.2/6.3).
# Re-exported lazily: importing the store pulls SQLAlchemy and Alembic, which a replay into memory (every
# `tradingd sweep` worker, `run_replay`) never uses, and which cost each sweep worker its start-up time.
_STORE_NAMES = {"StoreSink": "CoreSink", "CoreSink": "CoreSink", "APPLIED_KEY": "APPLIED_KEY",
                "RUN_ID_KEY": "RUN_ID_KEY", "ReplayStoreMismatch": "ReplayStoreMismatch"}


def __getattr__(name: str) -> Any:
    if name in _STORE_NAMES:
        from daemon.store import core_sink

        return getattr(core_sink, _STORE_NAMES[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def run_id(settings: Settings, data_files: Iterable[Any], signals: bytes | None, source: str) -> str:
    """What makes two replays the same run: profile and every setting that can change a record, the data,
    the signals. Where the state lives (store URL, state directory), the API, the journal's timing and
    the notifications change no record: the same replay into another database is the same run (the
    storage-fault tests compare a faulty store with a fault-free one, `replay.run_id` included)."""
    import hashlib
    from pathlib import Path

    digest = hashlib.sha256()
    where = {"daemon": {"api": True, "state_dir": True, "journal": True, "store": {"url", "busy_timeout_ms"}},
             "notifications": True}
    digest.update(settings.model_dump_json(exclude=where).encode())
    digest.update(source.encode())
    for path in sorted(Path(p) for p in data_files):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    if signals is not None:
        digest.update(signals)
    return digest.hexdigest()
