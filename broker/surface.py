"""The volatility surface from the option quotes the daemon holds (SPEC §10.2): pure maths.

Per expiry: the at-the-money implied vol, and the 25-delta risk reversal (IV of the 25-delta call
minus IV of the 25-delta put; negative when puts are dearer, as equity skew usually is). Across
expiries: the front/next term slope (next ATM IV minus front ATM IV; negative = inverted).

Each point's IV is the broker's model IV when the quote carries one (IB's), else solved from the
mid with the Black-Scholes model of `broker/pricing.py`. Only out-of-the-money options are used
(calls at or above the spot, puts below): they carry no early-exercise premium, so the European
model fits the American listings, and their quotes are the liquid side of the smile.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal

from broker.pricing import black_scholes, years_between
from market.session import EXCHANGE_TZ
from market.types import OptionContract, Quote

EXPIRY_TIME = time(16, 0)  # options stop trading at the regular close of their expiry day
MIN_VOL, MAX_VOL = 1e-4, 5.0
_TOLERANCE = 1e-7
RR_DELTA = 0.25


@dataclass(frozen=True, slots=True)
class SmilePoint:
    strike: float
    right: str
    iv: float
    delta: float
    source: str  # "model" (the broker's IV) | "solved" (from the mid)


@dataclass(frozen=True, slots=True)
class ExpiryVol:
    expiry: date
    years: float
    atm_iv: float | None
    risk_reversal_25d: float | None
    points: int


@dataclass(frozen=True, slots=True)
class Surface:
    underlying: str
    at: datetime
    spot: float
    expiries: tuple[ExpiryVol, ...]
    front: ExpiryVol | None
    next: ExpiryVol | None

    @property
    def term_slope(self) -> float | None:
        if self.front is None or self.next is None or self.front.atm_iv is None or self.next.atm_iv is None:
            return None
        return self.next.atm_iv - self.front.atm_iv

    @property
    def risk_reversal_25d(self) -> float | None:
        """The front expiry's: the skew the regime reads."""
        return None if self.front is None else self.front.risk_reversal_25d

    def to_record(self) -> dict[str, object]:
        return {"underlying": self.underlying, "at": self.at.isoformat(), "spot": self.spot,
                "term_slope": self.term_slope, "risk_reversal_25d": self.risk_reversal_25d,
                "front": None if self.front is None else self.front.expiry.isoformat(),
                "next": None if self.next is None else self.next.expiry.isoformat(),
                "expiries": [{"expiry": e.expiry.isoformat(), "atm_iv": e.atm_iv,
                              "risk_reversal_25d": e.risk_reversal_25d, "points": e.points} for e in self.expiries]}


def expires_at(expiry: date) -> datetime:
    return datetime.combine(expiry, EXPIRY_TIME, tzinfo=EXCHANGE_TZ)


def implied_vol(price: float, spot: float, strike: float, years: float, rate: float, right: str,
                dividend_yield: float = 0.0) -> float | None:
    """The Black-Scholes vol that prices the option at `price`, by bisection (monotone in vol);
    None when no vol in [MIN_VOL, MAX_VOL] does (below intrinsic, above the bound, or expired)."""
    if not (price > 0 and spot > 0 and strike > 0 and years > 0) or not math.isfinite(price):
        return None
    lo, hi = MIN_VOL, MAX_VOL
    p_lo = black_scholes(spot, strike, years, rate, lo, right, dividend_yield).price  # type: ignore[arg-type]
    p_hi = black_scholes(spot, strike, years, rate, hi, right, dividend_yield).price  # type: ignore[arg-type]
    if not p_lo <= price <= p_hi:
        return None
    for _ in range(100):
        mid = (lo + hi) / 2
        value = black_scholes(spot, strike, years, rate, mid, right, dividend_yield).price  # type: ignore[arg-type]
        if value < price:
            lo = mid
        else:
            hi = mid
        if hi - lo < _TOLERANCE:
            break
    return (lo + hi) / 2


def smile(quotes: Iterable[tuple[OptionContract, Quote]], spot: float, now: datetime, rate: float,
          dividend_yield: float = 0.0) -> dict[date, tuple[float, list[SmilePoint]]]:
    """Out-of-the-money points by expiry (with each expiry's time in years), sorted by strike."""
    by_expiry: dict[date, tuple[float, list[SmilePoint]]] = {}
    for contract, quote in quotes:
        k = float(contract.strike)
        if (contract.right == "C") != (k >= spot):
            continue
        years = years_between(now, expires_at(contract.expiry))
        if years <= 0:
            continue
        iv, source = _quote_iv(quote, spot, k, years, rate, contract.right, dividend_yield)
        if iv is None:
            continue
        delta = black_scholes(spot, k, years, rate, iv, contract.right, dividend_yield).delta
        by_expiry.setdefault(contract.expiry, (years, []))[1].append(SmilePoint(k, contract.right, iv, delta, source))
    for _, points in by_expiry.values():
        points.sort(key=lambda p: p.strike)
    return by_expiry


def _quote_iv(quote: Quote, spot: float, strike: float, years: float, rate: float, right: str,
              dividend_yield: float) -> tuple[float | None, str]:
    if quote.iv is not None and quote.iv > 0:
        return float(quote.iv), "model"
    if quote.bid is None or quote.ask is None or quote.bid <= 0 or quote.ask < quote.bid:
        return None, "solved"  # a one-sided or crossed market has no mid worth solving
    mid = float((quote.bid + quote.ask) / 2)
    return implied_vol(mid, spot, strike, years, rate, right, dividend_yield), "solved"


def atm_iv(points: Sequence[SmilePoint], spot: float) -> float | None:
    """IV at the spot, linear in strike between the nearest OTM points either side (the nearest one
    alone when the spot is outside the quoted strikes)."""
    if not points:
        return None
    below = [p for p in points if p.strike <= spot]
    above = [p for p in points if p.strike >= spot]
    if not below or not above:
        return min(points, key=lambda p: abs(p.strike - spot)).iv
    lo, hi = below[-1], above[0]
    if hi.strike == lo.strike:
        return (lo.iv + hi.iv) / 2
    w = (spot - lo.strike) / (hi.strike - lo.strike)
    return lo.iv + w * (hi.iv - lo.iv)


def iv_at_delta(points: Sequence[SmilePoint], right: str, target: float) -> float | None:
    """IV at |delta| = target on one wing, linear in delta between the two points around it;
    None when the wing does not reach that far either side (no extrapolation)."""
    wing = sorted((abs(p.delta), p.iv) for p in points if p.right == right)
    for (d0, v0), (d1, v1) in zip(wing, wing[1:]):
        if d0 <= target <= d1:
            return v0 if d1 == d0 else v0 + (target - d0) / (d1 - d0) * (v1 - v0)
    return None


def risk_reversal(points: Sequence[SmilePoint], target: float = RR_DELTA) -> float | None:
    call, put = iv_at_delta(points, "C", target), iv_at_delta(points, "P", target)
    return None if call is None or put is None else call - put


def build_surface(underlying: str, quotes: Iterable[tuple[OptionContract, Quote]], spot: Decimal | float,
                  now: datetime, rate: float, front_min_days: int = 1, dividend_yield: float = 0.0) -> Surface:
    """The surface of one underlying at `now`. The front expiry is the first at least
    `front_min_days` calendar days out (a same-day expiry's IV in its last hours says little about
    the term structure), `next` the one after it."""
    s = float(spot)
    expiries: list[ExpiryVol] = []
    for expiry, (years, points) in sorted(smile(quotes, s, now, rate, dividend_yield).items()):
        expiries.append(ExpiryVol(expiry, years, atm_iv(points, s), risk_reversal(points), len(points)))
    today = now.astimezone(EXCHANGE_TZ).date()
    usable = [e for e in expiries if (e.expiry - today).days >= front_min_days and e.atm_iv is not None]
    return Surface(underlying, now, s, tuple(expiries), usable[0] if usable else None,
                   usable[1] if len(usable) > 1 else None)


def option_greeks(contract: OptionContract, quote: Quote | None, spot: Decimal | None, now: datetime,
                  rate: float, min_time_s: float = 60.0) -> tuple[Decimal, Decimal] | None:
    """(vega per vol point, theta per calendar day) per share for one option, from its quote's IV
    (model or solved); None when the IV cannot be had. Feeds the vega/theta limits (SPEC §10.4).
    An option still quoted at its nominal expiry time is measured `min_time_s` before it (as the
    sim's model prices it): its vega is then about nil, not unknown."""
    if quote is None or spot is None or spot <= 0:
        return None
    years = years_between(now, expires_at(contract.expiry), min_time_s)
    iv, _ = _quote_iv(quote, float(spot), float(contract.strike), years, rate, contract.right, 0.0)
    if iv is None:
        return None
    g = black_scholes(float(spot), float(contract.strike), years, rate, iv, contract.right)
    return Decimal(repr(round(g.vega, 6))), Decimal(repr(round(g.theta, 6)))
