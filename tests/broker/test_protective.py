"""Protective stops resting at the broker (SPEC §6.1), on the sim broker and on IB over the fake gateway."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from broker.protective import ProtectiveStops, stop_price
from broker.quotes import QuoteBook
from broker.sim import SimBroker
from market.types import OrderRequest, OrderStatus, Quote
from config.loader import load_settings
from market.clock import EXCHANGE_TZ, VirtualClock
from tests.broker.test_ib_support import Recorder, connected, gateway, order, spy_call

CONTRACT = spy_call()


@pytest.mark.parametrize(("entry", "pct", "expected"), [
    ("2.60", "-0.25", "1.95"), ("2.55", "-0.25", "1.91"), ("10.00", "-0.20", "8.00"), ("0.01", "-0.25", "0.01")])
def test_stop_price_is_the_hard_stop_rounded_down_to_the_tick(entry, pct, expected):
    assert stop_price(Decimal(entry), Decimal(pct), Decimal("0.01")) == Decimal(expected)


def _manager(broker, settings, sent: list[tuple[OrderRequest, int]], first_id: int = 100) -> ProtectiveStops:
    ids = itertools.count(first_id)

    async def before_send(request: OrderRequest, position_id: int) -> None:
        sent.append((request, position_id))

    return ProtectiveStops(broker, settings.broker.protective, profile="0dte", prefix="tradingd",
                           allocate_order_id=lambda: next(ids), before_send=before_send)


async def test_stop_follows_the_open_quantity_ratchets_up_and_goes_when_the_position_closes():
    async with gateway() as gw, connected(gw) as (broker, rec):
        await broker.place(order(1, qty=6, limit="2.60"))
        await rec.wait_for(lambda: rec.fills)
        sent: list = []
        stops = _manager(broker, broker.settings, sent)
        rest = await stops.sync(7, CONTRACT, 6, Decimal("1.95"))
        await rec.wait_for(lambda: rec.updates_for(100))
        resting = gw.orders[100]
        assert (resting.order_type, resting.action, resting.qty, resting.aux_price) == ("STP", "SELL", 6, Decimal("1.95"))
        assert resting.order_ref == "tradingd:0dte:stop-7:1" and resting.tif == "DAY"  # 0dte profile: DAY
        assert [(r.order_id, pid) for r, pid in sent] == [(100, 7)] and rest.quantity == 6

        await stops.sync(7, CONTRACT, 4, Decimal("1.95"))  # a partial exit of 2
        await rec.wait_for(lambda: gw.orders[100].qty == 4)
        await stops.sync(7, CONTRACT, 4, Decimal("2.10"))  # tightened by the exits
        await rec.wait_for(lambda: gw.orders[100].aux_price == Decimal("2.1"))
        await stops.sync(7, CONTRACT, 4, Decimal("1.50"))  # never loosened
        assert stops.resting(7).stop_price == Decimal("2.10") and gw.orders[100].revisions == 2
        assert len(sent) == 1  # changes keep the order id: no new intent

        await stops.sync(7, CONTRACT, 0, Decimal("2.10"))
        await rec.wait_for(lambda: gw.orders[100].status == "Cancelled")
        assert stops.resting(7) is None


async def test_stops_are_adopted_after_a_restart_and_a_refused_change_is_retried():
    async with gateway() as gw, connected(gw) as (broker, rec):
        await broker.place(order(1, qty=3, limit="2.60"))
        await rec.wait_for(lambda: rec.fills)
        first = _manager(broker, broker.settings, [])
        await first.sync(4, CONTRACT, 3, Decimal("1.95"))
        await rec.wait_for(lambda: rec.updates_for(100))

        restarted = _manager(broker, broker.settings, [], first_id=200)
        [found] = restarted.adopt(await broker.open_orders())
        assert (found.position_id, found.request.order_id, found.quantity) == (4, 100, 3)
        await gw.stop()
        await rec.wait_for(lambda: not broker.connected)
        await restarted.sync(4, CONTRACT, 2, Decimal("1.95"))  # refused while disconnected: kept as wanted
        assert restarted.resting(4).quantity == 3
        await gw.start()
        await rec.wait_for(lambda: broker.connected, timeout=10)
        await restarted.resync()
        await rec.wait_for(lambda: gw.orders[100].qty == 2)


async def test_sim_stop_triggers_and_is_forgotten():
    clock = VirtualClock(datetime(2024, 3, 6, 10, 0, tzinfo=EXCHANGE_TZ))
    settings = load_settings("7dte", env={})
    book = QuoteBook()
    sim = SimBroker(book, clock, settings)
    rec = Recorder()
    sim.set_listener(rec)
    await sim.start()
    key = CONTRACT.key
    book.update(Quote(key, Decimal("2.50"), Decimal("2.60"), None, clock.now(), bid_size=10, ask_size=10))
    await sim.place(order(1, qty=2, limit="2.60"))
    await clock.advance_to(clock.now() + timedelta(seconds=1))
    assert [f.quantity for f in rec.fills] == [2]

    stops = _manager(sim, settings, [])
    await stops.sync(1, CONTRACT, 2, Decimal("1.95"))
    await clock.advance_to(clock.now() + timedelta(seconds=1))
    assert stops.resting(1).request.tif == "GTC"  # 7dte profile: held overnight
    book.update(Quote(key, Decimal("1.90"), Decimal("2.00"), None, clock.now(), bid_size=10, ask_size=10))
    await clock.advance_to(clock.now() + timedelta(seconds=1))
    stop_updates = [u for u in rec.updates if u.order_id == 100]
    assert stop_updates[-1].status is OrderStatus.FILLED
    for update in stop_updates:
        stops.on_order_update(update)
    assert stops.resting(1) is None
    assert [(f.side, f.quantity) for f in rec.fills] == [("BUY", 2), ("SELL", 2)]
    await sim.stop()


async def test_bad_input_is_refused():
    stops = _manager(None, load_settings("0dte", env={}), [])
    with pytest.raises(ValueError):
        await stops.sync(1, CONTRACT, -1, Decimal("1.95"))
    with pytest.raises(ValueError):
        await stops.sync(1, CONTRACT, 1, Decimal("0"))
    disabled = ProtectiveStops(None, load_settings("0dte", env={}).broker.protective.model_copy(update={"enabled": False}),  # type: ignore[arg-type]
                               profile="0dte", prefix="tradingd", allocate_order_id=lambda: 1,
                               before_send=lambda r, p: None)  # type: ignore[arg-type, return-value]
    assert await disabled.sync(1, CONTRACT, 1, Decimal("1.95")) is None
