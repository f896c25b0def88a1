"""The account breaker walked up on a real price path (SPEC §3): SPY puts bought on the morning
of 2019-02-12 while SPY rose. Levels are set a few hundred dollars apart so one morning
reaches them; each level's effect is checked as it trips. Level 4 (flatten and latch) is
reached in tests/daemon/test_restart.py, where the loss piles up while the daemon is down:
with level 3 closing every loser, only a gap can carry the loss on to level 4."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from tests.daemon.test_engine_harness import RIDE, Rig, at, breaker_levels

DAY = date(2019, 2, 12)
WALK = {**RIDE, **breaker_levels(0.005, 0.015, 0.03, 0.5)}


async def _step_until_level(rig: Rig, level: int, limit_minutes: int = 120) -> None:
    end = rig.clock.now() + timedelta(minutes=limit_minutes)
    while rig.engine.control.level < level:
        assert rig.clock.now() < end, f"level {level} not reached by {end:%H:%M}"
        await rig.until(rig.clock.now() + timedelta(seconds=5))


async def test_breaker_levels_and_their_effects_on_a_real_path(tmp_path: Path) -> None:
    rig = Rig(tmp_path, "0dte", ["SPY", "QQQ"], days=[DAY], overrides=WALK)
    await rig.start()
    try:
        await rig.until(at(DAY, 10, 0))
        first = await rig.engine.submit_signal(rig.signal("walk-1", "SPY", "bearish", 0.9, rig.clock.now()), "t")
        assert first.accepted and first.decision["multiplier"] != "1.0"

        await _step_until_level(rig, 1)
        assert rig.engine.control.level == 1 and rig.engine.control.state.value == "ACTIVE"
        second = await rig.engine.submit_signal(rig.signal("walk-2", "QQQ", "bearish", 0.95, rig.clock.now()), "t")
        assert second.accepted, second.decision.get("message")
        assert second.decision["multiplier"] in ("1", "1.0", "1.00"), "level 1: entries at the minimum bet only"
        assert "breaker" in second.decision["multiplier_caps"]

        await _step_until_level(rig, 2)
        assert rig.engine.control.state.value == "REDUCING"
        third = await rig.engine.submit_signal(rig.signal("walk-3", "SPY", "bearish", 0.95, rig.clock.now()), "t")
        assert not third.accepted and third.reason == "halted"

        await _step_until_level(rig, 3)
        await rig.until(rig.clock.now() + timedelta(minutes=2))
        closes = [e for e in await rig.store.list_exit_events() if e.rule == "breaker_level_3_close_loser"]
        assert closes, "level 3 closes every losing position"
        assert not [p for p in rig.engine.book.held() if p.price() < p.record.entry_price]

        levels = sorted(e.level for e in await rig.store.list_breaker_events())
        assert levels == [1, 2, 3]
        assert not rig.engine.control.latched

        # The next session starts clear (levels 1-3 reset at the open).
        await rig.engine.session_open(at(DAY + timedelta(days=1), 9, 30))
        assert rig.engine.control.level == 0 and rig.engine.control.state.value == "ACTIVE"
    finally:
        await rig.close()
