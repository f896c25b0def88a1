"""Correlation of underlyings (SPEC §2.5): rho from daily log returns, averages, the book's regime.

Statistics are computed in floats (they are estimates, not money) and rounded to 6 places.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from itertools import combinations, repeat
from types import MappingProxyType
from typing import Literal

from config.models import CorrelationConfig

Regime = Literal["none", "moderate", "high"]
Correlations = Mapping[str, Mapping[str, Decimal]]
_PLACES = Decimal("0.000001")
_ONE = Decimal(1)
_ZERO = Decimal(0)
_NO_ROW: Mapping[str, Decimal] = MappingProxyType({})  # a symbol without a row: nothing known about it


def log_returns(closes: Sequence[float | Decimal]) -> list[float] | None:
    """Daily log returns of a close series, or None when any close is not a positive finite number."""
    values = [float(c) for c in closes]
    if any(not math.isfinite(v) or v <= 0 for v in values):
        return None
    return [math.log(b / a) for a, b in zip(values, values[1:])]


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Pearson's rho, or None with fewer than 3 points or a series that does not move."""
    n = min(len(xs), len(ys))
    if n < 3:
        return None
    xs, ys = xs[-n:], ys[-n:]
    mx, my = sum(xs) / n, sum(ys) / n
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if sxx <= 0 or syy <= 0:
        return None
    return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))


def correlation_matrix(closes: Mapping[str, Sequence[float | Decimal]],
                       lookback_sessions: int) -> dict[str, dict[str, Decimal]]:
    """Pairwise rho over the last `lookback_sessions` daily returns.

    Series are aligned on their most recent end (the caller passes closes on the same dates, oldest
    first). A symbol with unusable closes, or a pair too short or flat to measure, is left out: callers
    treat a missing pair as unknown, never as zero.
    """
    returns: dict[str, list[float]] = {}
    for symbol, series in closes.items():
        r = log_returns(list(series)[-(lookback_sessions + 1):])
        if r is not None:
            returns[symbol.upper()] = r
    matrix: dict[str, dict[str, Decimal]] = {s: {s: Decimal(1)} for s in returns}
    for a, b in combinations(sorted(returns), 2):
        rho = pearson(returns[a], returns[b])
        if rho is not None:
            value = Decimal(repr(rho)).quantize(_PLACES)
            matrix[a][b] = value
            matrix[b][a] = value
    return matrix


def rho(correlations: Correlations, a: str, b: str) -> Decimal | None:
    """rho(a, b) looked up either way round; a symbol with itself is 1."""
    if a == b:
        return _ONE
    row = correlations.get  # (read, then called: a CorrelationTable's `get` is a slot, which 3.11's method load cannot specialize)
    found = row(a, _NO_ROW).get(b)
    return found if found is not None else row(b, _NO_ROW).get(a)


def average_abs_to(symbol: str, others: Sequence[str], correlations: Correlations) -> Decimal | None:
    """Average |rho| between `symbol` and each of `others` (one entry per open position); None when none is known."""
    return _average_abs(zip(repeat(symbol), others), correlations)


def average_pairwise_abs(symbols: Sequence[str], correlations: Correlations) -> Decimal | None:
    """Average |rho| over every pair of entries (positions) in `symbols`; None when no pair is known."""
    return _average_abs(combinations(symbols, 2), correlations)


def _average_abs(pairs: Iterable[tuple[str, str]], correlations: Correlations) -> Decimal | None:
    """The mean |rho| of the pairs whose rho is known, summed from zero in pair order.

    One loop over a C iterator of pairs, with `rho`'s lookup written out: a call of `rho` per pair
    and a list of the values between them were ~300 bytecodes of a sizing decision (both averages
    run on every decision)."""
    row = correlations.get
    total, count = _ZERO, 0
    for a, b in pairs:
        if a == b:
            r = _ONE
        else:  # rho(a, b), looked up either way round
            r = row(a, _NO_ROW).get(b)
            if r is None:
                r = row(b, _NO_ROW).get(a)
                if r is None:
                    continue  # unknown: left out, not zero
        total += abs(r)
        count += 1
    return total / count if count else None


def regime(average: Decimal | None, cfg: CorrelationConfig) -> Regime:
    if average is None:
        return "none"
    if average > cfg.high_above:
        return "high"
    if average > cfg.moderate_above:
        return "moderate"
    return "none"
