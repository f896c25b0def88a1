"""Expiry settlement (SPEC §6.3: no position is left open past its expiry).

The close-out (§5.1) and the expiry-day close (§5.3) sell what they can before the close; an
option with no bid (far out of the money) cannot be sold and expires. After its expiry's
session close it is settled here: out of the money worthless (0), in the money at its intrinsic
value from the underlying's last price. Index options (SPX) settle in cash at that value; an
equity/ETF option is exercised at the broker (shares) — the daemon records the same intrinsic
value and the live reconciliation with the broker's positions is the truth
(docs/decisions/expiry.md). A combo settles leg by leg: its value is the sum of its legs'
intrinsic values, signed by side and ratio, plus its value offset (`market.combo`).

Pure functions over values: no clock, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from market.combo import Combo
from market.intrinsic import intrinsic
from market.session import EXCHANGE_TZ, SessionTimes
from market.types import OptionContract

ZERO = Decimal(0)
RULE = "expiry"


@dataclass(frozen=True, slots=True)
class Settlement:
    """What one expired position settles at: `price` per share (the position's own price space),
    `underlying_price` the price it was worked out from (None: not known, settled at `price` =
    the last mark), `reason` the exit event's reason."""

    price: Decimal
    underlying_price: Decimal | None
    reason: str

    @property
    def worthless(self) -> bool:
        return self.price <= 0


def combo_value(combo: Combo, underlying_price: Decimal) -> Decimal:
    """A combo's settlement value, leg by leg, in the combo's value space (never below 0)."""
    net = sum(((intrinsic(leg.contract, underlying_price) * leg.ratio) * (1 if leg.side == "BUY" else -1)
               for leg in combo.legs), ZERO)
    return max(ZERO, combo.value(net))


def is_expired(expiry: date, now: datetime, expiry_session: SessionTimes | None) -> bool:
    """Past its expiry: a later day, or the expiry day after its session's close (a day without a
    session — a holiday expiry — counts as closed)."""
    today = now.astimezone(EXCHANGE_TZ).date()
    if expiry < today:
        return True
    if expiry > today:
        return False
    return expiry_session is None or now >= expiry_session.close


def settle(contract: OptionContract, combo: Combo | None, underlying_price: Decimal | None,
           last_mark: Decimal | None) -> Settlement:
    """The settlement of one expired position. Without an underlying price it settles at its last
    mark (0 without one) and says so: the position must not stay open, and live the broker's
    positions after expiry correct it (reconciliation)."""
    what = combo.key if combo is not None else contract.key
    if underlying_price is None or underlying_price <= 0:
        price = max(ZERO, last_mark or ZERO)
        return Settlement(price, None, f"expired {contract.expiry}: {what} settled at its last mark {price} "
                                       f"(no {contract.underlying} price known)")
    price = combo_value(combo, underlying_price) if combo is not None else intrinsic(contract, underlying_price)
    how = "worthless" if price <= 0 else "at intrinsic value"
    return Settlement(price, underlying_price, f"expired {contract.expiry}: {what} settled {how} {price} "
                                               f"({contract.underlying} last {underlying_price})")
