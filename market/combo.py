"""A multi-leg position's instrument (SPEC §9): its legs, its key and its quote, as values.

The daemon trades a combo as one instrument whose price is its **value**: the net price of the
combo (Σ over legs of side × ratio × leg price, positive for a debit, negative for a credit)
plus the combo's `value_offset`:

- a debit combo (long straddle, long strangle) has offset 0: its value is the debit, and the
  most it can lose is what was paid;
- a credit combo (iron condor, bought as a negative net price) has offset = the wing width:
  its value is width − cost to close, in [0, width]; opened at width − credit = its maximum loss.

So an entry's "premium" is its maximum loss for every family (SPEC §1: exposure and bet are max
loss for defined-risk spreads), P&L is value bought − value sold exactly as for one option, and
the sizing, ledger, breakers and exit machinery run unchanged on values. Only the venue sees net
prices: `net = value − value_offset` on the way out, `value = net + value_offset` on the way in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from market.types import ComboLeg, OptionContract, Quote, Side, combo_key

COMBO_SEP = "|"
ZERO = Decimal(0)
Lookup = Callable[[str], "Quote | None"]


def is_combo_key(key: str) -> bool:
    return COMBO_SEP in key


def parse_combo_key(key: str, multiplier: int = 100) -> tuple[ComboLeg, ...]:
    """The legs of `combo_key(legs)`; raises ValueError on anything else."""
    legs = []
    for part in key.split(COMBO_SEP):
        head, _, rest = part.partition(" ")
        if not head or head[0] not in "+-" or not head[1:].isdigit() or not rest:
            raise ValueError(f"bad combo leg {part!r} in {key!r}")
        side: Side = "BUY" if head[0] == "+" else "SELL"
        legs.append(ComboLeg(OptionContract.from_key(rest, multiplier), side, int(head[1:])))
    if len(legs) < 2:
        raise ValueError(f"a combo has at least two legs: {key!r}")
    return tuple(legs)


@dataclass(frozen=True, slots=True)
class Combo:
    """One combo as the daemon holds it: its strategy family, legs and value offset."""

    strategy: str  # volatility | neutral (the signal's strategy); `structure` says which shape
    structure: str  # straddle | strangle | iron_condor
    legs: tuple[ComboLeg, ...]
    value_offset: Decimal = ZERO

    @property
    def key(self) -> str:
        return combo_key(self.legs)

    @property
    def contract(self) -> OptionContract:
        return self.legs[0].contract

    @property
    def credit(self) -> bool:
        return self.value_offset > 0

    @property
    def adverse_gap(self) -> str:
        """Which overnight move hurts (the 7dte gap watch): none for long premium on both sides, both
        for a condor or anything else."""
        return "none" if self.structure in ("straddle", "strangle") else "both"

    def net(self, value: Decimal) -> Decimal:
        return value - self.value_offset

    def value(self, net: Decimal) -> Decimal:
        return net + self.value_offset

    def to_record(self) -> dict[str, object]:
        return {"strategy": self.strategy, "structure": self.structure, "value_offset": str(self.value_offset),
                "legs": [{"contract": leg.contract.key, "side": leg.side, "ratio": leg.ratio} for leg in self.legs]}

    @staticmethod
    def from_record(data: dict[str, object], multiplier: int = 100) -> Combo:
        legs = tuple(ComboLeg(OptionContract.from_key(str(leg["contract"]), multiplier), leg["side"],  # type: ignore[index]
                              int(leg.get("ratio", 1)))  # type: ignore[union-attr]
                     for leg in data["legs"])  # type: ignore[union-attr]
        return Combo(str(data["strategy"]), str(data["structure"]), legs, Decimal(str(data["value_offset"])))


def net_touch(legs: tuple[ComboLeg, ...], quotes: list[Quote], side: Side) -> Decimal | None:
    """What trading one unit of the combo `side` at the touch costs (net, per share): a BUY pays the
    ask of its BUY legs and gets the bid of its SELL legs; a SELL the reverse. A leg sold with no
    bid goes for 0 (a worthless wing inside a combo: the combo is priced whole); a leg bought
    with no ask cannot be bought (None)."""
    total = ZERO
    for leg, quote in zip(legs, quotes):
        leg_side = leg.side_for(side)
        price = leg_touch(quote, leg_side)
        if price is None:
            return None
        total += (price if leg.side == "BUY" else -price) * leg.ratio
    return total


def leg_touch(quote: Quote, side: Side) -> Decimal | None:
    """Where one leg trades `side` at the touch: the ask to buy; the bid (0 when none) to sell."""
    if side == "BUY":
        return quote.ask if quote.ask is not None and quote.ask > 0 else None
    return quote.bid if quote.bid is not None and quote.bid > 0 else ZERO


def combo_quote(combo: Combo, lookup: Lookup) -> Quote | None:
    """The combo's quote in value space from its legs' quotes (None while a leg has none).

    bid = what selling one unit gets, ask = what buying one costs (plus the offset); the sizes are
    what every leg shows at those touches, in units; the time is the oldest leg's (the combo is as
    stale as its stalest leg); usable only when every leg is; greeks Σ side × ratio × leg greek."""
    quotes = []
    for leg in combo.legs:
        quote = lookup(leg.contract.key)
        if quote is None:
            return None
        quotes.append(quote)
    bid_net = net_touch(combo.legs, quotes, "SELL")
    ask_net = net_touch(combo.legs, quotes, "BUY")
    bid = None if bid_net is None else combo.value(bid_net)
    ask = None if ask_net is None else combo.value(ask_net)
    mid = None if bid is None or ask is None else (bid + ask) / 2
    bid_size = min(((q.bid_size if leg.side == "BUY" else q.ask_size) // leg.ratio
                    for leg, q in zip(combo.legs, quotes)), default=0)
    ask_size = min(((q.ask_size if leg.side == "BUY" else q.bid_size) // leg.ratio
                    for leg, q in zip(combo.legs, quotes)), default=0)
    return Quote(combo.key, bid, ask, mid, min(q.received_at for q in quotes), bid_size=bid_size,
                 ask_size=ask_size, delta=_greek(combo.legs, quotes, "delta"),
                 gamma=_greek(combo.legs, quotes, "gamma"), modelled=any(q.modelled for q in quotes),
                 usable=all(q.usable for q in quotes), delayed=any(q.delayed for q in quotes))


def _greek(legs: tuple[ComboLeg, ...], quotes: list[Quote], name: str) -> Decimal | None:
    total = ZERO
    for leg, quote in zip(legs, quotes):
        value = getattr(quote, name)
        if value is None:
            return None
        total += (value if leg.side == "BUY" else -value) * leg.ratio
    return total


def leg_units(legs: tuple[ComboLeg, ...], filled: dict[str, int]) -> int:
    """Whole combo units filled: the minimum over legs of leg contracts filled / ratio."""
    return min((filled.get(leg.contract.key, 0) // leg.ratio for leg in legs), default=0)


def payoff(legs: tuple[ComboLeg, ...], spot: Decimal) -> Decimal:
    """What one unit bought is worth at expiry with the underlying at `spot` (per share)."""
    total = ZERO
    for leg in legs:
        k = leg.contract.strike
        intrinsic = max(ZERO, spot - k) if leg.contract.right == "C" else max(ZERO, k - spot)
        total += (intrinsic if leg.side == "BUY" else -intrinsic) * leg.ratio
    return total


def combo_from_legs(strategy: str, legs: tuple[ComboLeg, ...]) -> Combo:
    """A combo from its legs, its value offset the most one unit's payoff can fall below zero
    (0 for long premium; the widest wing for a condor). Raises ValueError `undefined_risk` when the
    loss has no floor (more calls sold than bought), as SPEC §1 sizes only defined risk."""
    if sum((leg.ratio if leg.side == "BUY" else -leg.ratio) for leg in legs if leg.contract.right == "C") < 0:
        raise ValueError("undefined_risk: more calls sold than bought, the loss has no floor")
    strikes = sorted({leg.contract.strike for leg in legs})
    floor = min(payoff(legs, s) for s in [ZERO, *strikes])  # piecewise linear: extremes at the kinks
    offset = max(ZERO, -floor)
    rights = sorted((leg.contract.right, leg.side) for leg in legs)
    if len(legs) == 2 and rights == [("C", "BUY"), ("P", "BUY")]:
        structure = "straddle" if strikes[0] == strikes[-1] else "strangle"
    elif len(legs) == 4 and rights == [("C", "BUY"), ("C", "SELL"), ("P", "BUY"), ("P", "SELL")]:
        structure = "iron_condor"
    else:
        structure = "custom"
    return Combo(strategy, structure, legs, offset)
