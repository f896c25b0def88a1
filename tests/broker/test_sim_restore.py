"""A new SimBroker after a daemon restart: execution ids never repeat, and the account it is given
(positions, cash, working orders) is the one the dead sim held."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal as D

import pytest

from broker.base import BrokerError
from broker.quotes import QuoteBook
from broker.sim import RestingOrder, SimAccountState, SimBroker, account_state_from_history, starting_cash
from market.types import BrokerPosition, OrderRequest, OrderStatus
from market.clock import VirtualClock
from daemon.store.records import IntentRecord, OrderRecord
from tests.broker.helpers import T0, Recorder, advance, contract, quote, settings

S = settings("0dte")
C = contract("270", "C")
P = contract("265", "P")


def order(order_id, c=C, side="BUY", qty=10, limit="2.00", kind="LMT", stop=None, tif="DAY"):
    return OrderRequest(order_id, f"tradingd:0dte:s{order_id}:1", c, side, qty, kind,
                        None if limit is None else D(limit), None if stop is None else D(stop), tif)


def intent(request: OrderRequest, state="working", created=T0) -> IntentRecord:
    """The store's record of an order, as `Store.load_pending_intents` returns it."""
    return IntentRecord(request.order_id, request.order_ref, None, request.contract.key, request.side,
                        request.quantity, request.order_type, request.limit_price, request.stop_price, request.tif,
                        None, state, created, created)  # type: ignore[arg-type]


async def started(book: QuoteBook, clock: VirtualClock, **kwargs) -> tuple[SimBroker, Recorder]:
    sim = SimBroker(book, clock, S, **kwargs)
    rec = Recorder()
    sim.set_listener(rec)
    await sim.start()
    return sim, rec


def tick(book, clock, key, bid, ask, size=50):
    book.update(quote(key, bid, ask, at=clock.now() + timedelta(milliseconds=1), size=size))


async def trade_a_morning(book: QuoteBook, clock: VirtualClock, sim: SimBroker) -> list[OrderRequest]:
    """Two positions, a partial sale, a stop resting under the call and a sale half filled; returns
    the orders still working."""
    tick(book, clock, C.key, "1.90", "2.00")
    tick(book, clock, P.key, "3.10", "3.20")
    await sim.place(order(1, qty=10))
    await sim.place(order(2, c=P, qty=6, limit="3.20"))
    await advance(clock, 0.1)
    tick(book, clock, C.key, "2.20", "2.30")
    await sim.place(order(3, side="SELL", qty=3, limit="2.20"))
    await advance(clock, 0.1)
    stop = order(4, side="SELL", qty=7, limit=None, kind="STP", stop="1.50")
    await sim.place(stop)
    tick(book, clock, P.key, "3.40", "3.50", size=2)
    half = order(5, c=P, side="SELL", qty=4, limit="3.40")
    await sim.place(half)
    await advance(clock, 0.1)
    assert [(o.request.order_id, o.filled) for o in await sim.open_orders()] == [(4, 0), (5, 2)]
    return [stop, half]


async def test_two_sims_never_repeat_an_execution_id():
    ids = []
    for _ in range(2):  # the same trades on two instances: a restart on the same store
        clock, book = VirtualClock(T0), QuoteBook()
        sim, _ = await started(book, clock)
        await trade_a_morning(book, clock, sim)
        ids.append([f.exec_id for f in await sim.executions()])
        await sim.stop()
    assert len(ids[0]) == len(ids[1]) == 4
    assert not set(ids[0]) & set(ids[1])
    assert ids[0] == sorted(ids[0]), "one instance's ids sort in the order they happened"


async def test_a_restored_sim_holds_the_account_the_dead_one_held():
    clock, book = VirtualClock(T0), QuoteBook()
    dead, _ = await started(book, clock)
    working = await trade_a_morning(book, clock, dead)
    fills = await dead.executions()
    state = account_state_from_history(fills, [intent(o) for o in working], cash=starting_cash(S),
                                       multiplier=S.profile.contract_multiplier, session_day=T0.date())
    await dead.stop()

    sim, rec = await started(book, clock, prior=state)
    assert await sim.positions() == await dead.positions()
    assert (await sim.account()) == (await dead.account())  # cash and net liquidation
    assert await sim.open_orders() == await dead.open_orders()
    assert await sim.next_order_id() == 6

    tick(book, clock, P.key, "3.40", "3.50")  # the half-filled sale finishes
    tick(book, clock, C.key, "1.45", "1.55")  # the stop triggers at once: it rests at the exchange
    assert [(f.order_id, f.quantity, f.price) for f in rec.fills] == [(5, 2, D("3.40")), (4, 7, D("1.45"))]
    assert rec.fills[0].commission == D("1.30"), "4 × 0.65 in all, the first half already charged"
    done = {u.order_id: u for u in rec.updates if u.status == OrderStatus.FILLED}
    assert done[5].avg_fill_price == D("3.40") and done[4].filled == 7
    assert not {f.exec_id for f in rec.fills} & {f.exec_id for f in fills}
    [put] = await sim.positions()
    assert (put.contract, put.quantity) == (P, 2)
    await sim.stop()


async def test_only_orders_that_reached_the_exchange_and_have_not_expired_rest():
    c_day, c_gtc, c_old, c_unsent, c_done = (order(i, qty=1) for i in range(1, 6))
    gtc = replace(c_gtc, tif="GTC")
    intents = [intent(c_day), intent(gtc, created=T0 - timedelta(days=1)),
               intent(c_old, created=T0 - timedelta(days=1)),  # a DAY order of yesterday expired
               intent(c_unsent, state="intent"),  # written, perhaps never sent: reconciliation's to close
               intent(c_done, state="acked")]
    bought = await _fills_of(c_done)
    state = account_state_from_history(bought, intents, cash=D(1000), multiplier=100, session_day=T0.date())
    assert [o.request.order_id for o in state.orders] == [1, 2]
    assert state.cash == D(1000) - D(200) - D("1.00") and state.positions == (BrokerPosition(C, 1, D("2.00")),)


async def _fills_of(request: OrderRequest):
    clock, book = VirtualClock(T0), QuoteBook()
    sim, rec = await started(book, clock)
    book.update(quote(C.key, "1.90", "2.00"))
    await sim.place(request)
    await advance(clock, 0.1)
    await sim.stop()
    return rec.fills


async def test_the_prior_state_may_be_loaded_when_the_sim_starts():
    clock, book = VirtualClock(T0), QuoteBook()
    loads = []

    async def load() -> SimAccountState:
        loads.append(clock.now())
        return SimAccountState((BrokerPosition(C, 3, D("1.50")),), D(5000))

    sim, _ = await started(book, clock, prior=load)
    assert loads == [T0] and (await sim.positions())[0].quantity == 3 and (await sim.account()).cash == D(5000)
    await sim.stop()
    await sim.start()  # a reconnect does not load it again
    assert len(loads) == 1


@pytest.mark.parametrize("state", [
    SimAccountState((BrokerPosition(C, 0, D(1)),)),
    SimAccountState((BrokerPosition(C, 1, D(1)), BrokerPosition(C, 2, D(1)))),
    SimAccountState((BrokerPosition(C, 1, D("NaN")),)),
    SimAccountState(cash=D("Infinity")),
    SimAccountState(orders=(RestingOrder(order(1, qty=2), filled=2),)),
    SimAccountState(orders=(RestingOrder(order(1)), RestingOrder(order(1)))),
])
async def test_a_bad_prior_state_is_refused_with_a_reason(state):
    sim = SimBroker(QuoteBook(), VirtualClock(T0), S)
    with pytest.raises(BrokerError) as err:
        sim.restore(state)
    assert err.value.code == "bad_prior_state"
    assert await sim.positions() == [] and (await sim.account()).cash == starting_cash(S)


async def test_a_bad_resting_order_is_refused_with_the_order_reason():
    sim = SimBroker(QuoteBook(), VirtualClock(T0), S)
    with pytest.raises(BrokerError, match="bad_price"):
        sim.restore(SimAccountState(orders=(RestingOrder(order(1, limit="-1")),)))


async def test_restore_only_before_the_sim_starts():
    clock, book = VirtualClock(T0), QuoteBook()
    sim, _ = await started(book, clock)
    with pytest.raises(BrokerError, match="restore_too_late"):
        sim.restore(SimAccountState())
    await sim.stop()


def test_a_modified_quantity_comes_from_the_broker_status():
    stop = order(7, side="SELL", qty=10, limit=None, kind="STP", stop="1.50")
    status = OrderRecord(7, stop.order_ref, "Submitted", 0, 6, None, None, T0)
    state = account_state_from_history([], [intent(stop)], cash=D(0), multiplier=100, session_day=T0.date(),
                                       statuses=[status])
    assert [(o.request.order_id, o.request.quantity) for o in state.orders] == [(7, 6)]


async def test_a_rebuilt_account_applies_the_stored_settlements_as_the_venue_did():
    """The store's fills hold no settlement: the expiries the core settled (`market.settled`) are applied
    to the rebuilt account, which then equals the dead sim's after its own `settle_expired`."""
    clock, book = VirtualClock(T0), QuoteBook()
    dead, _ = await started(book, clock)
    working = await trade_a_morning(book, clock, dead)
    fills = await dead.executions()
    after_close = T0.replace(hour=16, minute=5)
    dead.settle_expired(after_close, {"SPY": D("272")})  # the call 2.00 in the money, the put worthless
    settlements = {("SPY", T0.date()): D("272"), ("QQQ", T0.date()): None}
    state = account_state_from_history(fills, [intent(o) for o in working], cash=starting_cash(S),
                                       multiplier=S.profile.contract_multiplier, session_day=T0.date(),
                                       settlements=settlements)
    assert state.positions == () and state.orders == ()
    assert state.cash == (await dead.account()).cash
    unsettled = account_state_from_history(fills, [intent(o) for o in working], cash=starting_cash(S),
                                           multiplier=S.profile.contract_multiplier, session_day=T0.date())
    assert unsettled.positions and unsettled.cash != state.cash  # without them: the contracts came back
    await dead.stop()


def test_a_settlement_without_a_price_settles_at_zero_and_only_its_expiry():
    later = contract("270", "C", expiry=T0.date() + timedelta(days=7))
    fills = [replace(f, order_id=i) for i, f in enumerate(_held_fills(C, later))]
    state = account_state_from_history(fills, [], cash=D(1000), multiplier=100, session_day=T0.date(),
                                       settlements={("SPY", T0.date()): None})
    assert [p.contract for p in state.positions] == [later]  # the next week's expiry is not settled
    assert state.cash == D(1000) - 2 * D(200)  # the settled one left at 0


def _held_fills(*contracts):
    from market.types import Fill

    return [Fill(f"x{i}", i, f"r{i}", c, "BUY", 1, D("2.00"), T0, D(0)) for i, c in enumerate(contracts)]
