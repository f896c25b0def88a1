"""Profiles 0dte and 7dte on one IB account (issue 9): one gateway, two daemons, two client ids.

IB's order ids and market-data lines are the account's, not a client's: the two daemons must never
send the same order id (103 Duplicate order id), and their lines count against one budget.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from broker.ib import IBBroker
from broker.quotes import QuoteBook
from config.loader import load_settings
from daemon.live import LiveShell
from daemon.store import Store
from tests.broker.test_ib_e2e import FAST_EXECUTION, WEDNESDAY_10AM, Rig, async_eq
from tests.broker.test_ib_support import FAST_IB, ShiftedClock
from tests.fakegw import FakeGateway

pytestmark = pytest.mark.slow
MAG7 = {"AAPL": "175.00", "MSFT": "400.00", "GOOGL": "140.00", "AMZN": "175.00", "NVDA": "850.00",
        "META": "500.00", "TSLA": "180.00"}


@contextlib.asynccontextmanager
async def engine_on(gw: FakeGateway, clock: ShiftedClock, tmp_path: Any, profile: str,
                    client_id: int) -> AsyncIterator[Rig]:
    settings = load_settings(profile, env={}, overrides={
        **FAST_IB, **FAST_EXECUTION, "broker.ib.port": gw.port, "broker.ib.client_id": client_id})
    broker = IBBroker(settings, clock)
    store = Store(profile, f"sqlite:///{tmp_path / f'{profile}.db'}")
    engine = LiveShell(settings, clock, store, broker, QuoteBook())
    try:
        yield Rig(gw, engine, store, broker, clock, profile)
    finally:
        await engine.stop()
        await store.close()


async def test_0dte_and_7dte_on_one_account_place_orders_without_a_duplicate_id(tmp_path):
    clock = ShiftedClock(WEDNESDAY_10AM)
    gw = FakeGateway(clock=clock.now)
    await gw.start()
    try:
        for symbol, price in {"SPY": "470.00", "QQQ": "400.00", "IWM": "200.00", **MAG7}.items():
            gw.market.set_stock(symbol, price, str(Decimal(price) + Decimal("0.02")))
        gw.market.set_index("VIX", "18.5")
        gw.account_values(net_liquidation="200000", buying_power="800000", cash="200000")
        today, week = WEDNESDAY_10AM.date(), date(2024, 3, 13)
        gw.market.add_chain("SPY", [today], list(range(465, 476)))
        gw.market.add_chain("AAPL", [date(2024, 3, 8), week, date(2024, 3, 22)], list(range(170, 181)))
        async with engine_on(gw, clock, tmp_path, "0dte", 17) as zero, \
                engine_on(gw, clock, tmp_path, "7dte", 27) as seven:
            for k in range(465, 476):
                zero.quote("SPY", today, k, "2.95")
            for k in range(170, 181):
                seven.quote("AAPL", week, k, "9.95")
            await zero.engine.start()
            await seven.engine.start()
            one = await zero.engine.submit_signal(zero.signal("two-0dte", "SPY"), "test")
            two = await seven.engine.submit_signal(seven.signal("two-7dte", "AAPL"), "test")
            assert one.accepted and two.accepted
            # generous: both daemons' children take the account's id turn in turn, on a shared machine
            await zero.until(async_eq(zero.position_qty, [(one.decision["contracts"], "open")]), timeout=60)
            await seven.until(async_eq(seven.position_qty, [(two.decision["contracts"], "open")]), timeout=60)
            # both protective stops rest too, each under its own client
            await zero.until(lambda: {o.client_id for o in gw.orders.values() if o.order_type == "STP"} == {17, 27})
        duplicates = [e for e in gw.errors_sent if e[2] == 103]
        assert duplicates == []
        by_client: dict[int, set[int]] = {}
        for order in gw.orders.values():
            by_client.setdefault(order.client_id, set()).add(order.order_id)
        assert set(by_client) == {17, 27} and not (by_client[17] & by_client[27])
    finally:
        await gw.stop()


async def test_capital_source_broker_sizes_from_net_liquidation(tmp_path):
    """capital.source = "broker": the bet limits come from the account's net liquidation at the gateway."""
    from tests.broker.test_ib_e2e import SPY_QQQ_IWM, rig

    async with rig(tmp_path, "0dte", SPY_QQQ_IWM, **{"capital.source": "broker"}) as r:
        r.gw.account_values(net_liquidation="80000", buying_power="800000", cash="80000")
        outcome = await r.open_0dte("broker-capital")
        assert Decimal(str(outcome.decision["capital_base"])) == Decimal("80000")
        await r.engine.checkpoint(r.clock.now())  # a checkpoint measures against it too, without failing
        before = (await r.broker.account()).net_liquidation
        r.gw.account_values(cash="50000")  # the account moved (cash out): net liquidation follows

        async def moved() -> bool:
            return (await r.broker.account()).net_liquidation != before
        await r.until(moved, timeout=5)
        await r.engine.checkpoint(r.clock.now())
        assert r.engine.capital_base() == (await r.broker.account()).net_liquidation < before
