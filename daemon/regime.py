"""The shell side of SPEC §10: it looks the event calendar up, keeps the VIX history, builds each
underlying's volatility surface at the checkpoints, and hands `risk/` and `exits/` plain values.

Nothing here decides: the caps, the blackout, the regime and the limits are decided in `risk/`
and `exits/` from the values this desk gathers (the pure-core rule of issue 14).
"""

from __future__ import annotations

import json
from collections import deque
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from broker.surface import Surface, build_surface, option_greeks
from daemon.events_calendar import EMPTY, CalendarError, EventCalendar, load_calendar, refreshed
from market.session import EXCHANGE_TZ
from market.combo import is_combo_key, parse_combo_key
from market.types import OptionContract, Quote
from risk.events import NO_EVENTS, EventView
from risk.regime import RegimeResult, VolatilityView, classify, history_percentile, is_inverted

# Its host (the engine, or the core's RegimeHost) is typed loosely: no import cycle.
Engine = Any

VIX_HISTORY_KEY = "regime.vix_history"
SURFACE_KEY = "regime.surfaces"  # the last checkpoint's surfaces and each underlying's skew history
ZERO = Decimal(0)


def _dec(value: float | None, places: int = 6) -> Decimal | None:
    return None if value is None else Decimal(repr(round(value, places)))


class RegimeDesk:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.cfg = engine.settings.regime
        self.calendar: EventCalendar = EMPTY
        self.calendar_error: str | None = None
        if self.cfg.events.enabled:
            try:
                self.calendar = load_calendar(self.cfg.events)
            except CalendarError as exc:  # no calendar is a loud warning, not a dead daemon
                self.calendar_error = exc.code
                engine.log.error("calendar_unavailable", code=exc.code, message=exc.message)
        history = self.cfg.volatility.history_sessions
        self.vix_history: deque[tuple[date, Decimal]] = deque(maxlen=history)
        self.surfaces: dict[str, Surface] = {}
        # one put-skew value (−RR25, the session's last) per session and underlying
        self.skew_history: dict[str, deque[tuple[date, Decimal]]] = {}
        self.inverted: set[str] = set()
        self.last_regime: RegimeResult | None = None

    # ------------------------------------------------------------------ calendar

    async def refresh_calendar(self) -> None:
        """The operator's source merged over the loaded calendar; on failure the old one stays."""
        try:
            self.calendar = await refreshed(self.calendar, self.cfg.events)
            self.calendar_error = None
        except CalendarError as exc:
            self.calendar_error = exc.code
            self.engine.log.warning("calendar_refresh_failed", code=exc.code, message=exc.message)

    def events_for(self, underlying: str, option_key: str | None, now: datetime) -> EventView:
        if not self.cfg.events.enabled:
            return NO_EVENTS
        expiry = None
        if option_key is not None and is_combo_key(option_key):
            expiry = max(leg.contract.expiry for leg in parse_combo_key(option_key))  # SPEC §9: its legs'
        elif option_key is not None and " " in option_key:
            expiry = OptionContract.from_key(option_key).expiry
        return self.calendar.view(now, underlying, expiry)

    def exit_events(self, underlying: str, now: datetime) -> dict[str, Any]:
        """The MarketSnapshot fields of SPEC §10.1 for one position."""
        if not self.cfg.events.enabled:
            return {}
        today = now.astimezone(EXCHANGE_TZ).date()
        return {"earnings_date": self.calendar.next_earnings(underlying, today),
                "macro_events": self.calendar.macro_labels(today, self.cfg.events.macro_kinds)}

    # ------------------------------------------------------------------ VIX history

    async def load(self) -> None:
        """The VIX and skew histories cached in the store (a restart keeps its percentiles)."""
        store, maxlen = self.engine.store, self.cfg.volatility.history_sessions
        raw = await store.get_meta(VIX_HISTORY_KEY)
        try:
            rows = [(date.fromisoformat(d), Decimal(v)) for d, v in json.loads(raw)] if raw else []
            saved = json.loads(await store.get_meta(SURFACE_KEY) or "{}")
            skews = {u: deque(((date.fromisoformat(d), Decimal(v)) for d, v in values), maxlen=maxlen)
                     for u, values in dict(saved.get("skew_history", {})).items()}
        except (ValueError, TypeError, ArithmeticError, AttributeError) as exc:
            self.engine.log.warning("regime_history_unreadable", code="regime_history_unreadable", error=str(exc))
            return
        self.vix_history.extend(sorted(rows)[-maxlen:])
        self.skew_history.update(skews)

    def set_vix_history(self, closes: list[tuple[date, Decimal]]) -> None:
        """Replay: the replay's own daily VIX closes before the session."""
        self.vix_history.clear()
        self.vix_history.extend(closes)

    async def record_vix_close(self, day: date, close: Decimal | None) -> None:
        """Live: the last VIX of a finished session joins the history, cached in the store."""
        if close is None or close <= 0 or (self.vix_history and self.vix_history[-1][0] >= day):
            return
        self.vix_history.append((day, close))
        self.engine.journal.append("set_meta", key=VIX_HISTORY_KEY, value=json.dumps(  # through the journal (§6.2)
            [[d.isoformat(), str(v)] for d, v in self.vix_history]))

    async def seed_vix_history(self, broker: Any, today: date) -> bool:
        """Live: VIX's daily closes from the broker's historical data (IB `reqHistoricalData`), merged
        into the history and cached in the store, so a fresh daemon knows VIX's percentile on its first
        day instead of after `min_history` sessions. Asked before each open only while the history is
        short or lacks the previous session; a broker without history, or a refusal, leaves it as it
        is (logged): the percentile is then unknown, which is no evidence either way. True when merged."""
        from broker.base import BrokerError

        cfg = self.cfg.volatility
        ask = getattr(broker, "daily_closes", None)
        if not cfg.enabled or ask is None:
            return False
        known = [d for d, _ in self.vix_history if d < today]
        weekdays = 0 if not known else sum(
            1 for n in range(1, (today - max(known)).days + 1) if date.fromordinal(max(known).toordinal() + n).weekday() < 5)
        if len(self.vix_history) >= cfg.history_sessions and known and weekdays <= 1:
            return False
        symbol = self.engine.settings.profile.vix_symbol
        try:
            bars = await ask(symbol, cfg.history_sessions)
        except BrokerError as exc:
            self.engine.log.warning("vix_history_unavailable", symbol=symbol, code=exc.code, error=str(exc))
            return False
        merged = dict(self.vix_history)
        merged.update((d, Decimal(v)) for d, v in bars if d < today and Decimal(v) > 0)
        self.vix_history.clear()
        self.vix_history.extend(sorted(merged.items())[-cfg.history_sessions:])
        self.engine.journal.append("set_meta", key=VIX_HISTORY_KEY, value=json.dumps(
            [[d.isoformat(), str(v)] for d, v in self.vix_history]))
        self.engine.log.info("vix_history_seeded", symbol=symbol, sessions=len(self.vix_history),
                             last=self.vix_history[-1][0].isoformat() if self.vix_history else None)
        return True

    # ------------------------------------------------------------------ surface and regime

    def volatility_for(self, underlying: str, vix: Decimal | None) -> VolatilityView:
        cfg = self.cfg.volatility
        pct = None if vix is None else history_percentile(vix, [v for _, v in self.vix_history], cfg)
        surface = self.surfaces.get(underlying)
        slope = None if surface is None else _dec(surface.term_slope)
        skew = None
        rr = None if surface is None else _dec(surface.risk_reversal_25d)
        if surface is not None and rr is not None:
            # put skew = −risk reversal: the dearer the puts, the higher its percentile among past sessions
            today = surface.at.astimezone(EXCHANGE_TZ).date()
            past = [v for d, v in self.skew_history.get(underlying, ()) if d < today]
            skew = history_percentile(-rr, past, cfg)
        return VolatilityView(vix_percentile=pct, term_slope=slope, skew_percentile=skew)

    def build_surfaces(self, now: datetime) -> dict[str, Surface]:
        eng = self.engine
        rate = float(eng.settings.broker.sim.model.risk_free_rate)
        by_underlying: dict[str, list[tuple[OptionContract, Quote]]] = {}
        for key in eng.quotes.keys():
            if " " not in key:
                continue
            quote = eng.quotes.get(key)
            if quote is None or not quote.usable:
                continue
            try:
                contract = OptionContract.from_key(key)
            except ValueError:
                continue
            by_underlying.setdefault(contract.underlying, []).append((contract, quote))
        surfaces: dict[str, Surface] = {}
        for underlying, quotes in by_underlying.items():
            spot = eng.quotes.get(underlying)
            if spot is None or spot.mid is None or spot.mid <= 0:
                continue
            surfaces[underlying] = build_surface(underlying, quotes, spot.mid, now, rate)
        return surfaces

    async def checkpoint(self, now: datetime) -> None:
        """SPEC §10.2 at each checkpoint: surfaces, skew history, the regime; an inversion is told once."""
        eng = self.engine
        self.surfaces = self.build_surfaces(now)
        cfg = self.cfg.volatility
        for underlying, surface in self.surfaces.items():
            rr = _dec(surface.risk_reversal_25d)
            if rr is not None:
                history = self.skew_history.setdefault(underlying, deque(maxlen=cfg.history_sessions))
                today = now.astimezone(EXCHANGE_TZ).date()
                if history and history[-1][0] == today:
                    history.pop()  # the session's value is its latest
                history.append((today, -rr))
            inverted = is_inverted(_dec(surface.term_slope), cfg)
            if inverted and underlying not in self.inverted:
                eng.log.warning("term_structure_inverted", underlying=underlying, term_slope=surface.term_slope,
                                front=surface.front.expiry.isoformat() if surface.front else None,
                                next=surface.next.expiry.isoformat() if surface.next else None)
                self._tell_inversion(underlying, surface, now)
            elif not inverted and underlying in self.inverted:
                eng.log.info("term_structure_normal", underlying=underlying, term_slope=surface.term_slope)
            (self.inverted.add if inverted else self.inverted.discard)(underlying)
        vix_quote = eng.quotes.get(eng.settings.profile.vix_symbol)
        vix = None if vix_quote is None else vix_quote.mid
        # the market-wide regime for the operator: VIX level and percentile, and the most inverted
        # term structure held (each signal's own regime reads its underlying's surface instead)
        market = self.volatility_for("", vix)
        slopes = [s for s in (_dec(x.term_slope) for x in self.surfaces.values()) if s is not None]
        self.last_regime = classify(vix, VolatilityView(market.vix_percentile, min(slopes, default=None)), cfg)
        if eng.metrics is not None:
            eng.metrics.set_volatility(self.surfaces, self.inverted, self.last_regime.name, market.vix_percentile)
        eng.journal.append("set_meta", key=SURFACE_KEY, value=json.dumps({  # through the journal (SPEC §6.2)
            "at": now.isoformat(), "surfaces": {u: s.to_record() for u, s in sorted(self.surfaces.items())},
            "skew_history": {u: [[d.isoformat(), str(v)] for d, v in h] for u, h in sorted(self.skew_history.items())}}))

    def _tell_inversion(self, underlying: str, surface: Surface, now: datetime) -> None:
        """SPEC §10.2's alert as a notification, once per inversion (the set `inverted` remembers it
        until the slope turns back). The core's host turns it into a `Notify` effect; a host without
        `notify` (the old engine) sends it itself."""
        tell = getattr(self.engine, "notify", None)
        if tell is None:
            from daemon import notifications

            tell = notifications.notify
        front, nxt = surface.front, surface.next

        def iv(e: Any) -> str:
            return "?" if e is None or e.atm_iv is None else f"{e.atm_iv * 100:.1f}%"

        cap = self.cfg.volatility.caps.get("stressed")
        tell("vol_term_inversion",
             f"{underlying} volatility term structure inverted at {now.astimezone(EXCHANGE_TZ):%Y-%m-%d %H:%M} ET: "
             f"front {front.expiry.isoformat() if front else '?'} ATM IV {iv(front)} above next "
             f"{nxt.expiry.isoformat() if nxt else '?'} ATM IV {iv(nxt)}; regime stressed"
             + ("" if cap is None else f", multiplier capped at {cap}"))

    # ------------------------------------------------------------------ vega and theta

    def option_vega_theta(self, option_key: str, now: datetime) -> tuple[Decimal | None, Decimal | None]:
        if is_combo_key(option_key):  # SPEC §9: a combo's greeks are its legs' combined (side x ratio)
            vega: Decimal | None = ZERO
            theta: Decimal | None = ZERO
            for leg in parse_combo_key(option_key):
                v, t = self.option_vega_theta(leg.contract.key, now)
                sign = leg.ratio if leg.side == "BUY" else -leg.ratio
                vega = None if v is None or vega is None else vega + sign * v
                theta = None if t is None or theta is None else theta + sign * t
            return vega, theta
        eng = self.engine
        try:
            contract = OptionContract.from_key(option_key)
        except ValueError:
            return None, None
        spot = eng.quotes.get(contract.underlying)
        model = eng.settings.broker.sim.model
        found = option_greeks(contract, eng.quotes.get(option_key), None if spot is None else spot.mid, now,
                              float(model.risk_free_rate), float(model.min_time_to_expiry_s))
        return (None, None) if found is None else found

    def portfolio_vega_theta(self, now: datetime) -> tuple[Decimal | None, Decimal | None]:
        """Σ greek × multiplier × open contracts; None for a greek some held position has no IV for
        (an unknown greek is not zero: the gate refuses, "greeks unavailable")."""
        vega: Decimal | None = ZERO
        theta: Decimal | None = ZERO
        for p in self.engine.book.held():
            v, t = self.option_vega_theta(p.key, now)
            vega = None if v is None or vega is None else vega + v * p.multiplier * p.open_qty
            theta = None if t is None or theta is None else theta + t * p.multiplier * p.open_qty
        return vega, theta

    def request_fields(self, underlying: str, quote: Quote | None, now: datetime,
                       vix: Decimal | None) -> dict[str, Any]:
        """The SizingRequest fields of SPEC §10 for one signal."""
        key = None if quote is None else quote.key
        vega, theta = (None, None) if key is None else self.option_vega_theta(key, now)
        book_vega, book_theta = self.portfolio_vega_theta(now)
        return {"events": self.events_for(underlying, key, now),
                "volatility": self.volatility_for(underlying, vix) if self.cfg.volatility.enabled else None,
                "option_vega": vega, "option_theta": theta,
                "portfolio_vega": book_vega, "portfolio_theta": book_theta}

    # ------------------------------------------------------------------ status

    def status(self, now: datetime) -> dict[str, Any]:
        today = now.astimezone(EXCHANGE_TZ).date()
        vega, theta = self.portfolio_vega_theta(now)
        return {
            "calendar": {**self.calendar.summary(), "error": self.calendar_error,
                         "today": list(self.calendar.macro_labels(today, self.cfg.events.macro_kinds)),
                         "next_earnings": {u: (d.isoformat() if (d := self.calendar.next_earnings(u, today)) else None)
                                           for u in self.engine.settings.profile.underlyings}},
            "volatility_regime": None if self.last_regime is None else {
                "name": self.last_regime.name, "why": list(self.last_regime.why),
                "cap": None if self.last_regime.cap is None else str(self.last_regime.cap)},
            "vix_history_sessions": len(self.vix_history),
            "surfaces": {u: s.to_record() for u, s in sorted(self.surfaces.items())},
            "term_structure_inverted": sorted(self.inverted),
            "vega": None if vega is None else str(vega), "theta": None if theta is None else str(theta),
        }
