"""Signal -> decision, synchronously (SPEC §2, §4.1): validation, contract choice, sizing, the record.

The pure parts are `risk` (parse, gate, sizing, scale-in) and `broker.selection`. A decision
needs fresh quotes of the candidate strikes: when the table lacks them the desk answers
`Pending` with the keys it needs; the core subscribes (and asks snapshots), and calls
`finish` once they are in or the snapshot wait is over. Every outcome, accepted or refused,
becomes one stored decision record with its full breakdown (a `record_decision` Persist).

What the desk reads of the rest of the core comes in one value, `Standing`, built by the
core for the moment of the decision: nothing here reaches back into the core.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from broker.combos import STRATEGIES as COMBO_STRATEGIES, ComboSelection, candidate_keys, select_combo
from broker.liquidity import check_quote
from broker.selection import LIQUIDITY, NO_UNDERLYING_PRICE, Selection, candidates, select_contract
from config.models import Settings
from daemon import format as fmt
from daemon.control import HTTP_ACCEPTED, HTTP_DUPLICATE, HTTP_REFUSED, SignalOutcome
from daemon.core.effects import Outbox
from daemon.core.ids import Counter
from daemon.core.ports import ChainSource, QuoteSource, SessionLookup, SessionsBetween
from exits.closeout import expiry_close_at, zero_dte_closeout_at
from market.session import EXCHANGE_TZ
from market.combo import is_combo_key, parse_combo_key
from market.types import OptionContract, Quote
from risk import reasons
from risk.breakers import TradingState
from risk.decision import Decision
from risk.gate import needs_vix
from risk.request import OpenPositionView, SizingRequest
from risk.scale_in import ScaleInRequest, evaluate_scale_in
from risk.signal import _ID_PATTERN, Signal, SignalRejected, parse_signal
from risk.sizing import evaluate, refused_input, screen

ZERO = Decimal(0)


@dataclass(frozen=True)
class Standing:
    """The book and the account as sizing sees them at one moment."""

    capital_base: Decimal
    trading_state: TradingState
    breaker_level: int = 0
    vix_session_open: Decimal | None = None
    open_positions: tuple[OpenPositionView, ...] = ()
    correlations: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    buying_power: Decimal | None = None
    portfolio_delta: Decimal | None = ZERO
    portfolio_gamma: Decimal | None = ZERO
    blocked: frozenset[str] = frozenset()
    store_unavailable: str | None = None  # why no entry intent can be made durable now (SPEC §6.2)


@dataclass(frozen=True)
class HeldView:
    """An open position as a scale-in needs it."""

    position_id: int
    key: str
    underlying: str
    open_qty: int
    entry_price: Decimal
    entry_time: datetime
    mark: Decimal | None


@dataclass(frozen=True)
class Intake:
    outcome: SignalOutcome
    signal: Signal | None = None
    decision: Decision | None = None
    selection: Selection | None = None
    position_id: int | None = None  # scale-in: the position it adds to
    combo: ComboSelection | None = None  # SPEC §9: the legs a neutral or volatility entry trades


@dataclass(frozen=True)
class Pending:
    """A signal waiting for the quotes of `keys` (at most until `deadline`)."""

    signal: Signal
    source: str
    received: datetime
    keys: tuple[str, ...]
    deadline: datetime
    held: HeldView | None = None  # scale-in
    ticket: int | None = None


def market_problem(quotes: Any, settings: Settings, signal: Signal, selection: Selection,
                   now: datetime) -> str | None:
    """SPEC 4.4: why the market data an entry would be sized on is unusable, or None: the underlying,
    the VIX when the profile sizes on it, and the chosen option (or, when no strike passed, every
    candidate tried). A flagged quote past the freshness limit is stale, not bad. `quotes` answers
    `get(key)` and `problem(key)` (the core's QuoteTable, the old engine's QuoteBook)."""
    keys = [signal.underlying]
    if needs_vix(settings):
        keys.append(settings.profile.vix_symbol)
    if selection.contract is not None:
        keys.append(selection.contract.key)
    else:
        keys.extend(c.contract.key for c in selection.tried)
    for key in keys:
        verdict, quote = quotes.problem(key), quotes.get(key)
        if verdict is not None and quote is not None and quote.age_s(now) <= settings.gate.max_quote_age_s:
            return verdict.describe(key)
    return None


def signal_id_of(raw: Any) -> str | None:
    if isinstance(raw, dict):
        sid = raw.get("id")
        if isinstance(sid, str) and _ID_PATTERN.match(sid):
            return sid
    return None


def json_safe(value: Any) -> Any:
    """NaN/Infinity (valid in Python's JSON, not in PostgreSQL's) become strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


class EntryDesk:
    def __init__(self, settings: Settings, quotes: QuoteSource, chains: ChainSource,
                 standing: Callable[[datetime], Standing], held: Callable[[int], HeldView | None],
                 sessions_between: SessionsBetween, decision_ids: Counter | None = None,
                 regime_fields: Callable[..., dict[str, Any]] | None = None,
                 sessions: SessionLookup | None = None):
        self.settings = settings
        self.sessions = sessions  # room expiry: today's session, for the same-day close-out (`closeout_at`)
        self.quotes = quotes
        self.chains = chains
        self.standing = standing
        self.held = held
        self.sessions_between = sessions_between
        self.decision_ids = decision_ids or Counter()
        self.first_decisions: dict[str, dict[str, Any] | None] = {}  # signal id -> its first decision record
        self.wait_s = settings.broker.ib.snapshot_timeout_s
        self.regime_fields = regime_fields  # SPEC §10: events, volatility, vega/theta for the request

    # ------------------------------------------------------------------ intake

    def receive(self, raw: Any, source: str, now: datetime, out: Outbox) -> Intake | Pending:
        sid = signal_id_of(raw)
        if sid is not None and sid in self.first_decisions:
            return self._duplicate(sid, raw, source, now, out)
        if sid is not None:
            self.first_decisions[sid] = None
            out.persist("record_signal", signal_id=sid, payload=json_safe(raw), received_at=now)
        try:
            signal = parse_signal(raw, self.settings, now)
        except SignalRejected as exc:
            return self._invalid(sid, raw, source, now, exc.reason_code, exc.message, out)
        standing = self.standing(now)
        # SPEC §2.1: every check that needs no option quote, before any contract is chosen or subscribed
        screened = screen(replace(self.request(standing, signal, ZERO, None, now, liquidity_ok=False),
                                  underlying_blocked=signal.underlying in standing.blocked,
                                  store_unavailable=standing.store_unavailable, vix_usable=self._vix_usable()),
                          self.settings, new_position=signal.action != "scale_in")
        if screened is not None:
            return self._store(screened, source, now, signal, out)
        if signal.action == "scale_in":
            held = self.held(_int(signal.position_id))
            if held is None or held.open_qty <= 0:
                return self._refuse(signal, source, now, reasons.SCALE_IN_POSITION_MISMATCH,
                                    f"no open position {signal.position_id}", out, code_is_input=True)
            keys = tuple(leg.contract.key for leg in parse_combo_key(held.key)) if is_combo_key(held.key) else (
                held.key,)  # a combo waits for its legs' quotes (SPEC §9)
            return self._wait_or_finish(Pending(signal, source, now, keys, self._deadline(now), held), now, out)
        under = self.quotes.get(signal.underlying)
        spot = None if under is None or not under.usable else under.mid
        if spot is None or under is None or under.age_s(now) > self.settings.gate.max_quote_age_s:
            code, detail = reasons.STALE_MARKET_DATA, f"no fresh {signal.underlying} quote"
            verdict = self.quotes.problem(signal.underlying)
            if verdict is not None and under is not None and under.age_s(now) <= self.settings.gate.max_quote_age_s:
                code, detail = reasons.BAD_MARKET_DATA, verdict.describe(signal.underlying)  # SPEC 4.4
            return self._store(self._bare(signal, now, code, detail), source, now, signal, out,
                               Selection(None, None, NO_UNDERLYING_PRICE, detail=detail))
        chain = self.chains.chain(signal.underlying, now.date(), spot)
        if chain is None:
            return self._store(self._bare(signal, now, reasons.STALE_MARKET_DATA, "no option chain"), source, now,
                               signal, out, Selection(None, None, NO_UNDERLYING_PRICE, detail="no option chain"))
        if self.combos_for(signal):
            keys = candidate_keys(chain, signal.strategy, spot, now, self.settings.profile.expiry,
                                  self.settings.multileg)
            return self._wait_or_finish(Pending(signal, source, now, tuple(keys), self._deadline(now)), now, out)
        tried = candidates(chain, signal.direction, spot, now.date(), self.settings.profile.expiry,
                           self.settings.liquidity.strikes_each_side)
        return self._wait_or_finish(Pending(signal, source, now, tuple(c.key for c in tried), self._deadline(now)),
                                    now, out)

    def combos_for(self, signal: Signal) -> bool:
        """SPEC §9: neutral and volatility signals trade combos (with `multileg.enabled`)."""
        return signal.strategy in COMBO_STRATEGIES and self.settings.multileg.enabled

    def ready(self, pending: Pending, now: datetime) -> bool:
        """Every key has a fresh quote, or the wait is over (then the decision sees what there is)."""
        if now >= pending.deadline:
            return True
        limit = self.settings.gate.max_quote_age_s
        for key in pending.keys:
            quote = self.quotes.get(key)
            if quote is None or quote.age_s(now) > limit:
                return False
        return True

    def finish(self, pending: Pending, now: datetime, out: Outbox) -> Intake:
        if pending.held is not None:
            return self._scale_in(pending, now, out)
        return self._open(pending, now, out)

    def unquoted(self, pending: Pending, now: datetime, detail: str, out: Outbox) -> Intake:
        """Refused stale_market_data at once: the broker would not stream the candidates' quotes."""
        signal = pending.signal
        decision = refused_input(_bare_request(signal, now), self.settings, reasons.STALE_MARKET_DATA, detail)
        return self._store(decision, pending.source, now, signal, out,
                           Selection(None, None, NO_UNDERLYING_PRICE, detail=detail))

    def _wait_or_finish(self, pending: Pending, now: datetime, out: Outbox) -> Intake | Pending:
        return self.finish(pending, now, out) if self.ready(pending, now) else pending

    def _deadline(self, now: datetime) -> datetime:
        return now + timedelta(seconds=float(self.wait_s))

    # ------------------------------------------------------------------ new positions

    def _open(self, pending: Pending, now: datetime, out: Outbox) -> Intake:
        if self.combos_for(pending.signal):
            return self._open_combo(pending, now, out)
        settings, signal = self.settings, pending.signal
        spot, chain = self._chain_now(signal, now)
        if chain is None or spot is None:
            selection = Selection(None, None, NO_UNDERLYING_PRICE, detail=f"no fresh {signal.underlying} quote")
        else:
            selection = select_contract(chain, signal.direction, spot, now, settings.profile.expiry,
                                        settings.liquidity, self.quotes.get)
        others = [OptionContract.from_key(k, settings.profile.contract_multiplier) for k in pending.keys]
        if selection.contract is not None and selection.contract in others:
            others = others[others.index(selection.contract):]
        problem = self._market_problem(signal, selection, now)
        priced = selection.quote if selection.ok else _first_priced(selection)
        if priced is None or priced.mid is None:
            code = reasons.STALE_MARKET_DATA if selection.reason in (NO_UNDERLYING_PRICE, LIQUIDITY, None) else (
                selection.reason)
            detail = selection.detail or "no option price to size against"
            if problem is not None and code == reasons.STALE_MARKET_DATA:  # SPEC 4.4: unusable, not missing
                code, detail = reasons.BAD_MARKET_DATA, problem
            decision = refused_input(_bare_request(signal, now), settings, code, detail)
            return self._store(decision, pending.source, now, signal, out, selection)
        standing = self.standing(now)
        decision = evaluate(replace(self.request(standing, signal, priced.mid, priced, now, liquidity_ok=selection.ok),
                                    market_data_problem=problem, vix_usable=self._vix_usable()), settings)
        note = None
        if not decision.accepted and decision.reason == reasons.GREEKS_LIMIT and selection.ok:
            walked = self._walk_for_greeks(standing, signal, now, others)
            if walked is not None:
                assert selection.contract is not None
                note = {"strike_note": "greeks_limit at the money strike: the next liquid strike outward "
                                       "that fits the limits", "money_strike": selection.contract.key}
                selection, decision = walked
        return self._store(decision, pending.source, now, signal, out, selection, note=note)

    def _chain_now(self, signal: Signal, now: datetime) -> tuple[Decimal | None, Any]:
        """The underlying's usable mid and the option chain around it (None, None without a usable quote)."""
        under = self.quotes.get(signal.underlying)
        spot = None if under is None or not under.usable else under.mid
        return spot, None if spot is None else self.chains.chain(signal.underlying, now.date(), spot)

    def _open_combo(self, pending: Pending, now: datetime, out: Outbox) -> Intake:
        """SPEC §9: the combo's legs (liquidity on every leg), sized on its maximum loss per unit: the
        combo's value mid (the debit; width − credit for the condor), greeks on the combined legs."""
        settings, signal = self.settings, pending.signal
        spot, chain = self._chain_now(signal, now)
        if chain is None or spot is None:
            chosen = ComboSelection(None, None, NO_UNDERLYING_PRICE, detail=f"no fresh {signal.underlying} quote")
        else:
            chosen = select_combo(chain, signal.strategy, spot, now, settings.profile.expiry, settings.liquidity,
                                  settings.multileg, self.quotes.get)
        legs = [] if chosen.combo is None else [leg.contract for leg in chosen.combo.legs]
        tried = [c.contract for c in chosen.tried]
        problem = market_problem(self.quotes, settings, signal, Selection(None, None, None, tuple(chosen.tried)),
                                 now) if not legs else self._legs_problem(signal, legs, now)
        quote = chosen.quote
        standing = self.standing(now)
        if quote is None or quote.mid is None or quote.mid <= 0:
            priced = next((c.quote for c in chosen.tried if c.quote is not None and c.quote.mid), None)
            if chosen.reason == LIQUIDITY and priced is not None and priced.mid is not None:
                # refused through the gate, so an earlier check (its order is SPEC §2.1's) still answers first
                decision = evaluate(replace(self.request(standing, signal, priced.mid, priced, now, liquidity_ok=False),
                                            market_data_problem=problem, vix_usable=self._vix_usable()), settings)
            else:
                code = reasons.BAD_MARKET_DATA if problem is not None else reasons.STALE_MARKET_DATA
                detail = problem or chosen.detail or "no combo price to size against"
                if chosen.reason == LIQUIDITY and not tried:
                    code = reasons.LIQUIDITY
                decision = refused_input(_bare_request(signal, now), settings, code, detail)
            return self._store(decision, pending.source, now, signal, out, combo=chosen)
        decision = evaluate(replace(self.request(standing, signal, quote.mid, quote, now, liquidity_ok=True),
                                    market_data_problem=problem, vix_usable=self._vix_usable()), settings)
        return self._store(decision, pending.source, now, signal, out, combo=chosen)

    def _legs_problem(self, signal: Signal, legs: list[OptionContract], now: datetime) -> str | None:
        """SPEC 4.4 over the underlying, the VIX and every leg."""
        for leg in legs:
            found = market_problem(self.quotes, self.settings, signal, Selection(leg, None, None), now)
            if found is not None:
                return found
        return None

    def _vix_usable(self) -> bool:
        """A VIX glitch must not answer `vix_above_threshold`: the gate skips it, `bad_market_data` says why."""
        return self.quotes.problem(self.settings.profile.vix_symbol) is None

    def _market_problem(self, signal: Signal, selection: Selection, now: datetime) -> str | None:
        return market_problem(self.quotes, self.settings, signal, selection, now)

    def _walk_for_greeks(self, standing: Standing, signal: Signal, now: datetime,
                         others: list[OptionContract]) -> tuple[Selection, Decision] | None:
        for contract in others[1:]:
            quote = self.quotes.get(contract.key)
            if not check_quote(quote, self.settings.liquidity, now).ok or quote is None or quote.mid is None:
                continue
            decision = evaluate(self.request(standing, signal, quote.mid, quote, now, liquidity_ok=True), self.settings)
            if decision.accepted:
                return Selection(contract, quote, None, ()), decision
        return None

    def request(self, standing: Standing, signal: Signal, price: Decimal, quote: Quote | None, now: datetime,
                liquidity_ok: bool) -> SizingRequest:
        vix = self.quotes.get(self.settings.profile.vix_symbol)
        return SizingRequest(
            signal=signal, price=price, capital_base=standing.capital_base, now=now,
            vix=None if vix is None else vix.mid, vix_session_open=standing.vix_session_open,
            vix_quote_age_s=None if vix is None else vix.age_s(now),
            open_positions=standing.open_positions, correlations=standing.correlations,
            buying_power=standing.buying_power, breaker_level=standing.breaker_level,
            trading_state=standing.trading_state, quote_age_s=None if quote is None else quote.age_s(now),
            liquidity_ok=liquidity_ok, duplicate=False,
            option_delta=None if quote is None else quote.delta, option_gamma=None if quote is None else quote.gamma,
            portfolio_delta=standing.portfolio_delta, portfolio_gamma=standing.portfolio_gamma,
            closeout_at=self.closeout_at(now),
            **({} if self.regime_fields is None else self.regime_fields(
                signal.underlying, quote, now, None if vix is None else vix.mid)))

    def closeout_at(self, now: datetime) -> datetime | None:
        """Room expiry: when today's expiry stops taking entries, if the profile's expiry window can hold
        today's expiry (`min_dte` 0): the 0dte close-out's start, else the expiry-day close (7dte §5.3)."""
        if self.sessions is None or self.settings.profile.expiry.min_dte > 0:
            return None
        session = self.sessions(now.astimezone(EXCHANGE_TZ).date())
        if session is None:
            return None
        exits = self.settings.exits
        if exits.zero_dte is not None:
            return zero_dte_closeout_at(session, exits.zero_dte)
        if exits.seven_dte is not None:
            return expiry_close_at(session, exits.seven_dte)
        return session.close

    # ------------------------------------------------------------------ scale-ins

    def _scale_in(self, pending: Pending, now: datetime, out: Outbox) -> Intake:
        signal, settings = pending.signal, self.settings
        held = self.held(pending.held.position_id) if pending.held is not None else None
        if held is None or held.open_qty <= 0:
            return self._refuse(signal, pending.source, now, reasons.SCALE_IN_POSITION_MISMATCH,
                                f"no open position {signal.position_id}", out, code_is_input=True)
        quote = self.quotes.get(held.key)
        price = None if quote is None else quote.mid
        if price is None or price <= 0:
            return self._refuse(signal, pending.source, now, reasons.STALE_MARKET_DATA, f"no quote for {held.key}",
                                out, code_is_input=True)
        standing = self.standing(now)
        problem = self.quotes.problem(held.key)
        request = replace(self.request(standing, signal, price, quote, now,
                                       liquidity_ok=check_quote(quote, settings.liquidity, now).ok),
                          underlying_blocked=signal.underlying in standing.blocked, vix_usable=self._vix_usable(),
                          market_data_problem=None if problem is None else problem.describe(held.key))
        view = OpenPositionView(held.underlying, held.open_qty, held.entry_price)
        sessions = max(0, len(self.sessions_between(held.entry_time.date(), now.date())) - 1)
        decision = evaluate_scale_in(ScaleInRequest(request, view, position_mark=held.mark,
                                                    sessions_since_entry=sessions), settings)
        intake = self._store(decision, pending.source, now, signal, out)
        return Intake(intake.outcome, signal, decision, None, held.position_id)

    # ------------------------------------------------------------------ records

    def _bare(self, signal: Signal, now: datetime, code: str, message: str) -> Decision:
        return refused_input(_bare_request(signal, now), self.settings, code, message)

    def _refuse(self, signal: Signal, source: str, now: datetime, code: str, message: str, out: Outbox,
                code_is_input: bool = False) -> Intake:
        return self._store(self._bare(signal, now, code, message), source, now, signal, out)

    def _store(self, decision: Decision, source: str, now: datetime, signal: Signal | None, out: Outbox,
               selection: Selection | None = None, note: dict[str, str] | None = None,
               combo: ComboSelection | None = None) -> Intake:
        record = decision.to_record()
        record["source"] = source
        if note:
            record.update(note)
        if combo is not None:
            record["combo"] = {"structure": None if combo.combo is None else combo.combo.structure,
                               "key": None if combo.combo is None else combo.combo.key,
                               "legs": None if combo.combo is None else combo.combo.to_record()["legs"],
                               "value_offset": None if combo.combo is None else str(combo.combo.value_offset),
                               "max_loss_per_unit": None if combo.quote is None or combo.quote.mid is None
                               else str(combo.quote.mid * (combo.combo.contract.multiplier if combo.combo else 1)),
                               "reason": combo.reason, "detail": combo.detail, "tried": combo.reasons}
            if combo.quote is not None:
                record["combo"]["quote"] = _quote_record(combo.quote)
        if selection is not None:
            record["selection"] = {"contract": None if selection.contract is None else selection.contract.key,
                                   "reason": selection.reason, "detail": selection.detail,
                                   "tried": selection.reasons}
            if selection.quote is not None:
                record["selection"]["quote"] = _quote_record(selection.quote)
        record["decision_id"] = self.decision_ids()
        sid = decision.signal_id if signal is not None else None
        out.persist("record_decision", signal_id=sid, at=now, accepted=decision.accepted, reason=decision.reason,
                    contracts=decision.contracts, notional=decision.notional, multiplier=decision.multiplier,
                    breakdown=record)
        if sid is not None and self.first_decisions.get(sid) is None:
            self.first_decisions[sid] = record
        contract = None if selection is None or selection.contract is None else selection.contract.key
        if combo is not None and combo.combo is not None:
            contract = combo.combo.key
        out.log("info", "decision", signal_id=decision.signal_id, underlying=decision.underlying,
                accepted=decision.accepted, reason=decision.reason,
                direction=None if signal is None else signal.direction,
                confidence=None if signal is None else signal.confidence, contracts=decision.contracts,
                multiplier=fmt.ratio(decision.multiplier), bet=fmt.money(decision.notional), option=contract,
                message=decision.message or None)
        out.metric("observe_decision", accepted=decision.accepted, reason=decision.reason)
        outcome = SignalOutcome(accepted=decision.accepted, reason=decision.reason,
                                http_status=HTTP_ACCEPTED if decision.accepted else HTTP_REFUSED,
                                decision=record, message=decision.message or None)
        return Intake(outcome, signal, decision, selection, combo=combo)

    def _invalid(self, sid: str | None, raw: Any, source: str, now: datetime, code: str, message: str,
                 out: Outbox) -> Intake:
        record = {"accepted": False, "reason": code, "message": message, "profile": self.settings.profile.name,
                  "signal_id": sid, "source": source, "raw": json_safe(raw), "decision_id": self.decision_ids()}
        out.persist("record_decision", signal_id=sid, at=now, accepted=False, reason=code, contracts=0,
                    notional=ZERO, multiplier=ZERO, breakdown=record)
        if sid is not None:
            self.first_decisions[sid] = record
        out.log("info", "decision", accepted=False, reason=code, signal_id=sid, message=message)
        out.metric("observe_decision", accepted=False, reason=code)
        return Intake(SignalOutcome(False, code, HTTP_REFUSED, record, message))

    def _duplicate(self, sid: str, raw: Any, source: str, now: datetime, out: Outbox) -> Intake:
        message = f"signal {sid} was already received"
        record = {"accepted": False, "reason": reasons.DUPLICATE_SIGNAL, "message": message, "signal_id": sid,
                  "duplicate_of": sid, "source": source, "raw": json_safe(raw),
                  "first_decision": self.first_decisions.get(sid), "decision_id": self.decision_ids()}
        out.persist("record_decision", signal_id=None, at=now, accepted=False, reason=reasons.DUPLICATE_SIGNAL,
                    contracts=0, notional=ZERO, multiplier=ZERO, breakdown=record)
        out.log("info", "decision", accepted=False, reason=reasons.DUPLICATE_SIGNAL, signal_id=sid)
        out.metric("observe_decision", accepted=False, reason=reasons.DUPLICATE_SIGNAL)
        return Intake(SignalOutcome(False, reasons.DUPLICATE_SIGNAL, HTTP_DUPLICATE, record, message))


def _first_priced(selection: Selection) -> Quote | None:
    for candidate in selection.tried:
        if candidate.quote is not None and candidate.quote.mid is not None and candidate.quote.mid > 0:
            return candidate.quote
    return None


def _bare_request(signal: Signal, now: datetime) -> SizingRequest:
    return SizingRequest(signal=signal, price=ZERO, capital_base=ZERO, now=now)


def _quote_record(quote: Quote) -> dict[str, Any]:
    return {"bid": None if quote.bid is None else str(quote.bid), "ask": None if quote.ask is None else str(quote.ask),
            "mid": None if quote.mid is None else str(quote.mid), "at": quote.received_at.isoformat(),
            "modelled": quote.modelled}


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
