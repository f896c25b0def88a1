"""Orders through a real ib_async client: rest, fill, partial fill, modify, cancel, stops."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from ib_async import IB, LimitOrder, MarketOrder, Option, Order, StopOrder, Trade

from tests.fakegw import FakeGateway
from tests.fakegw_tests.conftest import EXPIRY, settle

REF = "tradingd:0dte:sig-1:1"


async def call(ib: IB):
    (contract,) = await ib.qualifyContractsAsync(Option("SPY", "20240119", 470, "C", "SMART"))
    return contract


def quote_call(gw: FakeGateway, bid: str, ask: str, bid_size: int = 10, ask_size: int = 10) -> None:
    gw.market.set_option("SPY", EXPIRY, Decimal(470), "C", bid, ask, bid_size, ask_size)


async def placed(ib: IB, trade: Trade, status: str) -> Trade:
    await settle(ib, lambda: trade.orderStatus.status == status)
    return trade


async def test_limit_below_ask_rests_then_fills_when_ask_comes_down(ib: IB, gw: FakeGateway) -> None:
    trade = await placed(ib, ib.placeOrder(await call(ib), LimitOrder("BUY", 2, 1.52, orderRef=REF)), "Submitted")
    order = gw.orders[trade.order.orderId]
    assert (order.order_ref, order.action, order.qty, order.lmt_price) == (REF, "BUY", 2, Decimal("1.52"))
    assert order.status == "Submitted" and not gw.executions
    quote_call(gw, "1.48", "1.52")
    await placed(ib, trade, "Filled")
    assert trade.orderStatus.avgFillPrice == 1.52 and trade.filled() == 2
    assert [f.execution.orderRef for f in trade.fills] == [REF]
    await settle(ib, lambda: trade.fills[0].commissionReport.commission == 1.30)
    (execution,) = gw.executions
    assert (execution.qty, execution.price, execution.commission) == (2, Decimal("1.52"), Decimal("1.30"))


async def test_buy_fills_at_the_ask_not_the_limit(ib: IB, gw: FakeGateway) -> None:
    trade = await placed(ib, ib.placeOrder(await call(ib), LimitOrder("BUY", 1, 1.70)), "Filled")
    assert trade.orderStatus.avgFillPrice == 1.55


async def test_sell_fills_at_the_bid(ib: IB, gw: FakeGateway) -> None:
    trade = await placed(ib, ib.placeOrder(await call(ib), LimitOrder("SELL", 1, 1.45)), "Filled")
    assert trade.orderStatus.avgFillPrice == 1.50
    assert gw.positions[trade.contract.conId].qty == -1


async def test_partial_fill_up_to_displayed_size_then_rest_on_next_update(ib: IB, gw: FakeGateway) -> None:
    trade = ib.placeOrder(await call(ib), LimitOrder("BUY", 20, 1.55))
    await settle(ib, lambda: trade.filled() == 12)  # the ask shows 12
    assert trade.orderStatus.status == "Submitted" and trade.remaining() == 8
    quote_call(gw, "1.50", "1.55", ask_size=5)
    await settle(ib, lambda: trade.filled() == 17)
    quote_call(gw, "1.50", "1.56", ask_size=50)  # ask moved above the limit: nothing
    await asyncio.wait_for(ib.reqCurrentTimeAsync(), 2)
    assert trade.filled() == 17
    quote_call(gw, "1.50", "1.54", ask_size=50)
    await placed(ib, trade, "Filled")
    assert [f.execution.shares for f in trade.fills] == [12, 5, 3]
    assert trade.fills[-1].execution.price == 1.54


async def test_displayed_size_is_shared_between_orders_until_the_next_update(ib: IB, gw: FakeGateway) -> None:
    contract = await call(ib)
    gw.auto_fill = False
    first = ib.placeOrder(contract, LimitOrder("BUY", 8, 1.55))
    second = ib.placeOrder(contract, LimitOrder("BUY", 8, 1.55))
    await placed(ib, second, "Submitted")
    gw.auto_fill = True
    quote_call(gw, "1.50", "1.55", ask_size=10)
    await settle(ib, lambda: first.filled() == 8 and second.filled() == 2)


async def test_cancel_reports_cancelled_and_202(ib: IB, gw: FakeGateway) -> None:
    codes: list[int] = []
    ib.errorEvent += lambda req_id, code, msg, contract: codes.append(code)
    trade = await placed(ib, ib.placeOrder(await call(ib), LimitOrder("BUY", 1, 1.00)), "Submitted")
    ib.cancelOrder(trade.order)
    await placed(ib, trade, "Cancelled")
    await settle(ib, lambda: 202 in codes)
    assert gw.orders[trade.order.orderId].status == "Cancelled"


async def test_cancel_of_unknown_and_of_filled_orders(ib: IB, gw: FakeGateway) -> None:
    trade = await placed(ib, ib.placeOrder(await call(ib), LimitOrder("BUY", 1, 1.60)), "Filled")
    ib.client.cancelOrder(trade.order.orderId)
    ib.client.cancelOrder(9999)
    await settle(ib, lambda: {c for _, _, c, _ in gw.errors_sent} >= {10147, 10148})


async def test_modify_price_fills_and_modify_quantity_is_kept(ib: IB, gw: FakeGateway) -> None:
    order = LimitOrder("BUY", 3, 1.40)
    trade = await placed(ib, ib.placeOrder(await call(ib), order), "Submitted")
    order.totalQuantity = 4
    ib.placeOrder(trade.contract, order)
    await settle(ib, lambda: gw.orders[order.orderId].revisions == 1)
    assert gw.orders[order.orderId].qty == 4
    order.lmtPrice = 1.55
    ib.placeOrder(trade.contract, order)
    await placed(ib, trade, "Filled")
    assert trade.filled() == 4 and gw.orders[order.orderId].revisions == 2


async def test_modify_of_a_filled_order_is_refused(ib: IB, gw: FakeGateway) -> None:
    order = LimitOrder("BUY", 1, 1.60)
    trade = await placed(ib, ib.placeOrder(await call(ib), order), "Filled")
    ib.client.placeOrder(order.orderId, trade.contract, order)
    await settle(ib, lambda: any(code == 104 for _, _, code, _ in gw.errors_sent))


async def test_reused_order_id_is_duplicate(ib: IB, gw: FakeGateway) -> None:
    contract = await call(ib)
    ib.client.placeOrder(50, contract, LimitOrder("BUY", 1, 1.00))
    ib.client.placeOrder(40, contract, LimitOrder("BUY", 1, 1.00))
    await settle(ib, lambda: any(code == 103 for _, _, code, _ in gw.errors_sent))
    assert gw.orders[40].error == (103, "Duplicate order id") and gw.orders[50].status == "Submitted"
    assert gw.next_valid_id == 51


async def test_price_off_the_tick_is_rejected_with_110(ib: IB, gw: FakeGateway) -> None:
    trade = ib.placeOrder(await call(ib), LimitOrder("BUY", 1, 1.503))
    await placed(ib, trade, "Cancelled")
    assert gw.orders[trade.order.orderId].error[0] == 110


async def test_sell_stop_triggers_on_the_bid_and_fills_at_the_bid(ib: IB, gw: FakeGateway) -> None:
    trade = await placed(ib, ib.placeOrder(await call(ib), StopOrder("SELL", 2, 1.20)), "PreSubmitted")
    quote_call(gw, "1.25", "1.30")
    await asyncio.wait_for(ib.reqCurrentTimeAsync(), 2)
    assert trade.orderStatus.status == "PreSubmitted"
    quote_call(gw, "1.18", "1.24", bid_size=5)
    await placed(ib, trade, "Filled")
    assert trade.orderStatus.avgFillPrice == 1.18 and gw.orders[trade.order.orderId].triggered


async def test_stop_triggers_on_last_trade(ib: IB, gw: FakeGateway) -> None:
    gw.auto_fill = False
    trade = await placed(ib, ib.placeOrder(await call(ib), StopOrder("SELL", 1, 1.20)), "PreSubmitted")
    gw.market.set_option("SPY", EXPIRY, Decimal(470), "C", "1.25", "1.30", 10, 10, last="1.19")
    await placed(ib, trade, "Submitted")
    assert trade.filled() == 0


async def test_stop_limit_waits_for_its_limit_after_trigger(ib: IB, gw: FakeGateway) -> None:
    stop_limit = Order(action="SELL", totalQuantity=1, orderType="STP LMT", auxPrice=1.20, lmtPrice=1.15)
    trade = await placed(ib, ib.placeOrder(await call(ib), stop_limit), "PreSubmitted")
    quote_call(gw, "1.10", "1.20")
    await placed(ib, trade, "Submitted")
    assert trade.filled() == 0
    quote_call(gw, "1.16", "1.20")
    await placed(ib, trade, "Filled")


async def test_market_order_takes_the_touch(ib: IB, gw: FakeGateway) -> None:
    trade = await placed(ib, ib.placeOrder(await call(ib), MarketOrder("BUY", 1)), "Filled")
    assert trade.orderStatus.avgFillPrice == 1.55


async def test_forced_fill_with_matching_off(ib: IB, gw: FakeGateway) -> None:
    gw.auto_fill = False
    trade = await placed(ib, ib.placeOrder(await call(ib), LimitOrder("BUY", 3, 1.60)), "Submitted")
    await gw.fill(trade.order.orderId, 1, "1.58")
    await settle(ib, lambda: trade.filled() == 1)
    assert trade.orderStatus.status == "Submitted"
    with pytest.raises(ValueError, match="bad_fill_qty"):
        await gw.fill(trade.order.orderId, 5, "1.58")


async def test_fill_moves_positions_and_account_values(ib: IB, gw: FakeGateway) -> None:
    gw.account_values(net_liquidation="100000", buying_power="400000", cash="100000")
    trade = await placed(ib, ib.placeOrder(await call(ib), LimitOrder("BUY", 2, 1.55)), "Filled")
    con_id = trade.contract.conId
    await settle(ib, lambda: any(p.contract.conId == con_id for p in ib.portfolio()))
    (pos,) = ib.positions()
    assert pos.position == 2 and pos.avgCost == pytest.approx(155.65)
    values = {v.tag: v.value for v in ib.accountValues() if v.currency == "USD"}
    assert values["TotalCashValue"] == "99688.70"  # 2 x 1.55 x 100 + 1.30 commission paid
    assert values["BuyingPower"] == "399688.70"
    assert values["NetLiquidation"] == "99993.70"  # cash + 2 x mid 1.525 x 100
    assert values["OptionMarketValue"] == "305.00"
    assert gw.positions[con_id].qty == 2


async def test_closing_fill_reports_realized_pnl(ib: IB, gw: FakeGateway) -> None:
    contract = await call(ib)
    await placed(ib, ib.placeOrder(contract, LimitOrder("BUY", 1, 1.55)), "Filled")
    quote_call(gw, "1.80", "1.85")
    closing = await placed(ib, ib.placeOrder(contract, LimitOrder("SELL", 1, 1.80)), "Filled")
    await settle(ib, lambda: closing.fills[0].commissionReport.realizedPNL != 0)
    assert closing.fills[0].commissionReport.realizedPNL == pytest.approx(180 - 156.00 - 1.00)  # minimum commission 1.00 each way
    assert gw.positions[contract.conId].qty == 0


async def test_what_if_returns_margin_without_placing(ib: IB, gw: FakeGateway) -> None:
    state = await asyncio.wait_for(ib.whatIfOrderAsync(await call(ib), LimitOrder("BUY", 2, 1.55)), 2)
    assert float(state.initMarginChange) == pytest.approx(305.0)
    assert state.commissionCurrency == "USD"
    assert gw.orders == {}


async def test_unknown_contract_order_is_error_200(ib: IB, gw: FakeGateway) -> None:
    missing = Option("SPY", "20240119", 999, "C", "SMART")
    trade = await placed(ib, ib.placeOrder(missing, LimitOrder("BUY", 1, 1.00)), "Cancelled")
    assert any(entry.errorCode == 200 for entry in trade.log)
