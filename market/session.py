"""One exchange session's hours, as a value the pure exit rules receive (never look up)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from market.errors import MarketValueError

# The exchange's own zone: entry-time bands, expiry days and close-outs are exchange-local.
EXCHANGE_TZ = ZoneInfo("America/New_York")


@dataclass(frozen=True, slots=True)
class SessionTimes:
    """Regular trading hours of one session; `early_close` marks a half day."""

    day: date
    open: datetime
    close: datetime
    early_close: bool = False

    def __post_init__(self) -> None:
        if self.open.tzinfo is None or self.close.tzinfo is None:
            raise MarketValueError("bad_session", "session open and close must be timezone-aware")
        if not self.open < self.close:
            raise MarketValueError("bad_session", f"session {self.day}: open {self.open} is not before close {self.close}")

    def contains(self, when: datetime) -> bool:
        """True inside regular hours: open inclusive, close exclusive."""
        return self.open <= when < self.close

    def at(self, clock: time) -> datetime:
        """`clock` on this session's day, exchange time."""
        return datetime.combine(self.day, clock, tzinfo=EXCHANGE_TZ)
