"""The multiplier applied to the minimum bet (SPEC §2.2): factors, caps, and their combination."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from config.models import FundamentalsConfig, MultiplierConfig, Settings, SizingConfig
from risk.signal import Fundamentals, Signal
from market.frozen import fast_init

NEUTRAL = Decimal(1)
# The seeds' formula, as SPEC §2.2 fixes it: multiplier = 1 + ((offset + score) + confidence) / 2.
# Its shape is the rule itself, not a tunable, so it is not in config.
_FORMULA_OFFSET = Decimal("0.5")
_FORMULA_DIVISOR = Decimal(2)


@fast_init
@dataclass(frozen=True)
class MultiplierResult:
    raw: Decimal  # the product of the factors
    final: Decimal  # clamped to [floor, cap]
    factors: Mapping[str, Decimal]
    caps: Mapping[str, Decimal]  # every cap that applied, by name
    cap: Decimal  # the least of them
    bound_by: str | None  # the cap that lowered the product, if one did
    notes: Mapping[str, str]
    floor: Decimal  # the floor it was clamped with
    cap_name: str  # the least cap's name (the first of equal ones), bound or not


def confidence_tier(confidence: Decimal, cfg: MultiplierConfig) -> Decimal:
    for tier in cfg.confidence_tiers:  # highest first (validated)
        if confidence >= tier.at:
            return tier.value
    return cfg.base


def fundamental_score(f: Fundamentals, cfg: FundamentalsConfig) -> Decimal:
    """The seeds' score: base, + surprise step, + analyst consensus, + valuation, clamped to [0, 1]."""
    score = cfg.base_score + _surprise_step(f.earnings_surprise_pct, cfg)
    if f.analyst_buy_pct is not None and f.analyst_buy_pct > cfg.analyst_buy_above:
        score += cfg.analyst_buy_bonus
    elif f.analyst_sell_pct is not None and f.analyst_sell_pct > cfg.analyst_sell_above:
        score += cfg.analyst_sell_penalty
    # A non-positive P/E means no earnings: not "cheap", so it adds nothing (the seeds would call it cheap).
    if f.pe_ratio is not None and f.sector_pe is not None and f.pe_ratio > 0:
        if f.pe_ratio < f.sector_pe * cfg.pe_cheap_ratio:
            score += cfg.pe_cheap_bonus
        elif f.pe_ratio > f.sector_pe * cfg.pe_rich_ratio:
            score += cfg.pe_rich_penalty
    return min(NEUTRAL, max(Decimal(0), score))


def _surprise_step(surprise: Decimal | None, cfg: FundamentalsConfig) -> Decimal:
    if surprise is None:
        return Decimal(0)
    beats = sorted((s for s in cfg.surprise_steps if s.at > 0), key=lambda s: s.at, reverse=True)
    misses = sorted((s for s in cfg.surprise_steps if s.at < 0), key=lambda s: s.at)
    for step in beats:
        if surprise > step.at:
            return step.value
    for step in misses:
        if surprise < step.at:
            return step.value
    return Decimal(0)


def fundamentals_multiplier(score: Decimal, confidence: Decimal) -> Decimal:
    return NEUTRAL + ((_FORMULA_OFFSET + score) + confidence) / _FORMULA_DIVISOR


def vix_factor(vix: Decimal, cfg: MultiplierConfig) -> Decimal:
    for row in cfg.vix_factor_above:  # highest first
        if vix > row.at:
            return row.value
    below = cfg.vix_factor_below
    for row in (below if len(below) < 2 else sorted(below, key=lambda r: r.at)):  # one row: nothing to sort
        if vix < row.at:
            return row.value
    return NEUTRAL


def vix_regime_cap(vix: Decimal, cfg: MultiplierConfig) -> Decimal | None:
    for band in cfg.vix_regime_caps:
        if band.lt is not None and vix < band.lt:
            return band.cap
        if band.le is not None and vix <= band.le:
            return band.cap
        if band.lt is None and band.le is None:
            return band.cap
    return None


def correlation_factor(average_abs_rho: Decimal | None, cfg: MultiplierConfig) -> Decimal:
    """No open positions (or no known pair) is neutral, not the low-correlation bonus."""
    if average_abs_rho is None:
        return NEUTRAL
    for row in cfg.correlation_above:  # highest first
        if average_abs_rho > row.at:
            return row.value
    if cfg.correlation_low_at is not None and average_abs_rho < cfg.correlation_low_at:
        return cfg.correlation_low_value
    return NEUTRAL


def exposure_factor(exposure_after: Decimal, base: Decimal, cfg: SizingConfig) -> Decimal | None:
    """None when the profile has no exposure factor (7dte)."""
    if cfg.exposure_factor_threshold_pct is None:
        return None
    return NEUTRAL if exposure_after <= cfg.exposure_factor_threshold_pct * base else cfg.exposure_factor


def signal_factors(signal: Signal, vix: Decimal | None, average_abs_rho: Decimal | None,
                   settings: Settings) -> tuple[dict[str, Decimal], dict[str, str]]:
    """Every factor but exposure (which needs a size first), and notes on how they were chosen."""
    cfg = settings.multiplier
    factors: dict[str, Decimal] = {}
    notes: dict[str, str] = {}
    if cfg.fundamentals.enabled and signal.fundamentals is not None:
        score = fundamental_score(signal.fundamentals, cfg.fundamentals)
        factors["fundamentals"] = fundamentals_multiplier(score, signal.confidence)
        notes["fundamental_score"] = str(score)
    else:
        factors["confidence"] = confidence_tier(signal.confidence, cfg)
    if cfg.vix_factor_above or cfg.vix_factor_below:
        if vix is None:
            notes["vix"] = "no VIX given: VIX factor and regime cap not applied"
        else:
            factors["vix"] = vix_factor(vix, cfg)
    factors["correlation"] = correlation_factor(average_abs_rho, cfg)
    notes["average_abs_rho_to_open"] = "none" if average_abs_rho is None else str(average_abs_rho)
    return factors, notes


def multiplier_caps(signal: Signal, vix: Decimal | None, vix_session_open: Decimal | None,
                    breaker_level: int, cfg: MultiplierConfig) -> dict[str, Decimal]:
    caps: dict[str, Decimal] = {"multiplier_cap": cfg.cap}
    regime = vix_regime_cap(vix, cfg) if vix is not None else None
    if regime is not None:
        caps["vix_regime"] = regime
    strategy = cfg.strategy_caps.get(signal.strategy)
    # (the text tested first: `Decimal == str` asks the `numbers.Rational` ABC, a Python-level isinstance)
    strategy_cap = regime if type(strategy) is str and strategy == "vix_regime" else strategy
    if strategy_cap is not None:
        caps["strategy"] = strategy_cap  # type: ignore[assignment]
    liquidity = cfg.liquidity_caps.get(signal.underlying)
    if liquidity is not None:
        caps["liquidity"] = liquidity
    if breaker_level >= cfg.breaker_cap_level:
        caps["breaker"] = cfg.breaker_cap
    if (cfg.vix_spike_pct is not None and vix is not None and vix_session_open is not None
            and vix > vix_session_open * (NEUTRAL + cfg.vix_spike_pct)):
        caps["vix_spike"] = cfg.vix_spike_cap
    return caps


def combine(factors: Mapping[str, Decimal], caps: Mapping[str, Decimal], floor: Decimal,
            notes: Mapping[str, str]) -> MultiplierResult:
    """Product of the factors clamped to [floor, least cap]; a cap below the floor wins (the safer side)."""
    return clamp(product(factors), factors, caps, floor, notes)


def product(factors: Mapping[str, Decimal]) -> Decimal:
    """The raw multiplier: the factors multiplied from 1 in their order (a left fold)."""
    raw = NEUTRAL
    for value in factors.values():
        raw *= value
    return raw


def rescale(result: MultiplierResult, factor: Decimal, factors: Mapping[str, Decimal],
            notes: Mapping[str, str]) -> MultiplierResult:
    """`result` with one more factor (`factors`: the old ones and it, in order): what `clamp` answers
    for `result.raw * factor` with the same caps, without looking for the least cap again (the
    caps did not change, so neither did it, nor the first of equal ones)."""
    return bounded(result.raw * factor, factors, result.caps, result.cap, result.cap_name, result.floor, notes)


def clamp(raw: Decimal, factors: Mapping[str, Decimal], caps: Mapping[str, Decimal], floor: Decimal,
          notes: Mapping[str, str]) -> MultiplierResult:
    """`raw`, the product of `factors` in their order, clamped as `combine` does. Adding a factor
    after a combine multiplies its raw by it: the same Decimal operations in the same order, so the
    same product, without multiplying the others again (the 0dte exposure factor)."""
    # Plain comparisons, not min()/max(): the builtins parse their keyword arguments on every call
    # (3.11), more than the Decimal comparisons they make. Same answers: the first of equal caps in
    # the order caps were added, and `raw` itself when it equals the floor.
    cap_name, cap = least_cap(caps)
    return bounded(raw, factors, caps, cap, cap_name, floor, notes)


def least_cap(caps: Mapping[str, Decimal]) -> tuple[str, Decimal]:
    """The least cap and its name: the first of equal ones, in the order the caps were added."""
    cap_name, cap = "", None
    for name, value in caps.items():
        if cap is None or value < cap:
            cap_name, cap = name, value
    if cap is None:
        raise ValueError("clamp needs at least one cap")  # (min() of no caps raised as well)
    return cap_name, cap


def clamped(raw: Decimal, cap: Decimal, floor: Decimal) -> Decimal:
    """`raw` raised to the floor, then held under `cap`: the multiplier `bounded` records."""
    floored = floor if floor > raw else raw
    return cap if cap < floored else floored


def bounded(raw: Decimal, factors: Mapping[str, Decimal], caps: Mapping[str, Decimal], cap: Decimal, cap_name: str,
            floor: Decimal, notes: Mapping[str, str]) -> MultiplierResult:
    """The result for `raw` with the least cap already found (`cap`, named `cap_name`): `clamped`'s
    multiplier, and the cap named as binding when it lowered the floored product."""
    floored = floor if floor > raw else raw
    final = cap if cap < floored else floored
    # The maps are kept, not copied: the sizer hands over dicts of its own and edits none afterwards
    # (a copy each, twice on 0dte, then copied again into the decision, was ~4 % of a decision).
    return MultiplierResult(raw, final, factors, caps, cap, cap_name if floored > cap else None, notes, floor, cap_name)
