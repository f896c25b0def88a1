"""Breaker level 3 (SPEC §3): the stops of winning positions go up to break-even.
Losers are the engine's to close; this only raises stops."""

from __future__ import annotations

from decimal import Decimal

from exits.context import NOTHING, RuleResult
from exits.numbers import require_price
from exits.position import ExitPosition
from exits.state import ExitState
from exits.stops import announce_stop, raise_stop

BREAKEVEN = "breakeven_stop"


def tighten_to_breakeven(position: ExitPosition, state: ExitState, price: Decimal) -> RuleResult:
    """A winner (premium above entry) gets its stop raised to the entry price, with a
    tighten_stop action; a loser, or a stop already at or above entry, is left alone."""
    require_price(price, "price", "bad_market")
    if price <= position.entry_price:
        return NOTHING, state
    return announce_stop(position, raise_stop(state, position.entry_price, BREAKEVEN))
