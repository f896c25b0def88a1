"""SIGKILL between an exit's write-ahead (the intent log, room tick) and its send, and after the send
before anything of it was committed; then a restart on the same database (SPEC §6.1, Part 4).

The live sim as a real process (`tests/daemon/live_sim_child.py`, `TRADINGD_TEST_KILL_AT`) kills itself
at the exact moment: no timing window to hit. What must hold after the restart: the exit's intent is
in the store (never lost: folded in from the intent log before reconciliation), with its exit state
and exit event; no orderRef is written twice, no exit rule fires twice, the protective stop is not sent
again, fills are applied once and the reconciliation finds nothing to block.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from daemon.store import Store
from tests.daemon.test_live_restart_sim import Market, _check, _restart, entered_then_tier_crossed, live_sim

pytestmark = pytest.mark.slow
FAST = {"TRADINGD_EXECUTION__CHILD_INTERVAL_S": "0.2"}


async def _killed_at_the_exit(tmp_path: Path, moment: str) -> tuple[Market, dict]:
    market = Market(tmp_path)
    async with live_sim(tmp_path, market, TRADINGD_TEST_KILL_AT=moment, **FAST) as d:
        await entered_then_tier_crossed(d, market, "sim-kill")
        await asyncio.wait_for(d.proc.wait(), 30)  # it kills itself at the exit
        assert d.proc.returncode == -9
    [killed] = [ln for ln in d.lines if ln.get("event") == "test_killed"]
    return market, killed


async def _restarted_and_checked(tmp_path: Path, market: Market, exit_order: dict) -> None:
    lines = await _restart(tmp_path, market, **FAST)
    assert any(ln.get("event") == "intent_log_replayed" for ln in lines)
    store = Store("0dte", f"sqlite:///{tmp_path / 'sim.db'}")
    try:
        intent = await store.find_intent(exit_order["order_id"])
        assert intent is not None and intent.order_ref == exit_order["order_ref"]  # not lost
        events = await store.list_exit_events(limit=1000)
        fired = Counter((e.position_id, e.rule) for e in events)
        assert fired and max(fired.values()) == 1, f"an exit rule fired twice: {fired}"
    finally:
        await store.close()
    started = next(ln for ln in lines if ln.get("event") == "engine_started")
    assert started["protective_stops"] == started["open_positions"]
    await _check(tmp_path, lines)  # no orderRef twice, the stop once, fills once, nothing blocked


async def test_killed_between_the_exit_written_ahead_and_its_send(tmp_path):
    market, exit_order = await _killed_at_the_exit(tmp_path, "written_ahead")
    await _restarted_and_checked(tmp_path, market, exit_order)


async def test_killed_after_the_exit_was_sent_before_any_of_it_was_committed(tmp_path):
    market, exit_order = await _killed_at_the_exit(tmp_path, "sent_uncommitted")
    await _restarted_and_checked(tmp_path, market, exit_order)
