"""The reference signal source: a DEMONSTRATION, not a trading edge (`--signals reference`).

It exists so that the embedded default run (`make run`) exercises the whole daemon on real
recorded prices: an opening-range breakout on the underlying's 1-minute bars. The opening
range is the high and low of the first `opening_range_minutes` of the session. A bar that
closes outside it starts a breakout; if the close `confirm_bars` later is still outside, a
signal in that direction is given (one per direction per underlying per session). A
breakout that falls back inside is dropped and the rule waits for the next one.
Confidence is made of:

- strength: how far the confirming close is beyond the range, in range widths, and
- participation: the mean volume over the breakout against the median volume of the
  opening range's bars.

confidence = base + strength_weight × min(1, strength / strength_full)
             + volume_weight × clamp(ratio − volume_floor, 0, 1),
rounded to 2 decimals. Weak breakouts land below the gate's threshold and strong ones in
the top tier, so every confidence tier of SPEC §2.2 is exercised on the bundled week.
Nothing here predicts anything; the logs and the docs say so.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import date, time
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from daemon.bars import Bar

SOURCE = "reference"


@dataclass(frozen=True, slots=True)
class ReferenceRule:
    opening_range_minutes: int = 15
    confirm_bars: int = 5
    last_signal_at: time = time(15, 0)  # no breakout signals this late in the session
    base: Decimal = Decimal("0.55")
    strength_weight: Decimal = Decimal("0.35")
    strength_full: Decimal = Decimal("0.4")  # range widths beyond the edge that count fully
    volume_weight: Decimal = Decimal("0.1")
    volume_floor: Decimal = Decimal("0.5")


@dataclass(slots=True)
class _Breakout:
    direction: str
    bars: list[Bar]


@dataclass(slots=True)
class _Session:
    day: date
    open_bars: list[Bar] = field(default_factory=list)
    range_high: Decimal | None = None
    range_low: Decimal | None = None
    median_volume: Decimal = Decimal(0)
    pending: _Breakout | None = None
    fired: set[str] = field(default_factory=set)


class OpeningRangeBreakout:
    """Feed it every bar of the profile's underlyings in time order; it answers raw signals."""

    def __init__(self, profile: str, underlyings: tuple[str, ...] | list[str], rule: ReferenceRule | None = None):
        self.profile = profile
        self.underlyings = frozenset(underlyings)
        self.rule = rule or ReferenceRule()
        self._sessions: dict[str, _Session] = {}
        self.emitted = 0

    def on_bar(self, bar: Bar) -> dict[str, Any] | None:
        if bar.symbol not in self.underlyings:
            return None
        day = bar.end.date()
        session = self._sessions.get(bar.symbol)
        if session is None or session.day != day:
            session = self._sessions[bar.symbol] = _Session(day)
        if session.range_high is None:
            self._build_range(session, bar)
            return None
        return self._breakout(session, bar)

    def _build_range(self, session: _Session, bar: Bar) -> None:
        session.open_bars.append(bar)
        first = session.open_bars[0]
        if (bar.end - first.start).total_seconds() < self.rule.opening_range_minutes * 60:
            return
        session.range_high = max(b.high for b in session.open_bars)
        session.range_low = min(b.low for b in session.open_bars)
        # The median, because a session's first print often carries the whole opening auction.
        session.median_volume = Decimal(statistics.median(b.volume for b in session.open_bars))

    def _breakout(self, session: _Session, bar: Bar) -> dict[str, Any] | None:
        if bar.end.time() > self.rule.last_signal_at:
            return None
        beyond = self._beyond(session, bar)
        if session.pending is None:
            if beyond is not None and beyond[0] not in session.fired:
                session.pending = _Breakout(beyond[0], [bar])
            return None
        pending = session.pending
        pending.bars.append(bar)
        if beyond is None or beyond[0] != pending.direction:
            session.pending = None  # fell back inside: a failed breakout
            return None
        if len(pending.bars) <= self.rule.confirm_bars:
            return None
        session.pending = None
        session.fired.add(pending.direction)
        self.emitted += 1
        assert session.range_high is not None and session.range_low is not None
        strength = beyond[1] / (session.range_high - session.range_low)
        mean_volume = Decimal(sum(b.volume for b in pending.bars)) / len(pending.bars)
        ratio = mean_volume / session.median_volume if session.median_volume > 0 else Decimal(1)
        return {
            "id": f"ref-{bar.symbol}-{bar.end:%Y%m%d-%H%M}-{pending.direction}",
            "profile": self.profile,
            "underlying": bar.symbol,
            "direction": pending.direction,
            "strategy": "directional",
            "confidence": float(self._confidence(strength, ratio)),
            "created_at": bar.end.isoformat(),
        }

    @staticmethod
    def _beyond(session: _Session, bar: Bar) -> tuple[str, Decimal] | None:
        assert session.range_high is not None and session.range_low is not None
        if session.range_high <= session.range_low:
            return None
        if bar.close > session.range_high:
            return "bullish", bar.close - session.range_high
        if bar.close < session.range_low:
            return "bearish", session.range_low - bar.close
        return None

    def _confidence(self, strength: Decimal, volume_ratio: Decimal) -> Decimal:
        rule = self.rule
        participation = min(Decimal(1), max(Decimal(0), volume_ratio - rule.volume_floor))
        raw = (rule.base + rule.strength_weight * min(Decimal(1), strength / rule.strength_full)
               + rule.volume_weight * participation)
        return min(Decimal(1), max(Decimal(0), raw)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
