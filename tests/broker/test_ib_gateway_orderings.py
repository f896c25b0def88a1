"""What real gateways do that a cooperative fake did not (issue 9): message orderings, zoneless times,
a stop's PreSubmitted -> Submitted, refused changes answered. IBBroker must give the engine each fill
exactly once, with its commission, and each order's end once."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from broker.base import BrokerError
from market.clock import EXCHANGE_TZ
from market.types import OrderStatus
from tests.broker.test_ib_support import EXPIRY, connected, gateway, order


async def test_status_before_execution_a_duplicate_filled_and_a_late_commission_give_one_fill_with_commission():
    async with gateway() as gw, connected(gw) as (broker, rec):
        gw.status_before_exec = True
        gw.duplicate_filled_status = True
        gw.commission_delay_s = 0.2  # inside commission_wait_s (0.5): the fill waits for it
        await broker.place(order(21, qty=3, limit="2.60"))
        fill = await rec.wait_for(lambda: rec.fills and rec.fills[0])
        await asyncio.sleep(0.6)  # anything late (a second Filled, a second report) has arrived
        assert len(rec.fills) == 1 and fill.commission == Decimal("1.95") and fill.quantity == 3
        assert [u.status for u in rec.updates_for(21)] == [OrderStatus.SUBMITTED, OrderStatus.FILLED]


async def test_a_stop_goes_presubmitted_then_submitted_when_triggered_and_is_reported_working_once():
    async with gateway() as gw, connected(gw) as (broker, rec):
        gw.auto_fill = False
        await broker.place(order(22, side="SELL", qty=2, order_type="STP", stop="2.00", limit=None))
        await rec.wait_for(lambda: rec.updates_for(22))
        assert gw.orders[22].status == "PreSubmitted"
        gw.market.set_option("SPY", EXPIRY, Decimal(470), "C", "1.90", "2.00")
        await rec.wait_for(lambda: gw.orders[22].status == "Submitted")
        await asyncio.sleep(0.1)
        assert [u.status for u in rec.updates_for(22)] == [OrderStatus.SUBMITTED]


@pytest.fixture
def host_in_tokyo(monkeypatch: pytest.MonkeyPatch):
    """The host's zone is neither the gateway's nor UTC: a time read in the host's zone is visibly wrong."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


async def test_execution_times_without_a_zone_are_read_in_the_gateways_zone(host_in_tokyo):
    async with gateway() as gw, connected(gw) as (broker, rec):
        gw.exec_times_without_zone = True
        gw.auto_fill = False
        await broker.place(order(23, qty=1, limit="2.60"))
        await rec.wait_for(lambda: rec.updates_for(23))
        at = datetime(2024, 3, 6, 10, 30, 5, tzinfo=EXCHANGE_TZ)
        await gw.fill(23, 1, "2.60", when=at)
        live = await rec.wait_for(lambda: rec.fills and rec.fills[0])
        assert live.at == at
        [listed] = await broker.executions()
        assert listed.at == at and listed.at.utcoffset() == timedelta(hours=-5)


async def test_a_refused_modification_restores_the_order_as_ib_holds_it():
    async with gateway() as gw, connected(gw) as (broker, rec):
        gw.auto_fill = False
        await broker.place(order(24, side="SELL", qty=4, order_type="STP", stop="2.00", limit=None))
        await rec.wait_for(lambda: rec.updates_for(24))
        gw.reject_next_order("Order modification not allowed")
        with pytest.raises(BrokerError) as err:
            await broker.modify(order(24, side="SELL", qty=2, order_type="STP", stop="2.00", limit=None),
                                confirm=True)
        assert err.value.code == "201" and int(gw.orders[24].qty) == 4
        # the broker's own view went back to 4: a cancel-and-replace can now be judged on the truth
        assert broker._orders._requests[24].quantity == 4
        await broker.modify(order(24, side="SELL", qty=3, order_type="STP", stop="2.00", limit=None), confirm=True)
        assert int(gw.orders[24].qty) == 3
        await broker.cancel(24, confirm=True)
        assert gw.orders[24].status == "Cancelled"
        await broker.cancel(24, confirm=True)  # already cancelled: nothing to wait for
        gw.orders[24].client_id = 99  # an order IB ties to another client: its cancel is refused (10147)
        broker._orders._final.pop(24)
        with pytest.raises(BrokerError) as refused:
            await broker.cancel(24, confirm=True)
        assert refused.value.code == "10147"
