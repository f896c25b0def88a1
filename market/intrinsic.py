"""An option's intrinsic value: what it settles at after its expiry (SPEC §6.3, room expiry).

In `market/` (the leaf) so the sim venue settles its book and the core its positions by one rule."""

from __future__ import annotations

from decimal import Decimal

from market.types import OptionContract

ZERO = Decimal(0)


def intrinsic(contract: OptionContract, underlying_price: Decimal) -> Decimal:
    """A call's max(0, S − K), a put's max(0, K − S), per share."""
    if contract.right == "C":
        return max(ZERO, underlying_price - contract.strike)
    return max(ZERO, contract.strike - underlying_price)
