"""Client ids (SPEC §6.1, issue 9): IB ties an order to the client id that placed it.

After 326 the daemon retries its own id with backoff before it moves; when it must move, the
underlyings whose orders (here the protective stop) it can no longer control are blocked and an
alert fires. It never moves silently.
"""

from __future__ import annotations

import pytest

from broker.ib import ConnectionState
from tests.broker.test_ib_e2e import SPY_QQQ_IWM, _stops, async_eq, rig
from tests.broker.test_ib_support import connected, gateway

pytestmark = pytest.mark.slow


def _start_api_ids(gw) -> list[int]:
    return [int(fields[2]) for _, fields in gw.received if fields and fields[0] == "71"]


async def test_326_with_a_resting_stop_retries_its_own_id_then_moves_alerts_and_blocks_the_underlying(tmp_path):
    async with rig(tmp_path, "0dte", SPY_QQQ_IWM, **{"broker.ib.client_id_retries": "2"}) as r:
        alerts: list[tuple[str, dict]] = []
        r.broker._session._alert = lambda kind, detail: alerts.append((kind, dict(detail)))
        outcome = await r.open_0dte("moved")
        contracts = outcome.decision["contracts"]
        await r.until(async_eq(r.position_qty, [(contracts, "open")]))
        await r.until(lambda: sum(int(o.qty) for o in _stops(r.gw)) == contracts, timeout=5)
        r.gw.refuse_client_id(31)  # a stale session still holds our id at the gateway
        before = len(_start_api_ids(r.gw))
        await r.gw.drop_clients()
        await r.until(lambda: r.broker.state is ConnectionState.READY and r.broker.client_id == 32, timeout=20)
        assert _start_api_ids(r.gw)[before:] == [31, 31, 31, 32]  # own id, two retries, then the next
        [(kind, detail)] = [a for a in alerts if a[0] == "ib_client_id_moved"]
        assert (detail["from_client_id"], detail["to_client_id"]) == (31, 32)
        await r.until(lambda: "SPY" in r.engine.blocked, timeout=10)
        blocked = {b.underlying: b.reason for b in await r.store.blocked_underlyings()}
        assert blocked == {"SPY": "client_id_moved"}
        assert r.engine.last_reconcile is not None and "SPY" in r.engine.last_reconcile.blocked


async def test_326_that_clears_while_retrying_keeps_our_own_id_without_an_alert():
    alerts: list = []
    async with gateway() as gw, connected(gw, alerts=alerts, broker__ib__client_id_retries="3") as (broker, rec):
        gw.refuse_client_id(7)
        await gw.drop_clients()
        await rec.wait_for(lambda: len([i for i in _start_api_ids(gw) if i == 7]) >= 3, timeout=10)
        gw.accept_client_id(7)  # the gateway let go of the stale session
        await rec.wait_for(lambda: broker.state is ConnectionState.READY and broker.reconnects >= 1, timeout=10)
        assert broker.client_id == 7 and 8 not in _start_api_ids(gw)
        assert not [a for a in alerts if a[0] == "ib_client_id_moved"]
