"""An expiry's settlement as the store keeps it (SPEC §6.3): the underlying's price each expiry was
settled from, one meta record per (underlying, expiry), written by the core when it settles.

The sim venue settles its paper account from these prices (`SimVenue.settle_expired`); a live sim
started again rebuilds that account from the stored fills, which hold no settlement, so it applies
these records as the venue did (`broker.sim.account_state_from_history`). A record without a price
(the core knew none) settles at 0, as the venue does for an underlying it was given no price for.
In `market/` (the leaf) so the core writes and the sim reads one format.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation

PREFIX = "expiry_settlement:"
Settlements = Mapping[tuple[str, date], Decimal | None]  # (underlying, expiry) -> its settlement price


def key(underlying: str, expiry: date) -> str:
    return f"{PREFIX}{underlying}:{expiry.isoformat()}"


def value(price: Decimal | None) -> str:
    return "" if price is None else str(price)


def parse(records: Mapping[str, str]) -> dict[tuple[str, date], Decimal | None]:
    """The settlements among meta records (key -> value); anything else, or unreadable, is left out."""
    out: dict[tuple[str, date], Decimal | None] = {}
    for name, text in records.items():
        if not name.startswith(PREFIX):
            continue
        underlying, _, day = name[len(PREFIX):].rpartition(":")
        try:
            out[(underlying, date.fromisoformat(day))] = Decimal(text) if text else None
        except (ValueError, InvalidOperation):
            continue
    return out
