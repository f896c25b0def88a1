"""IBBroker's connection over a real socket to the fake gateway: connect, paper check, 326, heartbeat,
reconnect with backoff, RECONCILING, 1100/1101/1102, restart windows and alerts (SPEC §6.1)."""

from __future__ import annotations

import asyncio

import pytest

from broker.base import BrokerError
from broker.ib import ConnectionState, IBBroker
from tests.broker.test_ib_support import ShiftedClock, at, connected, gateway, order, settings


async def test_connects_ready_with_account_and_paper_flag():
    async with gateway() as gw, connected(gw) as (broker, rec):
        assert broker.state is ConnectionState.READY and broker.connected
        assert rec.connection == [(True, "reconciling"), (True, "ready")]
        snap = await broker.account()
        assert (snap.account_id, snap.paper, snap.currency, snap.server_version) == ("DU1234567", True, "USD", 176)
        assert snap.net_liquidation == 100000 and snap.buying_power == 400000
        assert await broker.next_order_id() == gw.next_valid_id


async def test_live_account_without_live_true_refuses_to_start_with_a_clear_message():
    async with gateway(account="U7654321") as gw:
        broker = IBBroker(settings(gw.port))
        with pytest.raises(BrokerError) as err:
            await broker.start()
        assert err.value.code == "live_account_refused"
        assert "U7654321" in str(err.value) and "ib.live = true" in str(err.value)
        assert not broker.connected
        await broker.stop()
        await asyncio.sleep(0.05)
        assert gw.client_ids == []  # it hung up


async def test_live_account_allowed_only_when_configured_and_matching():
    async with gateway(account="U7654321") as gw:
        async with connected(gw, broker__ib__live=True, broker__ib__account="U7654321") as (broker, _):
            assert broker.account_id == "U7654321" and broker.connected
        broker = IBBroker(settings(gw.port, broker__ib__live=True, broker__ib__account="U0000001"))
        with pytest.raises(BrokerError) as err:
            await broker.start()
        assert err.value.code == "account_not_found"
        await broker.stop()


async def test_client_id_in_use_retries_with_the_next_client_id():
    async with gateway() as gw:
        gw.refuse_client_id(7)
        gw.refuse_client_id(8)
        async with connected(gw) as (broker, _):
            assert broker.client_id == 9
            assert gw.client_ids == [9]


async def test_every_client_id_refused_is_a_connect_error():
    async with gateway() as gw:
        for cid in range(7, 20):
            gw.refuse_client_id(cid)
        broker = IBBroker(settings(gw.port, broker__ib__client_id_attempts=2))
        with pytest.raises(BrokerError) as err:
            await broker.start()
        assert err.value.code == "326"
        await broker.stop()


async def test_no_gateway_is_a_connect_error():
    async with gateway() as gw:
        port = gw.port
    broker = IBBroker(settings(port))
    with pytest.raises(BrokerError) as err:
        await broker.start()
    assert err.value.code == "connection_refused"  # not "closed" nor "timed out": nothing listens
    await broker.stop()


async def test_heartbeat_detects_a_stalled_gateway_and_stops_new_orders():
    async with gateway() as gw, connected(gw) as (broker, rec):
        gw.stall(True)
        await rec.wait_for(lambda: (False, "heartbeat_timeout") in rec.connection, timeout=15)
        assert broker.state is ConnectionState.DISCONNECTED
        with pytest.raises(BrokerError) as err:
            await broker.place(order(1))
        assert err.value.code == "not_connected"
        assert not gw.orders
        gw.stall(False)
        await rec.wait_for(lambda: broker.state is ConnectionState.READY, timeout=15)
        assert rec.connection[-2:] == [(True, "reconciling"), (True, "ready")]


async def test_socket_drop_reconnects_with_backoff_through_reconciling():
    async with gateway() as gw, connected(gw) as (broker, rec):
        release = asyncio.Event()
        seen: list[tuple[str, ConnectionState]] = []

        async def reconciler(reason: str) -> None:
            seen.append((reason, broker.state))
            await release.wait()

        broker.set_reconciler(reconciler)
        await gw.stop()  # the gateway goes away: connection refused until it is back
        await rec.wait_for(lambda: (False, "socket_closed") in rec.connection)
        await asyncio.sleep(0.5)  # several refused attempts, backing off
        await gw.start()
        await rec.wait_for(lambda: seen)
        assert seen == [("reconnected", ConnectionState.RECONCILING)]
        assert broker.state is ConnectionState.RECONCILING and broker.connected  # exits may go; the engine refuses entries
        release.set()
        await rec.wait_for(lambda: broker.state is ConnectionState.READY)
        assert rec.connection[-2:] == [(True, "reconciling"), (True, "ready")]
        assert broker.reconnects == 1


async def test_a_failing_reconciler_keeps_reconciling_and_is_retried():
    async with gateway() as gw, connected(gw) as (broker, rec):
        calls: list[str] = []

        async def reconciler(reason: str) -> None:
            calls.append(reason)
            if len(calls) == 1:
                raise RuntimeError("store unavailable")

        broker.set_reconciler(reconciler)
        await gw.drop_clients()
        await rec.wait_for(lambda: len(calls) >= 2, timeout=10)
        await rec.wait_for(lambda: broker.state is ConnectionState.READY)
        assert calls[0] == "reconnected" and calls[1] == "retry"


async def test_1100_is_a_disconnect_and_1102_reconciles_without_resubscribing():
    async with gateway() as gw, connected(gw) as (broker, rec):
        await broker.subscribe(["SPY"])
        await rec.wait_for(lambda: rec.last_quote("SPY"))
        reasons: list[str] = []

        async def reconciler(reason: str) -> None:
            reasons.append(reason)

        broker.set_reconciler(reconciler)
        await gw.lose_connectivity()
        await rec.wait_for(lambda: (False, "1100") in rec.connection)
        assert broker.state is ConnectionState.DISCONNECTED
        with pytest.raises(BrokerError):
            await broker.place(order(1))
        await rec.wait_for(lambda: rec.last_quote("SPY") is not None and not rec.last_quote("SPY").usable)
        requests_before = len(gw.sessions[0].market_data)
        await gw.restore_connectivity(data_lost=False)
        await rec.wait_for(lambda: reasons == ["1102"] and broker.state is ConnectionState.READY)
        assert len(gw.sessions[0].market_data) == requests_before


async def test_1101_resubscribes_market_data():
    async with gateway() as gw, connected(gw) as (broker, rec):
        await broker.subscribe(["SPY"])
        await rec.wait_for(lambda: rec.last_quote("SPY"))
        await gw.lose_connectivity()
        await gw.restore_connectivity(data_lost=True)  # the gateway forgot the subscription
        await rec.wait_for(lambda: broker.state is ConnectionState.READY and gw.sessions[0].market_data)
        count = len(rec.quotes)
        gw.market.set_stock("SPY", "471.00", "471.02")
        await rec.wait_for(lambda: len(rec.quotes) > count and rec.last_quote("SPY").bid == 471)
        assert rec.last_quote("SPY").usable


@pytest.mark.parametrize(("when", "expected"), [(at(14, 0), False), (at(23, 55), True)])
async def test_disconnect_alerts_only_outside_the_restart_window(when, expected):
    alerts: list = []
    async with gateway() as gw:
        broker = IBBroker(settings(gw.port), clock=ShiftedClock(when),
                          alert=lambda kind, detail: alerts.append((kind, dict(detail))))
        await broker.start()
        try:
            await gw.stop()
            await asyncio.sleep(0.05)
            assert broker.disconnect_expected is expected
            await asyncio.sleep(0.6)  # twice disconnect_alert_after_s
            kinds = [k for k, _ in alerts]
            assert kinds == ([] if expected else ["ib_disconnected"])
        finally:
            await broker.stop()
