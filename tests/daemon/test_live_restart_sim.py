"""The live shell over the sim (`tradingd run --broker sim` on a live clock, `tests/daemon/live_sim_child.py`)
as a real process, SIGKILLed mid-slice and mid-exit, and started again on the same database.

The in-process sim dies with the process; the new one takes over the account the store says it held
(`stored_account_state`), as `tradingd run` does. What must hold (Part 4's guarantees, SPEC §6.1):
no orderRef is written or sent twice, the protective stop is not sent again, every fill is applied
once, and the start-up reconciliation finds the store and the (restored) account equal: nothing blocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import pytest

from daemon.store import Store
from tests.spawned_daemon import Daemon, directional, lines_after_start, spawn

pytestmark = pytest.mark.slow


class Market:
    """The SPY price the child's feeder reads, and the moment the first process started (the clock goes on)."""

    def __init__(self, tmp_path: Path):
        self.file = tmp_path / "spy.txt"
        self.file.write_text("470.00")
        self.began: float | None = None

    def spy(self, price: str) -> None:
        self.file.write_text(price)


def live_sim(tmp_path: Path, market: Market, **env: str) -> contextlib.AbstractAsyncContextManager[Daemon]:
    if market.began is None:
        market.began = time.monotonic()
    return spawn("tests.daemon.live_sim_child", [
        "--db", f"sqlite:///{tmp_path / 'sim.db'}", "--spy-file", str(market.file),
        "--offset-s", str(time.monotonic() - market.began)], tmp_path, env, log_to=tmp_path / "daemon.log")


def _signal(sid: str, market: Market) -> dict[str, Any]:
    """Created now on the daemon's clock (its moved live time: the start plus the time since the first run)."""
    from datetime import timedelta

    from tests.daemon.live_sim_child import START

    assert market.began is not None
    at = START + timedelta(seconds=time.monotonic() - market.began - 1.0)
    return directional(sid, 0.75, at.isoformat())


async def _restart(tmp_path: Path, market: Market, **env: str) -> list[dict[str, Any]]:
    return await lines_after_start(live_sim(tmp_path, market, **env), settle_s=2.0)


async def _check(tmp_path: Path, lines: list[dict[str, Any]]) -> None:
    reconciled = next(ln for ln in lines if ln.get("event") == "reconciled")
    assert not reconciled.get("mismatches") and not reconciled.get("unknown_positions"), reconciled
    assert not reconciled.get("blocked"), reconciled
    store = Store("0dte", f"sqlite:///{tmp_path / 'sim.db'}")
    try:
        intents = await store.load_pending_intents()
        from sqlalchemy import select

        from daemon.store.models import OrderIntentRow

        with store.transaction() as session:
            refs = list(session.scalars(select(OrderIntentRow.order_ref)))
        assert len(refs) == len(set(refs)), f"an orderRef was written twice: {sorted(refs)}"
        stop_refs = [r for r in refs if ":stop-" in r]
        assert len(stop_refs) == 1, f"the protective stop was sent again: {stop_refs}"
        fills = await store.list_fills(limit=1000)
        assert len({f.exec_id for f in fills}) == len(fills)
        for position in await store.list_positions():
            mine = [f for f in fills if f.position_id == position.id]
            bought = sum(f.quantity for f in mine if f.side == "BUY")
            sold = sum(f.quantity for f in mine if f.side == "SELL")
            assert position.open_qty == bought - sold  # each fill applied once, to its position
        assert not await store.blocked_underlyings()
        assert intents is not None
    finally:
        await store.close()


async def test_sim_killed_mid_slice_and_restarted_sends_nothing_twice(tmp_path):
    market = Market(tmp_path)
    slow = {"TRADINGD_EXECUTION__CHILD_INTERVAL_S": "30"}
    async with live_sim(tmp_path, market, **slow) as d:
        task = asyncio.ensure_future(d.post_signal(_signal("sim-slice", market)))
        await d.wait_line(lambda ln: ln.get("event") == "protective_stop_placed", timeout=30)
        await asyncio.sleep(0.5)
        await d.kill()
        task.cancel()
    decided = next(ln for ln in d.lines if ln.get("event") == "decision")["contracts"]
    lines = await _restart(tmp_path, market, **slow)
    started = next(ln for ln in lines if ln.get("event") == "engine_started")
    assert started["open_positions"] == 1 and started["protective_stops"] == 1
    bought = sum(int(ln["contracts"]) for ln in d.lines if ln.get("event") == "fill" and ln.get("side") == "BUY")
    assert 0 < bought < decided  # killed mid-slice: children were still to come
    await _check(tmp_path, lines)


async def entered_then_tier_crossed(d: Daemon, market: Market, sid: str) -> None:
    """A signal entered in full with its stop resting, then SPY moved so the call passes its first tier."""
    answer = await d.post_signal(_signal(sid, market))
    assert answer["accepted"], answer
    contracts = answer["decision"]["contracts"]
    await d.wait_line(lambda ln: ln.get("event") == "order" and ln.get("side") == "BUY"
                      and ln.get("contracts") == f"{contracts}/{contracts}", timeout=60)
    await d.wait_line(lambda ln: ln.get("event") == "protective_stop_placed", timeout=10)
    market.spy("471.50")  # the call's model price up past the first take-profit tier


async def test_sim_killed_mid_exit_and_restarted_sends_nothing_twice(tmp_path):
    market = Market(tmp_path)
    fast = {"TRADINGD_EXECUTION__CHILD_INTERVAL_S": "0.2"}
    async with live_sim(tmp_path, market, **fast) as d:
        await entered_then_tier_crossed(d, market, "sim-exit")
        exit_order = await d.wait_line(lambda ln: ln.get("event") == "order" and ln.get("status") == "sending"
                                       and ln.get("side") == "SELL" and ln.get("type") == "LMT", timeout=30)
        await d.kill()
    lines = await _restart(tmp_path, market, **fast)
    store = Store("0dte", f"sqlite:///{tmp_path / 'sim.db'}")
    try:  # the exit's intent was on disk before its "sending" line (write-ahead), and it is not sent twice
        intent = await store.find_intent(exit_order["order_id"])
        assert intent is not None and intent.order_ref == exit_order["order_ref"]
    finally:
        await store.close()
    started = next(ln for ln in lines if ln.get("event") == "engine_started")
    assert started["protective_stops"] == started["open_positions"]
    await _check(tmp_path, lines)
