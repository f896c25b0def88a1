"""Part 3 acceptance: bad signals (every case of SPEC §2) sent over the real HTTP API get a 4xx
with their reason code and are stored as refused; the daemon keeps trading afterwards."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp

from daemon.api import start_api
from daemon.auth import Tokens
from daemon.metrics import Metrics
from tests.daemon.test_live_rig import DAY1, Rig, at
from tests.daemon.test_live_signals import _cases

TOKENS = Tokens(api="api-token", admin="admin-token")


async def _post_raw(port: int, body: bytes, content_type: str = "application/json") -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"http://127.0.0.1:{port}/v1/signals", data=body,
                             headers={"Authorization": f"Bearer {TOKENS.api}", "Content-Type": content_type}) as resp:
            return resp.status, await resp.json(content_type=None)


async def test_bad_signals_over_http_get_4xx_with_reason_and_are_stored(tmp_path: Path) -> None:
    rig = Rig(tmp_path, "0dte", ["SPY"])
    await rig.start()
    runner, port = await start_api(rig.engine, rig.settings, Metrics(rig.settings.profile.name), TOKENS)
    try:
        await rig.until(at(DAY1, 10, 0))
        cases = _cases(rig)
        for name, raw, reason in cases:
            # json.dumps writes NaN as the bare token NaN, as a careless client would send it
            status, answer = await _post_raw(port, json.dumps(raw).encode())
            assert 400 <= status < 500, (name, status, answer)
            assert answer["accepted"] is False and answer["reason"] == reason, (name, answer)

        # the same id again: refused as a duplicate, answering with the first decision
        first_id = cases[0][1]["id"]
        status, answer = await _post_raw(port, json.dumps(cases[0][1]).encode())
        assert status == 409 and answer["reason"] == "duplicate_signal"

        # transport-level garbage: a reason code, not a stack trace
        status, answer = await _post_raw(port, b"{not json")
        assert status == 400 and answer["accepted"] is False and answer["reason"]
        status, answer = await _post_raw(port, b"id=1", content_type="application/x-www-form-urlencoded")
        assert 400 <= status < 500 and answer["reason"]

        decisions = await rig.store.recent_decisions(limit=200)
        stored = {d.reason for d in decisions if not d.accepted}
        assert {reason for _, _, reason in cases} <= stored
        assert not any(d.accepted for d in decisions)
        record = await rig.store.get_signal(first_id)
        assert record is not None and record.status == "refused"

        # nothing was lost: the daemon is alive and still trading
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                assert resp.status == 200
        assert rig.engine.status()["trading_state"] == "ACTIVE"
    finally:
        await runner.cleanup()
        await rig.close()
