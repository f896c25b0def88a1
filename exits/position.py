"""The open position the exit rules look after, as a value."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from exits.errors import ExitInputError
from exits.numbers import require_price
from risk.numbers import MAX_MAGNITUDE

Profile = Literal["0dte", "7dte"]
Right = Literal["C", "P"]


@dataclass(frozen=True, slots=True)
class ExitPosition:
    """A long option position.

    `original_quantity` is what tier shares are measured against (entry plus any scale-in);
    `open_quantity` is what the broker still holds. `right` tells which underlying move is
    adverse overnight: down for a call, up for a put.
    """

    entry_price: Decimal
    entry_time: datetime
    original_quantity: int
    open_quantity: int
    expiry: date
    underlying: str
    profile: Profile
    right: Right = "C"
    # Which overnight move of the underlying hurts (SPEC §5.3's gap watch): "" = by `right` (down for a
    # call, up for a put); a combo says its own (SPEC §9): "none" for long premium on both sides (a
    # straddle gains on any gap), "both" for an iron condor (any gap runs at a short strike).
    adverse_gap: Literal["", "down", "up", "both", "none"] = ""

    def __post_init__(self) -> None:
        require_price(self.entry_price, "entry_price")
        if self.entry_time.tzinfo is None:
            raise ExitInputError("bad_position", "entry_time must be timezone-aware")
        for name in ("original_quantity", "open_quantity"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_MAGNITUDE:
                raise ExitInputError("bad_position", f"{name} must be a whole number in [0, {MAX_MAGNITUDE}], "
                                                     f"got {value!r}")
        if self.original_quantity < 1:
            raise ExitInputError("bad_position", "original_quantity must be at least 1")
        if self.open_quantity > self.original_quantity:
            raise ExitInputError("bad_position", f"open_quantity {self.open_quantity} exceeds "
                                                 f"original_quantity {self.original_quantity}")
        if self.profile not in ("0dte", "7dte"):
            raise ExitInputError("bad_position", f"unknown profile {self.profile!r}")
        if self.adverse_gap not in ("", "down", "up", "both", "none"):
            raise ExitInputError("bad_position", f"adverse_gap must be down, up, both or none, got {self.adverse_gap!r}")
        if self.right not in ("C", "P"):
            raise ExitInputError("bad_position", f"right must be 'C' or 'P', got {self.right!r}")
        if not self.underlying:
            raise ExitInputError("bad_position", "underlying is empty")
