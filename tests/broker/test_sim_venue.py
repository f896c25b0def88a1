"""SimVenue: the sim exchange, synchronous and deterministic (SPEC §4.3, §6.4)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest

from broker.base import BrokerError
from broker.quotes import QuoteBook
from broker.sim import starting_cash
from broker.sim_venue import RestingOrder, SimAccountState, SimVenue
from broker.working import Cancel, Modify, Place
from market.types import BrokerPosition, Fill, OrderRequest, OrderStatus, OrderUpdate
from tests.broker.helpers import T0, contract, quote, settings

S = settings("0dte")
C = contract("270", "C")
KEY = C.key
MS = timedelta(milliseconds=1)


def order(order_id, side="BUY", qty=10, limit="2.00", kind="LMT", stop=None):
    return OrderRequest(order_id, f"tradingd:0dte:s:{order_id}", C, side, qty, kind,
                        None if limit is None else D(limit), None if stop is None else D(stop))


class Desk:
    def __init__(self, session=""):
        self.book = QuoteBook()
        self.venue = SimVenue(S.broker.sim, quotes=self.book, cash=starting_cash(S), session=session)
        self.now = T0

    def tick(self, bid, ask, size=50, after=MS):
        self.now += after
        q = quote(KEY, bid, ask, at=self.now, size=size)
        self.book.update(q)
        self.venue.on_quote(q, self.now)

    def send(self, request):
        self.venue.place(Place(request), self.now)

    def wait(self, seconds=0.1):
        self.now += timedelta(seconds=seconds)
        self.venue.advance(self.now)

    def fills(self):
        return [e for e in self.venue.take_events() if isinstance(e, Fill)]


def test_an_order_reaches_the_exchange_after_the_latency_as_a_scheduled_event():
    d = Desk()
    d.tick("1.95", "2.00")
    d.send(order(1))
    assert d.venue.next_deadline() == d.now + timedelta(milliseconds=50)
    d.venue.advance(d.now + timedelta(milliseconds=49))
    assert d.venue.take_events() == []
    d.venue.advance(d.now + timedelta(seconds=3))  # carried out at the moment it was due, not at 3 s
    events = d.venue.take_events()
    assert [type(e) for e in events] == [OrderUpdate, Fill, OrderUpdate]
    assert events[1].at == d.now + timedelta(milliseconds=50) and events[1].price == D("2.00")
    assert events[2].status is OrderStatus.FILLED and d.venue.next_deadline() is None


def test_never_fills_beyond_the_displayed_size_nor_an_order_twice():
    d = Desk()
    d.tick("1.95", "2.00", size=6)
    d.send(order(1, qty=4))
    d.send(order(2, qty=4))
    d.wait()
    assert [(f.order_id, f.quantity) for f in d.fills()] == [(1, 4), (2, 2)]  # one quote shows 6 once
    same = d.book.get(KEY)
    d.venue.on_quote(same, d.now)  # the same quote again offers nothing more
    assert d.fills() == []
    d.tick("1.95", "2.00", size=6)
    d.tick("1.95", "2.00", size=6)
    assert [(f.order_id, f.quantity) for f in d.fills()] == [(2, 2)]  # order 1 is done: never again
    fills = d.venue.executions()
    assert sum(f.quantity for f in fills) == 8 and len({f.exec_id for f in fills}) == len(fills)
    assert d.venue.positions() == [BrokerPosition(C, 8, D("2.00"))]


def test_commands_modify_and_cancel_and_refusals():
    d = Desk()
    d.tick("1.90", "2.00")
    d.send(order(1, limit="1.95"))
    d.wait()
    d.venue.modify(Modify(order(1, limit="2.00")), d.now)
    d.wait()
    assert d.fills()[-1].order_id == 1
    d.send(order(2, limit="1.95"))
    d.wait()
    d.venue.cancel(Cancel(2), d.now)
    d.wait()
    assert d.venue.take_events()[-1].status is OrderStatus.CANCELLED
    for call in (lambda: d.venue.cancel(Cancel(2), d.now), lambda: d.venue.modify(order(2), d.now),
                 lambda: d.venue.cancel(99, d.now)):
        with pytest.raises(BrokerError) as err:
            call()
        assert err.value.code in ("order_not_working", "unknown_order")
    with pytest.raises(BrokerError, match="duplicate_order_id"):
        d.send(order(1))
    d.send(order(3, qty=1000))  # beyond cash
    d.send(order(4, side="SELL", qty=20, limit="1.90"))  # more than held
    d.wait()
    assert [(u.order_id, u.reason) for u in d.venue.take_events()] == [
        (3, "insufficient_funds"), (4, "would_open_short")]
    assert d.venue.next_order_id == 5


def test_execution_ids_are_derived_from_the_order_and_the_same_on_every_run():
    def run(session=""):
        d = Desk(session)
        d.tick("1.95", "2.00", size=5)
        d.send(order(7, qty=12))
        d.wait()
        d.tick("1.95", "2.00", size=5)
        d.tick("1.95", "2.00", size=5)
        return [f.exec_id for f in d.venue.executions()]

    assert run() == run() == ["SIM-00000007-000005", "SIM-00000007-000010", "SIM-00000007-000012"]
    assert run("live1")[0] == "SIM-live1-00000007-000005"


def test_a_restored_resting_order_never_repeats_an_execution_id():
    d = Desk()
    d.tick("1.95", "2.00", size=5)
    d.send(order(7, qty=12))
    d.wait()
    [before] = d.venue.executions()
    state = SimAccountState((BrokerPosition(C, 5, D("2.00")),), d.venue.cash,
                            (RestingOrder(order(7, qty=12), 5, D("10.00"), D("3.25")),))
    again = Desk()
    again.venue.restore(state)
    again.tick("1.95", "2.00", size=50)
    [after] = again.fills()
    assert after.quantity == 7 and after.exec_id != before.exec_id
    assert after.commission == D("7.80") - D("3.25")
    with pytest.raises(BrokerError, match="restore_too_late"):
        again.venue.restore(SimAccountState())


def test_resting_stop_and_withheld_bids():
    d = Desk()
    d.tick("1.90", "2.00")
    d.send(order(1, qty=10))
    d.wait()
    d.send(order(2, side="SELL", qty=10, limit=None, kind="STP", stop="1.50"))
    d.wait()
    d.venue.withhold_bids(KEY, d.now + timedelta(seconds=5))
    d.tick("1.45", "1.55")  # triggered, but no bid to sell to
    assert d.fills()[-1].order_id == 1
    d.tick("1.44", "1.54", after=timedelta(seconds=5))
    assert [(f.order_id, f.price) for f in d.fills()] == [(2, D("1.44"))]
    assert d.venue.positions() == [] and d.venue.open_orders() == []


def test_a_quote_on_a_key_where_nothing_rests_does_no_matching_work(monkeypatch):
    d = Desk()
    d.tick("1.90", "2.00")
    for i in range(1, 200):
        d.send(order(i, qty=1, limit="1.00"))  # 199 orders rest on another key
    d.wait()
    d.venue.take_events()
    calls = []
    monkeypatch.setattr(d.venue, "_match", lambda order, quote: calls.append(order))
    d.venue.on_quote(quote("QQQ 20190212 C 170", "1.00", "1.10", at=d.now), d.now)
    assert calls == []
    d.venue.on_quote(quote(KEY, "1.90", "2.00", at=d.now), d.now)
    assert len(calls) == 199  # the key where they rest: each is matched


from hypothesis import HealthCheck, given  # noqa: E402
from hypothesis import settings as hyp_settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_STEP = st.one_of(
    st.tuples(st.just("quote"), st.integers(180, 220), st.integers(1, 10), st.integers(0, 12)),  # bid¢, spread¢, size
    st.tuples(st.just("order"), st.sampled_from(["BUY", "SELL"]), st.integers(1, 15), st.integers(180, 230)),
    st.tuples(st.just("wait"), st.integers(1, 200)),  # milliseconds
)


@hyp_settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_STEP, min_size=1, max_size=40))
def test_property_never_beyond_the_displayed_size_never_an_order_twice(steps):
    d = Desk()
    next_id = 1
    taken_per_quote: dict[int, dict[str, int]] = {}
    quote_of_fill = []
    for step in steps:
        if step[0] == "quote":
            _, bid, spread, size = step
            d.tick(f"{bid / 100:.2f}", f"{(bid + spread) / 100:.2f}", size=size)
        elif step[0] == "order":
            _, side, qty, limit = step
            d.send(OrderRequest(next_id, f"tradingd:0dte:p:{next_id}", C, side, qty, "LMT", D(limit) / 100))
            next_id += 1
        else:
            d.wait(step[1] / 1000)
        current = d.book.get(KEY)
        for event in d.venue.take_events():
            if isinstance(event, Fill):
                quote_of_fill.append((event, current))
    fills = d.venue.executions()
    assert len({f.exec_id for f in fills}) == len(fills), "an execution id repeats"
    by_order: dict[int, int] = {}
    for fill, q in quote_of_fill:
        by_order[fill.order_id] = by_order.get(fill.order_id, 0) + fill.quantity
        shown = q.ask_size if fill.side == "BUY" else q.bid_size
        if shown > 0:
            side_taken = taken_per_quote.setdefault(id(q), {"BUY": 0, "SELL": 0})
            side_taken[fill.side] += fill.quantity
            assert side_taken[fill.side] <= shown, "filled beyond the size shown"
    for order_id, filled in by_order.items():
        assert filled <= d.venue._orders[order_id].request.quantity, "an order filled twice"
    held = sum(f.quantity if f.side == "BUY" else -f.quantity for f in fills)
    assert held >= 0 and d.venue.positions() == ([BrokerPosition(C, held, d.venue.positions()[0].avg_cost)]
                                                 if held else [])
