"""The capital base sizing is measured against, and the bet limits it implies (SPEC §1)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from config.models import CapitalConfig, SizingConfig
from risk.numbers import InvalidInput
from market.frozen import fast_init

_CENT = Decimal("0.01")


@fast_init
@dataclass(frozen=True, slots=True)
class BetLimits:
    min_bet: Decimal
    max_bet: Decimal


def capital_base(cfg: CapitalConfig, *, realized_pnl: Decimal = Decimal(0),
                 net_liquidation: Decimal | None = None) -> Decimal:
    """fixed: `account_size`; equity: `account_size` (the starting capital) + realized P&L;
    broker: the broker's net liquidation (InvalidInput when the broker has not reported it)."""
    if cfg.source == "fixed":
        return cfg.account_size
    if cfg.source == "equity":
        return cfg.account_size + realized_pnl
    if net_liquidation is None:
        raise InvalidInput("capital_unavailable", "capital.source is broker but no net liquidation was reported")
    return net_liquidation


def bet_limits(base: Decimal, cfg: SizingConfig) -> BetLimits:
    """min bet = max(floor, min_bet_pct × base), max bet = max_bet_pct × base.

    Rounded to the cent inward (min up, max down) so a notional at either limit is a real amount.
    With a small base the floor can exceed the max bet: then nothing can be sized (`below_minimum_bet`).
    """
    # (rounding positional: Decimal parses a keyword argument at twice the cost of the quantize; a
    # comparison, not max(), which parses its arguments too: the floor when the two are equal, as max)
    floor, share = cfg.min_bet_floor, cfg.min_bet_pct * base
    min_bet = (share if share > floor else floor).quantize(_CENT, ROUND_CEILING)
    max_bet = (cfg.max_bet_pct * base).quantize(_CENT, ROUND_FLOOR)
    return BetLimits(min_bet, max_bet)
