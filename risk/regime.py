"""The volatility regime (SPEC §10.2): calm / normal / stressed, and the multiplier cap it sets.

Inputs are values the shell computed: the VIX level, VIX's percentile over its own history, the
signal underlying's front/next term slope and its skew's percentile over its history (the surface of
`broker/surface.py`). A missing input is simply not evidence: it neither calms nor stresses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from config.models import RegimeName, VolatilityRegimeConfig
from market.frozen import fast_init

# (`{d!s}` for a Decimal: the text of a bare `{d}` without its format-spec parsing; risk/gate.py)


@dataclass(frozen=True, slots=True)
class VolatilityView:
    """`term_slope` = next expiry's ATM IV − front expiry's (fractions: −0.02 is two vol points
    inverted); percentiles are fractions in [0, 1]."""

    vix_percentile: Decimal | None = None
    term_slope: Decimal | None = None
    skew_percentile: Decimal | None = None


NO_VOLATILITY = VolatilityView()  # nothing known beside the VIX (frozen: one instance serves every request)


@fast_init
@dataclass(frozen=True, slots=True)
class RegimeResult:
    name: RegimeName
    cap: Decimal | None
    why: tuple[str, ...]

    def note(self) -> str:
        return f"{self.name}: {'; '.join(self.why)}" if self.why else self.name


def percentile_rank(value: Decimal, history: Sequence[Decimal], min_history: int) -> Decimal | None:
    """Share of the history at or below `value` (0..1); None with fewer than `min_history` points."""
    if len(history) < min_history:
        return None
    below = sum(1 for h in history if h <= value)
    return Decimal(below) / Decimal(len(history))


def history_percentile(value: Decimal, history: Sequence[Decimal], cfg: VolatilityRegimeConfig) -> Decimal | None:
    """`value`'s rank among the last `history_sessions` values (the value itself excluded by the caller)."""
    return percentile_rank(value, history[-cfg.history_sessions:], cfg.min_history)


def is_inverted(term_slope: Decimal | None, cfg: VolatilityRegimeConfig) -> bool:
    return term_slope is not None and term_slope < cfg.inversion_below


def classify(vix: Decimal | None, view: VolatilityView, cfg: VolatilityRegimeConfig) -> RegimeResult:
    """Stressed when any stress sign shows; calm when VIX is low by level and (if known) percentile
    with no stress sign; normal otherwise."""
    stress: list[str] = []
    if vix is not None and cfg.stressed_vix_above is not None and vix > cfg.stressed_vix_above:
        stress.append(f"VIX {vix!s} > {cfg.stressed_vix_above!s}")
    pct = view.vix_percentile
    if pct is not None and cfg.stressed_vix_percentile_above is not None and pct > cfg.stressed_vix_percentile_above:
        stress.append(f"VIX percentile {pct:.2f} > {cfg.stressed_vix_percentile_above}")
    if cfg.stressed_on_inversion and is_inverted(view.term_slope, cfg):
        stress.append(f"term structure inverted (front/next slope {view.term_slope:.4f} < {cfg.inversion_below})")
    skew = view.skew_percentile
    skew_limit = cfg.stressed_skew_percentile_above
    if skew is not None and skew_limit is not None and skew > skew_limit:
        stress.append(f"skew percentile {skew:.2f} > {skew_limit}")
    if stress:
        return RegimeResult("stressed", cfg.caps.get("stressed"), tuple(stress))
    calm: list[str] = []
    if vix is not None and cfg.calm_vix_below is not None and vix < cfg.calm_vix_below:
        calm.append(f"VIX {vix!s} < {cfg.calm_vix_below!s}")
        if pct is not None and cfg.calm_vix_percentile_below is not None:
            if pct < cfg.calm_vix_percentile_below:
                calm.append(f"VIX percentile {pct:.2f} < {cfg.calm_vix_percentile_below}")
            else:
                calm = []
    if calm:
        return RegimeResult("calm", cfg.caps.get("calm"), tuple(calm))
    why = ("no stress sign",) if vix is not None else ("no VIX given",)
    return RegimeResult("normal", cfg.caps.get("normal"), why)
