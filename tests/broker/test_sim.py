from datetime import date, timedelta
from decimal import Decimal as D

import pytest

from broker.base import Broker, BrokerError
from broker.quote_model import OptionQuoteModel
from broker.quotes import QuoteBook
from broker.sim import SimBroker
from market.types import OrderRequest, OrderStatus
from market.clock import VirtualClock
from tests.broker.helpers import T0, Recorder, advance, contract, quote, settings

C = contract("270", "C")
KEY = C.key


def order(order_id, side="BUY", qty=10, limit="2.00", kind="LMT", stop=None):
    return OrderRequest(order_id, f"tradingd:0dte:s:{order_id}", C, side, qty, kind,
                        None if limit is None else D(limit), None if stop is None else D(stop))


@pytest.fixture
async def sim():
    clock = VirtualClock(T0)
    book = QuoteBook()
    broker = SimBroker(book, clock, settings("0dte"))
    rec = Recorder()
    broker.set_listener(rec)
    await broker.start()
    yield broker, book, clock, rec
    await broker.stop()


def tick(book, clock, bid, ask, size=50, seconds=0.001):
    book.update(quote(KEY, bid, ask, at=clock.now() + timedelta(seconds=seconds), size=size))


async def test_it_is_a_broker_with_a_paper_account(sim):
    broker, _, _, rec = sim
    assert isinstance(broker, Broker) and broker.connected
    account = await broker.account()
    assert (account.account_id, account.paper, account.currency) == ("SIM", True, "USD")
    assert account.cash == account.net_liquidation == D(60000)  # the 0dte capital base
    assert rec.connections == [(True, "sim_started")]


async def test_orders_reach_the_exchange_after_the_latency(sim):
    broker, book, clock, rec = sim
    book.update(quote(KEY, "1.95", "2.00"))
    await broker.place(order(1))
    await clock.advance_to(T0 + timedelta(milliseconds=49))
    assert rec.updates == [] and rec.fills == []
    await clock.advance_to(T0 + timedelta(milliseconds=50))
    assert [u.status for u in rec.updates] == [OrderStatus.SUBMITTED, OrderStatus.FILLED]
    assert rec.fills[0].at == T0 + timedelta(milliseconds=50) and rec.fills[0].price == D("2.00")


async def test_limits_fill_at_the_touch_only_when_they_reach_it(sim):
    broker, book, clock, rec = sim
    book.update(quote(KEY, "1.95", "2.05"))
    await broker.place(order(1, limit="2.00"))
    await advance(clock, 0.1)
    assert rec.fills == []
    tick(book, clock, "1.90", "1.98")
    assert rec.fills[0].price == D("1.98")  # a buy fills at the ask, not at its limit


async def test_partial_fills_by_displayed_size_per_quote_update(sim):
    broker, book, clock, rec = sim
    book.update(quote(KEY, "1.95", "2.00", size=5))
    await broker.place(order(1, qty=12))
    await advance(clock, 0.1)
    assert [f.quantity for f in rec.fills] == [5]
    assert rec.updates[-1].status == OrderStatus.PARTIALLY_FILLED and rec.updates[-1].remaining == 7
    tick(book, clock, "1.95", "2.00", size=5)
    tick(book, clock, "1.95", "2.00", size=5, seconds=0.002)
    assert [f.quantity for f in rec.fills] == [5, 5, 2]
    assert rec.updates[-1].status == OrderStatus.FILLED and rec.updates[-1].avg_fill_price == D("2.00")


async def test_one_quote_shows_its_size_once_across_orders(sim):
    broker, book, clock, rec = sim
    book.update(quote(KEY, "1.95", "2.00", size=6))
    await broker.place(order(1, qty=4))
    await broker.place(order(2, qty=4))
    await advance(clock, 0.1)
    assert [(f.order_id, f.quantity) for f in rec.fills] == [(1, 4), (2, 2)]


async def test_commissions_per_contract_with_an_order_minimum(sim):
    broker, book, clock, rec = sim
    book.update(quote(KEY, "1.95", "2.00", size=1))
    await broker.place(order(1, qty=2))
    await advance(clock, 0.1)
    tick(book, clock, "1.95", "2.00", size=1)
    assert [f.commission for f in rec.fills] == [D("1.00"), D("0.30")]  # min 1.00, then 2 × 0.65 in all
    tick(book, clock, "1.95", "2.00", size=50)
    await broker.place(order(2, qty=10))
    await advance(clock, 0.1)
    assert rec.fills[-1].commission == D("6.50")


async def test_cash_positions_and_net_liquidation(sim):
    broker, book, clock, rec = sim
    book.update(quote(KEY, "1.90", "2.00"))
    await broker.place(order(1, qty=10))
    await advance(clock, 0.1)
    account = await broker.account()
    assert account.cash == D(60000) - D(2000) - D("6.50")
    assert account.net_liquidation == account.cash + 10 * D("1.95") * 100  # marked to mid
    [pos] = await broker.positions()
    assert (pos.contract, pos.quantity, pos.avg_cost) == (C, 10, D("2.00"))
    tick(book, clock, "2.20", "2.30")
    await broker.place(order(2, side="SELL", qty=4, limit="2.20"))
    await advance(clock, 0.1)
    [pos] = await broker.positions()
    assert (pos.quantity, pos.avg_cost) == (6, D("2.00"))
    assert (await broker.account()).cash == D(60000) - D("2006.50") + D(880) - D("2.60")
    await broker.place(order(3, side="SELL", qty=6, limit="2.20"))
    await advance(clock, 0.1)
    assert await broker.positions() == []


async def test_resting_stop_triggers_when_the_bid_reaches_it_then_fills_as_marketable(sim):
    broker, book, clock, rec = sim
    book.update(quote(KEY, "1.90", "2.00"))
    await broker.place(order(1, qty=10))
    await advance(clock, 0.1)
    await broker.place(order(2, side="SELL", qty=10, limit=None, kind="STP", stop="1.50"))
    await advance(clock, 0.1)
    tick(book, clock, "1.51", "1.60")
    assert len(rec.fills) == 1 and [o.request.order_id for o in await broker.open_orders()] == [2]
    tick(book, clock, "1.45", "1.55", size=6)  # touched: sells 6 at the bid
    assert (rec.fills[-1].quantity, rec.fills[-1].price) == (6, D("1.45"))
    tick(book, clock, "1.70", "1.80", size=6, seconds=0.002)  # triggered stays triggered
    assert (rec.fills[-1].quantity, rec.fills[-1].price) == (4, D("1.70"))
    assert await broker.positions() == [] and await broker.open_orders() == []


async def test_modify_and_cancel(sim):
    broker, book, clock, rec = sim
    book.update(quote(KEY, "1.90", "2.00"))
    await broker.place(order(1, limit="1.95"))
    await advance(clock, 0.1)
    await broker.modify(order(1, limit="2.00"))
    await advance(clock, 0.1)
    assert rec.fills[-1].order_id == 1 and rec.updates[-1].status == OrderStatus.FILLED
    await broker.place(order(2, limit="1.95"))
    await advance(clock, 0.1)
    await broker.cancel(2)
    await advance(clock, 0.1)
    assert rec.updates[-1].status == OrderStatus.CANCELLED and rec.updates[-1].order_id == 2
    for call in (broker.cancel(2), broker.modify(order(2)), broker.cancel(99)):
        with pytest.raises(BrokerError) as err:
            await call
        assert err.value.code in ("order_not_working", "unknown_order")


async def test_refusals(sim):
    broker, book, clock, rec = sim
    book.update(quote(KEY, "1.90", "2.00"))
    await broker.place(order(1, qty=400, limit="2.00"))  # 80,000 > 60,000 cash
    await broker.place(order(2, side="SELL", qty=1, limit="1.90"))  # nothing held
    await advance(clock, 0.1)
    assert [(u.order_id, u.status, u.reason) for u in rec.updates] == [
        (1, OrderStatus.REJECTED, "insufficient_funds"), (2, OrderStatus.REJECTED, "would_open_short")]
    with pytest.raises(BrokerError, match="duplicate_order_id"):
        await broker.place(order(1))
    with pytest.raises(BrokerError, match="bad_quantity"):
        await broker.place(order(3, qty=0))
    for bad_limit in (None, "NaN", "-1"):
        with pytest.raises(BrokerError, match="bad_price"):
            await broker.place(order(4, limit=bad_limit))
    assert await broker.next_order_id() == 3
    await broker.stop()
    with pytest.raises(BrokerError, match="not_connected"):
        await broker.place(order(5))


async def test_executions_since(sim):
    broker, book, clock, rec = sim
    book.update(quote(KEY, "1.90", "2.00"))
    await broker.place(order(1, qty=1))
    await advance(clock, 1)
    tick(book, clock, "1.90", "2.00")
    await broker.place(order(2, qty=1))
    await advance(clock, 1)
    fills = await broker.executions()
    assert [f.order_id for f in fills] == [1, 2]
    assert [f.order_id for f in await broker.executions(since=fills[1].at)] == [2]
    assert len({f.exec_id for f in fills}) == 2


async def test_unusable_quotes_do_not_fill(sim):
    broker, book, clock, rec = sim
    book.update(quote(KEY, "1.90", "2.00", usable=False))
    await broker.place(order(1))
    await advance(clock, 0.1)
    assert rec.fills == []


async def test_chain_and_snapshot_from_the_model():
    clock = VirtualClock(T0)
    book = QuoteBook()
    s = settings("0dte")
    model = OptionQuoteModel(book, clock, s.broker.sim.model)
    broker = SimBroker(book, clock, s, quote_model=model)
    await broker.start()
    with pytest.raises(BrokerError, match="no_underlying_quote"):
        await broker.chain("SPY")
    book.update(quote("SPY", "270.39", "270.41"))
    book.update(quote("VIX", "15.9", "16.1"))
    chain = await broker.chain("SPY")
    assert chain.expiries[0] == date(2019, 2, 12) and D(270) in chain.strikes
    snap = await broker.snapshot(KEY)
    assert snap.modelled and snap.bid > 0 and snap.received_at == T0
    with pytest.raises(BrokerError, match="no_quote"):
        await broker.snapshot("QQQ")
    await broker.subscribe([KEY, "SPY"])
    book.update(quote("SPY", "271.39", "271.41", at=T0 + timedelta(seconds=1)))
    assert book.get(KEY).received_at == T0 + timedelta(seconds=1) and book.get(KEY).bid > snap.bid
    await broker.stop()
