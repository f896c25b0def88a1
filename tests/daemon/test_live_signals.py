"""Bad signals (SPEC §2) are refused with their reason code and stored as refused; nothing crashes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from daemon.control import HTTP_DUPLICATE, HTTP_REFUSED
from tests.daemon.test_live_rig import DAY1, Rig, at


@pytest.fixture
async def rig(tmp_path: Path) -> Any:
    rig = Rig(tmp_path, "0dte", ["SPY"])
    await rig.start()
    await rig.until(at(DAY1, 10, 0))
    yield rig
    await rig.close()


def _cases(rig: Rig) -> list[tuple[str, Any, str]]:
    now = rig.clock.now()
    good = rig.signal("x", "SPY", "bullish", 0.9, now)
    return [
        ("nan", {**good, "id": "bad-nan", "confidence": float("nan")}, "invalid_confidence"),
        ("above_one", {**good, "id": "bad-c2", "confidence": 1.5}, "invalid_confidence"),
        ("negative", {**good, "id": "bad-neg", "confidence": -0.1}, "invalid_confidence"),
        ("unknown_underlying", {**good, "id": "bad-u", "underlying": "ZZZZ"}, "unknown_underlying"),
        ("expired", {**good, "id": "bad-exp", "created_at": (now - timedelta(seconds=120)).isoformat(),
                     "ttl_s": 60}, "signal_expired"),
        ("wrong_profile", {**good, "id": "bad-p", "profile": "7dte"}, "wrong_profile"),
        ("missing", {k: v for k, v in {**good, "id": "bad-m"}.items() if k != "direction"}, "missing_field"),
        ("unknown_field", {**good, "id": "bad-f", "leverage": 10}, "unknown_field"),
        ("direction", {**good, "id": "bad-d", "direction": "sideways"}, "invalid_direction"),
        ("ttl", {**good, "id": "bad-t", "ttl_s": -5}, "invalid_ttl"),
        ("naive_time", {**good, "id": "bad-z", "created_at": now.replace(tzinfo=None).isoformat()},
         "invalid_created_at"),
        ("not_an_object", ["not", "a", "signal"], "invalid_signal"),
        ("bad_id", {**good, "id": "has:colon"}, "invalid_id"),
        ("low_confidence", {**good, "id": "bad-low", "confidence": 0.3}, "confidence_below_threshold"),
    ]


async def test_every_bad_signal_is_refused_with_its_reason_and_stored(rig: Rig) -> None:
    for name, raw, reason in _cases(rig):
        outcome = await rig.engine.submit_signal(raw, "test")
        assert not outcome.accepted, name
        assert outcome.reason == reason, (name, outcome.reason, outcome.message)
        assert outcome.http_status == HTTP_REFUSED, name
    decisions = await rig.store.recent_decisions(limit=100)
    stored = {d.reason for d in decisions if not d.accepted}
    assert {reason for _, _, reason in _cases(rig)} <= stored
    assert all(not d.accepted for d in decisions)
    nan = await rig.store.get_signal("bad-nan")
    assert nan is not None and nan.status == "refused" and nan.reason == "invalid_confidence"
    assert rig.engine.book.held() == [] and rig.engine.status()["trading_state"] == "ACTIVE"


async def test_a_duplicate_id_is_refused_and_answers_the_first_decision(rig: Rig) -> None:
    raw = rig.signal("dup-1", "SPY", "bullish", 0.3, rig.clock.now())
    first = await rig.engine.submit_signal(raw, "test")
    second = await rig.engine.submit_signal(raw, "test")
    assert first.reason == "confidence_below_threshold"
    assert second.reason == "duplicate_signal" and second.http_status == HTTP_DUPLICATE
    assert second.decision["first_decision"]["reason"] == "confidence_below_threshold"
    reasons = [d.reason for d in await rig.store.recent_decisions()]
    assert reasons.count("duplicate_signal") == 1
    signal = await rig.store.get_signal("dup-1")
    assert signal is not None and signal.reason == "confidence_below_threshold", "the first signal keeps its status"


async def test_vix_above_the_entry_limit_refuses_0dte_entries(tmp_path: Path) -> None:
    rig = Rig(tmp_path, "0dte", ["SPY"], overrides={"gate.vix_max_entry": 10})
    await rig.start()
    try:
        await rig.until(at(DAY1, 10, 0))
        outcome = await rig.engine.submit_signal(rig.signal("vix-1", "SPY", "bullish", 0.9, rig.clock.now()), "t")
        assert outcome.reason == "vix_above_threshold"
    finally:
        await rig.close()


async def test_no_signals_before_the_engine_runs(tmp_path: Path) -> None:
    rig = Rig(tmp_path, "0dte", ["SPY"])
    outcome = await rig.engine.submit_signal({"id": "early"}, "test")
    assert outcome.reason == "not_accepting" and outcome.http_status == 503
    await rig.store.close()
