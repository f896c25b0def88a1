"""Fault injection: drops, stalls, errors, rejects, refused client ids, restarts, fills while away."""

from __future__ import annotations

import asyncio
from datetime import timedelta, timezone
from decimal import Decimal

import pytest
from ib_async import IB, ExecutionFilter, LimitOrder, Option, StopOrder

from tests.fakegw import FakeGateway
from tests.fakegw.rawclient import RawClient
from tests.fakegw_tests.conftest import EXPIRY, Connect, settle

REF = "tradingd:0dte:sig-9:1"


async def call(ib: IB):
    (contract,) = await ib.qualifyContractsAsync(Option("SPY", "20240119", 470, "C", "SMART"))
    return contract


def errors_of(ib: IB) -> list[tuple[int, int]]:
    seen: list[tuple[int, int]] = []
    ib.errorEvent += lambda req_id, code, msg, contract: seen.append((req_id, code))
    return seen


async def test_drop_clients_disconnects_and_allows_reconnect(gw: FakeGateway, connect: Connect) -> None:
    ib = await connect()
    dropped = asyncio.Event()
    ib.disconnectedEvent += lambda: dropped.set()
    await gw.drop_clients()
    await asyncio.wait_for(dropped.wait(), 2)
    assert not ib.isConnected() and gw.sessions == []
    await ib.connectAsync("127.0.0.1", gw.port, clientId=1, timeout=2)
    assert ib.isConnected() and gw.client_ids == [1]


async def test_stall_holds_answers_until_released(ib: IB, gw: FakeGateway) -> None:
    gw.stall(True)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(ib.reqCurrentTimeAsync(), 0.3)
    assert ib.isConnected()
    pending = ib.reqCurrentTimeAsync()
    gw.stall(False)
    await asyncio.wait_for(pending, 2)


async def test_stalled_gateway_does_not_answer_the_handshake(gw: FakeGateway) -> None:
    gw.stall(True)
    ib = IB()
    try:
        with pytest.raises((asyncio.TimeoutError, ConnectionError)):
            await ib.connectAsync("127.0.0.1", gw.port, clientId=5, timeout=0.3)
    finally:
        ib.disconnect()


@pytest.mark.parametrize("code", [1100, 1101, 1102, 2103, 2104, 354, 10197])
async def test_send_error_reaches_the_client(ib: IB, gw: FakeGateway, code: int) -> None:
    seen = errors_of(ib)
    await gw.send_error(-1, code)
    await settle(ib, lambda: (-1, code) in seen)


async def test_send_error_with_request_id_and_text(ib: IB, gw: FakeGateway) -> None:
    messages: list[str] = []
    ib.errorEvent += lambda req_id, code, msg, contract: messages.append(f"{req_id}:{code}:{msg}")
    await gw.send_error(17, 354, "Requested market data is not subscribed.Delayed market data is available.")
    await settle(ib, lambda: bool(messages))
    assert messages == ["17:354:Requested market data is not subscribed.Delayed market data is available."]


async def test_connectivity_loss_pauses_ticks_and_1101_drops_subscriptions(ib: IB, gw: FakeGateway) -> None:
    seen = errors_of(ib)
    ticker = ib.reqMktData(await call(ib))
    await settle(ib, lambda: ticker.ask == 1.55)
    await gw.lose_connectivity()
    gw.market.set_option("SPY", EXPIRY, Decimal(470), "C", "1.50", "1.57", 10, 10)
    await settle(ib, lambda: (-1, 1100) in seen)
    assert ticker.ask == 1.55
    await gw.restore_connectivity(data_lost=False)
    await settle(ib, lambda: ticker.ask == 1.57 and (-1, 1102) in seen)
    await gw.restore_connectivity(data_lost=True)
    await settle(ib, lambda: (-1, 1101) in seen)
    assert all(not s.market_data for s in gw.sessions)


async def test_reject_next_order_is_201_then_inactive(ib: IB, gw: FakeGateway) -> None:
    seen = errors_of(ib)
    gw.reject_next_order(reason="Insufficient buying power")
    trade = ib.placeOrder(await call(ib), LimitOrder("BUY", 1, 1.55, orderRef=REF))
    await settle(ib, lambda: trade.orderStatus.status == "Inactive")
    assert (trade.order.orderId, 201) in seen
    rejected = gw.orders[trade.order.orderId]
    assert rejected.status == "Inactive" and rejected.error == (201, "Order rejected - reason:Insufficient buying power")
    second = ib.placeOrder(trade.contract, LimitOrder("BUY", 1, 1.55))
    await settle(ib, lambda: second.orderStatus.status == "Filled")  # only the next one was rejected


async def test_refused_client_id_gets_326_and_is_closed(gw: FakeGateway) -> None:
    gw.refuse_client_id(11)
    ib = IB()
    seen = errors_of(ib)
    try:
        with pytest.raises((asyncio.TimeoutError, ConnectionError)):
            await ib.connectAsync("127.0.0.1", gw.port, clientId=11, timeout=0.5)
    finally:
        ib.disconnect()
    assert (-1, 326) in seen and gw.sessions == []
    gw.accept_client_id(11)
    again = IB()
    try:
        await again.connectAsync("127.0.0.1", gw.port, clientId=11, timeout=2)
    finally:
        again.disconnect()


async def test_fills_while_away_are_reported_on_reconnect(gw: FakeGateway, connect: Connect) -> None:
    ib = await connect(client_id=1)
    contract = await call(ib)
    gw.auto_fill = False
    done = ib.placeOrder(contract, LimitOrder("BUY", 2, 1.50, orderRef=REF))
    partial = ib.placeOrder(contract, StopOrder("SELL", 3, 1.00, orderRef="tradingd:0dte:stop-1:1"))
    await settle(ib, lambda: partial.orderStatus.status == "PreSubmitted")
    ib.disconnect()
    await asyncio.sleep(0)
    await gw.fill(done.order.orderId, 2, "1.50")
    await gw.fill(partial.order.orderId, 1, "0.95")

    again = await connect(client_id=1)
    fills = await asyncio.wait_for(again.reqExecutionsAsync(), 2)
    assert sorted((f.execution.orderRef, f.execution.shares) for f in fills) == [
        (REF, 2.0), ("tradingd:0dte:stop-1:1", 1.0)]
    # ib_async keeps the commission on the fills it saw first (during the connect sync).
    assert {f.commissionReport.execId for f in again.fills()} == {f.execution.execId for f in fills}
    (working,) = again.openTrades()
    assert (working.order.orderRef, working.orderStatus.filled, working.orderStatus.remaining) == (
        "tradingd:0dte:stop-1:1", 1.0, 2.0)
    (position,) = again.positions()
    assert position.position == 1  # bought 2, stop sold 1


async def test_execution_filter_by_time(gw: FakeGateway, connect: Connect) -> None:
    ib = await connect()
    trade = ib.placeOrder(await call(ib), LimitOrder("BUY", 2, 1.60))
    await settle(ib, lambda: trade.orderStatus.status == "Filled")
    (execution,) = gw.executions
    later = execution.time + timedelta(minutes=5)
    earlier = execution.time - timedelta(minutes=5)
    after = ExecutionFilter(time=f"{later:%Y%m%d %H:%M:%S} US/Eastern")
    assert await asyncio.wait_for(ib.reqExecutionsAsync(after), 2) == []
    before_utc = ExecutionFilter(time=f"{earlier.astimezone(timezone.utc):%Y%m%d-%H:%M:%S}")
    assert len(await asyncio.wait_for(ib.reqExecutionsAsync(before_utc), 2)) == 1


async def test_restart_keeps_orders_and_rolls_back_next_valid_id(gw: FakeGateway, connect: Connect) -> None:
    ib = await connect()
    trade = ib.placeOrder(await call(ib), LimitOrder("BUY", 1, 1.00, orderRef=REF))
    await settle(ib, lambda: trade.orderStatus.status == "Submitted")
    order_id = trade.order.orderId
    port = gw.port
    await gw.restart(next_valid_id=order_id)
    assert gw.port == port and not ib.isConnected()

    again = IB()
    valid_ids: list[int] = []
    again.wrapper.nextValidId = valid_ids.append  # type: ignore[method-assign]
    try:
        await again.connectAsync("127.0.0.1", port, clientId=1, timeout=2)
        assert valid_ids == [order_id]
        (working,) = again.openTrades()
        assert working.order.orderRef == REF and working.order.orderId == order_id
        # Reusing the rolled-back id would silently modify the old order: the daemon must not.
        again.client.placeOrder(order_id, trade.contract, LimitOrder("BUY", 5, 1.00))
        await settle(again, lambda: gw.orders[order_id].revisions == 1)
        assert gw.orders[order_id].qty == 5
    finally:
        again.disconnect()


async def test_pacing_violation_is_error_100(gw: FakeGateway) -> None:
    gw.max_messages_per_second = 5
    raw = RawClient()
    try:
        await raw.connect("127.0.0.1", gw.port)
        await raw.start_api(4, frames=8)
        for _ in range(6):
            raw.send(49, 1)
        frames = await raw.read_until("4")
        assert b"\x00100\x00" in frames[-1]
    finally:
        await raw.close()
    assert gw.pacing_violations >= 1


async def test_drop_while_stalled_closes_every_socket(gw: FakeGateway, connect: Connect) -> None:
    ib = await connect()
    gw.stall(True)
    ib.client.reqCurrentTime()  # a session now waits inside the stall
    await asyncio.sleep(0.05)
    dropped = asyncio.Event()
    ib.disconnectedEvent += lambda: dropped.set()
    await gw.drop_clients()
    await asyncio.wait_for(dropped.wait(), 2)
    assert gw.sessions == [] and gw.stalled
    gw.stall(False)
