"""`--leg SIDE:RIGHT:STRIKE:PRICE` for `tradingd size` and `tradingd exits` (SPEC §9): a combo's legs
as the operator writes them (`--leg sell:P:445:1.00 --leg buy:P:443:0.40 ...`), each leg's side as
when the combo is bought, its price per share; the combo, its net entry and its value (max loss)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from daemon.cli import UsageError
from market.combo import Combo, combo_from_legs
from market.types import ComboLeg, OptionContract

HELP = ("a combo leg SIDE:RIGHT:STRIKE:PRICE (buy|sell, C|P, strike, price per share), as when the combo is "
        "bought; repeat for every leg (SPEC §9)")


def add_leg_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--leg", action="append", default=[], metavar="SIDE:RIGHT:STRIKE:PRICE", help=HELP)


@dataclass(frozen=True)
class LegEntry:
    combo: Combo
    prices: tuple[Decimal, ...]

    @property
    def net(self) -> Decimal:
        """Net price per unit (negative: a credit)."""
        return sum(((p if leg.side == "BUY" else -p) * leg.ratio for leg, p in zip(self.combo.legs, self.prices)),
                   Decimal(0))

    @property
    def value(self) -> Decimal:
        """The value the unit is sized and exited at: its maximum loss (market.combo)."""
        return self.combo.value(self.net)

    def lines(self) -> list[str]:
        out = [f"combo {self.combo.structure} ({self.combo.strategy}):"]
        for leg, price in zip(self.combo.legs, self.prices):
            out.append(f"  {leg.side:<4} {leg.ratio} x {leg.contract.right} {leg.contract.strike} at {price}")
        kind = "credit" if self.net < 0 else "debit"
        out.append(f"  net {kind} {abs(self.net)} per share; max loss per unit {self.value * self.combo.contract.multiplier}")
        return out

    def record(self) -> dict[str, object]:
        return {**self.combo.to_record(), "prices": [str(p) for p in self.prices], "net": str(self.net),
                "max_loss_per_share": str(self.value)}


def parse_legs(texts: list[str], strategy: str, underlying: str, expiry: date, multiplier: int = 100) -> LegEntry:
    if len(texts) < 2:
        raise UsageError("a combo needs at least two --leg", "invalid_leg")
    legs, prices = [], []
    for text in texts:
        parts = text.split(":")
        if len(parts) != 4 or parts[0].lower() not in ("buy", "sell") or parts[1].upper() not in ("C", "P"):
            raise UsageError(f"--leg must be SIDE:RIGHT:STRIKE:PRICE (buy|sell, C|P), got {text!r}", "invalid_leg")
        try:
            strike, price = Decimal(parts[2]), Decimal(parts[3])
        except InvalidOperation:
            raise UsageError(f"--leg {text!r}: strike and price must be numbers", "invalid_leg") from None
        if not (strike.is_finite() and strike > 0 and price.is_finite() and price >= 0):
            raise UsageError(f"--leg {text!r}: strike must be positive, price not negative", "invalid_leg")
        legs.append(ComboLeg(OptionContract(underlying, expiry, strike, parts[1].upper(), multiplier),  # type: ignore[arg-type]
                             "BUY" if parts[0].lower() == "buy" else "SELL"))
        prices.append(price)
    if len({leg.contract.key for leg in legs}) != len(legs):
        raise UsageError("--leg: the same option twice", "invalid_leg")
    try:
        combo = combo_from_legs(strategy, tuple(legs))
    except ValueError as exc:
        raise UsageError(f"--leg: {exc}", "undefined_risk") from None
    entry = LegEntry(combo, tuple(prices))
    if entry.value <= 0:
        raise UsageError(f"--leg: the combo can lose nothing at {entry.net} (value {entry.value}): no bet to size",
                         "invalid_leg")
    return entry
