"""IBBroker orders over the fake gateway: our ids and orderRefs, updates, fills with commissions, rejections,
modify/cancel, open orders and executions, and order ids that never repeat across a gateway restart."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from broker.base import BrokerError
from broker.ib import ConnectionState
from market.types import OrderStatus
from daemon.store import Store
from tests.broker.test_ib_support import connected, gateway, order


async def test_order_goes_out_with_our_id_and_order_ref_and_fills_with_commission():
    async with gateway() as gw, connected(gw) as (broker, rec):
        await broker.place(order(11, qty=3, limit="2.60"))
        fill = await rec.wait_for(lambda: rec.fills and rec.fills[0])
        sent = gw.orders[11]
        assert (sent.order_ref, sent.qty, sent.lmt_price, sent.account) == (
            "tradingd:0dte:sig-11:1", 3, Decimal("2.6"), "DU1234567")
        assert (fill.order_id, fill.order_ref, fill.side, fill.quantity, fill.price) == (
            11, "tradingd:0dte:sig-11:1", "BUY", 3, Decimal("2.6"))
        assert fill.commission == Decimal("1.95") and fill.contract.key == "SPY 20300118 C 470"
        statuses = [u.status for u in rec.updates_for(11)]
        assert statuses == [OrderStatus.SUBMITTED, OrderStatus.FILLED]
        assert rec.updates_for(11)[-1].avg_fill_price == Decimal("2.6")


async def test_partial_fills_then_cancel():
    async with gateway() as gw, connected(gw) as (broker, rec):
        gw.auto_fill = False
        await broker.place(order(3, qty=5, limit="2.55"))
        await rec.wait_for(lambda: rec.updates_for(3))
        await gw.fill(3, 2, "2.55")
        await rec.wait_for(lambda: rec.fills)
        assert rec.updates_for(3)[-1].status is OrderStatus.PARTIALLY_FILLED
        assert (rec.updates_for(3)[-1].filled, rec.updates_for(3)[-1].remaining) == (2, 3)
        await broker.cancel(3)
        last = await rec.wait_for(lambda: rec.updates_for(3)[-1].status is OrderStatus.CANCELLED and rec.updates_for(3)[-1])
        assert last.filled == 2 and gw.orders[3].status == "Cancelled"


async def test_modify_changes_price_and_quantity_in_place():
    async with gateway() as gw, connected(gw) as (broker, rec):
        gw.auto_fill = False
        await broker.place(order(4, qty=5, limit="2.51"))
        await rec.wait_for(lambda: rec.updates_for(4))
        await broker.modify(order(4, qty=4, limit="2.53"))
        await rec.wait_for(lambda: gw.orders[4].revisions == 1)
        assert (gw.orders[4].qty, gw.orders[4].lmt_price) == (4, Decimal("2.53"))
        with pytest.raises(BrokerError) as err:
            await broker.modify(order(99))
        assert err.value.code == "unknown_order"


async def test_rejection_surfaces_as_rejected_with_the_reason_and_nothing_after():
    async with gateway() as gw, connected(gw) as (broker, rec):
        gw.reject_next_order("Insufficient buying power")
        await broker.place(order(21))
        rejected = await rec.wait_for(lambda: rec.updates_for(21) and rec.updates_for(21)[0])
        await broker.place(order(22, limit="2.60"))  # once 22 fills, everything about 21 has arrived
        await rec.wait_for(lambda: rec.fills)
        assert [u.status for u in rec.updates_for(21)] == [OrderStatus.REJECTED]
        assert rejected.reason.startswith("201") and "Insufficient buying power" in rejected.reason
        assert rejected.filled == 0 and rejected.remaining == 2


async def test_price_off_the_tick_is_rejected():
    async with gateway() as gw, connected(gw) as (broker, rec):
        await broker.place(order(5, limit="2.555"))
        rejected = await rec.wait_for(lambda: rec.updates_for(5) and rec.updates_for(5)[-1])
        assert rejected.status is OrderStatus.REJECTED and rejected.reason.startswith("110")


async def test_a_refused_modification_leaves_the_working_order_alone():
    async with gateway() as gw, connected(gw) as (broker, rec):
        gw.auto_fill = False
        await broker.place(order(6, qty=5, limit="2.51"))
        await rec.wait_for(lambda: rec.updates_for(6))
        gw.reject_next_order("modification refused")
        await broker.modify(order(6, qty=5, limit="2.52"))
        await broker.place(order(7, limit="2.60"))
        await rec.wait_for(lambda: rec.updates_for(7))
        assert [u.status for u in rec.updates_for(6)] == [OrderStatus.SUBMITTED]
        assert gw.orders[6].status == "Submitted"


async def test_bad_orders_are_refused_before_the_wire():
    async with gateway() as gw, connected(gw) as (broker, rec):
        for bad in (order(8, qty=0), replace(order(8), order_ref=""), order(8, order_type="STP", limit=None)):
            with pytest.raises(BrokerError) as err:
                await broker.place(bad)
            assert err.value.code == "bad_order"
        await broker.place(order(8))
        with pytest.raises(BrokerError) as err:
            await broker.place(order(8))
        assert err.value.code == "duplicate_order_id"
        await rec.wait_for(lambda: rec.updates_for(8))
        assert list(gw.orders) == [8]


async def test_resting_stop_is_listed_in_open_orders_and_executions_filter_by_time():
    async with gateway() as gw, connected(gw) as (broker, rec):
        await broker.place(order(1, qty=2, limit="2.60"))
        first = await rec.wait_for(lambda: rec.fills and rec.fills[0])
        await broker.place(order(2, qty=2, side="SELL", order_type="STP", limit=None, stop="1.95", tif="GTC",
                                 ref="tradingd:0dte:stop-1:1"))
        await rec.wait_for(lambda: rec.updates_for(2))
        [stop] = await broker.open_orders()
        assert (stop.request.order_id, stop.request.order_ref, stop.request.order_type) == (2, "tradingd:0dte:stop-1:1", "STP")
        assert (stop.request.stop_price, stop.request.quantity, stop.request.tif) == (Decimal("1.95"), 2, "GTC")
        assert stop.status is OrderStatus.SUBMITTED
        assert [f.exec_id for f in await broker.executions()] == [first.exec_id]
        assert await broker.executions(since=first.at + timedelta(seconds=1)) == []
        [pos] = await broker.positions()
        assert pos.quantity == 2 and pos.contract.key == first.contract.key


async def test_a_rolled_back_next_valid_id_never_reuses_an_id(tmp_path):
    store = Store("0dte", f"sqlite:///{tmp_path / 'ids.db'}")
    await store.upgrade()
    try:
        async with gateway() as gw, connected(gw) as (broker, rec):
            async def allocate() -> int:  # the engine's rule (SPEC §6.1)
                return max(await broker.next_order_id(), await store.highest_order_id()) + 1

            for _ in range(3):
                req = order(await allocate())
                await store.write_intent(req, broker.clock.now())
                await broker.place(req)
            await rec.wait_for(lambda: len(gw.orders) == 3)
            used = sorted(gw.orders)
            await gw.restart(next_valid_id=1)  # the gateway forgot how far ids went
            await rec.wait_for(lambda: broker.reconnects == 1 and broker.state is ConnectionState.READY, timeout=10)
            # the gateway says 1; the broker answers above every id it has seen there (issue 9)
            assert await broker.next_order_id() == max(used) + 1
            req = order(await allocate())
            await store.write_intent(req, broker.clock.now())
            await broker.place(req)
            await rec.wait_for(lambda: rec.updates_for(req.order_id))
            assert req.order_id > max(used)
            assert sorted(gw.orders) == [*used, req.order_id]
            assert not [e for e in gw.errors_sent if e[2] == 103]  # no "Duplicate order id"
    finally:
        await store.close()
