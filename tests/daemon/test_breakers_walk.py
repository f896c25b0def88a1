"""The account breaker walked 1 -> 2 -> 3 -> 4 in one test on a real price path (SPEC §3).

The path: the bundled 2019-02-14 morning, SPY rising 273.3 -> 274.6 from 09:51 to 10:35, the
week's longest one-way run. SPY puts bought at 09:51 lose nearly all the way; at level 1 QQQ
calls are bought (at the minimum bet) and win with the market. Every level is reached by
marking those positions to the modelled quotes of the real underlying prices, the breaker
evaluating the session P&L as on any day: the loss levels are set at 1,350 / 2,450 / 2,880 /
3,600 dollars of the 60,000 base so that one morning crosses them in turn.

Level 3 closes the losers; on a continuous path that caps the loss, so level 4 needs a gap.
Injected fault: from level 2 until 10:35 the SPY put's bids show no size (`withhold_bids`): its
quotes still mark it, nothing trades against them, as when buyers pull their bids in a fast
market. Level 3's close then rests unfilled while SPY keeps rising, and the marked loss carries
the account on to level 4. When the bids come back the resting sells fill.

Per-position rules are moved out of the way (RIDE: no greek limits, far loss levels; take-profit
tiers out of reach) so the account breaker is what acts on the positions.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from daemon.control import SignalOutcome
from tests.daemon.test_engine_harness import RIDE, Rig, at, breaker_levels
from tests.daemon.test_restart import restart_on_same_store

DAY = date(2019, 2, 14)
BIDS_BACK = at(DAY, 10, 35)
# Each of the first three levels sits where the path's loss jumps by 250 dollars or more, at
# least 100 from both sides of the jump, and no one quote moves the loss across two levels.
WALK = {**RIDE, **breaker_levels(0.0225, 0.0408, 0.048, 0.06),
        "exits.zero_dte.bands": [{"starts": "00:00:00", "tiers": [{"target": 10, "share": 1}]}]}
STEP = timedelta(seconds=1)


async def _step_until_level(rig: Rig, level: int, by: datetime) -> None:
    while rig.engine.control.level < level:
        pnl = rig.engine.book.session_pnl()
        assert rig.clock.now() < by, f"level {level} not reached by {by:%H:%M} (session P&L {pnl:.0f})"
        await rig.until(rig.clock.now() + STEP)
    assert rig.engine.control.level == level, f"level {level} skipped: at {rig.engine.control.level}"


async def _signal(rig: Rig, sid: str, underlying: str, direction: str, **extra: object) -> SignalOutcome:
    return await rig.engine.submit_signal(rig.signal(sid, underlying, direction, 0.95, rig.clock.now(), **extra), "t")


def _failed(outcome: SignalOutcome) -> set[str]:
    return {c["name"] for c in outcome.decision.get("checks", []) if c["status"] == "fail"}


async def test_breaker_walks_1_to_4_on_a_real_path_and_each_level_acts(tmp_path: Path) -> None:
    rig = Rig(tmp_path, "0dte", ["SPY", "QQQ"], days=[DAY], overrides=WALK)
    await rig.start()
    try:
        await rig.until(at(DAY, 9, 51))
        first = await _signal(rig, "walk-put", "SPY", "bearish")
        assert first.accepted and Decimal(first.decision["multiplier"]) > 1
        (put,) = list(rig.engine.book)

        # Level 1 (caution): entries at the minimum bet only, no scale-ins.
        await _step_until_level(rig, 1, by=at(DAY, 9, 58))
        assert rig.engine.control.state.value == "ACTIVE"
        call = await _signal(rig, "walk-call", "QQQ", "bullish")
        assert call.accepted, call.decision.get("message")
        assert Decimal(call.decision["multiplier"]) == 1, "level 1: entries at the minimum bet only"
        assert "breaker" in call.decision["multiplier_caps"]
        more = await _signal(rig, "walk-add", "SPY", "bearish", action="scale_in", position_id=str(put.id))
        assert not more.accepted and "scale_in_breaker" in _failed(more), "level 1: no scale-ins"

        # Level 2 (daily limit): no new entries for the rest of the session.
        await _step_until_level(rig, 2, by=at(DAY, 10, 5))
        assert rig.engine.control.state.value == "REDUCING"
        refused = await _signal(rig, "walk-late", "QQQ", "bullish")
        assert not refused.accepted and refused.reason == "halted"
        rig.broker.withhold_bids(put.key, until=BIDS_BACK)  # the injected gap (module docstring)

        # Level 3 (reduce): every loser closed, every winner's stop at break-even.
        await _step_until_level(rig, 3, by=at(DAY, 10, 15))
        losers = [p for p in rig.engine.book.held() if p.price() < p.record.entry_price]
        winners = [p for p in rig.engine.book.held() if p.price() >= p.record.entry_price]
        assert [p.id for p in losers] == [put.id] and winners, "the path gives one loser and one winner"
        closing = {e.position_id for e in await rig.store.list_exit_events()
                   if e.rule == "breaker_level_3_close_loser"}
        assert closing == {put.id} and put.closable == 0, "level 3 closes every loser"
        for winner in winners:
            assert winner.exit_state.stop_price == winner.record.entry_price, "winners' stops to break-even"
        refused = await _signal(rig, "walk-l3", "QQQ", "bullish")
        assert not refused.accepted and refused.reason == "halted"

        # Level 4 (emergency halt): everything flattened, HALTED latched.
        await _step_until_level(rig, 4, by=BIDS_BACK)
        assert rig.engine.control.state.value == "HALTED" and rig.engine.control.latched
        assert all(p.closable == 0 for p in rig.engine.book.held()), "level 4 sells every contract held"
        await rig.until(BIDS_BACK + timedelta(minutes=2))
        assert not rig.engine.book.held(), "flat once the bids are back"
        assert await rig.broker.positions() == [] and await rig.broker.open_orders() == []
        assert {p.status for p in await rig.store.list_positions()} == {"closed"}
        levels = [e.level for e in sorted(await rig.store.list_breaker_events(), key=lambda e: e.at)]
        assert levels == [1, 2, 3, 4]
    except BaseException:
        await rig.close()
        raise

    # The latch survives a restart on the same store and only an operator's resume clears it.
    rig = await restart_on_same_store(tmp_path, rig, "0dte", ["SPY", "QQQ"], [DAY], at(DAY, 11, 0), WALK)
    try:
        assert rig.engine.control.state.value == "HALTED" and rig.engine.control.latched
        await rig.until(at(DAY, 11, 10))
        assert rig.engine.control.level == 4, "a quieter market does not lift level 4"
        refused = await _signal(rig, "walk-after", "SPY", "bullish")
        assert not refused.accepted and refused.reason == "halted"
        resumed = await rig.engine.resume("ops")
        assert resumed["trading_state"] == "REDUCING", "the session's losses still bar entries"
        assert not rig.engine.control.latched
        await rig.engine.session_open(at(DAY + timedelta(days=1), 9, 30))
        assert rig.engine.control.level == 0 and rig.engine.control.state.value == "ACTIVE"
    finally:
        await rig.close()
