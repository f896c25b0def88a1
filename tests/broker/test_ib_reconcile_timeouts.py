"""A reconciliation step that gets no end marker (issue 9): it times out, alerts and is retried, while the
connection goes on to READY and exits still work. Never RECONCILING forever."""

from __future__ import annotations

import pytest

from broker.ib import ConnectionState
from tests.broker.test_ib_e2e import SPY_QQQ_IWM, WEDNESDAY_10AM, async_eq, async_where, rig

pytestmark = pytest.mark.slow


async def test_a_withheld_end_marker_times_out_alerts_retries_and_exits_still_work(tmp_path):
    today = WEDNESDAY_10AM.date()
    async with rig(tmp_path, "0dte", SPY_QQQ_IWM, **{"broker.ib.connect_timeout_s": "1",
                                                      "broker.ib.reconnect_initial_s": "0.2"}) as r:
        alerts: list[tuple[str, dict]] = []
        r.broker._session._alert = lambda kind, detail: alerts.append((kind, dict(detail)))
        outcome = await r.open_0dte("withheld")
        contracts = outcome.decision["contracts"]
        await r.until(async_eq(r.position_qty, [(contracts, "open")]))
        r.gw.withheld_ends = {"executions"}  # this gateway build never ends reqExecutions
        await r.gw.drop_clients()
        await r.until(lambda: any(k == "ib_reconcile_incomplete" for k, _ in alerts), timeout=20)
        [first] = [d for k, d in alerts if k == "ib_reconcile_incomplete"][:1]
        assert first["steps"] == ["executions"] and first["attempt"] == 1
        await r.until(lambda: r.broker.state is ConnectionState.READY, timeout=10)  # not held in RECONCILING
        assert r.engine.last_reconcile is not None and r.engine.last_reconcile.incomplete == ("executions",)

        r.quote("SPY", today, 470, "3.22")  # tier 1: the partial exit goes while reconciliation is retried
        await r.until(async_where(r.position_qty, lambda q: q[0][0] < contracts), timeout=20)
        assert [e for e in r.gw.executions if e.action == "SELL"]

        await r.until(lambda: len([k for k, _ in alerts if k == "ib_reconcile_incomplete"]) >= 2, timeout=20)
        r.gw.withheld_ends = set()  # the gateway answers again: the next retry completes
        await r.until(lambda: r.engine.last_reconcile is not None and not r.engine.last_reconcile.incomplete,
                      timeout=20)
        assert not [k for k, _ in alerts if k == "ib_reconcile_gave_up"]
        await r.agree()


async def test_retries_are_bounded_and_the_last_one_says_so(tmp_path):
    async with rig(tmp_path, "0dte", SPY_QQQ_IWM, **{"broker.ib.connect_timeout_s": "0.5",
                                                      "broker.ib.reconnect_initial_s": "0.1",
                                                      "broker.ib.reconcile_retries": "2"}) as r:
        alerts: list[tuple[str, dict]] = []
        r.broker._session._alert = lambda kind, detail: alerts.append((kind, dict(detail)))
        r.gw.withheld_ends = {"open_orders"}
        await r.engine.start()
        assert r.broker.state is ConnectionState.READY
        await r.until(lambda: any(k == "ib_reconcile_gave_up" for k, _ in alerts), timeout=20)
        kinds = [k for k, _ in alerts if k.startswith("ib_reconcile")]
        assert kinds == ["ib_reconcile_incomplete", "ib_reconcile_incomplete", "ib_reconcile_gave_up"]
        assert r.broker.state is ConnectionState.READY
