"""Black-Scholes prices and greeks, implied vol from VIX, a simple skew, and a modelled option quote.

The maths is float (a model, not money); what leaves `model_quote` is a Decimal Quote labelled
`modelled=True`. Units: time in years (365-day), vol and rate as fractions, vega per one vol
point (0.01), theta per calendar day.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from broker.listings import NICKEL, PENNY, PENNY_EVERY_PRICE, round_to_tick
from market.types import OptionContract, Quote, Right
from config.models import OptionModelConfig

SECONDS_PER_YEAR = 365 * 24 * 3600
TRADING_DAYS_PER_YEAR = 252
VOL_POINT = 0.01
DAYS_PER_YEAR = 365


@dataclass(frozen=True, slots=True)
class Greeks:
    price: float
    delta: float
    gamma: float
    vega: float  # per vol point
    theta: float  # per calendar day


def _norm_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def _norm_pdf(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _check(spot: float, strike: float, years: float, vol: float, right: str) -> None:
    if right not in ("C", "P"):
        raise ValueError(f"right must be 'C' or 'P', got {right!r}")
    if not (spot > 0 and strike > 0):
        raise ValueError(f"spot and strike must be positive, got {spot}, {strike}")
    if not (years >= 0 and vol >= 0) or math.isnan(years) or math.isnan(vol):
        raise ValueError(f"time and vol must be non-negative, got {years}, {vol}")


def black_scholes(spot: float, strike: float, years: float, rate: float, vol: float, right: Right,
                  dividend_yield: float = 0.0) -> Greeks:
    """European option price and greeks (Black-Scholes-Merton with a continuous dividend yield)."""
    _check(spot, strike, years, vol, right)
    disc_r = math.exp(-rate * years)
    disc_q = math.exp(-dividend_yield * years)
    sd = vol * math.sqrt(years)
    if sd == 0.0:
        # At expiry (or zero vol) the option is its discounted intrinsic value; greeks degenerate.
        forward = spot * disc_q / disc_r
        call = max(forward - strike, 0.0) * disc_r
        itm = forward > strike if right == "C" else forward < strike
        price = call if right == "C" else call - spot * disc_q + strike * disc_r
        delta = (disc_q if itm else 0.0) * (1 if right == "C" else -1)
        return Greeks(max(price, 0.0), delta, 0.0, 0.0, 0.0)
    d1 = (math.log(spot / strike) + (rate - dividend_yield + 0.5 * vol * vol) * years) / sd
    d2 = d1 - sd
    pdf = _norm_pdf(d1)
    gamma = disc_q * pdf / (spot * sd)
    vega = spot * disc_q * pdf * math.sqrt(years)
    decay = -spot * disc_q * pdf * vol / (2.0 * math.sqrt(years))
    if right == "C":
        price = spot * disc_q * _norm_cdf(d1) - strike * disc_r * _norm_cdf(d2)
        delta = disc_q * _norm_cdf(d1)
        theta = decay - rate * strike * disc_r * _norm_cdf(d2) + dividend_yield * spot * disc_q * _norm_cdf(d1)
    else:
        price = strike * disc_r * _norm_cdf(-d2) - spot * disc_q * _norm_cdf(-d1)
        delta = -disc_q * _norm_cdf(-d1)
        theta = decay + rate * strike * disc_r * _norm_cdf(-d2) - dividend_yield * spot * disc_q * _norm_cdf(-d1)
    return Greeks(price, delta, gamma, vega * VOL_POINT, theta / DAYS_PER_YEAR)


def years_between(now: datetime, expires_at: datetime, floor_s: float = 0.0) -> float:
    return max((expires_at - now).total_seconds(), floor_s) / SECONDS_PER_YEAR


def realized_vol(closes: Sequence[Decimal | float], window: int) -> float | None:
    """Annualized close-to-close vol of the last `window` daily log returns; None without enough bars."""
    prices = [float(c) for c in closes[-(window + 1):]]
    if len(prices) < window + 1 or any(p <= 0 for p in prices):
        return None
    returns = [math.log(b / a) for a, b in zip(prices, prices[1:])]
    mean = sum(returns) / len(returns)
    var = sum((r - mean) ** 2 for r in returns) / (len(returns) - 1)
    return math.sqrt(var * TRADING_DAYS_PER_YEAR)


def atm_vol(underlying: str, vix: float | None, cfg: OptionModelConfig, realized: float | None = None) -> float | None:
    """At-the-money implied vol: index ETFs from VIX; single stocks from realized vol when known
    (IV trades above realized by `iv_over_realized`), else VIX × the underlying's multiple."""
    if realized is not None and realized > 0 and underlying not in cfg.vix_only:
        vol = realized * float(cfg.iv_over_realized)
    elif vix is not None and vix > 0:
        vol = vix / 100.0 * float(cfg.vix_multiple.get(underlying, cfg.default_vix_multiple))
    else:
        return None
    return min(max(vol, float(cfg.min_iv)), float(cfg.max_iv))


def same_day_vol(atm: float, vix1d: float | None, cfg: OptionModelConfig) -> float:
    """At-the-money vol of an option expiring today: VIX1D where known (CBOE's same-day gauge), else
    the VIX-based vol × the ratio fitted on recorded same-day quotes (docs/validation.md)."""
    vol = vix1d / 100.0 if vix1d is not None and vix1d > 0 else atm * float(cfg.same_day_vix_ratio)
    return min(max(vol, float(cfg.min_iv)), float(cfg.max_iv))


def skewed_vol(atm: float, spot: float, strike: float, cfg: OptionModelConfig) -> float:
    """Equity skew: IV rises as the strike falls (OTM puts rich, OTM calls cheap), linear in log-moneyness."""
    vol = atm * (1.0 - float(cfg.skew) * math.log(strike / spot))
    return min(max(vol, float(cfg.min_iv)), float(cfg.max_iv))


class _Floats:
    """The model's settings as floats, converted once per settings object (not on every quote)."""

    __slots__ = ("cfg", "rate", "skew", "min_iv", "max_iv", "spread_pct", "widening", "horizon", "display",
                 "open_interest", "min_time_s")

    def __init__(self, cfg: OptionModelConfig):
        self.cfg = cfg  # held: the cache is keyed by id(cfg)
        self.rate = float(cfg.risk_free_rate)
        self.skew = float(cfg.skew)
        self.min_iv, self.max_iv = float(cfg.min_iv), float(cfg.max_iv)
        self.spread_pct, self.widening = float(cfg.spread_pct), float(cfg.spread_widening)
        self.horizon = math.sqrt(cfg.moneyness_horizon_days / DAYS_PER_YEAR)
        self.display, self.open_interest = cfg.display_size, cfg.open_interest
        self.min_time_s = float(cfg.min_time_to_expiry_s)


_FLOATS: dict[int, _Floats] = {}
# ticks -> the Decimal price, as round_to_tick writes it, one table per tick (`_float_tick` answers PENNY or
# NICKEL): an int key hashes cheaper than a (ticks, Decimal) pair (a Decimal's hash is not kept).
_PENNY_PRICES: dict[int, Decimal] = {}
_NICKEL_PRICES: dict[int, Decimal] = {}
_SAFE = 1e-7  # a float tick count this close to a whole number is decided in Decimal (exact)
_SQRT2 = math.sqrt(2.0)
_SQRT2PI = math.sqrt(2.0 * math.pi)


def _floats(cfg: OptionModelConfig) -> _Floats:
    found = _FLOATS.get(id(cfg))
    if found is None or found.cfg is not cfg:
        found = _FLOATS[id(cfg)] = _Floats(cfg)
    return found


def _six(value: float) -> Decimal:
    """Decimal(repr(round(value, 6))): greeks and IV at 6 places. Not memoized: they move on every tick,
    so a cache would only grow (it cost ~45 MB of RSS over the bench week before it was dropped)."""
    return Decimal(repr(round(value, 6)))


def _tick_price(ticks: int, tick: Decimal) -> Decimal:
    prices = _PENNY_PRICES if tick is PENNY else _NICKEL_PRICES if tick is NICKEL else {}
    found = prices.get(ticks)
    if found is None:
        if len(prices) > 10_000:  # distinct tick prices: a few thousand in a week
            prices.clear()
        found = prices[ticks] = Decimal(ticks) * tick
    return found


def _float_tick(underlying: str, price: float, up: bool) -> tuple[int, Decimal] | None:
    """`round_to_tick` in float: (ticks, tick), or None where float cannot be sure of the Decimal answer
    (a price within a hair of a tick or of the penny/nickel boundary): the caller then rounds in Decimal."""
    penny = underlying in PENNY_EVERY_PRICE
    if not penny and abs(price - 3.0) < _SAFE:
        return None
    tick_f, tick = (0.01, PENNY) if penny or price < 3.0 else (0.05, NICKEL)
    x = price / tick_f
    n = round(x)
    if abs(x - n) < _SAFE:
        return None
    n = math.ceil(x) if up else math.floor(x)
    if not penny and (n * tick_f < 3.0) != (tick_f == 0.01):
        return None  # the coarser tick applies to the rounded price: round_to_tick's second step
    return n, tick


def model_quote(contract: OptionContract, spot: Decimal, atm: float, now: datetime, expires_at: datetime,
                received_at: datetime, cfg: OptionModelConfig, usable: bool = True, key: str | None = None) -> Quote:
    """`model_quote_exact`'s quote, computed in float: Black-Scholes price, delta and gamma only (the
    same expressions, so the same floats), the spread in float, Decimal only for what is emitted (the
    bid and ask at the listing tick, the 6-place greeks and IV). Where float rounding could differ from
    the Decimal path (a value within 1e-7 of a tick, the penny/nickel boundary, a one-tick market) the
    exact path decides. `key` is the contract's key when the caller has it (it is built per call)."""
    terms = Terms(cfg, now, expires_at)
    return terms.quote(contract, spot, float(spot), float(contract.strike), atm, received_at, usable, key)


class Terms:
    """What `model_quote` computes from the settings, the time and the expiry alone, once: a refresh of
    the option model prices every tracked option of an expiry at the same moment (`OptionQuoteModel`
    keeps one per expiry and moment). The per-option part (`quote`) computes only the strike's terms,
    with the same expressions in the same order as before: the same floats, so the same quotes."""

    __slots__ = ("cfg", "f", "now", "expires_at", "years", "root", "disc_r", "carry", "ok")

    def __init__(self, cfg: OptionModelConfig, now: datetime, expires_at: datetime):
        f = self.f = _floats(cfg)
        self.cfg, self.now, self.expires_at = cfg, now, expires_at
        years = self.years = max((expires_at - now).total_seconds(), f.min_time_s) / SECONDS_PER_YEAR
        self.ok = not math.isnan(years) and years >= 0  # else the exact path decides (as it did per option)
        self.root = math.sqrt(years) if self.ok else math.nan
        self.disc_r = math.exp(-f.rate * years)
        # black_scholes' dividend discount exp(-0.0 * years) is exactly 1.0 here (years is finite: checked),
        # and x * 1.0 == x in IEEE arithmetic: it is left out, and each N(d) is computed once.
        self.carry = f.rate - 0.0

    def quote(self, contract: OptionContract, spot: Decimal, s: float, k: float, atm: float, received_at: datetime,
              usable: bool = True, key: str | None = None, greeks: list[Any] | None = None,
              strike: list[Any] | None = None) -> Quote:
        """The quote of `contract` at `spot` (`s`, `k`: spot and strike as floats). `greeks`: the option's
        last [rounded delta, its Decimal, rounded gamma, its Decimal, rounded vol, its Decimal], reused
        (and updated) where the 6-place value is unchanged: the same Decimal, one construction fewer.
        `strike`: the option's memo of what depends on the spot, the strike, the at-the-money vol and the
        settings alone, not on the time (see `_strike_terms`): reused while those four are unchanged (an
        underlying that did not move since its last tick; VIX at the same level), else worked out again."""
        f = self.f
        memo = strike
        if memo is not None and memo and memo[0] == s and memo[1] == k and memo[2] == atm and memo[3] is f:
            moneyness, vol = memo[4], memo[5]
        else:
            memo = None
            moneyness = math.log(k / s)  # the skew's and the spread's log-moneyness: one value, computed once
            vol = atm * (1.0 - f.skew * moneyness)
            vol = min(max(vol, f.min_iv), f.max_iv)
        right = contract.right
        if right not in ("C", "P") or not (s > 0 and k > 0) or not self.ok or math.isnan(vol) or not vol >= 0:
            return model_quote_exact(contract, spot, atm, self.now, self.expires_at, received_at, self.cfg, usable)
        sd = vol * self.root
        if sd == 0.0:
            return model_quote_exact(contract, spot, atm, self.now, self.expires_at, received_at, self.cfg, usable)
        if memo is None:
            memo = _strike_terms(f, s, k, atm, moneyness, vol)
            if strike is not None:
                strike[:] = memo
        log_sk, wide, size, open_interest, vol_6 = memo[6], memo[7], memo[8], memo[9], memo[10]
        years = self.years
        d1 = (log_sk + (self.carry + 0.5 * vol * vol) * years) / sd
        d2 = d1 - sd
        pdf = math.exp(-0.5 * d1 * d1) / _SQRT2PI
        gamma = pdf / (s * sd)
        if right == "C":
            n1 = 0.5 * (1.0 + math.erf(d1 / _SQRT2))
            price = s * n1 - k * self.disc_r * (0.5 * (1.0 + math.erf(d2 / _SQRT2)))
            delta = n1
        else:
            n1 = 0.5 * (1.0 + math.erf(-d1 / _SQRT2))
            price = k * self.disc_r * (0.5 * (1.0 + math.erf(-d2 / _SQRT2))) - s * n1
            delta = -n1
        theo = round(price, 6)
        half = theo * f.spread_pct * wide / 2
        underlying = contract.underlying
        low = _float_tick(underlying, theo - half, False)
        high = _float_tick(underlying, theo + half, True)
        if low is None or high is None:
            return model_quote_exact(contract, spot, atm, self.now, self.expires_at, received_at, self.cfg, usable)
        (nb, tick_b), (na, tick_a) = low, high
        if na * (1 if tick_a is PENNY else 5) <= max(nb, 0) * (1 if tick_b is PENNY else 5):
            return model_quote_exact(contract, spot, atm, self.now, self.expires_at, received_at, self.cfg,
                                     usable)  # one-tick market
        bid = _ZERO if nb < 0 else _tick_price(nb, tick_b)
        ask = _tick_price(na, tick_a)
        delta, gamma, vol = round(delta, 6), round(gamma, 6), vol_6
        if greeks is None:
            d_delta, d_gamma, d_vol = Decimal(repr(delta)), Decimal(repr(gamma)), Decimal(repr(vol))  # `_six`
        else:  # Decimal(repr(x)) depends on x alone: an unchanged 6-place value keeps its Decimal (a zero is
            # always rebuilt: 0.0 == -0.0, but their reprs differ)
            if not (greeks[0] == delta and delta):
                greeks[0], greeks[1] = delta, Decimal(repr(delta))
            if not (greeks[2] == gamma and gamma):
                greeks[2], greeks[3] = gamma, Decimal(repr(gamma))
            if not (greeks[4] == vol and vol):
                greeks[4], greeks[5] = vol, Decimal(repr(vol))
            d_delta, d_gamma, d_vol = greeks[1], greeks[3], greeks[5]
        return Quote(key or contract.key, bid, ask, None, received_at, size if nb > 0 else 0, size,
                     open_interest, d_delta, d_gamma, d_vol, True, usable)


def _strike_terms(f: _Floats, s: float, k: float, atm: float, moneyness: float, vol: float) -> list[Any]:
    """What `Terms.quote` computes from the spot, the strike, the at-the-money vol and the settings alone
    (`moneyness` and `vol` already worked out from them), with its expressions: [s, k, atm, f, moneyness,
    vol, log(s/k) for d1, the spread's widening factor, displayed size, open interest, the 6-place vol].
    Only for a vol that passed the quote's checks (`vol * f.horizon` is then no zero)."""
    z = abs(moneyness) / (vol * f.horizon)
    falloff = math.exp(-0.5 * z * z)
    return [s, k, atm, f, moneyness, vol, math.log(s / k), (1 + f.widening * round(z, 6)),
            max(1, round(f.display * falloff)), int(f.open_interest * falloff), round(vol, 6)]


_ZERO = Decimal(0)


def model_quote_exact(contract: OptionContract, spot: Decimal, atm: float, now: datetime, expires_at: datetime,
                      received_at: datetime, cfg: OptionModelConfig, usable: bool = True) -> Quote:
    """A realistic two-sided quote around the Black-Scholes value.

    The spread is `spread_pct` of the value, widened by the distance from the money in standard
    deviations over `moneyness_horizon_days`, at least one tick, bid rounded down and ask up to
    the listing tick; displayed size and open interest fall away from the money. Deterministic,
    so replays repeat.
    """
    s, k = float(spot), float(contract.strike)
    years = years_between(now, expires_at, cfg.min_time_to_expiry_s)
    vol = skewed_vol(atm, s, k, cfg)
    g = black_scholes(s, k, years, float(cfg.risk_free_rate), vol, contract.right)
    z = abs(math.log(k / s)) / (vol * math.sqrt(cfg.moneyness_horizon_days / DAYS_PER_YEAR))
    theo = Decimal(repr(round(g.price, 6)))
    half = theo * cfg.spread_pct * (1 + cfg.spread_widening * Decimal(repr(round(z, 6)))) / 2
    bid = max(round_to_tick(contract.underlying, theo - half, "down"), Decimal(0))
    ask = round_to_tick(contract.underlying, theo + half, "up")
    if ask <= bid:  # a one-tick market at least: the smallest tick nudged up to the tick that applies there
        ask = round_to_tick(contract.underlying, bid + PENNY, "up")
    falloff = math.exp(-0.5 * z * z)
    size = max(1, round(cfg.display_size * falloff))
    return Quote(
        key=contract.key, bid=bid, ask=ask, last=None, received_at=received_at,
        bid_size=size if bid > 0 else 0, ask_size=size,
        open_interest=int(cfg.open_interest * falloff),
        delta=Decimal(repr(round(g.delta, 6))), gamma=Decimal(repr(round(g.gamma, 6))),
        iv=Decimal(repr(round(vol, 6))), modelled=True, usable=usable,
    )
