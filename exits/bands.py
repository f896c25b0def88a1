"""Price bands: where one position's exit policy is certain to do nothing, as floats (SPEC §6.4 speed).

`price_band` asks the exact Decimal policy (`exits.policy.evaluate`) itself: from the current
premium it bisects down to the highest price and up to the lowest price at which the policy
would act or change the exit state, and keeps a quiet point on each side. Every rule's trigger
is monotone in the premium (a stop or loss level fires at or below its price, a take-profit at
or above, the 7dte peak moves above the peak), so every premium strictly between the two quiet
points is quiet too. The band also holds only:
- until the next moment a time rule or a time-scaled target can change (the close-out, the
  expiry-day close, each time-compression step, the held-too-long step, the close, midnight);
- while VIX stays on the same side of the 0dte tier scaling's thresholds;
- inside regular hours (outside them the overnight rules look at the underlying).
Outside the band the caller evaluates exactly, so a rule never fires late; inside it skips a
Decimal evaluation that could not have fired. Recomputed when the state, the position or
the session changes, or when the band runs out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from decimal import Decimal

from config.models import Settings
from exits import policy
from exits.closeout import expiry_close_at, zero_dte_closeout_at
from exits.errors import ExitInputError
from exits.market import MarketSnapshot
from exits.position import ExitPosition
from exits.state import ExitState
from market.session import EXCHANGE_TZ

# `quiet` below builds its probe snapshot field by field: a field added to MarketSnapshot must be added there
assert tuple(f.name for f in fields(MarketSnapshot)) == (
    "option_price", "session", "underlying_price", "vix", "earnings_date", "previous_underlying_close",
    "macro_events"), "exits.bands.price_band copies MarketSnapshot field by field"

PRECISION = 1e-4  # bisection stops when the unknown gap is this share of the premium ...
NEAR = 1 / 32  # ... or this share of the quiet point's distance from the premium, when that is more


@dataclass(frozen=True, slots=True)
class PriceBand:
    lo: float  # premiums strictly above lo ...
    hi: float  # ... and strictly below hi are quiet
    until: datetime  # ... before this moment
    vix_lo: float  # ... with VIX in [vix_lo, vix_hi] (nan: VIX unknown, and must stay unknown)
    vix_hi: float
    at: Decimal | None = None  # the premium it was computed at (quiet itself: at a 7dte peak it is the edge)
    at_f: float = math.nan

    def holds(self, price: float, now: datetime, vix: float | None, exact: Decimal | None = None) -> bool:
        """`exact`: the premium as a Decimal, compared only when `price` is the band's own premium."""
        if not (self.lo < price < self.hi) and not (price == self.at_f and exact == self.at):
            return False
        if now >= self.until:
            return False
        if vix is None:
            return math.isnan(self.vix_lo)
        return self.vix_lo <= vix <= self.vix_hi


def price_band(position: ExitPosition, state: ExitState, market: MarketSnapshot, now: datetime,
               settings: Settings, hint: PriceBand | None = None) -> PriceBand | None:
    """The band around the current premium, or None when there is no quiet band (evaluate exactly).

    `hint`: the position's previous band; its edges are tried first (a new 7dte peak moves only the
    top: the bottom is still quiet, and a quiet point on each side is all the band needs)."""
    session = market.session
    price = market.option_price
    if price is None or price <= 0 or session is None or not session.contains(now) or state.stop_price is None:
        return None

    def quiet(p: float) -> bool:
        # `replace(market, option_price=...)` field for field, without dataclasses.replace's introspection
        probe = MarketSnapshot(Decimal(repr(p)), market.session, market.underlying_price, market.vix,
                               market.earnings_date, market.previous_underlying_close, market.macro_events)
        try:
            actions, after = policy.evaluate(position, state, probe, now, settings)
        except ExitInputError:
            return False
        return not actions and after == state

    current = float(price)
    # The previous band's edges first. Both quiet: every premium between them is quiet (monotone triggers),
    # the current one too, and the band is theirs. An edge on its side of the premium that acts now (a
    # time-scaled target came down, a level moved up) brackets the new boundary: the bisection starts there.
    lo_hint = hint.lo if hint is not None and 0 < hint.lo < current else None
    hi_hint = hint.hi if hint is not None and current < hint.hi < math.inf else None
    lo_quiet = lo_hint is not None and quiet(lo_hint)
    hi_quiet = hi_hint is not None and quiet(hi_hint)
    if not (lo_quiet and hi_quiet) and not quiet(current):
        return None
    lo = _side(quiet, current, lo_hint, lo_quiet, DOWN)
    hi = _side(quiet, current, hi_hint, hi_quiet, UP)
    vix_lo, vix_hi = _vix_range(market.vix, settings)
    return PriceBand(lo, hi, _until(position, now, session, settings), vix_lo, vix_hi, price, current)


NO_PRICE = 0.0  # the core's float premium of a quote without a mid (the exact snapshot's premium is None)


def idle_band(position: ExitPosition, state: ExitState, market: MarketSnapshot, now: datetime,
              settings: Settings, mark: Decimal | None) -> PriceBand | None:
    """The band of a position whose option has no premium (a 0dte option bid at 0 has no mid), or None.

    Without a premium only the time rules can act, and they change only at the moments `_until`
    lists, so a quiet exact evaluation now stays quiet until then while the premium stays absent
    (the float premium is NO_PRICE and the position's exact mark is still `mark`) and VIX stays in
    range. Inside regular hours only, as `price_band` (outside them the overnight rules look at the
    underlying). A quote with a premium falls outside it (lo and hi are NaN) and is evaluated exactly."""
    session = market.session
    if market.option_price is not None or session is None or not session.contains(now) or state.stop_price is None:
        return None
    try:
        actions, after = policy.evaluate(position, state, market, now, settings)
    except ExitInputError:
        return None
    if actions or after != state:
        return None
    vix_lo, vix_hi = _vix_range(market.vix, settings)
    return PriceBand(math.nan, math.nan, _until(position, now, session, settings), vix_lo, vix_hi, mark, NO_PRICE)


# Bracketing steps away from the current premium (as factors), nearest first: most boundaries are near
# (a new 7dte peak is one cent away), so a few probes bracket them and a short bisection finishes.
UP = (1 + PRECISION / 2, 1.01, 1.05, 1.2, 1.5, 2.0, 4.0, 16.0, 256.0)
DOWN = (1 - PRECISION / 2, 0.99, 0.95, 0.8, 0.5, 0.25, 1e-2, 1e-6)


def _side(quiet, current: float, hint: float | None, hint_quiet: bool, steps: tuple[float, ...]) -> float:  # type: ignore[no-untyped-def]
    """The band's edge on one side: the previous edge where it is still quiet; where it acts now, the
    boundary bisected between it and the premium; with no previous edge, bracketed by `steps` first."""
    if hint_quiet:
        assert hint is not None
        return hint
    if hint is not None:
        return _bisect(quiet, hint, current, current)
    return _edge(quiet, current, steps)


def _edge(quiet, current: float, steps: tuple[float, ...]) -> float:  # type: ignore[no-untyped-def]
    """The quiet point nearest the first premium (in the direction of `steps`) at which the policy acts;
    the farthest step when none does (down: a millionth of the premium, the lowest premium probed; a
    positive edge is also one the next band can take as its hint)."""
    good = current
    for factor in steps:
        probe = current * factor
        if not quiet(probe):
            return good if good == current and abs(probe - current) <= current * PRECISION else _bisect(
                quiet, probe, good, current)
        good = probe
    return good


def _bisect(quiet, bad: float, good: float, scale: float) -> float:  # type: ignore[no-untyped-def]
    """A quiet point next to the boundary between `bad` (acts) and `good` (quiet): within PRECISION of
    `scale` (the premium) of it, or within NEAR of its distance from the premium when that is more (a
    boundary 15 % away is left at 0.5 % rather than at 0.01 %: the premium reaches that gap seldom, and a
    quote in it is evaluated exactly and banded again; the probes saved are taken on every band)."""
    while abs(good - bad) > max(scale * PRECISION, abs(good - scale) * NEAR):
        mid = (bad + good) / 2
        if quiet(mid):
            good = mid
        else:
            bad = mid
    return good


def _vix_range(vix: Decimal | None, settings: Settings) -> tuple[float, float]:
    if vix is None:
        return math.nan, math.nan
    zero = settings.exits.zero_dte
    if zero is None:
        return -math.inf, math.inf
    low, high = float(zero.vix_low), float(zero.vix_high)
    v = float(vix)
    # the scale steps at vix < low and vix > high; one ulp inside keeps the float test conservative
    if vix < zero.vix_low:
        return -math.inf, math.nextafter(low, -math.inf)
    if vix > zero.vix_high:
        return math.nextafter(high, math.inf), math.inf
    return (low, high) if low <= v <= high else (v, v)


def _until(position: ExitPosition, now: datetime, session, settings: Settings) -> datetime:  # type: ignore[no-untyped-def]
    """The next moment a time rule or a time-scaled target may change."""
    moments = [session.close, datetime.combine(now.astimezone(EXCHANGE_TZ).date() + timedelta(days=1),
                                               datetime.min.time(), tzinfo=EXCHANGE_TZ)]
    zero, seven = settings.exits.zero_dte, settings.exits.seven_dte
    if zero is not None:
        moments.append(zero_dte_closeout_at(session, zero))
        moments.extend(session.close - timedelta(hours=float(b.below_hours)) for b in zero.time_compression)
        moments.append(position.entry_time + timedelta(hours=float(zero.held_over_hours)))
    if seven is not None:
        moments.append(expiry_close_at(session, seven))
    later = [m - timedelta(milliseconds=1) for m in moments if m - timedelta(milliseconds=1) > now]
    return min(later) if later else now
