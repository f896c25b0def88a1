"""Fault injection in the sim: bids withheld for a stretch (a gap where buyers pulled their bids)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

from broker.quotes import QuoteBook
from broker.sim import SimBroker
from market.types import OrderRequest
from market.clock import VirtualClock
from tests.broker.helpers import T0, Recorder, advance, contract, quote, settings

C = contract("270", "C")


def order(order_id: int, side: str, limit: str) -> OrderRequest:
    return OrderRequest(order_id, f"tradingd:0dte:f{order_id}:1", C, side, 5, "LMT", D(limit))  # type: ignore[arg-type]


def tick(book: QuoteBook, clock: VirtualClock, bid: str, ask: str) -> None:
    book.update(quote(C.key, bid, ask, at=clock.now() + timedelta(milliseconds=1)))


async def test_sells_rest_while_the_bids_are_withheld_and_fill_when_they_return():
    clock, book = VirtualClock(T0), QuoteBook()
    sim = SimBroker(book, clock, settings("0dte"))
    rec = Recorder()
    sim.set_listener(rec)
    await sim.start()
    tick(book, clock, "1.90", "2.00")
    await sim.place(order(1, "BUY", "2.00"))
    await advance(clock, 0.1)
    sim.withhold_bids(C.key, until=T0 + timedelta(seconds=10))
    await sim.place(order(2, "SELL", "1.80"))
    await advance(clock, 0.1)
    tick(book, clock, "1.85", "1.95")
    assert [f.order_id for f in rec.fills] == [1], "nothing trades against a withheld bid"
    await sim.place(order(3, "BUY", "1.95"))  # the offers are still there
    await advance(clock, 0.1)
    assert [f.order_id for f in rec.fills] == [1, 3]
    await clock.advance_to(T0 + timedelta(seconds=10))
    tick(book, clock, "1.84", "1.94")
    assert [(f.order_id, f.price) for f in rec.fills][-1] == (2, D("1.84")), "the resting sell fills when bids return"
    sim.withhold_bids(C.key, until=T0 + timedelta(hours=1))
    sim.withhold_bids(C.key, until=None)  # lifted at once
    await sim.place(order(4, "SELL", "1.80"))
    await advance(clock, 0.1)
    assert rec.fills[-1].order_id == 4
    await sim.stop()
