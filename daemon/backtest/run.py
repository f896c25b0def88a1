"""`run_replay(settings, data, ...) -> ReplayResult`: one backtest on the deterministic core.

The same `daemon.replay.Replay` loop as `tradingd run --replay` (Core, Working, SimVenue), with
three additions for backtests:
- recorded option quotes (Lean zips) are merged into the event stream and the model never prices a
  contract that has recorded quotes, so the sim fills against the recorded bid and ask (SPEC §4.3);
- the option chains offered to the selection are the recorded contracts of the day when the data
  has them (a real chain, not the listing rules);
- the core's records are collected in memory (`Collector`) instead of a database: a backtest is a
  pure function of (settings, data, signals, window, sizing, scenario).

Nothing here reads a clock or keeps global state, so `tradingd sweep` can call it in worker processes.
"""

from __future__ import annotations

import itertools
import heapq
import sys
import time as wallclock
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import ROUND_CEILING, Decimal
from typing import Any, TextIO

from config.loader import load_settings
from config.models import Settings
from daemon.backtest.data import MarketData
from daemon.bars import Bar
from daemon.feed import replay_start
from daemon.signals.jsonl import TimedSignal, load_signal_file
from market.clock import EXCHANGE_TZ
from market.combo import Combo, combo_quote
from market.types import Fill, OptionChain, Quote

SIZINGS = ("new", "current")
_QUOTE = 0


def sizing_overlay(profile: str, settings: Settings, sizing: str) -> dict[str, Any]:
    """Config overrides for `--sizing`. "new" is the profile as it is; "current" is the seeds'
    pre-change numbers: 0dte base bet 1,000 and max 5,000 (of the fixed 60,000 base); 7dte 2% risk
    per trade and at most 15% per stock."""
    if sizing == "new":
        return {}
    if sizing != "current":
        raise ValueError(f"sizing must be one of {SIZINGS}, not {sizing!r}")
    if profile == "0dte":
        base = settings.capital.account_size
        max_pct = (Decimal(5000) / base).quantize(Decimal("0.00000001"), rounding=ROUND_CEILING)
        return {"sizing.min_bet_floor": "1000", "sizing.min_bet_pct": "0.0001", "sizing.max_bet_pct": str(max_pct)}
    return {"sizing.min_bet_floor": "0", "sizing.min_bet_pct": "0.02", "sizing.max_bet_pct": "0.15",
            "sizing.per_underlying_alloc_pct": "0.15"}


def replay_settings(profile: str, data: MarketData, sizing: str = "new",
                    overrides: dict[str, Any] | None = None) -> Settings:
    """The profile's settings for a replay of `data`: sizing overlay, sim broker, and, when none of the
    profile's underlyings is in the data, the data's own underlyings (SPX for 0dte, GOOG for 7dte)."""
    base = load_settings(profile, overrides=overrides)
    extra: dict[str, Any] = {"broker.kind": "sim", **sizing_overlay(base.profile.name, base, sizing)}
    if not set(base.profile.underlyings) & set(data.underlyings):
        indices = [u for u in data.underlyings if u in data.index_symbols]
        disabled = [u for u in indices if u not in base.profile.index_underlyings]
        if disabled:
            raise ReplayDataError("index_not_enabled", f"{', '.join(disabled)}: index options are not enabled in "
                                                       f"profile {base.profile.name} (profile.index_underlyings)")
        extra["profile.underlyings"] = [*base.profile.underlyings, *data.underlyings]
    extra.update(overrides or {})
    return load_settings(profile, overrides=extra)


class ReplayDataError(ValueError):
    """Data this profile cannot replay. `code` is a stable reason code."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code


class Collector:
    """The core's Persist records, in memory and in order (the replay's store sink)."""

    catching_up = False
    seq = 0
    changes = ()  # memory never stops writing

    def __init__(self, book: Any = None):
        self.records: list[tuple[str, dict[str, Any]]] = []
        self.book = book  # the market the venue fills against: its mid at each fill is the slippage reference
        self.mids: dict[str, Decimal | None] = {}
        self.combos: dict[int, Combo] = {}

    def append(self, op: str, payload: dict[str, Any]) -> None:
        if op == "record_combo":  # SPEC §9: a combo's fills are marked against its legs' mids
            self.combos[payload["position_id"]] = Combo.from_record(payload["combo"])
        if op == "apply_fill" and self.book is not None:
            fill: Fill = payload["fill"]
            combo = self.combos.get(payload.get("position_id")) if payload.get("contract_key") else None
            quote = self.book.get(fill.contract.key) if combo is None else combo_quote(combo, self.book.get)
            self.mids[fill.exec_id] = None if quote is None else quote.mid
        self.records.append((op, payload))

    def flush(self) -> None:
        pass

    def may_send(self, durable: bool) -> bool:
        return True

    def take_changes(self) -> list[tuple[bool, str | None]]:
        return []


class RecordedChains:
    """The option chain of the day as recorded: expiries and strikes of the contracts quoted that day."""

    def __init__(self, quotes: Sequence[Quote], multiplier: int):
        self.multiplier = multiplier
        found: dict[tuple[str, date], tuple[set[date], set[Decimal]]] = defaultdict(lambda: (set(), set()))
        for q in quotes:
            underlying, expiry, _, strike = q.key.split(" ")
            day = q.received_at.astimezone(EXCHANGE_TZ).date()
            exp = datetime.strptime(expiry, "%Y%m%d").date()
            if exp >= day:
                expiries, strikes = found[(underlying, day)]
                expiries.add(exp)
                strikes.add(Decimal(strike))
        self.by_day = {k: (tuple(sorted(e)), tuple(sorted(s))) for k, (e, s) in found.items()}

    def chain(self, underlying: str, day: date, spot: Decimal) -> OptionChain | None:
        found = self.by_day.get((underlying, day))
        if found is None:
            return None
        return OptionChain(underlying, found[0], found[1], self.multiplier)


@dataclass
class ReplayResult:
    """One replay's outcome: what the core recorded, in plain values (see `figures` and `report`)."""

    profile: str
    sizing: str
    scenario: str | None
    data: str
    data_digest: str
    start_capital: Decimal
    sessions: list[date]
    decisions: list[dict[str, Any]]
    fills: list[dict[str, Any]]
    trades: list[dict[str, Any]]
    breaker_events: list[dict[str, Any]]
    exit_events: list[dict[str, Any]]
    counts: dict[str, int]
    notes: list[str] = field(default_factory=list)
    wall_s: float = 0.0  # not in report.json (it differs between identical runs)
    checks: dict[str, Any] = field(default_factory=dict)  # scenario invariants' raw material

    @property
    def events_per_s(self) -> float:
        return self.counts.get("events", 0) / self.wall_s if self.wall_s > 0 else 0.0


Progress = Callable[[int, float], None]


def run_replay(settings: Settings, data: MarketData, signals: str | Sequence[TimedSignal] | None = "reference",
               window: tuple[date | None, date | None] | None = None, sizing: str = "new",
               scenario: str | None = None, progress: Progress | None = None) -> ReplayResult:
    """Replay `data` through the core with `settings` (already carrying the sizing overlay: see
    `replay_settings`); `sizing` and `scenario` label the result, and `scenario` transforms the data
    first (`daemon.backtest.scenarios`). Deterministic: identical inputs give identical results."""
    from daemon.replay import Replay, StepClock
    from daemon.signals.reference import OpeningRangeBreakout

    if window is not None:
        data = data.window(*window)
    notes = list(data.notes)
    checks: dict[str, Any] = {}
    scenario_signals: list[TimedSignal] = []
    disconnects: list[tuple[datetime, datetime]] = []
    snapshots = None
    if scenario is not None:
        from daemon.backtest.scenarios import apply_scenario

        data, scenario_notes, found = apply_scenario(scenario, data, settings)
        notes.extend(scenario_notes)
        scenario_signals = found.pop("signals", [])
        disconnects = found.pop("disconnects", [])
        snapshots = found.pop("snapshots", None)
        checks = dict(found)
    if not data.bars:
        raise ValueError("no recorded bars in the window")
    timed: list[TimedSignal] = []
    listener = None
    profile = settings.profile
    if signals == "reference":
        listener = OpeningRangeBreakout(profile.name, profile.underlyings).on_bar
        notes.append("signals: the reference opening-range breakout (a demonstration, not an edge)")
    elif isinstance(signals, str):
        timed = load_signal_file(signals)
    elif signals is not None:
        timed = list(signals)
    if scenario_signals:
        timed = sorted([*timed, *scenario_signals], key=lambda t: t.at)
    start = replay_start(data.bars, timed)
    assert start is not None
    step = StepClock(start)
    collector = Collector()
    replay = Replay(settings, start, sink=collector, bar_listener=listener, signal_source="replay",
                    daily_closes=data.closes_before, log_effects=False, clock=step)
    collector.book = replay.market
    if data.option_quotes:
        recorded = frozenset(q.key for q in data.option_quotes)
        model = replay.model
        track = model.track
        model.track = lambda keys: track([k for k in keys if k not in recorded])  # type: ignore[method-assign]
        replay.core.entries.chains = RecordedChains(data.option_quotes, profile.contract_multiplier)
    if snapshots is not None:
        _answer_snapshots(replay, snapshots)
    events = _events(data, timed)
    link = _Link(replay, disconnects) if disconnects else None
    counted = _counting(events if link is None else link.wrap(events), progress)
    last = max(b[-1].end for b in data.bars.values() if b).astimezone(EXCHANGE_TZ).date()
    from daemon.logging import get_logger  # noqa: F401 - the replay logs through structlog; keep it quiet
    import logging

    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        stats = replay.run(counted, datetime.combine(last, time(23, 59), tzinfo=EXCHANGE_TZ))
    finally:
        logging.disable(previous)
    counts = {"events": counted.n, "quotes": stats.quotes, "option_quotes_modelled": stats.option_quotes,
              "option_quotes_recorded": len(data.option_quotes), "bars": stats.bars, "signals": stats.signals,
              "orders": stats.orders, "fills": stats.fills, "records": stats.records}
    if link is not None:
        checks.update(link.summary())
    if scenario is not None:
        checks["book_vs_venue"] = _book_vs_venue(replay)
    if snapshots is not None:
        checks["snapshots_asked"] = list(snapshots.asked)
        checks["snapshots_answered"] = list(snapshots.answered)
    result = _result(settings, data, sizing, scenario, collector, counts, notes, checks)
    result.wall_s = stats.wall_s
    return result


def _answer_snapshots(replay: Any, snapshots: Any) -> None:
    """The replay answers an exit's `RequestSnapshot` with `model.refresh_key` (a modelled quote from
    the book, stale while the stream is out). Inside a scenario's outage the venue's answer is the
    market as recorded at that moment (`scenarios.OutageSnapshots`), stored in the book and handed
    to the core and the venue like any quote, so the waiting exit wakes and crosses on it."""
    from broker.quote_model import OptionQuoteModel
    from broker.quotes import QuoteBook
    from daemon.core.events import QuoteEvent
    from market.types import OptionContract

    model, own = replay.model, replay.model.refresh_key
    settings = replay.settings

    def refresh_key(key: str) -> Quote | None:
        now = replay.clock.now()
        if not snapshots.active(now):
            return own(key)
        snapshots.asked.append((now.isoformat(), key))
        recorded = snapshots.recorded(key, now)
        if recorded is not None:
            replay.market.update(recorded)
            replay.venue.on_quote(recorded, now)
            replay._venue_events()
            replay.core.handle(QuoteEvent(recorded))
            snapshots.answered.append((now.isoformat(), key))
            return recorded
        scratch = QuoteBook()
        for quote in snapshots.underlyings(now):
            scratch.update(quote)
        pricer = OptionQuoteModel(scratch, replay.clock, settings.broker.sim.model, settings.profile.vix_symbol,
                                  settings.profile.contract_multiplier)
        pricer._realized = dict(model._realized)
        answer = pricer.quote_for(OptionContract.from_key(key, settings.profile.contract_multiplier))
        model.track([key])
        if answer is None or not replay.market.update(answer):  # modelled: forwarded after this effect
            return replay.market.get(key)
        snapshots.answered.append((now.isoformat(), key))
        return answer

    model.refresh_key = refresh_key  # type: ignore[method-assign]


class _Link:
    """The broker link for the `disconnect` scenario: down inside each window. While down, every order
    is refused `not_connected` before it reaches the venue, and the venue's events (fills of orders
    already resting there) wait; on reconnect the core hears "reconciling", gets the held events (the
    executions IB replays after a reconnect), then "ready"."""

    def __init__(self, replay: Any, windows: list[tuple[datetime, datetime]]):
        from broker.base import BrokerError

        self.replay = replay
        self.boundaries = sorted([(a, False) for a, _ in windows] + [(b, True) for _, b in windows])
        self.up = True
        self.sent: list[int] = []  # every order id that reached the venue, in order
        self.refused = 0
        self.orphans: list[int] = []
        venue = replay.venue
        place, modify, cancel, take = venue.place, venue.modify, venue.cancel, venue.take_events

        def guarded(call: Callable[..., None], record: bool) -> Callable[..., None]:
            def send(cmd: Any, now: datetime) -> None:
                if not self.up:
                    self.refused += 1
                    raise BrokerError("not_connected", "the broker link is down")
                if record:
                    self.sent.append(cmd.request.order_id)
                call(cmd, now)
            return send

        def take_events() -> list[Any]:
            if not self.up:
                return []
            return take()

        venue.place, venue.modify, venue.cancel = guarded(place, True), guarded(modify, False), guarded(cancel, False)
        venue.take_events = take_events

    def wrap(self, events: Iterable[Any]) -> Iterator[Any]:
        from daemon.core.events import ConnectionEvent

        replay, pending = self.replay, list(self.boundaries)
        for event in events:
            while pending and pending[0][0] <= event[0]:
                at, up = pending.pop(0)
                replay._until(at)
                replay.clock.at = at
                if not up:
                    self.up = False
                    replay.core.handle(ConnectionEvent(False, "disconnected", at))
                else:
                    self.up = True
                    replay.core.handle(ConnectionEvent(True, "reconciling", at))
                    replay._venue_events()
                    self._cancel_orphans(at)
                    replay._venue_events()
                    replay.core.handle(ConnectionEvent(True, "ready", at))
                replay._drain(at)
            yield event

    def _cancel_orphans(self, at: datetime) -> None:
        """Orders still working at the venue that nothing in the daemon works any more (their parent
        ended while the cancel could not be sent): cancelled on reconnect, so no order is left behind."""
        from broker.working import Cancel

        replay = self.replay
        ours = set(replay.working.working_order_ids) | {r.request.order_id for r in replay.core.stops.resting.values()}
        for order in replay.venue.open_orders():
            if order.request.order_id not in ours:
                self.orphans.append(order.request.order_id)
                replay.venue.cancel(Cancel(order.request.order_id), at)

    def summary(self) -> dict[str, Any]:
        return {"orders_sent": len(self.sent), "orders_sent_unique": len(set(self.sent)),
                "orders_refused_while_down": self.refused, "disconnects": len(self.boundaries) // 2,
                "orphans_cancelled_on_reconnect": len(self.orphans),
                "venue_open_orders_at_end": len(self.replay.venue.open_orders())}


def _book_vs_venue(replay: Any) -> dict[str, Any]:
    """The core's open quantities against the venue's positions, by contract (reconciled means equal)."""
    book: dict[str, int] = defaultdict(int)
    for position in replay.core.book:
        if position.record.open_qty:
            book[position.key] += position.record.open_qty
    venue = {p.contract.key: p.quantity for p in replay.venue.positions() if p.quantity}
    return {"book": dict(sorted(book.items())), "venue": dict(sorted(venue.items())), "equal": dict(book) == venue}


class _counting:
    """The event stream, counted, with a progress callback every 20,000 events and at the end."""

    def __init__(self, events: Iterator[Any], progress: Progress | None):
        self.events = events
        self.progress = progress
        self.n = 0
        self.started = wallclock.perf_counter()

    def __iter__(self) -> Iterator[Any]:
        progress = self.progress
        for event in self.events:
            self.n += 1
            if progress is not None and self.n % 20000 == 0:
                progress(self.n, wallclock.perf_counter() - self.started)
            yield event
        if progress is not None:  # the last word: a short run still shows its bar at the end
            progress(self.n, wallclock.perf_counter() - self.started)


def _events(data: MarketData, timed: Sequence[TimedSignal]) -> Iterator[tuple[datetime, int, int, Any]]:
    from daemon.replay import recorded_events

    streams = [recorded_events(data.bars, timed, data.index_symbols)]
    if data.option_quotes:
        seq = itertools.count(10**12)  # after every bar-derived event at the same instant
        streams.append((q.received_at, _QUOTE, next(seq), q) for q in data.option_quotes)
    return heapq.merge(*streams, key=lambda e: (e[0], e[1], e[2]))


# ------------------------------------------------------------------------------------------ results

def _money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


def _result(settings: Settings, data: MarketData, sizing: str, scenario: str | None, collector: Collector,
            counts: dict[str, int], notes: list[str], checks: dict[str, Any]) -> ReplayResult:
    decisions, fills, breakers, exits = [], [], [], []
    positions: dict[int, dict[str, Any]] = {}
    strategies: dict[str, str] = {}  # signal id -> the strategy it asked for (SPEC §9: the trade's family)
    for op, p in collector.records:
        if op == "record_signal" and isinstance(p.get("payload"), dict):
            strategies[p["signal_id"]] = str(p["payload"].get("strategy") or "directional")
        elif op == "record_combo" and p["position_id"] in positions:
            combo = Combo.from_record(p["combo"])
            positions[p["position_id"]].update(contract=combo.key, family=combo.strategy, structure=combo.structure)
        elif op == "record_decision":
            breakdown = p.get("breakdown") or {}
            decisions.append({"at": p["at"].isoformat(), "signal_id": p["signal_id"], "accepted": bool(p["accepted"]),
                              "reason": p["reason"], "contracts": int(p["contracts"]),
                              "notional": _money(Decimal(p["notional"])), "multiplier": str(p["multiplier"]),
                              "underlying": _underlying(breakdown), "breakdown": _plain(breakdown)})
        elif op == "open_position":
            positions[p["position_id"]] = {"position_id": p["position_id"], "contract": p["contract"].key,
                                           "underlying": p["contract"].underlying, "signal_id": p["signal_id"],
                                           "opened_at": p["opened_at"].isoformat(),
                                           "family": strategies.get(p["signal_id"], "directional"),
                                           "structure": "single"}
        elif op == "apply_fill":
            f: Fill = p["fill"]
            mid = collector.mids.get(f.exec_id)
            sign = 1 if f.side == "BUY" else -1
            slip = None if mid is None else (f.price - mid) * sign
            fills.append({"exec_id": f.exec_id, "order_id": f.order_id, "order_ref": f.order_ref,
                          "position_id": p["position_id"], "contract": p.get("contract_key") or f.contract.key,
                          "side": f.side,
                          "quantity": f.quantity, "price": str(f.price), "multiplier": f.contract.multiplier,
                          "commission": _money(f.commission), "at": f.at.isoformat(),
                          "mid": None if mid is None else str(mid.quantize(Decimal("0.0001"))),
                          "slippage": None if slip is None else str(slip.quantize(Decimal("0.0001")))})
        elif op == "record_breaker_event":
            breakers.append({"at": p["at"].isoformat(), "level": p["level"], "from_state": p["from_state"],
                             "to_state": p["to_state"], "session_pnl": _money(Decimal(p["session_pnl"])),
                             "reason": p.get("reason")})
        elif op == "record_exit_event":
            exits.append({"position_id": p["position_id"], "rule": p["rule"], "kind": p["kind"],
                          "quantity": p.get("quantity"), "at": p["at"].isoformat() if p.get("at") else None,
                          "reason": p.get("reason")})  # the effects it names (macro day, earnings) show in the report
        elif op == "close_position":
            if p["position_id"] in positions:
                positions[p["position_id"]]["closed_at"] = p["closed_at"].isoformat()
                positions[p["position_id"]]["close_reason"] = p.get("reason")
                if p.get("exit_price") is not None:  # settled at expiry without a fill (room expiry, SPEC §6.3)
                    positions[p["position_id"]]["settlement_price"] = str(p["exit_price"])
    by_signal = {d["signal_id"]: d for d in decisions if d["accepted"] and d["signal_id"]}
    trades = []
    for pid in sorted(positions):
        pos = positions[pid]
        own = [f for f in fills if f["position_id"] == pid]
        if not own:
            continue
        bought = sum(f["quantity"] for f in own if f["side"] == "BUY")
        sold = sum(f["quantity"] for f in own if f["side"] == "SELL")
        cost = sum(Decimal(f["price"]) * f["quantity"] * f["multiplier"] for f in own if f["side"] == "BUY")
        proceeds = sum(Decimal(f["price"]) * f["quantity"] * f["multiplier"] for f in own if f["side"] == "SELL")
        fees = sum(Decimal(f["commission"]) for f in own)
        settled = pos.get("settlement_price")
        if settled is not None and bought > sold:  # what expired unsold settled at this price
            proceeds += Decimal(settled) * (bought - sold) * own[0]["multiplier"]
            sold = bought
        closed = bought == sold
        pnl = proceeds - cost - fees if closed else None
        last_at = max(f["at"] for f in own)
        trades.append({**pos, "contracts": bought, "entry_cost": _money(Decimal(cost)),
                       "exit_proceeds": _money(Decimal(proceeds)), "commissions": _money(Decimal(fees)),
                       "closed": closed, "closed_at": pos.get("closed_at", last_at if closed else None),
                       "pnl": None if pnl is None else _money(Decimal(pnl)),
                       "return_pct": None if pnl is None or not cost else str((pnl / cost * 100).quantize(Decimal("0.01"))),
                       "exits": [e for e in exits if e["position_id"] == pid],
                       "decision": (by_signal.get(pos["signal_id"]) or {}).get("breakdown")})
    return ReplayResult(settings.profile.name, sizing, scenario, data.name, data.digest(),
                        settings.capital.account_size, data.days(), decisions, fills, trades, breakers, exits,
                        counts, notes, checks=checks)


def _underlying(breakdown: Any) -> str | None:
    if isinstance(breakdown, dict):
        signal = breakdown.get("signal")
        if isinstance(signal, dict):
            return signal.get("underlying")
        return breakdown.get("underlying")
    return None


def _plain(value: Any) -> Any:
    """JSON-ready and deterministic: Decimals and times as strings, keys sorted later by json.dumps."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
