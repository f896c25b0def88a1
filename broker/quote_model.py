"""OptionQuoteModel: keeps modelled quotes of the tracked option keys fresh in the QuoteBook.

Where no recorded option quote exists (replay on underlying bars, the embedded default), the
sim trades against these. On every tick of an underlying (or of VIX) the model reprices the
tracked options of that underlying from the book's underlying quote and VIX, and writes
`Quote(modelled=True)`. A recorded (non-modelled) quote in the book is never overwritten.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import Any

import structlog

from broker.listings import ListingError, session_close
from broker.pricing import Terms, atm_vol, model_quote, same_day_vol
from broker.quotes import QuoteBook
from market.types import OptionContract, Quote
from config.models import OptionModelConfig
from market import calendar
from market.clock import Clock

log = structlog.get_logger(__name__)


_VOLS_MAX = 20_000  # distinct (underlying, VIX, VIX1D, realized vol) inputs kept: a few thousand a week


def is_option_key(key: str) -> bool:
    return " " in key


class _Option:
    """A tracked option and what its quotes need of it, worked out once when it is tracked: the key its
    quotes carry, the strike as a float, its expiry's close; its last 6-place greeks and time-free terms
    (`Terms.quote`'s memos) and the last quote priced with the inputs it was priced from."""

    __slots__ = ("contract", "key", "strike", "expires_at", "greeks", "strike_terms", "inputs", "last")

    def __init__(self, contract: OptionContract, expires_at: datetime | None):
        self.contract = contract
        self.key = contract.key
        self.strike = float(contract.strike)
        self.expires_at = expires_at
        self.greeks: list[Any] = [None] * 6
        self.strike_terms: list[Any] = []  # `Terms.quote`'s memo of the terms that do not move with time
        self.inputs: tuple[float, float, float] | None = None  # (spot, vol, years) of `last`
        self.last: Quote | None = None  # the quote last priced (not copied) from `inputs`


class OptionQuoteModel:
    def __init__(self, book: QuoteBook, clock: Clock, cfg: OptionModelConfig, vix_key: str = "VIX",
                 multiplier: int = 100):
        self._book = book
        self._clock = clock
        self._cfg = cfg
        self._vix_key = vix_key
        self._multiplier = multiplier
        self._tracked: dict[str, dict[str, _Option]] = {}  # underlying -> key -> the option and its terms
        self._realized: dict[str, float] = {}
        self._closes: dict[date, datetime | None] = {}  # expiry -> its session's close
        self._terms: dict[datetime, Terms] = {}  # expiry's close -> the model's time terms at `_terms_at`
        self._terms_at: datetime | None = None
        self._day: date | None = None  # the day of `_session`, `calendar.session_for`'s answer
        self._session: Any = None
        self._detach: Callable[[], None] | None = None
        # Where set (the replay), each quote written is appended here instead of being told to the book's
        # listeners: the replay hands them on to the venue and the core itself, in this order.
        self.written: list[Quote] | None = None
        self._vix_seen: tuple[Quote | None, float | None] = (None, None)  # the last VIX quote read, its level
        # per underlying: the last quote read, its mid and the mid as a float when positive (VIX ticks
        # reprice every group from the same underlying quotes)
        self._spots: dict[str, tuple[Quote | None, Any, float | None]] = {}
        self._vols: dict[tuple[str, float | None, float | None, float | None], tuple[float | None, float | None]] = {}

    # ------------------------------------------------------------------ setup

    def attach(self) -> None:
        """Listen to the book: each underlying or VIX tick refreshes the options it prices."""
        if self._detach is None:
            self._detach = self._book.add_listener(self._on_quote)

    def detach(self) -> None:
        if self._detach is not None:
            self._detach()
            self._detach = None

    def track(self, keys: Iterable[str]) -> list[str]:
        """Start modelling these option keys (underlying symbols are ignored); returns the keys added."""
        added = []
        for key in keys:
            if not is_option_key(key):
                continue
            per = self._tracked.setdefault(key.split(" ", 1)[0], {})
            if key not in per:  # parsed only when new (a snapshot asks for a tracked key on every wait)
                contract = OptionContract.from_key(key, self._multiplier)
                per[key] = _Option(contract, self._expires_at(contract))
                added.append(key)
        return added

    def untrack(self, keys: Iterable[str]) -> None:
        for key in keys:
            if is_option_key(key):
                self._tracked.get(key.split(" ", 1)[0], {}).pop(key, None)

    def tracked(self) -> list[str]:
        return [k for per in self._tracked.values() for k in per]

    def set_realized_vol(self, underlying: str, vol: float | None) -> None:
        """Realized vol of the underlying's daily bars (see `pricing.realized_vol`); None forgets it."""
        if vol is None:
            self._realized.pop(underlying, None)
        else:
            self._realized[underlying] = vol

    # ------------------------------------------------------------------ pricing

    def quote_for(self, contract: OptionContract) -> Quote | None:
        """A modelled quote now, or None when the underlying price, the vol or the session is unknown."""
        now = self._clock.now()
        expires_at = self._expires_at(contract)
        if expires_at is None or now > expires_at:
            return None  # not a session, or expired: nothing trades
        session = calendar.session_for(now.date())  # a dictionary look-up
        if session is None or not session.open <= now <= session.close:
            return None  # listed options trade in regular hours only: no pre-market fills against a model
        under = self._book.get(contract.underlying)
        spot = None if under is None else under.mid
        if spot is None or spot <= 0:
            return None
        vix_quote = self._book.get(self._vix_key)
        vix_level = None if vix_quote is None or vix_quote.mid is None else float(vix_quote.mid)
        vol = atm_vol(contract.underlying, vix_level, self._cfg, self._realized.get(contract.underlying))
        if vol is None:
            return None
        if contract.expiry == now.date():
            vix1d_key = self._cfg.vix1d_symbol
            vix1d = None if vix1d_key is None else self._book.get(vix1d_key)
            vix1d_level = None if vix1d is None or vix1d.mid is None else float(vix1d.mid)
            vol = same_day_vol(vol, vix1d_level, self._cfg)
        return model_quote(contract, spot, vol, now, expires_at, under.received_at, self._cfg, usable=under.usable)

    def refresh(self, underlying: str | None = None) -> int:
        """Reprice the tracked options (of one underlying, or all); returns how many quotes were written.

        An option past its expiry is dropped from tracking: it never quotes again, and a replay of
        many 0DTE sessions would otherwise reprice every expired chain on every tick."""
        groups = [underlying] if underlying is not None else list(self._tracked)
        now = self._clock.now()
        written = 0
        # What `quote_for` works out per option, worked out once per refresh: the session, VIX (and
        # VIX1D), then per underlying its price and at-the-money vol. Same inputs, same quotes.
        today = now.date()
        if today != self._day:  # the session once per day (the calendar's answer for a day never changes)
            self._day, self._session = today, calendar.session_for(today)
        session = self._session
        trading = session is not None and session.open <= now <= session.close
        book, cfg = self._book, self._cfg
        vix_level = vix1d_level = None
        if trading:
            vix_quote = book.get(self._vix_key)
            if vix_quote is not self._vix_seen[0]:  # a new VIX print: its level once, not once per refresh
                mid = None if vix_quote is None else vix_quote.mid
                self._vix_seen = (vix_quote, None if mid is None else float(mid))
            vix_level = self._vix_seen[1]
            vix1d = None if cfg.vix1d_symbol is None else book.get(cfg.vix1d_symbol)
            vix1d_level = None if vix1d is None or vix1d.mid is None else float(vix1d.mid)
        if now != self._terms_at:  # the time terms of each expiry, once per moment (VIX and an underlying
            self._terms, self._terms_at = {}, now  # often tick at the same second)
        terms_at = self._terms
        out = self.written
        spots = self._spots
        for name in groups:
            per = self._tracked.get(name)
            if not per:
                continue
            under = book.get(name) if trading else None
            seen = spots.get(name)
            if seen is not None and seen[0] is under:  # the quote priced from last time (a VIX tick since)
                spot, s = seen[1], seen[2]
            else:
                spot = None if under is None else under.mid
                s = float(spot) if spot is not None and spot > 0 else None
                spots[name] = (under, spot, s)
            atm = same = None
            if s is not None:
                # both vols are pure functions of these inputs (and the fixed settings): kept per inputs
                inputs = (name, vix_level, vix1d_level, self._realized.get(name))
                vols = self._vols.get(inputs)
                if vols is None:
                    atm = atm_vol(name, vix_level, cfg, inputs[3])
                    vols = (atm, None if atm is None else same_day_vol(atm, vix1d_level, cfg))
                    if len(self._vols) >= _VOLS_MAX:
                        self._vols.clear()
                    self._vols[inputs] = vols
                atm, same = vols
            for key, option in list(per.items()):
                expires_at = option.expires_at
                if expires_at is not None and now > expires_at:
                    del per[key]
                    continue
                current = book.get(key)
                if current is not None and not current.modelled:
                    continue  # a recorded quote wins
                if atm is None or expires_at is None or under is None:
                    continue  # no session, no price or no vol: no quote (as `quote_for` answers None)
                contract = option.contract
                vol = same if contract.expiry == today else atm
                terms = terms_at.get(expires_at)
                if terms is None:
                    terms = terms_at[expires_at] = Terms(cfg, now, expires_at)
                inputs = (s, vol, terms.years)
                last = option.last
                if last is not None and option.inputs == inputs:
                    # the model is a pure function of these (the strike, expiry and settings are fixed): an
                    # underlying and VIX ticking at the same second price the option twice alike
                    quote = Quote(option.key, last.bid, last.ask, None, under.received_at, last.bid_size,
                                  last.ask_size, last.open_interest, last.delta, last.gamma, last.iv, True,
                                  under.usable)
                else:
                    quote = terms.quote(contract, spot, s, option.strike, vol, under.received_at,  # type: ignore[arg-type]
                                        under.usable, option.key, option.greeks, option.strike_terms)
                    option.inputs, option.last = inputs, quote
                if out is None:
                    if book.update(quote):
                        written += 1
                else:
                    stored = book.store(quote)
                    if stored is not None:
                        out.append(stored)
                        written += 1
        return written

    def _expires_at(self, contract: OptionContract) -> datetime | None:
        day = contract.expiry
        try:
            return self._closes[day]
        except KeyError:
            pass
        try:
            close = session_close(day)  # a dictionary look-up (market.calendar), kept per expiry
        except ListingError:
            close = None
        self._closes[day] = close
        return close

    def refresh_key(self, key: str) -> Quote | None:
        """Track `key` and write its modelled quote now (a snapshot); the book's quote after."""
        self.track([key])
        self.refresh(key.split(" ", 1)[0])
        return self._book.get(key)

    def _on_quote(self, quote: Quote) -> None:
        if is_option_key(quote.key):
            return
        if quote.key == self._vix_key:
            self.refresh()
        elif quote.key in self._tracked:
            self.refresh(quote.key)
