"""What the market looks like at one evaluation, as a value the daemon assembles."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from exits.numbers import require_price
from market.session import SessionTimes


@dataclass(frozen=True, slots=True)
class MarketSnapshot:
    """`option_price` is the premium mark (None: no usable quote); `session` is the session of
    the evaluation's exchange date (None on a non-trading day); `previous_underlying_close`
    is the underlying's close of the last session that ended before now (overnight check)."""

    option_price: Decimal | None
    session: SessionTimes | None
    underlying_price: Decimal | None = None
    vix: Decimal | None = None
    earnings_date: date | None = None
    previous_underlying_close: Decimal | None = None
    # SPEC §10.1: today's macro releases ("fomc 2024-03-20 14:00 ET"), looked up by the shell; empty
    # on an ordinary day. On a macro day 0dte targets are scaled by regime.events.macro_day_target_scale.
    macro_events: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("option_price", "underlying_price", "vix", "previous_underlying_close"):
            value = getattr(self, name)
            if value is not None:
                require_price(value, name, "bad_market")
