"""A real `tradingd run --broker ib` subprocess against the fake gateway, killed with SIGKILL at the two
worst moments (SPEC §6.1): after an order intent is committed but before placeOrder, and after
placeOrder but before the gateway's acknowledgement reached the daemon. It is started again on the
same database: nothing is sent twice, nothing is lost.

The daemon logs JSON lines on stdout; the test watches them to pick its moment. Pacing is set low
(10 messages/s) so the first child order queues in the broker's throttle behind the option
subscriptions of its signal: that queue is the window between intent and placeOrder.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from daemon.store import Store
from tests.broker.run_in_session import gateway_clock, session_now
from tests.fakegw import FakeGateway
from tests.spawned_daemon import Daemon, directional, lines_after_start, spawn, tradingd_run

pytestmark = pytest.mark.slow


@contextlib.asynccontextmanager
async def daemon(gw: FakeGateway, tmp_path: Path, messages_per_s: int) -> AsyncIterator[Daemon]:
    async with spawn("tests.broker.run_in_session", tradingd_run("ib", f"sqlite:///{tmp_path / 'crash.db'}"),
                     tmp_path, {"TRADINGD_BROKER__IB__PORT": str(gw.port), "TRADINGD_BROKER__IB__CLIENT_ID": "41",
                                "TRADINGD_EXECUTION__MAX_MESSAGES_PER_S": str(messages_per_s)}) as d:
        yield d


def _market(gw: FakeGateway) -> None:
    today = session_now().date()
    gw.market.set_stock("SPY", "470.00", "470.02")
    gw.market.set_stock("QQQ", "400.00", "400.02")
    gw.market.set_stock("IWM", "200.00", "200.02")
    gw.market.set_index("VIX", "18.5")
    strikes = range(465, 476)
    gw.market.add_chain("SPY", [today], strikes)
    for k in strikes:
        gw.market.set_option("SPY", today, k, "C", "2.95", "3.05", bid_size=50, ask_size=50, open_interest=1200,
                             delta="0.5", gamma="0.04", iv="0.2")
    gw.account_values(net_liquidation="200000", buying_power="800000", cash="200000")
    gw.auto_fill = False  # the children rest: what matters is what was sent


def _signal(sid: str, confidence: float) -> dict[str, Any]:
    return directional(sid, confidence, session_now().isoformat())


async def _enter(d: Daemon) -> int:
    """Send a signal; return the order id of its first child once its intent is committed."""
    task = asyncio.ensure_future(d.post_signal(_signal("crash", 0.75)))
    line = await d.wait_line(lambda ln: ln.get("event") == "order" and ln.get("status") == "sending")
    task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)
    return int(line["order_id"])


@contextlib.asynccontextmanager
async def _gateway() -> AsyncIterator[FakeGateway]:
    gw = FakeGateway(clock=gateway_clock())  # executions stamped on the daemon's moved clock
    await gw.start()
    _market(gw)
    try:
        yield gw
    finally:
        await gw.stop()


async def _restart_and_check(gw: FakeGateway, tmp_path: Path, order_id: int, sent: bool) -> None:
    lines = await lines_after_start(daemon(gw, tmp_path, messages_per_s=40), settle_s=0.5)
    found = [ln for ln in lines if order_id in (ln.get("never_sent") or ())
             or (ln.get("event") == "intent_not_at_broker" and ln.get("order_id") == order_id)]
    store = Store("0dte", f"sqlite:///{tmp_path / 'crash.db'}")
    try:
        intent = await store.find_intent(order_id)
        assert intent is not None  # written before anything was sent, so never lost
        refs = [o.order_ref for o in gw.orders.values()]
        assert refs.count(intent.order_ref) == (1 if sent else 0)  # never resent
        assert len(gw.orders) == len(set(gw.orders))
        if sent:
            assert intent.state == "working" and gw.orders[order_id].status == "Submitted"
        else:
            assert order_id not in gw.orders and intent.state == "cancelled"
            assert found, "the restart did not report the intent the broker never saw"
        assert await store.highest_order_id() >= max([order_id, *gw.orders])
        assert [f.exec_id for f in await store.list_fills()] == [e.exec_id for e in gw.executions]
    finally:
        await store.close()


async def test_kill_between_intent_and_place_order(tmp_path):
    async with _gateway() as gw:
        async with daemon(gw, tmp_path, messages_per_s=10) as d:
            order_id = await _enter(d)
            await d.kill()  # the child waits in the throttle: its placeOrder never leaves
        await asyncio.sleep(0.3)
        assert order_id not in gw.orders
        await _restart_and_check(gw, tmp_path, order_id, sent=False)


async def test_kill_after_place_order_before_the_ack(tmp_path):
    async with _gateway() as gw:
        async with daemon(gw, tmp_path, messages_per_s=10) as d:
            order_id = await _enter(d)
            gw.stall(True)  # whatever arrives now is held, and nothing is answered
            await d.wait_line(lambda ln: ln.get("event") == "order" and ln.get("status") == "sent"
                              and ln.get("order_id") == order_id)
            await d.kill()
        gw.stall(False)  # the gateway works off what reached it: the order is live at IB
        await asyncio.sleep(0.3)
        assert gw.orders[order_id].order_ref.startswith("tradingd:0dte:crash:")
        await _restart_and_check(gw, tmp_path, order_id, sent=True)
