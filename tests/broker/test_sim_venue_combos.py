"""SimVenue and combo (BAG) orders (SPEC §9): all legs or none, at every leg's touch; a refused
combo leaves no leg open."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from decimal import Decimal as D

import pytest

from broker.base import BrokerError
from broker.quotes import QuoteBook
from broker.sim_venue import SimVenue
from broker.working import Place
from market.types import ComboLeg, Fill, OrderRequest, OrderStatus, OrderUpdate
from tests.broker.helpers import T0, contract, quote, settings

S = settings("0dte")
CALL, PUT = contract("270", "C"), contract("270", "P")
SP, LP, SC, LC = contract("265", "P"), contract("263", "P"), contract("275", "C"), contract("277", "C")
STRADDLE = (ComboLeg(CALL, "BUY"), ComboLeg(PUT, "BUY"))
CONDOR = (ComboLeg(SP, "SELL"), ComboLeg(LP, "BUY"), ComboLeg(SC, "SELL"), ComboLeg(LC, "BUY"))


def combo(order_id, legs, side="BUY", qty=5, limit="2.50"):
    return OrderRequest(order_id, f"tradingd:0dte:c:{order_id}", legs[0].contract, side, qty, "LMT", D(limit),
                        legs=legs)


class Desk:
    def __init__(self, cash=None):
        self.book = QuoteBook()
        self.venue = SimVenue(S.broker.sim, quotes=self.book, cash=D(60000) if cash is None else cash)
        self.now = T0

    def tick(self, c, bid, ask, size=50):
        self.now += timedelta(milliseconds=1)
        q = quote(c.key, bid, ask, at=self.now, size=size)
        self.book.update(q)
        self.venue.on_quote(q, self.now)

    def send(self, request):
        self.venue.place(Place(request), self.now)
        self.now += timedelta(seconds=1)
        self.venue.advance(self.now)

    def events(self):
        return self.venue.take_events()

    def held(self):
        return {p.contract.key: p.quantity for p in self.venue.positions()}


def test_a_straddle_fills_every_leg_at_its_touch_or_not_at_all():
    d = Desk()
    d.tick(CALL, "1.20", "1.25")
    d.send(combo(1, STRADDLE, limit="2.40"))  # the net ask is 1.25 + 1.30... not yet: the put has no quote
    assert [e for e in d.events() if isinstance(e, Fill)] == []
    assert d.held() == {}
    d.tick(PUT, "1.10", "1.30")  # net ask 2.55 > 2.40: rests
    assert [e for e in d.events() if isinstance(e, Fill)] == []
    d.tick(PUT, "1.10", "1.15")  # net ask 2.40: both legs fill, at their own asks
    fills = [e for e in d.events() if isinstance(e, Fill)]
    assert [(f.contract.key, f.side, f.quantity, f.price) for f in fills] == [
        (CALL.key, "BUY", 5, D("1.25")), (PUT.key, "BUY", 5, D("1.15"))]
    assert len({f.order_id for f in fills}) == 1 and len({f.exec_id for f in fills}) == 2
    assert d.held() == {CALL.key: 5, PUT.key: 5}


def test_a_condor_bought_at_a_negative_net_limit_fills_at_a_credit_and_sells_back():
    d = Desk()
    for c, bid, ask in ((SP, "1.00", "1.05"), (LP, "0.40", "0.45"), (SC, "0.90", "0.95"), (LC, "0.30", "0.35")):
        d.tick(c, bid, ask)
    d.send(combo(1, CONDOR, limit="-1.10", qty=3))  # net at the touch: -1.00 + 0.45 - 0.90 + 0.35 = -1.10
    fills = [e for e in d.events() if isinstance(e, Fill)]
    assert {f.contract.key: (f.side, f.quantity) for f in fills} == {
        SP.key: ("SELL", 3), LP.key: ("BUY", 3), SC.key: ("SELL", 3), LC.key: ("BUY", 3)}
    assert d.held() == {SP.key: -3, LP.key: 3, SC.key: -3, LC.key: 3}
    d.send(combo(2, CONDOR, side="SELL", qty=3, limit="-1.20"))  # paying 1.20 to close: the touch asks 1.30
    assert [e for e in d.events() if isinstance(e, Fill)] == [] and len(d.held()) == 4
    d.venue.cancel(2, d.now)
    d.send(combo(3, CONDOR, side="SELL", qty=3, limit="-1.30"))  # closing: buy shorts at ask, sell wings at bid
    closing = [e for e in d.events() if isinstance(e, Fill)]
    assert {f.contract.key: f.side for f in closing} == {SP.key: "BUY", LP.key: "SELL", SC.key: "BUY",
                                                         LC.key: "SELL"}
    assert d.held() == {}


def test_units_are_capped_by_the_thinnest_leg_and_every_leg_moves_together():
    d = Desk()
    d.tick(CALL, "1.20", "1.25", size=50)
    d.tick(PUT, "1.10", "1.15", size=3)  # 3 puts shown
    d.send(combo(1, STRADDLE, qty=10, limit="2.40"))
    per_leg = defaultdict(int)
    for f in (e for e in d.events() if isinstance(e, Fill)):
        per_leg[f.contract.key] += f.quantity
    assert dict(per_leg) == {CALL.key: 3, PUT.key: 3}
    assert d.held() == {CALL.key: 3, PUT.key: 3}


@pytest.mark.parametrize("request_, reason", [
    (combo(1, STRADDLE, qty=100, limit="2.40"), "insufficient_funds"),  # 100 x 240 = 24,000 > 20,000 cash
    (combo(2, (ComboLeg(SP, "SELL"), ComboLeg(SC, "SELL")), limit="-1.90"), "would_open_short"),  # naked
    (combo(3, STRADDLE, side="SELL", limit="2.00"), "would_open_short"),  # closing what is not held
])
def test_a_refused_combo_leaves_no_leg_open(request_, reason):
    d = Desk(cash=D(20000))
    for c in (CALL, PUT, SP, SC):
        d.tick(c, "1.10", "1.20")
    d.send(request_)
    events = d.events()
    assert not [e for e in events if isinstance(e, Fill)]
    [update] = [e for e in events if isinstance(e, OrderUpdate)]
    assert update.status is OrderStatus.REJECTED and update.reason == reason
    assert d.held() == {} and d.venue.cash == D(20000)


def test_a_combo_order_is_checked_as_a_combo():
    d = Desk()
    with pytest.raises(BrokerError) as bad:
        d.venue.place(combo(1, (ComboLeg(CALL, "BUY"), ComboLeg(CALL, "SELL"))), d.now)
    assert bad.value.code == "bad_combo"
    with pytest.raises(BrokerError) as stop:
        d.venue.place(OrderRequest(2, "tradingd:0dte:c:2", CALL, "SELL", 1, "STP", None, D("1.00"), legs=STRADDLE),
                      d.now)
    assert stop.value.code == "combo_order_type"
