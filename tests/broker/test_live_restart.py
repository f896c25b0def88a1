"""The live shell (`tradingd run --broker ib`, the core in its asyncio shell) as a real process against
the fake gateway, SIGKILLed mid-slice and mid-exit, and started again on the same database.

The guarantees of the Part 4 crash tests (SPEC §6.1), now over the core: no orderRef is ever sent
twice, the protective stop resting at the broker is adopted and never sent again, every execution is
applied exactly once, and the store's positions equal the broker's once the restart has reconciled.

Each daemon's clock is moved into a session (`tests.broker.run_in_session`: 11:00 ET of the latest full
session; the fake gateway on the same clock), so the tests hold at any hour and on any day. The last one
moves it to the end of the session: the restarted daemon closes its 0dte position out on its own clock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from daemon.store import Store
from market.clock import EXCHANGE_TZ
from tests.broker.run_in_session import gateway_clock, offset_env, offset_to, session_now
from tests.broker.test_ib_crash import _market
from tests.fakegw import FakeGateway
from tests.fakegw.orders import FakeOrder
from tests.spawned_daemon import Daemon, directional, lines_after_start, spawn, tradingd_run

pytestmark = pytest.mark.slow


def _signal(sid: str, confidence: float) -> dict[str, Any]:
    return directional(sid, confidence, session_now().isoformat())


def live(gw: FakeGateway, tmp_path: Path, **env: str) -> contextlib.AbstractAsyncContextManager[Daemon]:
    """`tradingd run --broker ib` with its clock moved into a session (11:00 ET unless `env` moves it
    elsewhere), as the gateway's."""
    return spawn("tests.broker.run_in_session", tradingd_run("ib", f"sqlite:///{tmp_path / 'live.db'}"), tmp_path, {
        "TRADINGD_BROKER__IB__PORT": str(gw.port), "TRADINGD_BROKER__IB__CLIENT_ID": "43", **env},
        log_to=tmp_path / "daemon.log")


@contextlib.asynccontextmanager
async def gateway(shift: timedelta | None = None) -> AsyncIterator[FakeGateway]:
    gw = FakeGateway(clock=gateway_clock(shift))  # executions stamped on the daemon's moved clock
    await gw.start()
    _market(gw)
    gw.auto_fill = True
    try:
        yield gw
    finally:
        await gw.stop()


def _stops(gw: FakeGateway) -> list[FakeOrder]:
    return [o for o in gw.orders.values() if o.order_type == "STP"]


async def _check(gw: FakeGateway, tmp_path: Path, stops_before: list[int] | None) -> None:
    """After the restart: what the store holds equals what the gateway did, nothing twice. `stops_before`:
    the stops at the gateway at the kill, when the restart must adopt them and send none (None: the
    position's exits may legitimately end the stop and cover what they leave with a new one)."""
    refs = [o.order_ref for o in gw.orders.values()]
    assert len(refs) == len(set(refs)), f"an orderRef was sent twice: {sorted(refs)}"
    stop_ids = [o.order_id for o in _stops(gw)]
    if stops_before is not None:
        assert stop_ids == stops_before, f"the protective stop was sent again: {stops_before} -> {stop_ids}"
    store = Store("0dte", f"sqlite:///{tmp_path / 'live.db'}")
    try:
        fills = await store.list_fills(limit=1000)
        assert sorted(f.exec_id for f in fills) == sorted(e.exec_id for e in gw.executions)  # each applied once
        assert len({f.exec_id for f in fills}) == len(fills)
        held = {p.contract_key: p.open_qty for p in await store.load_open_positions() if p.open_qty}
        at_gw = {_key(p.contract): int(p.qty) for p in gw.positions.values() if p.qty}
        assert held == at_gw
        assert not await store.blocked_underlyings()  # reconciliation found nothing it could not explain
    finally:
        await store.close()


def _key(c: Any) -> str:
    from market.types import OptionContract

    return OptionContract(c.symbol, datetime.strptime(c.expiry, "%Y%m%d").date(), c.strike, c.right).key


async def _restart(gw: FakeGateway, tmp_path: Path, **env: str) -> list[dict[str, Any]]:
    """The daemon again on the same store; the gateway sampled meanwhile: never two live stops at once."""
    most: list[int] = [0]

    async def watch() -> None:
        while True:
            most[0] = max(most[0], len([o for o in _stops(gw) if not o.done]))
            await asyncio.sleep(0.005)

    watcher = asyncio.ensure_future(watch())
    try:
        lines = await lines_after_start(live(gw, tmp_path, **env), settle_s=2.0)
    finally:
        watcher.cancel()
    assert most[0] <= 1, f"{most[0]} protective stops were live at once: one was sent again"
    return lines


async def _entered(d: Daemon, signal: dict[str, Any]) -> dict[str, Any]:
    """The signal accepted, its entry filled whole and its protective stop sent; returns the answer."""
    answer = await d.post_signal(signal)
    assert answer["accepted"], answer
    contracts = answer["decision"]["contracts"]
    await d.wait_line(lambda ln: ln.get("event") == "order" and ln.get("side") == "BUY"
                      and ln.get("contracts") == f"{contracts}/{contracts}", timeout=60)
    await d.wait_line(lambda ln: ln.get("event") == "order" and ln.get("status") == "sent"
                      and ":stop-" in str(ln.get("order_ref")), timeout=10)
    return answer


async def test_killed_mid_slice_and_restarted_sends_nothing_twice(tmp_path):
    """SIGKILL after the entry's first child filled, while the next children wait their interval."""
    slow = {"TRADINGD_EXECUTION__CHILD_INTERVAL_S": "30"}
    async with gateway() as gw:
        async with live(gw, tmp_path, **slow) as d:
            task = asyncio.ensure_future(d.post_signal(_signal("slice", 0.75)))
            await d.wait_line(lambda ln: ln.get("event") == "fill" and ln.get("side") == "BUY"
                              and ln.get("position_id") is not None)
            await d.wait_line(lambda ln: ln.get("event") == "order" and ln.get("status") == "sent"
                              and ":stop-" in str(ln.get("order_ref")), timeout=10)
            await d.kill()
            task.cancel()
        stops = [o.order_id for o in _stops(gw)]
        assert len(stops) == 1
        bought = sum(int(e.qty) for e in gw.executions if e.action == "BUY")
        assert 0 < bought < 50  # mid-slice: children were still to come
        lines = await _restart(gw, tmp_path, **slow)
        started = next(ln for ln in lines if ln.get("event") == "engine_started")
        assert started["open_positions"] == 1 and started["protective_stops"] == 1
        await _check(gw, tmp_path, stops)


async def test_killed_mid_exit_and_restarted_sends_nothing_twice(tmp_path):
    """SIGKILL after a take-profit exit child reached the gateway, before it filled."""
    today = session_now().date()
    fast = {"TRADINGD_EXECUTION__CHILD_INTERVAL_S": "0.2", "TRADINGD_EXECUTION__REPRICE_S": "0.5"}
    async with gateway() as gw:
        async with live(gw, tmp_path, **fast) as d:
            answer = await _entered(d, _signal("exit", 0.75))
            gw.auto_fill = False  # the exit rests: the kill comes while it works
            strike = int(answer["decision"]["selection"]["contract"].rsplit(" ", 1)[1])
            gw.market.set_option("SPY", today, strike, "C", "3.30", "3.40", bid_size=50, ask_size=50,
                                 open_interest=1200, delta="0.5", gamma="0.04", iv="0.2")  # past +5 %: tier 1
            sent = await d.wait_line(lambda ln: ln.get("event") == "order" and ln.get("status") == "sent"
                                     and ln.get("side") == "SELL" and ln.get("type") == "LMT", timeout=20)
            await d.kill()
        assert sent["order_id"] in gw.orders and not gw.orders[sent["order_id"]].done
        gw.auto_fill = True  # after the restart the exit may fill: the store must follow it once
        await _restart(gw, tmp_path, **fast)
        await _check(gw, tmp_path, None)
        refs = [o.order_ref for o in gw.orders.values() if o.action == "SELL" and o.order_type == "LMT"]
        assert sent["order_ref"] in refs and refs.count(sent["order_ref"]) == 1


async def test_killed_before_the_close_out_and_restarted_closes_out_on_its_clock(tmp_path):
    """Both runs on a clock moved to 15:42:20 ET of a session: the entry fills, the daemon is killed, and
    the restarted one closes the position out at the normal 0dte close-out (starts 15:43:00, flat by 15:45)
    of its clock, nothing moved in the configuration. A close-out on the wall clock would not come."""
    shift = offset_to(time(15, 42, 20))
    moved = {**offset_env(shift), "TRADINGD_EXECUTION__CHILD_INTERVAL_S": "0.2",
             "TRADINGD_EXECUTION__REPRICE_S": "0.5"}
    async with gateway(shift) as gw:
        gw.auto_fill = True
        now = gateway_clock(shift)
        async with live(gw, tmp_path, **moved) as d:
            signal = {"id": "late", "profile": "0dte", "underlying": "SPY", "direction": "bullish",
                      "strategy": "directional", "confidence": 0.75, "created_at": now().isoformat()}
            contracts = (await _entered(d, signal))["decision"]["contracts"]
            await d.kill()
        session = now().date()
        start = datetime.combine(session, time(15, 43), tzinfo=EXCHANGE_TZ)
        flat_by = datetime.combine(session, time(15, 45), tzinfo=EXCHANGE_TZ)
        assert now() < start, "the entry took too long: the kill came after the close-out's start"
        async with live(gw, tmp_path, **moved) as again:
            await again.wait_line(lambda ln: ln.get("event") == "engine_started")
            await again.wait_line(lambda ln: ln.get("event") == "position_closed", timeout=180)
        sold = [e for e in gw.executions if e.action == "SELL"]
        assert sum(int(e.qty) for e in sold) == contracts
        assert all(start <= e.time.astimezone(EXCHANGE_TZ) <= flat_by for e in sold), [e.time for e in sold]
        store = Store("0dte", f"sqlite:///{tmp_path / 'live.db'}")
        try:
            (position,) = await store.list_positions()
            events = await store.list_exit_events(position.id)
            assert [e.rule for e in events if e.kind == "close"] == ["closeout"], events
            assert start <= events[0].at.astimezone(EXCHANGE_TZ) <= flat_by
        finally:
            await store.close()
        await _check(gw, tmp_path, None)
