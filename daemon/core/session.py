"""The session the core trades in: its day, VIX's session open, the previous closes, correlations.

- VIX's session open is its first print at or after the regular open of the current session
  (SPEC §3's spike rule compares against it); a new session forgets the old one.
- The previous close of each underlying is its last price before the session rolled (the
  7dte overnight-gap rule, SPEC §5.3).
- Correlations are refreshed by the `correlation_refresh` timer from the daily closes known
  before that day (SPEC §2.4).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from config.models import Settings
from daemon.core.ports import DailyCloses, SessionLookup
from market.session import SessionTimes
from market.types import Quote
from risk.correlation import correlation_matrix


class SessionDesk:
    def __init__(self, settings: Settings, sessions: SessionLookup, daily_closes: DailyCloses | None = None):
        self.settings = settings
        self.sessions = sessions
        self.daily_closes = daily_closes
        self.day = None  # the session day the book measures from (None before the first)
        self.vix_open: Decimal | None = None
        self.previous_close: dict[str, Decimal] = {}
        self.last_underlying: dict[str, Quote] = {}  # the mid is taken when the session rolls, not per quote
        self.correlations: dict[str, dict[str, Decimal]] = {}

    def session(self, now: datetime) -> SessionTimes | None:
        return self.sessions(now.date())

    def roll(self, now: datetime) -> SessionTimes | None:
        """The session at `now` when it is new (the caller then starts the book's session), else None."""
        session = self.sessions(now.date())
        if session is None or self.day == session.day:
            return None
        self.day = session.day
        self.vix_open = None
        self.previous_close.update({k: q.mid for k, q in self.last_underlying.items() if q.mid is not None})
        return session

    def on_vix(self, quote: Quote) -> None:
        session = self.sessions(quote.received_at.date())
        if session is None or quote.received_at < session.open or session.day != self.day:
            return
        if self.vix_open is None and quote.mid is not None and quote.mid > 0:
            self.vix_open = quote.mid

    def on_underlying(self, quote: Quote) -> None:
        if quote.bid is not None or quote.last is not None:
            self.last_underlying[quote.key] = quote

    def refresh_correlations(self, at: datetime) -> dict[str, list[Decimal]]:
        """The matrix from the closes before `at`'s day; returns those closes (the option model wants them)."""
        if self.daily_closes is None:
            return {}
        closes = {k: list(v) for k, v in self.daily_closes(at.date()).items()}
        self.correlations = correlation_matrix(closes, self.settings.correlation.lookback_sessions)
        return closes
