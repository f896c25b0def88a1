"""The fake's issue-9 options, decoded by a real ib_async client: completed orders, daily bars, withheld
replies, executions of the current day only, zoneless execution times, per-account lines."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from decimal import Decimal

from ib_async import IB, ExecutionFilter, LimitOrder, Option, Stock

from tests.fakegw import FakeGateway
from tests.fakegw.session import GATEWAY_TZ
from tests.fakegw_tests.conftest import Connect, settle

REF = "tradingd:7dte:stop-1:1"


async def _filled(ib: IB, gw: FakeGateway, when: datetime | None = None) -> int:
    (contract,) = await ib.qualifyContractsAsync(Option("SPY", "20240119", 470, "C", "SMART"))
    gw.auto_fill = False
    trade = ib.placeOrder(contract, LimitOrder("SELL", 2, 1.50, orderRef=REF))
    await settle(ib, lambda: trade.orderStatus.status == "Submitted")
    await gw.fill(trade.order.orderId, 2, "1.50", when=when)
    await settle(ib, lambda: trade.orderStatus.status == "Filled")
    return trade.order.orderId


async def test_completed_orders_carry_order_ref_filled_quantity_status_and_time(ib: IB, gw: FakeGateway) -> None:
    order_id = await _filled(ib, gw)
    completed = await asyncio.wait_for(ib.reqCompletedOrdersAsync(True), 2)
    [trade] = [t for t in completed if t.order.orderRef == REF]
    assert (trade.order.filledQuantity, trade.orderStatus.status) == (2, "Filled")
    assert trade.order.permId == gw.orders[order_id].perm_id and trade.contract.strike == 470


async def test_executions_of_the_current_day_only(ib: IB, gw: FakeGateway) -> None:
    yesterday = datetime.now(GATEWAY_TZ) - timedelta(days=1)
    await _filled(ib, gw, when=yesterday)
    assert len(await asyncio.wait_for(ib.reqExecutionsAsync(ExecutionFilter()), 2)) == 1
    gw.executions_today_only = True
    assert await asyncio.wait_for(ib.reqExecutionsAsync(ExecutionFilter()), 2) == []


async def test_zoneless_execution_times_are_the_gateways_local_time(ib: IB, gw: FakeGateway) -> None:
    gw.exec_times_without_zone = True
    ib.TimezoneTWS = "America/New_York"
    at = datetime(2024, 1, 10, 15, 59, 30, tzinfo=GATEWAY_TZ)
    await _filled(ib, gw, when=at)
    [fill] = await asyncio.wait_for(ib.reqExecutionsAsync(ExecutionFilter()), 2)
    assert fill.execution.time == at


async def test_daily_bars_of_the_closes_set(ib: IB, gw: FakeGateway) -> None:
    today = datetime.now(GATEWAY_TZ).date()
    gw.daily_closes["SPY"] = {today - timedelta(days=d): Decimal(400 + d) for d in range(1, 6)}
    (spy,) = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
    bars = await asyncio.wait_for(ib.reqHistoricalDataAsync(spy, "", "3 D", "1 day", "TRADES", True), 2)
    assert [(b.date, b.close) for b in bars] == [(today - timedelta(days=d), 400.0 + d) for d in (3, 2, 1)]
    assert gw.history_requests == [("SPY", "3 D")]


async def test_withheld_end_marker_and_current_time_leave_the_client_waiting(ib: IB, gw: FakeGateway) -> None:
    gw.withheld_ends = {"open_orders"}
    gw.withhold_current_time = True
    for request in (ib.reqAllOpenOrdersAsync(), ib.reqCurrentTimeAsync()):
        done, _ = await asyncio.wait({asyncio.ensure_future(request)}, timeout=0.3)
        assert not done


async def test_market_data_lines_are_counted_per_account(gw: FakeGateway, connect: Connect) -> None:
    gw.max_market_data_lines = 1
    first, second = await connect(1), await connect(2)
    (spy,) = await first.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
    first.reqMktData(spy)
    await settle(first, lambda: gw.market_data_lines == 1)
    second.reqMktData(spy, "", True, False)  # a snapshot needs a line too
    await settle(second, lambda: any(c == 101 for _, _, c, _ in gw.errors_sent))
    assert [cid for cid, _, c, _ in gw.errors_sent if c == 101] == [2]
