"""Decimal checks and the one quantity-rounding convention of the exit rules."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

from exits.errors import ExitInputError
from risk.numbers import MAX_MAGNITUDE


def require_price(value: object, name: str, code: str = "bad_position") -> Decimal:
    """A finite Decimal in (0, MAX_MAGNITUDE]; floats are refused so no binary error reaches money,
    and the bound keeps every product the rules form inside Decimal's range (1e999999 would overflow)."""
    if not isinstance(value, Decimal) or not value.is_finite() or not 0 < value <= MAX_MAGNITUDE:
        raise ExitInputError(code, f"{name} must be a finite Decimal > 0 and at most {MAX_MAGNITUDE}, got {value!r}")
    return value


def share_of(quantity: int, share: Decimal) -> int:
    """round(quantity × share), halves up (2 × 0.25 = 0.5 -> 1), at least 1 when share > 0."""
    if share <= 0:
        return 0
    return max(1, int((quantity * share).to_integral_value(rounding=ROUND_HALF_UP)))


def pct(fraction: Decimal) -> str:
    """+5.0% style, for reasons people read."""
    return f"{fraction * 100:+.1f}%"


def money(value: Decimal) -> str:
    """A price for people, at the cent (105.00; a stop at 3.0574 reads 3.06): the action itself
    carries the exact Decimal, the text is read, not recomputed."""
    return f"{value.quantize(Decimal('0.01'), rounding=ROUND_HALF_EVEN):f}"
