"""IBBroker keeps its connection whatever its listener or the socket throws at it (SPEC §6: no exception
may kill the daemon): a listener that raises never reaches ib_async nor the heartbeat, a socket gone
between the check and the send is `not_connected`, and a background task's failure is logged."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
import structlog

from broker.base import BrokerError
from broker.ib import ConnectionState
from tests.broker.test_ib_support import Recorder, connected, gateway, order


@dataclass
class RaisingRecorder(Recorder):
    """Records every callback, then raises: a listener with a bug in each of its methods."""

    def on_quote(self, quote):  # type: ignore[no-untyped-def]
        super().on_quote(quote)
        raise RuntimeError("listener bug: quote")

    def on_order_update(self, update):  # type: ignore[no-untyped-def]
        super().on_order_update(update)
        raise RuntimeError("listener bug: update")

    def on_fill(self, fill):  # type: ignore[no-untyped-def]
        super().on_fill(fill)
        raise RuntimeError("listener bug: fill")

    def on_connection(self, connected, reason):  # type: ignore[no-untyped-def]
        super().on_connection(connected, reason)
        raise RuntimeError("listener bug: connection")


async def test_a_listener_that_raises_everywhere_neither_keeps_the_broker_from_ready_nor_stops_the_heartbeat():
    async with gateway() as gw, connected(gw, start=False) as (broker, _):
        rec = RaisingRecorder()
        broker.set_listener(rec)
        with structlog.testing.capture_logs() as logs:
            await broker.start()
            assert broker.state is ConnectionState.READY
            await broker.place(order(21, qty=1, limit="2.60"))
            await rec.wait_for(lambda: rec.fills)
            gw.stall(True)
            await rec.wait_for(lambda: (False, "heartbeat_timeout") in rec.connection, timeout=15)
            gw.stall(False)
            await rec.wait_for(lambda: broker.state is ConnectionState.READY, timeout=15)
        assert rec.connection[-2:] == [(True, "reconciling"), (True, "ready")]
        failed = {e["callback"] for e in logs if e["event"] == "ib_listener_failed"}
        assert {"on_connection", "on_order_update", "on_fill"} <= failed
        assert all(e["code"] == "listener_error" for e in logs if e["event"] == "ib_listener_failed")


async def test_a_socket_gone_between_the_check_and_the_send_is_not_connected_and_sends_nothing():
    async with gateway() as gw, connected(gw) as (broker, _):
        def gone(*_args):  # type: ignore[no-untyped-def]
            raise ConnectionError("Not connected")

        broker.ib.client.placeOrder = gone  # type: ignore[method-assign]
        broker.ib.client.cancelOrder = gone  # type: ignore[method-assign]
        with pytest.raises(BrokerError) as placed:
            await broker.place(order(22))
        with pytest.raises(BrokerError) as cancelled:
            await broker.cancel(22)
        assert placed.value.code == cancelled.value.code == "not_connected"
        assert 22 not in gw.orders


async def test_a_background_task_that_fails_is_logged_with_a_reason_code():
    async with gateway() as gw, connected(gw) as (broker, _):
        async def broken() -> None:
            raise RuntimeError("bug in a background task")

        with structlog.testing.capture_logs() as logs:
            task = broker._session.spawn(broken())
            await asyncio.wait({task})
            await asyncio.sleep(0)
        (failed,) = [e for e in logs if e["event"] == "ib_task_failed"]
        assert failed["code"] == "task_failed" and "bug in a background task" in failed["error"]
        assert task not in broker._session._tasks
