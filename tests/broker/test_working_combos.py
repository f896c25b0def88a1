"""Working with a combo parent (SPEC §9): sliced and repriced like one option, in the combo's value
space (market.combo), its children BAG orders at net limits (negative for a condor's credit)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

from broker.parent import ParentOrder
from broker.working import Modify, Place, Working
from market.combo import Combo, combo_quote
from market.types import ComboLeg
from tests.broker.helpers import T0, contract, quote, settings

S = settings("0dte")
SP, LP, SC, LC = contract("265", "P"), contract("263", "P"), contract("275", "C"), contract("277", "C")
CONDOR = Combo("neutral", "iron_condor", (ComboLeg(SP, "SELL"), ComboLeg(LP, "BUY"), ComboLeg(SC, "SELL"),
                                          ComboLeg(LC, "BUY")), D(2))


class Book:
    def __init__(self):
        self.quotes = {}

    def get(self, key):
        return self.quotes.get(key)

    def legs(self, at, spread="0.10"):
        half = D(spread) / 2
        for c, mid in ((SP, D("1.00")), (LP, D("0.40")), (SC, D("0.90")), (LC, D("0.30"))):
            self.quotes[c.key] = quote(c.key, str(mid - half), str(mid + half), at=at, size=20)
        combined = combo_quote(CONDOR, self.get)
        self.quotes[combined.key] = combined  # the core keeps it from the legs (QuoteTable.put_derived)
        return combined


def test_a_condor_parent_is_sliced_and_walked_in_value_space_with_net_limits():
    book = Book()
    combined = book.legs(T0)
    # value bid/ask: 2 - (1.05 + 0.95 - 0.35 - 0.25) = 0.60 .. 2 - (0.95 + 0.85 - 0.45 - 0.35) = 1.00; mid 0.80
    assert (combined.bid, combined.ask, combined.mid) == (D("0.60"), D("1.00"), D("0.80"))
    assert combined.bid_size == combined.ask_size == 20
    working = Working(S.execution, quotes=book, max_quote_age_s=S.liquidity.max_quote_age_s)
    ids = iter(range(1, 100))
    working.start(ParentOrder("0dte", "n1", SP, "BUY", 200, combo=CONDOR), T0, lambda: next(ids))
    [place] = working.take_commands()
    assert isinstance(place, Place)
    request = place.request
    assert request.legs == CONDOR.legs and request.contract == SP
    assert request.limit_price == D("-1.20")  # value mid 0.80 - width 2: a credit of 1.20
    assert request.quantity == 10  # 200 units x 0.80 x 100 = 16,000 > the 5,000 threshold: sliced
    later = T0 + timedelta(seconds=float(S.execution.reprice_s))
    book.legs(later)
    working.on_timer(later)
    [modify] = working.take_commands()
    assert isinstance(modify, Modify) and modify.request.legs == CONDOR.legs
    # one step toward the far touch is 25% of the 0.40 spread, held by the 3% band of |mid| (0.824): 0.82
    assert modify.request.limit_price == D("0.82") - CONDOR.value_offset
