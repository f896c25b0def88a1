"""Combos at reconciliation (SPEC §9, §6.1): a BAG order's legs, held at the broker as separate positions,
are one combo position again by their orderRef.

IB reports a combo's fills per leg and lists its legs as unrelated positions (once filled, the legs are
plain options). What ties them together is the combo order: a working BAG order names its legs; an order
whose executions span several contracts was a combo. Pure functions over what the broker answered:

- `combo_groups` finds each combo of ours (its orderRefs, legs, each leg's sign and ratio);
- `units_filled` counts an order's fills in whole combo units (the legs of one unit are one unit, not two);
- `leg_problems` checks the broker's leg positions against each combo: every leg in its ratio and sign, or
  a leg is missing or extra, and the underlying is blocked for entries (adopt-or-block, §6.1).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from math import gcd

from market.combo import is_combo_key, parse_combo_key
from market.types import BrokerPosition, Fill, OpenOrder

LEGS_MISMATCH = "combo_legs_mismatch"  # a leg missing, extra or out of ratio at the broker
NOT_ADOPTABLE = "combo_not_adoptable"  # a combo the store does not know, with a short leg: never half-adopted


@dataclass(frozen=True, slots=True)
class ComboGroup:
    """One combo of ours: `legs` maps a contract key to (sign as bought: +1 BUY / -1 SELL, ratio)."""

    underlying: str
    order_refs: tuple[str, ...]
    legs: Mapping[str, tuple[int, int]]


@dataclass(frozen=True, slots=True)
class ComboMismatch:
    underlying: str
    order_refs: tuple[str, ...]
    reason: str
    broker_legs: tuple[tuple[str, int], ...]  # (contract key, quantity at the broker)
    expected: tuple[tuple[str, int], ...]  # (contract key, sign x ratio): the combo's shape


def _signed(fill: Fill) -> int:
    return fill.quantity if fill.side == "BUY" else -fill.quantity


def _fill_legs(fills: Iterable[Fill]) -> dict[str, tuple[int, int]]:
    """Legs as an order's fills show them: each contract's net signed quantity, reduced by their gcd."""
    net: dict[str, int] = defaultdict(int)
    for f in fills:
        net[f.contract.key] += _signed(f)
    common = 0
    for qty in net.values():
        common = gcd(common, abs(qty))
    return {key: (1 if qty > 0 else -1, abs(qty) // common) for key, qty in net.items() if qty and common}


def stored_legs(contract_key: str, open_qty: int, multiplier: int = 100) -> list[tuple[str, int]]:
    """What a stored position holds at the broker, contract by contract: a single option its open quantity;
    a combo (its row carries the combo's key, `+1 SPY ... C 470|-1 ...`) each leg's side x ratio x units."""
    if not is_combo_key(contract_key):
        return [(contract_key, open_qty)]
    return [(leg.contract.key, (1 if leg.side == "BUY" else -1) * leg.ratio * open_qty)
            for leg in parse_combo_key(contract_key, multiplier)]


def combo_groups(own_open: Iterable[OpenOrder], own_fills: Iterable[Fill]) -> list[ComboGroup]:
    """Our combos: every working order with legs, and every order whose executions span several contracts.
    Orders over the same contracts (the entry and its exits) are one combo."""
    found: dict[frozenset[str], tuple[str, set[str], dict[str, tuple[int, int]]]] = {}

    def add(underlying: str, ref: str, legs: dict[str, tuple[int, int]]) -> None:
        keys = frozenset(legs)
        if keys not in found:
            found[keys] = (underlying, set(), legs)
        found[keys][1].add(ref)

    for o in own_open:
        if o.request.legs:
            add(o.request.contract.underlying, o.request.order_ref,
                {leg.contract.key: (1 if leg.side == "BUY" else -1, leg.ratio) for leg in o.request.legs})
    by_order: dict[int, list[Fill]] = defaultdict(list)
    for f in own_fills:
        by_order[f.order_id].append(f)
    for fills in by_order.values():
        if len({f.contract.key for f in fills}) > 1:
            legs = _fill_legs(fills)
            if len(legs) > 1:
                add(fills[0].contract.underlying, fills[0].order_ref, legs)
    return [ComboGroup(u, tuple(sorted(refs)), legs) for u, refs, legs in found.values()]


def units_filled(fills: Iterable[Fill], legs: Mapping[str, tuple[int, int]] | None = None) -> int:
    """An order's filled quantity in its own units: contracts for a single option, whole combo units for a
    combo: the least-filled leg over its ratio. Without the combo's legs every leg counts at ratio 1 (the
    §9 combos, straddle, strangle and condor, all are): a leg filled ahead of the others is not a unit yet."""
    per_key: dict[str, int] = defaultdict(int)
    for f in fills:
        per_key[f.contract.key] += f.quantity
    if len(per_key) <= 1 and not (legs and len(legs) > 1):
        return sum(per_key.values())
    shape = legs or {key: (1, 1) for key in per_key}
    return min((per_key.get(key, 0) // ratio for key, (_, ratio) in shape.items()), default=0)


def leg_problems(groups: Iterable[ComboGroup], broker_positions: Iterable[BrokerPosition],
                 stored: Mapping[str, int]) -> list[ComboMismatch]:
    """Each combo's legs at the broker: n units of the combo's shape (every leg in ratio, signs as bought or
    all reversed), else LEGS_MISMATCH. A whole combo the store does not know is adopted only when every leg
    is long (a store position holds long contracts); otherwise NOT_ADOPTABLE. Combos sharing a contract are
    checked together by the per-contract comparison only (their legs cannot be told apart)."""
    held = {p.contract.key: p.quantity for p in broker_positions}
    groups = list(groups)
    shared = {k for g in groups for k in g.legs if sum(k in h.legs for h in groups) > 1}
    problems = []
    for g in groups:
        if shared & set(g.legs):
            continue
        at_broker = {key: held.get(key, 0) for key in g.legs}
        if not any(at_broker.values()):
            continue  # closed (or never filled): nothing held, nothing to check
        reason = None if _in_shape(at_broker, g.legs) else LEGS_MISMATCH
        if reason is None and not any(stored.get(key, 0) for key in g.legs) and any(q < 0 for q in at_broker.values()):
            reason = NOT_ADOPTABLE
        if reason is not None:
            problems.append(ComboMismatch(
                g.underlying, g.order_refs, reason, tuple(sorted(at_broker.items())),
                tuple(sorted((key, sign * ratio) for key, (sign, ratio) in g.legs.items()))))
    return problems


def _in_shape(at_broker: Mapping[str, int], legs: Mapping[str, tuple[int, int]]) -> bool:
    units = None
    for key, (sign, ratio) in legs.items():
        qty = at_broker[key]
        if qty == 0 or qty % ratio:
            return False
        n = qty // ratio * sign
        if units is None:
            units = n
        elif n != units:
            return False
    return True
