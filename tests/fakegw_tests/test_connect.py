"""Handshake, startApi and the start-up sync a real ib_async client performs."""

from __future__ import annotations

import asyncio

import pytest
from ib_async import IB, LimitOrder, Option

from tests.fakegw import FakeGateway
from tests.fakegw.rawclient import RawClient
from tests.fakegw_tests.conftest import Connect, seed_market, settle


async def test_connect_syncs_accounts_ids_and_farm_notices(gw: FakeGateway) -> None:
    ib = IB()
    notices: list[int] = []
    ib.errorEvent += lambda req_id, code, msg, contract: notices.append(code)
    valid_ids: list[int] = []
    ib.wrapper.nextValidId = valid_ids.append  # type: ignore[method-assign]
    gw.desk.next_valid_id = 42
    try:
        await ib.connectAsync("127.0.0.1", gw.port, clientId=7, timeout=2)
        assert ib.managedAccounts() == ["DU1234567"]
        assert valid_ids == [42]
        assert notices == [2104, 2104, 2106, 2106, 2106, 2158]
        assert ib.client.serverVersion() == 176
        assert gw.client_ids == [7]
        tags = {v.tag: v.value for v in ib.accountValues() if v.currency in ("", "USD")}
        assert tags["AccountCode"] == "DU1234567" and tags["NetLiquidation"] == "100000.00"
        assert gw.unhandled == []
    finally:
        ib.disconnect()


async def test_current_time_is_the_gateway_clock(ib: IB, gw: FakeGateway) -> None:
    answered = await asyncio.wait_for(ib.reqCurrentTimeAsync(), 2)
    assert abs(answered.timestamp() - gw.clock().timestamp()) < 5


async def test_second_connection_with_same_client_id_gets_326(gw: FakeGateway, connect: Connect) -> None:
    await connect(client_id=3)
    raw = RawClient()
    try:
        await raw.connect("127.0.0.1", gw.port)
        raw.send(71, 2, 3, "")
        error = await raw.read()
        assert error[:4] == ["4", "2", "-1", "326"]
        with pytest.raises(asyncio.IncompleteReadError):
            await raw.read()
    finally:
        await raw.close()
    assert gw.client_ids == [3]


async def test_two_clients_with_different_ids_coexist(gw: FakeGateway, connect: Connect) -> None:
    first, second = await connect(client_id=1), await connect(client_id=2)
    assert first.isConnected() and second.isConnected()
    assert sorted(gw.client_ids) == [1, 2]


async def test_requests_before_start_api_are_not_answered(gw: FakeGateway) -> None:
    raw = RawClient()
    try:
        handshake = await raw.connect("127.0.0.1", gw.port)
        assert handshake[4:].split(b"\0")[0] == b"176"
        raw.send(49, 1)
        raw.send(71, 2, 9, "")
        first = await raw.read()
        assert first[:3] == ["15", "1", "DU1234567"]  # currentTime was not answered first
        assert gw.unhandled == [(None, ["49", "1"])]
    finally:
        await raw.close()


async def test_garbage_greeting_closes_the_socket(gw: FakeGateway) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    try:
        writer.write(b"GET / HTTP/1.1\r\n\r\n")
        assert await asyncio.wait_for(reader.read(), 2) == b""
    finally:
        writer.close()


def test_unsupported_server_version_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported_server_version"):
        FakeGateway(server_version=150)


@pytest.mark.parametrize("version", [170, 178])
async def test_other_server_versions_decode_cleanly(version: int) -> None:
    ib = IB()
    async with FakeGateway(server_version=version) as gw:
        seed_market(gw)
        try:
            await ib.connectAsync("127.0.0.1", gw.port, clientId=1, timeout=2)
            (call,) = await ib.qualifyContractsAsync(Option("SPY", "20240119", 470, "C", "SMART"))
            trade = ib.placeOrder(call, LimitOrder("BUY", 1, 1.55, orderRef="r"))
            await settle(ib, lambda: trade.orderStatus.status == "Filled")
            fills = await asyncio.wait_for(ib.reqExecutionsAsync(), 2)
            assert ib.client.serverVersion() == version and fills[0].execution.orderRef == "r"
            assert await asyncio.wait_for(ib.reqAllOpenOrdersAsync(), 2) == []
        finally:
            ib.disconnect()
