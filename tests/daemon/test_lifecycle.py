"""A whole trade through the HTTP API, per profile, over the sim broker on the bundled bars:
signal -> decision -> sliced entry -> fills -> exits -> closed; then what the store kept."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from daemon.api import start_api
from daemon.auth import Tokens
from daemon.metrics import Metrics
from tests.daemon.test_live_rig import DAY1, Rig, at

TOKENS = Tokens(api="api-token", admin="admin-token")


async def _post(port: int, path: str, body: dict[str, Any], token: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"http://127.0.0.1:{port}{path}", json=body,
                             headers={"Authorization": f"Bearer {token}"}) as response:
            return response.status, await response.json()


async def _get(port: int, path: str, token: str) -> Any:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"}) as resp:
            return await resp.json() if path != "/metrics" else await resp.text()


async def _serve(rig: Rig) -> tuple[Any, int]:
    return await start_api(rig.engine, rig.settings, Metrics(rig.settings.profile.name), TOKENS)


async def _check_store(rig: Rig, signal_id: str) -> tuple[Any, list[Any]]:
    store = rig.store
    decisions = [d for d in await store.recent_decisions() if d.signal_id == signal_id]
    assert len(decisions) == 1 and decisions[0].accepted
    breakdown = decisions[0].breakdown
    assert {"factors", "checks", "caps", "min_bet", "max_bet", "contract_value", "selection"} <= set(breakdown)
    assert all(c["status"] != "fail" for c in breakdown["checks"])
    contracts = decisions[0].contracts
    intents = await store.intents_by_ref(f"tradingd:{rig.settings.profile.name}:{signal_id}:1")
    assert intents, "the first child's intent was written"
    (position,) = await store.list_positions()
    assert position.status == "closed" and position.open_qty == 0
    assert position.opened_by_signal_id == signal_id
    fills = await store.list_fills(limit=1000)
    buys = [f for f in fills if f.side == "BUY"]
    sells = [f for f in fills if f.side == "SELL"]
    assert sum(f.quantity for f in buys) == position.original_qty <= contracts
    assert sum(f.quantity for f in sells) == position.original_qty
    entry_children = {f.order_ref for f in buys}
    notional = contracts * breakdown_value(breakdown)
    if notional > rig.settings.execution.slice_threshold:
        assert len(entry_children) > 1, "an entry above the slice threshold is sent in child orders"
        assert max(f.quantity for f in buys) <= rig.settings.execution.max_child_contracts
    events = await store.list_exit_events(position.id)
    assert events and any(e.kind in ("close", "partial_close") for e in events)
    return position, events


def breakdown_value(breakdown: dict[str, Any]) -> Any:
    from decimal import Decimal

    return Decimal(breakdown["contract_value"])


async def test_0dte_lifecycle_through_the_api(tmp_path: Path) -> None:
    rig = Rig(tmp_path, "0dte", ["SPY"])
    await rig.start()
    runner, port = await _serve(rig)
    try:
        await rig.until(at(DAY1, 10, 28))
        raw = rig.signal("life-0dte-1", "SPY", "bearish", 0.91, rig.clock.now())
        status, answer = await _post(port, "/v1/signals", raw, TOKENS.api)
        assert status == 200, answer
        assert answer["accepted"] is True and answer["decision"]["contracts"] > 0
        assert answer["decision"]["selection"]["contract"].startswith("SPY 20190211 P ")
        await rig.until(at(DAY1, 10, 35))
        positions = await _get(port, "/v1/positions", TOKENS.api)
        assert positions["count"] == 1 and positions["positions"][0]["contracts"] > 0
        await rig.until(at(DAY1, 16, 0))
        position, events = await _check_store(rig, "life-0dte-1")
        rules = [e.rule for e in events]
        assert "take_profit_tier_1" in rules
        assert len([r for r in rules if r.startswith("take_profit_tier")]) == len(
            {r for r in rules if r.startswith("take_profit_tier")}), "each tier fires once"
        status_now = await _get(port, "/v1/status", TOKENS.api)
        assert status_now["open_positions"] == 0 and status_now["trading_state"] == "ACTIVE"
        metrics = await _get(port, "/metrics", TOKENS.api)
        assert "tradingd_" in metrics
    finally:
        await runner.cleanup()
        await rig.close()


async def test_7dte_lifecycle_through_the_api(tmp_path: Path) -> None:
    days = [date(2019, 2, 13), date(2019, 2, 14)]
    rig = Rig(tmp_path, "7dte", ["AAPL"], days=days)
    await rig.start()
    runner, port = await _serve(rig)
    try:
        await rig.until(at(days[0], 11, 31))
        raw = rig.signal("life-7dte-1", "AAPL", "bearish", 0.8, rig.clock.now())
        status, answer = await _post(port, "/v1/signals", raw, TOKENS.api)
        assert status == 200, answer
        assert answer["decision"]["selection"]["contract"].startswith("AAPL 20190222 P ")
        await rig.until(at(days[1], 15, 0))
        if rig.engine.book.held():
            status, done = await _post(port, "/v1/flatten", {"reason": "end of test", "actor": "tester"},
                                       TOKENS.admin)
            assert status == 200 and done["ok"] is True
        await rig.until(at(days[1], 16, 0))
        position, events = await _check_store(rig, "life-7dte-1")
        assert position.realized_pnl is not None
        actions = await rig.store.list_operator_actions()
        assert all(a.action == "flatten" for a in actions)
    finally:
        await runner.cleanup()
        await rig.close()


@pytest.mark.parametrize("path", ["/v1/halt"])
async def test_operator_halt_refuses_entries_and_is_recorded(tmp_path: Path, path: str) -> None:
    rig = Rig(tmp_path, "0dte", ["SPY"])
    await rig.start()
    runner, port = await _serve(rig)
    try:
        await rig.until(at(DAY1, 10, 0))
        status, body = await _post(port, path, {"reason": "maintenance", "actor": "ops"}, TOKENS.admin)
        assert status == 200 and body["trading_state"] == "HALTED"
        status, answer = await _post(port, "/v1/signals",
                                     rig.signal("halted-1", "SPY", "bullish", 0.9, rig.clock.now()), TOKENS.api)
        assert status == 422 and answer["reason"] == "halted"
        status, body = await _post(port, "/v1/resume", {"actor": "ops"}, TOKENS.admin)
        assert status == 200 and body["trading_state"] == "ACTIVE"
        actions = [a.action for a in await rig.store.list_operator_actions()]
        assert sorted(actions) == ["halt", "resume"]
    finally:
        await runner.cleanup()
        await rig.close()
