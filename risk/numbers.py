"""Turning outside numbers into finite Decimals, or saying clearly why not.

Floats go through their shortest repr so that 0.7 becomes Decimal('0.7'), not the binary
0.6999…; otherwise a confidence of 0.7 would miss the 0.7 tier.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from config.errors import ReasonError

# Sanity bounds, not trading rules: beyond any real account or option, and they keep every
# product of two inputs inside Decimal's default 28 significant digits.
MAX_MAGNITUDE = Decimal("1e12")
MIN_PRICE = Decimal("0.0001")


class InvalidInput(ReasonError, ValueError):
    """A value that cannot be used; `code` is a stable reason code."""


def to_decimal(value: object, *, allow_str: bool = False) -> Decimal | None:
    """A finite Decimal within ±MAX_MAGNITUDE, or None when `value` is not one (bools never are)."""
    if type(value) is Decimal:  # the common case first (the hot path passes Decimals through)
        number = value
    elif isinstance(value, bool):
        return None
    elif isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))
    elif allow_str and isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            return None
    else:
        return None
    if not number.is_finite() or abs(number) > MAX_MAGNITUDE:
        return None
    return number


def require_decimal(value: object, code: str, what: str, *, minimum: Decimal | None = None,
                    strictly_above: Decimal | None = None, maximum: Decimal | None = None,
                    allow_str: bool = False) -> Decimal:
    """`value` as a Decimal within the given bounds, else InvalidInput(code)."""
    if type(value) is Decimal and value.is_finite() and -MAX_MAGNITUDE <= value <= MAX_MAGNITUDE:
        number = value  # to_decimal's answer for a Decimal, without the call (the sizing hot path)
    else:
        number = to_decimal(value, allow_str=allow_str)
    if number is None:
        raise InvalidInput(code, f"{what} must be a finite number, got {value!r}")
    if minimum is not None and number < minimum:
        raise InvalidInput(code, f"{what} must be at least {minimum}, got {number}")
    if strictly_above is not None and number <= strictly_above:
        raise InvalidInput(code, f"{what} must be above {strictly_above}, got {number}")
    if maximum is not None and number > maximum:
        raise InvalidInput(code, f"{what} must be at most {maximum}, got {number}")
    return number
