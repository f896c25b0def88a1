"""Combo (BAG) orders through ib_async's own API: accepted with their legs, filled leg-consistently in whole
units (never one leg alone), reported per leg plus the BAG, listed with their legs; decoded without errors."""

from __future__ import annotations

from decimal import Decimal

from ib_async import IB, ComboLeg, Contract, LimitOrder, MarketOrder, Option, StopOrder

from tests.fakegw import FakeGateway
from tests.fakegw.contracts import BAG_CON_ID
from tests.fakegw_tests.conftest import EXPIRY, settle

REF = "tradingd:7dte:combo-1:1"


async def leg_ids(ib: IB, *specs: tuple[int, str]) -> list[int]:
    contracts = [Option("SPY", "20240119", strike, right, "SMART") for strike, right in specs]
    return [c.conId for c in await ib.qualifyContractsAsync(*contracts)]


def bag(*legs: tuple[int, str, int]) -> Contract:
    return Contract(secType="BAG", symbol="SPY", exchange="SMART", currency="USD",
                    comboLegs=[ComboLeg(conId=c, ratio=r, action=a, exchange="SMART") for c, a, r in legs])


def quote(gw: FakeGateway, strike: int, right: str, bid: str, ask: str, size: int = 10) -> None:
    gw.market.set_option("SPY", EXPIRY, Decimal(strike), right, bid, ask, size, size)


async def test_a_straddle_fills_every_leg_in_one_step_and_reports_legs_and_bag(ib: IB, gw: FakeGateway) -> None:
    call, put = await leg_ids(ib, (470, "C"), (470, "P"))
    trade = ib.placeOrder(bag((call, "BUY", 1), (put, "BUY", 1)), LimitOrder("BUY", 2, 3.00, orderRef=REF))
    await settle(ib, lambda: trade.orderStatus.status == "Filled")
    assert trade.orderStatus.avgFillPrice == 3.00  # 1.55 ask + 1.45 ask
    assert trade.filled() == 2  # ib_async counts the BAG's executions only: units
    by_type = sorted((f.contract.secType, f.contract.conId, f.execution.side, f.execution.shares) for f in trade.fills)
    assert by_type == sorted([("BAG", BAG_CON_ID, "BOT", 2), ("OPT", call, "BOT", 2), ("OPT", put, "BOT", 2)])
    assert {f.execution.orderRef for f in trade.fills} == {REF}
    await settle(ib, lambda: len([f for f in trade.fills if f.commissionReport.commission]) == 2)
    assert {cid: int(p.qty) for cid, p in gw.positions.items()} == {call: 2, put: 2}
    order = gw.orders[trade.order.orderId]
    assert order.contract.combo_legs_descrip == f"{call}|1,{put}|1"


async def test_a_thin_wing_fills_whole_units_only_then_the_rest_on_its_next_quote(ib: IB, gw: FakeGateway) -> None:
    call, put = await leg_ids(ib, (470, "C"), (470, "P"))
    quote(gw, 470, "P", "1.40", "1.45", size=3)
    trade = ib.placeOrder(bag((call, "BUY", 1), (put, "BUY", 1)), LimitOrder("BUY", 5, 3.00, orderRef=REF))
    await settle(ib, lambda: trade.filled() == 3)
    assert trade.orderStatus.status == "Submitted" and trade.remaining() == 2
    assert {cid: int(p.qty) for cid, p in gw.positions.items()} == {call: 3, put: 3}
    quote(gw, 470, "P", "1.40", "1.45", size=10)
    await settle(ib, lambda: trade.orderStatus.status == "Filled")
    assert {cid: int(p.qty) for cid, p in gw.positions.items()} == {call: 5, put: 5}


async def test_ratios_sells_and_a_limit_not_reached(ib: IB, gw: FakeGateway) -> None:
    quote(gw, 465, "C", "6.00", "6.10")
    quote(gw, 475, "C", "0.50", "0.60")
    low, high = await leg_ids(ib, (465, "C"), (475, "C"))
    ratio = bag((low, "BUY", 1), (high, "SELL", 2))  # net as bought: 6.10 - 2 x 0.50 = 5.10
    resting = ib.placeOrder(ratio, LimitOrder("BUY", 2, 5.00))
    await settle(ib, lambda: resting.orderStatus.status == "Submitted")
    assert not gw.executions  # no leg alone while the net is not reached
    ib.cancelOrder(resting.order)
    await settle(ib, lambda: resting.orderStatus.status == "Cancelled")
    bought = ib.placeOrder(ratio, LimitOrder("BUY", 2, 5.10))
    await settle(ib, lambda: bought.orderStatus.status == "Filled")
    assert {cid: int(p.qty) for cid, p in gw.positions.items()} == {low: 2, high: -4}
    # selling the combo reverses every leg: 6.00 bid - 2 x 0.60 ask = 4.80
    sold = ib.placeOrder(ratio, MarketOrder("SELL", 2))
    await settle(ib, lambda: sold.orderStatus.status == "Filled")
    assert sold.orderStatus.avgFillPrice == 4.80
    assert {cid: int(p.qty) for cid, p in gw.positions.items()} == {low: 0, high: 0}


async def test_a_credit_condor_at_a_negative_net_limit(ib: IB, gw: FakeGateway) -> None:
    for strike, right, bid, ask in ((465, "P", "0.80", "0.85"), (470, "P", "1.40", "1.45"),
                                    (470, "C", "1.50", "1.55"), (475, "C", "0.70", "0.75")):
        quote(gw, strike, right, bid, ask)
    wp, sp, sc, wc = await leg_ids(ib, (465, "P"), (470, "P"), (470, "C"), (475, "C"))
    condor = bag((sp, "SELL", 1), (wp, "BUY", 1), (sc, "SELL", 1), (wc, "BUY", 1))
    trade = ib.placeOrder(condor, LimitOrder("BUY", 1, -1.30, orderRef=REF))  # net: -1.40+0.85-1.50+0.75 = -1.30
    await settle(ib, lambda: trade.orderStatus.status == "Filled")
    assert trade.orderStatus.avgFillPrice == -1.30
    assert {cid: int(p.qty) for cid, p in gw.positions.items()} == {wp: 1, sp: -1, sc: -1, wc: 1}


async def test_working_and_completed_combos_are_listed_with_their_legs(connect, gw: FakeGateway) -> None:
    ib = await connect()
    gw.auto_fill = False
    call, put = await leg_ids(ib, (470, "C"), (470, "P"))
    trade = ib.placeOrder(bag((call, "BUY", 1), (put, "SELL", 1)), LimitOrder("BUY", 1, 0.05, orderRef=REF))
    await settle(ib, lambda: trade.orderStatus.status == "Submitted")
    other = await connect(client_id=2)
    [listed] = await other.reqAllOpenOrdersAsync()
    assert listed.contract.secType == "BAG" and listed.order.orderRef == REF
    assert [(leg.conId, leg.ratio, leg.action) for leg in listed.contract.comboLegs] == [(call, 1, "BUY"), (put, 1, "SELL")]
    await gw.fill_combo(trade.order.orderId, 1)
    [completed] = await other.reqCompletedOrdersAsync(True)
    assert completed.contract.secType == "BAG" and len(completed.contract.comboLegs) == 2
    assert completed.orderStatus.status == "Filled"


async def test_refusals_leave_no_leg(ib: IB, gw: FakeGateway) -> None:
    call, put = await leg_ids(ib, (470, "C"), (470, "P"))
    unknown = ib.placeOrder(bag((call, "BUY", 1), (123456, "BUY", 1)), LimitOrder("BUY", 1, 3.00))
    no_legs = ib.placeOrder(bag(), LimitOrder("BUY", 1, 3.00))
    stop = ib.placeOrder(bag((call, "BUY", 1), (put, "BUY", 1)), StopOrder("SELL", 1, 2.00))
    ids = {unknown.order.orderId, no_legs.order.orderId, stop.order.orderId}
    await settle(ib, lambda: all(t.orderStatus.status == "Inactive" or t.log[-1].errorCode for t in (unknown, no_legs, stop)))
    codes = {req_id: code for _, req_id, code, _ in gw.errors_sent if req_id in ids}
    assert codes == {unknown.order.orderId: 200, no_legs.order.orderId: 321, stop.order.orderId: 387}
    assert not gw.executions and not gw.positions
