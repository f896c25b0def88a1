"""Executions IB no longer reports (SPEC §6.1, issue 9): IB answers reqExecutions with the current day's
fills only. A fill made at 23:50 while the daemon was down is reconciled at a 00:10 restart from the
completed orders and positions, not left as a blocked underlying."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from broker.ib import IBBroker
from broker.quotes import QuoteBook
from daemon.live import LiveShell
from daemon.reconcile import reconcile
from market.clock import EXCHANGE_TZ
from tests.broker.test_ib_e2e import _stops, async_eq, rig

pytestmark = pytest.mark.slow
MAG7 = {"AAPL": "175.00", "MSFT": "400.00", "GOOGL": "140.00", "AMZN": "175.00", "NVDA": "850.00",
        "META": "500.00", "TSLA": "180.00"}


def _move_clock(clock, to: datetime) -> None:
    clock._offset += to - clock.now()


async def test_a_fill_at_2350_while_down_is_reconciled_at_a_0010_restart_without_blocking(tmp_path):
    expiry = date(2024, 3, 13)
    async with rig(tmp_path, "7dte", MAG7) as r:
        r.gw.executions_today_only = True
        outcome = await r.open_trade("midnight", "AAPL", expiry, list(range(170, 181)), "9.95",
                                     listed=(date(2024, 3, 8), date(2024, 3, 22)))
        contracts = outcome.decision["contracts"]
        await r.until(async_eq(r.position_qty, [(contracts, "open")]))
        await r.until(lambda: sum(int(o.qty) for o in _stops(r.gw)) == contracts, timeout=5)
        [stop] = _stops(r.gw)
        await r.engine.stop()  # the daemon is down

        _move_clock(r.clock, datetime(2024, 3, 6, 23, 50, tzinfo=EXCHANGE_TZ))
        await r.gw.fill(stop.order_id, contracts, stop.aux_price, when=r.clock.now())  # the GTC stop fires
        assert not [p for p in r.gw.positions.values() if p.qty]

        _move_clock(r.clock, datetime(2024, 3, 7, 0, 10, tzinfo=EXCHANGE_TZ))
        broker = IBBroker(r.engine.settings, r.clock)
        engine = LiveShell(r.engine.settings, r.clock, r.store, broker, QuoteBook())
        try:
            await engine.start()
            assert await broker.executions() == []  # IB no longer lists the 23:50 fill
            report = engine.last_reconcile
            assert report is not None and report.fills_recovered == (f"completed-{stop.perm_id}",)
            assert report.blocked == () and not report.mismatches and engine.blocked == set()
            assert await r.position_qty() == [(0, "closed")]
            fills = [f for f in await r.store.list_fills(limit=100) if f.side == "SELL"]
            assert [(f.order_id, f.quantity, f.price) for f in fills] == [(stop.order_id, contracts, stop.aux_price)]
            assert fills[0].at == datetime(2024, 3, 6, 23, 50, tzinfo=EXCHANGE_TZ)
            # a second reconciliation adds nothing
            again = await reconcile(broker, r.store, profile="7dte", prefix=engine.settings.execution.order_ref_prefix,
                                    now=r.clock.now(), kind="reconnect")
            assert again.fills_recovered == () and again.blocked == ()
        finally:
            await engine.stop()
        assert r.clock.now() - datetime(2024, 3, 7, 0, 10, tzinfo=EXCHANGE_TZ) < timedelta(minutes=5)
