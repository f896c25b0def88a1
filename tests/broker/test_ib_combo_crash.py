"""A real `tradingd run --broker ib` process trading a combo (a straddle for a volatility signal), killed with
SIGKILL after the combo child's intent is committed and before its BAG placeOrder, and again after placeOrder
before the gateway's answer: started again on the same database, the combo's orderRef reached IB at most once.
The harness (process, log lines, restart check) is test_ib_crash's."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime

import pytest

from market.clock import EXCHANGE_TZ
from tests.broker.test_ib_crash import Daemon, _restart_and_check, daemon
from tests.broker.run_in_session import gateway_clock, session_now
from tests.fakegw import FakeGateway

pytestmark = pytest.mark.slow


@contextlib.asynccontextmanager
async def _gateway() -> AsyncIterator[FakeGateway]:
    gw = FakeGateway(clock=gateway_clock())  # executions stamped on the daemon's moved clock
    await gw.start()
    today = session_now().date()
    for symbol, price in (("SPY", "470.00"), ("QQQ", "400.00"), ("IWM", "200.00")):
        gw.market.set_stock(symbol, price, price[:-1] + "2")
    gw.market.set_index("VIX", "18.5")
    strikes = range(465, 476)
    gw.market.add_chain("SPY", [today], strikes)
    for k in strikes:
        for right, delta in (("C", "0.5"), ("P", "-0.5")):
            gw.market.set_option("SPY", today, k, right, "2.95", "3.05", bid_size=50, ask_size=50,
                                 open_interest=1200, delta=delta, gamma="0.04", iv="0.2")
    gw.account_values(net_liquidation="200000", buying_power="800000", cash="200000")
    gw.auto_fill = False  # the children rest: what matters is what was sent
    try:
        yield gw
    finally:
        await gw.stop()


async def _enter_combo(d: Daemon) -> int:
    """A volatility signal; the order id of its first combo child once its intent is committed."""
    raw = {"id": "crash-combo", "profile": "0dte", "underlying": "SPY", "direction": "bullish",
           "strategy": "volatility", "confidence": 0.75, "created_at": session_now().isoformat()}
    task = asyncio.ensure_future(d.post_signal(raw))
    line = await d.wait_line(lambda ln: ln.get("event") == "order" and ln.get("status") == "sending")
    task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)
    return int(line["order_id"])


async def test_kill_between_a_combos_intent_and_its_place_order(tmp_path):
    async with _gateway() as gw:
        async with daemon(gw, tmp_path, messages_per_s=10) as d:
            order_id = await _enter_combo(d)
            await d.kill()  # the BAG waits in the throttle behind its legs' qualification: never sent
        await asyncio.sleep(0.3)
        assert order_id not in gw.orders
        await _restart_and_check(gw, tmp_path, order_id, sent=False)


async def test_kill_after_a_combos_place_order_before_the_ack(tmp_path):
    async with _gateway() as gw:
        async with daemon(gw, tmp_path, messages_per_s=10) as d:
            order_id = await _enter_combo(d)
            gw.stall(True)
            await d.wait_line(lambda ln: ln.get("event") == "order" and ln.get("status") == "sent"
                              and ln.get("order_id") == order_id)
            await d.kill()
        gw.stall(False)  # the gateway works off what reached it: the combo is live at IB
        await asyncio.sleep(0.3)
        placed = gw.orders[order_id]
        assert placed.contract.is_combo and len(placed.contract.legs) == 2
        assert placed.order_ref.startswith("tradingd:0dte:crash-combo:")
        await _restart_and_check(gw, tmp_path, order_id, sent=True)
