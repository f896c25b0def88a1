"""Signal -> decision: validation, contract choice, sizing, the stored record (SPEC §2, §4.1).

The pure parts are `risk` (parse, gate, sizing, scale-in) and `broker.selection`; this module
gathers what they need from the engine's book and the market, and turns every outcome,
accepted or refused, into one stored decision record with its full breakdown.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from broker.liquidity import check_quote
from broker.selection import LIQUIDITY, NO_UNDERLYING_PRICE, Selection, candidates, select_contract
from broker.base import BrokerError
from market.types import OptionChain, OptionContract, Quote
from daemon.core.entries import json_safe, market_problem, signal_id_of  # one definition, shared with the core
from daemon.control import HTTP_ACCEPTED, HTTP_DUPLICATE, HTTP_REFUSED, SignalOutcome
from risk import reasons
from risk.decision import Decision
from risk.request import OpenPositionView, SizingRequest
from risk.scale_in import ScaleInRequest, evaluate_scale_in
from risk.signal import Signal, SignalRejected, parse_signal
from risk.sizing import evaluate, refused_input, screen

# The engine these desks serve is typed loosely: a desk never imports its engine (no import cycle);
# daemon/core's desks take narrow collaborators instead.
Engine = Any

if TYPE_CHECKING:
    from daemon.positions import LivePosition


@dataclass(frozen=True)
class Intake:
    """A decided signal: what to send when accepted."""

    outcome: SignalOutcome
    signal: Signal | None = None
    decision: Decision | None = None
    selection: Selection | None = None
    position: LivePosition | None = None


class SignalDesk:
    """Decides signals for one engine. Calls are serialized by the engine's signal lock."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._chains: dict[tuple[str, Any], OptionChain] = {}
        self._lookup_failed = False  # the signal being decided could not be checked against the store

    async def decide(self, raw: Any, source: str) -> Intake:
        eng = self.engine
        settings = eng.settings
        now = eng.clock.now()
        sid = signal_id_of(raw)
        seen = None if sid is None else await self._seen(sid)
        self._lookup_failed = sid is not None and seen is None
        if seen:
            return await self._duplicate(sid, raw, source, now)  # type: ignore[arg-type]
        if sid is not None:
            eng.seen_signals.add(sid)
            eng.journal.append("record_signal", signal_id=sid, payload=json_safe(raw), received_at=now)
        try:
            signal = parse_signal(raw, settings, now)
        except SignalRejected as exc:
            return await self._invalid(sid, raw, source, now, exc.reason_code, exc.message)
        if signal.action != "scale_in":
            return await self._open(signal, source, now)
        return await self._scale_in(signal, source, now)

    def _screen(self, signal: Signal, now: datetime, *, new_position: bool = True) -> Decision | None:
        """SPEC §2.1: every check that needs no option quote, before any contract is chosen or subscribed."""
        eng = self.engine
        request = replace(eng.sizing_request(signal, Decimal(0), None, now, liquidity_ok=False),
                          underlying_blocked=signal.underlying in eng.blocked, vix_usable=self._vix_usable(),
                          store_unavailable=self._store_unavailable(signal))
        return screen(request, eng.settings, new_position=new_position)

    def _store_unavailable(self, signal: Signal) -> str | None:
        """Why no entry intent can be made durable now (room journal), or None. A signal whose id could
        not be looked up (the store unreadable) is refused too: it might be a duplicate."""
        eng = self.engine
        if not eng.journal.available:
            return eng.journal.reason or "the store cannot write"
        if self._lookup_failed:
            return "the store could not be read"
        return None

    def _vix_usable(self) -> bool:
        """A VIX glitch must not answer `vix_above_threshold`: the gate skips it, `bad_market_data` says why."""
        return self.engine.quotes.problem(self.engine.settings.profile.vix_symbol) is None

    async def _seen(self, sid: str) -> bool | None:
        """Was this signal id received before: by this process (its record may still be in the journal)
        or any earlier run (the store). None when the store could not be asked."""
        eng = self.engine
        if sid in eng.seen_signals:
            return True
        try:
            return bool(await eng.store.is_duplicate_signal(sid))
        except Exception as exc:  # noqa: BLE001 - a store that cannot answer refuses the entry, not the daemon
            eng.log.warning("signal_lookup_failed", code="store_unavailable", signal_id=sid, error=repr(exc))
            return None

    # ------------------------------------------------------------------ new positions

    async def _open(self, signal: Signal, source: str, now: datetime) -> Intake:
        eng, settings = self.engine, self.engine.settings
        screened = self._screen(signal, now)
        if screened is not None:
            return await self._store(screened, source, now, signal)
        selection, others, now = await self._select(signal, now)
        problem = self._market_problem(signal, selection, now)
        priced = selection.quote if selection.ok else _first_priced(selection)
        if priced is None or priced.mid is None:
            code = reasons.STALE_MARKET_DATA if selection.reason in (NO_UNDERLYING_PRICE, LIQUIDITY, None) else (
                selection.reason)
            detail = selection.detail or "no option price to size against"
            if problem is not None and code == reasons.STALE_MARKET_DATA:
                code, detail = reasons.BAD_MARKET_DATA, problem
            decision = refused_input(_bare_request(signal, now), settings, code, detail)
            return await self._store(decision, source, now, signal, selection)
        decision = evaluate(replace(eng.sizing_request(signal, priced.mid, priced, now, liquidity_ok=selection.ok),
                                    market_data_problem=problem, vix_usable=self._vix_usable()), settings)
        walked, note = None, None
        if not decision.accepted and decision.reason == reasons.GREEKS_LIMIT and selection.ok:
            walked = self._walk_for_greeks(signal, now, others)
        if walked is not None:
            assert selection.contract is not None
            note = {"strike_note": "greeks_limit at the money strike: the next liquid strike outward "
                                   "that fits the limits", "money_strike": selection.contract.key}
            selection, decision = walked
        chosen = None if selection.contract is None else selection.contract.key
        await eng.release_quotes([c.key for c in others if c.key != chosen])
        return await self._store(decision, source, now, signal, selection, note=note)

    def _walk_for_greeks(self, signal: Signal, now: datetime,
                         others: list[OptionContract]) -> tuple[Selection, Decision] | None:
        """The money strike's size breaks the portfolio greek limits: try the other liquid strikes of
        the same §4.1 walk, in its order, and take the first the whole gate accepts."""
        eng, settings = self.engine, self.engine.settings
        for contract in others[1:]:
            quote = eng.quotes.get(contract.key)
            if not check_quote(quote, settings.liquidity, now).ok or quote is None or quote.mid is None:
                continue
            decision = evaluate(eng.sizing_request(signal, quote.mid, quote, now, liquidity_ok=True), settings)
            if decision.accepted:
                return Selection(contract, quote, None, ()), decision
        return None

    def _market_problem(self, signal: Signal, selection: Selection, now: datetime) -> str | None:
        return market_problem(self.engine.quotes, self.engine.settings, signal, selection, now)

    async def _select(self, signal: Signal, now: datetime) -> tuple[Selection, list[OptionContract], datetime]:
        """The §4.1 choice, every candidate of the walk from the chosen one on (for the greeks walk), and
        the time it was made at: read after the candidates' quotes were awaited, so a quote that came in
        meanwhile is not younger than "now" (a negative age is refused as bad input)."""
        eng, settings = self.engine, self.engine.settings
        if signal.strategy in ("neutral", "volatility") and settings.multileg.enabled:
            # SPEC §9: combos are traded by the core (daemon.core); this engine never buys one leg for them
            return Selection(None, None, COMBO_NEEDS_CORE, detail=f"{signal.strategy} trades a combo: the "
                                                                  "deterministic core runs it, not this engine"), [], now
        under = eng.quotes.get(signal.underlying)
        spot = None if under is None or not under.usable else under.mid
        if spot is None or under is None or under.age_s(now) > settings.gate.max_quote_age_s:
            return Selection(None, None, NO_UNDERLYING_PRICE, detail=f"no fresh {signal.underlying} quote"), [], now
        try:
            chain = await self._chain(signal.underlying, now)
        except BrokerError as exc:
            return Selection(None, None, NO_UNDERLYING_PRICE, detail=f"no option chain: {exc}"), [], now
        tried = candidates(chain, signal.direction, spot, now.date(), settings.profile.expiry,
                           settings.liquidity.strikes_each_side)
        try:
            await eng.ensure_quotes([c.key for c in tried])
        except BrokerError as exc:  # e.g. IB's market-data line budget: refused as stale data, not a crash
            return Selection(None, None, NO_UNDERLYING_PRICE, detail=f"no option quotes: {exc}"), tried, now
        now = eng.clock.now()
        selection = select_contract(chain, signal.direction, spot, now, settings.profile.expiry,
                                    settings.liquidity, eng.quotes.get)
        if selection.contract is not None and selection.contract in tried:
            return selection, tried[tried.index(selection.contract):], now
        return selection, tried, now

    async def _chain(self, underlying: str, now: datetime) -> OptionChain:
        key = (underlying, now.date())
        chain = self._chains.get(key)
        if chain is None:
            chain = await self.engine.broker.chain(underlying)
            self._chains = {k: v for k, v in self._chains.items() if k[1] == now.date()}
            self._chains[key] = chain
        return chain

    # ------------------------------------------------------------------ scale-ins

    async def _scale_in(self, signal: Signal, source: str, now: datetime) -> Intake:
        eng, settings = self.engine, self.engine.settings
        screened = self._screen(signal, now, new_position=False)
        if screened is not None:
            return await self._store(screened, source, now, signal)
        position = eng.book.get(_int(signal.position_id))
        if position is None or position.open_qty <= 0:
            decision = refused_input(_bare_request(signal, now), settings, reasons.SCALE_IN_POSITION_MISMATCH,
                                     f"no open position {signal.position_id}")
            return await self._store(decision, source, now, signal)
        await eng.ensure_quotes([position.key])
        now = eng.clock.now()  # after the wait: the quote may have arrived during it
        quote = eng.quotes.get(position.key)
        price = None if quote is None else quote.mid
        if price is None or price <= 0:
            decision = refused_input(_bare_request(signal, now), settings, reasons.STALE_MARKET_DATA,
                                     f"no quote for {position.key}")
            return await self._store(decision, source, now, signal)
        problem = eng.quotes.problem(position.key)
        request = replace(eng.sizing_request(signal, price, quote, now,
                                             liquidity_ok=check_quote(quote, settings.liquidity, now).ok),
                          underlying_blocked=signal.underlying in eng.blocked, vix_usable=self._vix_usable(),
                          market_data_problem=None if problem is None else problem.describe(position.key))
        view = OpenPositionView(position.underlying, position.open_qty, position.record.entry_price)
        sessions = eng.sessions_since(position.record.entry_time, now)
        decision = evaluate_scale_in(ScaleInRequest(request, view, position_mark=position.mark,
                                                    sessions_since_entry=sessions), settings)
        intake = await self._store(decision, source, now, signal)
        return Intake(intake.outcome, signal, decision, None, position)

    # ------------------------------------------------------------------ records

    async def _store(self, decision: Decision, source: str, now: datetime, signal: Signal | None,
                     selection: Selection | None = None, note: dict[str, str] | None = None) -> Intake:
        eng = self.engine
        record = decision.to_record()
        record["source"] = source
        if note:
            record.update(note)
        if selection is not None:
            record["selection"] = {"contract": None if selection.contract is None else selection.contract.key,
                                   "reason": selection.reason, "detail": selection.detail,
                                   "tried": selection.reasons}
            if selection.quote is not None:
                record["selection"]["quote"] = _quote_record(selection.quote)
        decision_id = eng.next_decision_id()
        eng.journal.append(
            "record_decision", signal_id=decision.signal_id if signal is not None else None, at=now,
            accepted=decision.accepted, reason=decision.reason, contracts=decision.contracts,
            notional=decision.notional, multiplier=decision.multiplier, breakdown=copy.deepcopy(record),
            decision_id=decision_id)
        record["decision_id"] = decision_id
        outcome = SignalOutcome(accepted=decision.accepted, reason=decision.reason,
                                http_status=HTTP_ACCEPTED if decision.accepted else HTTP_REFUSED,
                                decision=record, message=decision.message or None)
        eng.log_decision(decision, signal, selection)
        return Intake(outcome, signal, decision, selection)

    async def _invalid(self, sid: str | None, raw: Any, source: str, now: datetime, code: str,
                       message: str) -> Intake:
        eng = self.engine
        record = {"accepted": False, "reason": code, "message": message, "profile": eng.settings.profile.name,
                  "signal_id": sid, "source": source, "raw": json_safe(raw)}
        decision_id = eng.next_decision_id()
        eng.journal.append("record_decision", signal_id=sid, at=now, accepted=False, reason=code, contracts=0,
                           notional=Decimal(0), multiplier=Decimal(0), breakdown=copy.deepcopy(record),
                           decision_id=decision_id)
        record["decision_id"] = decision_id
        eng.log.info("decision", accepted=False, reason=code, signal_id=sid, message=message)
        eng.observe_decision(False, code)
        return Intake(SignalOutcome(False, code, HTTP_REFUSED, record, message))

    async def _duplicate(self, sid: str, raw: Any, source: str, now: datetime) -> Intake:
        """Answered with the first decision; stored as a refusal of its own, not tied to the signal row,
        so the first signal keeps its status."""
        eng = self.engine
        try:
            first = await eng.store.first_decision(sid)
        except Exception as exc:  # noqa: BLE001 - the store cannot be read: answered without the first decision
            eng.log.warning("first_decision_unreadable", code="store_unavailable", signal_id=sid, error=repr(exc))
            first = None
        message = f"signal {sid} was already received"
        record = {"accepted": False, "reason": reasons.DUPLICATE_SIGNAL, "message": message, "signal_id": sid,
                  "duplicate_of": sid, "source": source, "raw": json_safe(raw),
                  "first_decision": None if first is None else first.breakdown}
        eng.journal.append("record_decision", signal_id=None, at=now, accepted=False, reason=reasons.DUPLICATE_SIGNAL,
                           contracts=0, notional=Decimal(0), multiplier=Decimal(0), breakdown=copy.deepcopy(record),
                           decision_id=eng.next_decision_id())
        eng.log.info("decision", accepted=False, reason=reasons.DUPLICATE_SIGNAL, signal_id=sid)
        eng.observe_decision(False, reasons.DUPLICATE_SIGNAL)
        return Intake(SignalOutcome(False, reasons.DUPLICATE_SIGNAL, HTTP_DUPLICATE, record, message))


def _first_priced(selection: Selection) -> Quote | None:
    """When no strike passes, the nearest one with a price: the sizer still shows its whole breakdown
    with `liquidity` as the reason."""
    for candidate in selection.tried:
        if candidate.quote is not None and candidate.quote.mid is not None and candidate.quote.mid > 0:
            return candidate.quote
    return None


COMBO_NEEDS_CORE = "combo_needs_core"


def _bare_request(signal: Signal, now: datetime) -> SizingRequest:
    return SizingRequest(signal=signal, price=Decimal(0), capital_base=Decimal(0), now=now)


def _quote_record(quote: Quote) -> dict[str, Any]:
    return {"bid": None if quote.bid is None else str(quote.bid), "ask": None if quote.ask is None else str(quote.ask),
            "mid": None if quote.mid is None else str(quote.mid), "at": quote.received_at.isoformat(),
            "modelled": quote.modelled}


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None
