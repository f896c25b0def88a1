"""A combo's per-leg executions folded into whole units (SPEC §9), deterministically.

A combo order fills per leg (IB reports one execution per leg; the sim too). The position moves
by whole combo units only: units filled = min over legs of (leg contracts filled / ratio). When
that count rises, one unit fill comes out: the combo order's id and ref, `quantity` the new units,
`price` their value (market.combo) from the legs' average prices so far, the legs' commissions
since the last unit fill. Its exec id `COMBO-<order id>-<units so far>` is the same on every
replay and never collides with a venue's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from market.combo import Combo, leg_units
from market.types import Fill

ZERO = Decimal(0)


@dataclass
class _Order:
    qty: dict[str, int] = field(default_factory=dict)  # leg key -> contracts filled
    notional: dict[str, Decimal] = field(default_factory=dict)  # leg key -> Σ price × contracts
    units: int = 0
    net_applied: Decimal = ZERO  # Σ net price × units already handed out
    commission: Decimal = ZERO  # not yet handed out


class ComboFills:
    def __init__(self) -> None:
        self._orders: dict[int, _Order] = {}

    def add(self, combo: Combo, fill: Fill) -> Fill | None:
        """Take one leg execution; the unit fill it completes, or None (a leg ahead of the others)."""
        legs = {leg.contract.key: leg for leg in combo.legs}
        leg = legs.get(fill.contract.key)
        if leg is None:
            raise ValueError(f"fill {fill.exec_id}: {fill.contract.key} is not a leg of {combo.key}")
        if fill.side != leg.side and fill.side != ("SELL" if leg.side == "BUY" else "BUY"):
            raise ValueError(f"fill {fill.exec_id}: side {fill.side!r}")
        state = self._orders.setdefault(fill.order_id, _Order())
        key = fill.contract.key
        state.qty[key] = state.qty.get(key, 0) + fill.quantity
        state.notional[key] = state.notional.get(key, ZERO) + fill.price * fill.quantity
        state.commission += fill.commission
        units = leg_units(combo.legs, state.qty)
        if units <= state.units:
            return None
        # the net price of `units` units at the legs' average prices, less what earlier units carried
        net_total = sum(((state.notional[k] / state.qty[k]) * legs[k].ratio * units * (1 if legs[k].side == "BUY" else -1)
                         for k in legs), ZERO)
        new = units - state.units
        price = combo.value((net_total - state.net_applied) / new)
        state.units, state.net_applied = units, net_total
        commission, state.commission = state.commission, ZERO
        side = "BUY" if fill.side == leg.side else "SELL"  # the combo's side: the leg's, or its reverse
        return Fill(f"COMBO-{fill.order_id}-{units:06d}", fill.order_id, fill.order_ref, combo.contract, side, new,
                    price, fill.at, commission)

    def units(self, order_id: int) -> int:
        state = self._orders.get(order_id)
        return 0 if state is None else state.units
