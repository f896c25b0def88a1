"""The account breaker walked 1 -> 2 -> 3 -> 4 on the 0dte profile's own levels and a real price path
(SPEC §3), each level's effect checked as it trips.

Levels: the profile's, unmodified (asserted): 7 / 10 / 15 / 20 % of the 60,000 base, i.e. a session
P&L of -4,200 / -6,000 / -9,000 / -12,000.

Path: the bundled 2019-02-14 morning, SPY 273.5 -> 274.6 and QQQ 170.5 -> 171.2 from 10:01 to 10:35.
Every position goes through the engine's signal path, is sized by the sizer and bought by the
executor. Entries end underfilled: SPEC §4.2's children (max(10, parent / 20) contracts, one at a
time, each walking from mid for about 4 s) against a 60 s parent timeout. Recorded on this path
(session P&L at each trip):

  09:58:00  QQQ 171 put (in the money), bet x1.5 (340 contracts): 255 filled at 0.551
  09:59:00  QQQ 171 call, x1.5 (480 contracts): 240 at 0.253
  10:01:00  SPY 274 put, x1.0 (the correlated book's factor): 150 at 0.653
  10:02:43  level 1 -> SPY 274 put at the minimum bet (221 contracts): 180 at 0.544; a scale-in on
            the QQQ put is refused
  10:05:35  level 2 -> entries refused
  10:11:43  level 3 -> the three puts are closed, the call's stop goes to its entry price
  10:19:35  level 4 -> the call is flattened, HALTED latches; the puts' sells fill at 10:34

(Recorded with Part 4's children of at most 10 contracts the same walk ran 10:03 / 10:07 / 10:15 /
10:31 with the call bought at level 1; with §4.2's larger children the first puts fill more and
level 2 follows level 1 within three minutes, so the call is bought before the walk starts and
level 1's minimum bet is checked on the second SPY put.)

Injected fault: without it level 3's closes fill within two minutes, the puts' loss is realized and
the call's stop at break-even keeps the rest: the session P&L stalls short of level 4 (on Part 4's path
at -11,771, still so at noon)
and level 4 is out of reach. From
level 2 until 10:34 the puts' bids show no size (`SimBroker.withhold_bids`): their quotes still
mark them, nothing trades against them, as when buyers pull their bids in a fast market. Level 3's
closes rest unfilled while SPY and QQQ keep rising, and the marked loss carries the account to
level 4. When the bids come back the resting sells fill.

Then a restart on the same store before the next session (2019-02-15): still HALTED through its
open; an operator's resume starts that session at level 0 and it trades.

Overridden (all per-position rules; the breaker levels are not touched):
- greek limits (`gate.max_abs_delta`, `gate.max_gamma`): at 6,000 / 3,000 share-equivalents the book
  holds one such position: the engine walks the first put to a deeper strike (55 contracts) and
  refuses the second `greeks_limit` (portfolio delta -16,104);
- position levels (`position_levels.*`): -7 % alert, -15 % close half and the -25 % hard stop would
  close the puts long before the account reaches -20 %;
- take-profit tiers (`exits.zero_dte.bands`): +5/10/15 % would sell the winning call before levels 3
  and 4 act on it.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from config.loader import load_settings
from daemon.control import SignalOutcome
from daemon.positions import LivePosition
from tests.daemon.test_live_rig import RIDE, Rig, at
from tests.daemon.test_restart import restart_on_same_store

DAY = date(2019, 2, 14)
NEXT_DAY = date(2019, 2, 15)
BIDS_BACK = at(DAY, 10, 34)
# The walk is timed on the modelled path with same-day σ = VIX (before the ratio fitted in docs/validation.md).
WALK = {**RIDE, "exits.zero_dte.bands": [{"starts": "00:00:00", "tiers": [{"target": 10, "share": 1}]}],
        "broker.sim.model.same_day_vix_ratio": 1}
STEP = timedelta(seconds=1)


async def _step_until_level(rig: Rig, level: int, by: datetime) -> None:
    while rig.engine.control.level < level:
        pnl = rig.engine.book.session_pnl()
        assert rig.clock.now() < by, f"level {level} not reached by {by:%H:%M} (session P&L {pnl:.0f})"
        await rig.until(rig.clock.now() + STEP)
    assert rig.engine.control.level == level, f"level {level} skipped: at {rig.engine.control.level}"


async def _signal(rig: Rig, sid: str, underlying: str, direction: str, **extra: object) -> SignalOutcome:
    return await rig.engine.submit_signal(rig.signal(sid, underlying, direction, 0.95, rig.clock.now(), **extra), "t")


async def _entered(rig: Rig, sid: str, underlying: str, direction: str) -> LivePosition:
    outcome = await _signal(rig, sid, underlying, direction)
    assert outcome.accepted, f"{sid}: {outcome.reason} {outcome.decision.get('message')}"
    (position,) = [p for p in rig.engine.book if p.record.opened_by_signal_id == sid]
    return position


def _failed(outcome: SignalOutcome) -> set[str]:
    return {c["name"] for c in outcome.decision.get("checks", []) if c["status"] == "fail"}


def _at_minimum_bet(outcome: SignalOutcome) -> None:
    decision = outcome.decision
    assert outcome.accepted, decision.get("message")
    assert Decimal(decision["multiplier"]) == 1 and "breaker" in decision["multiplier_caps"]
    assert decision["contracts"] == decision["min_contracts"], "level 1: entries at the minimum bet only"


def _loss_at(rig: Rig, level: int) -> Decimal:
    """The session P&L at or below which `level` trips (negative)."""
    return -rig.settings.breakers.levels[level - 1].loss_pct * rig.engine.capital_base()


async def _trips_within_their_bands(rig: Rig) -> list[int]:
    """Each recorded trip's session P&L lies between its own level and the next: none was skipped."""
    events = sorted(await rig.store.list_breaker_events(), key=lambda e: e.at)
    top = len(rig.settings.breakers.levels)
    for event in events:
        assert event.session_pnl <= _loss_at(rig, event.level), event
        assert event.level == top or event.session_pnl > _loss_at(rig, event.level + 1), event
    return [e.level for e in events]


async def test_breaker_walks_1_to_4_on_the_profiles_own_levels_and_each_level_acts(tmp_path: Path) -> None:
    rig = Rig(tmp_path, "0dte", ["SPY", "QQQ"], days=[DAY], overrides=WALK)
    assert rig.settings.breakers == load_settings("0dte", env={}).breakers, "the profile's own levels"
    await rig.start()
    try:
        await rig.until(at(DAY, 9, 58))
        qqq_put = await _entered(rig, "walk-qqq-put", "QQQ", "bearish")
        await rig.until(at(DAY, 9, 59))
        call = await _entered(rig, "walk-call", "QQQ", "bullish")
        await rig.until(at(DAY, 10, 1))
        spy_put = await _entered(rig, "walk-spy-put", "SPY", "bearish")

        # Level 1 (caution): entries at the minimum bet only, no scale-ins.
        await _step_until_level(rig, 1, by=at(DAY, 10, 5))
        assert rig.engine.control.state.value == "ACTIVE"
        late_outcome = await _signal(rig, "walk-spy-put-2", "SPY", "bearish")
        _at_minimum_bet(late_outcome)
        more = await _signal(rig, "walk-add", "QQQ", "bearish", action="scale_in", position_id=str(qqq_put.id))
        assert not more.accepted and "scale_in_breaker" in _failed(more), "level 1: no scale-ins"
        assert rig.engine.control.level == 1
        (late_put,) = [p for p in rig.engine.book if p.record.opened_by_signal_id == "walk-spy-put-2"]
        puts = {qqq_put.id, spy_put.id, late_put.id}

        # Level 2 (daily limit): no new entries for the rest of the session.
        await _step_until_level(rig, 2, by=at(DAY, 10, 10))
        assert rig.engine.control.state.value == "REDUCING"
        refused = await _signal(rig, "walk-l2", "QQQ", "bullish")
        assert not refused.accepted and refused.reason == "halted"
        for key in {qqq_put.key, spy_put.key, late_put.key}:
            rig.broker.withhold_bids(key, until=BIDS_BACK)  # the injected fault (module docstring)

        # Level 3 (reduce): every loser closed, every winner's stop at break-even.
        await _step_until_level(rig, 3, by=at(DAY, 10, 20))
        held = rig.engine.book.held()
        losers = {p.id for p in held if p.price() < p.record.entry_price}
        winners = [p for p in held if p.price() > p.record.entry_price]
        assert losers == puts and [p.id for p in winners] == [call.id], "the path: three losing puts, one winning call"
        closing = {e.position_id for e in await rig.store.list_exit_events() if e.rule == "breaker_level_3_close_loser"}
        assert closing == puts and all(p.closable == 0 for p in held if p.id in puts), "level 3 closes every loser"
        assert call.exit_state.stop_price == call.record.entry_price, "winners' stops to break-even"
        assert call.closable == call.open_qty > 0, "a winner is kept"
        refused = await _signal(rig, "walk-l3", "QQQ", "bullish")
        assert not refused.accepted and refused.reason == "halted"

        # Level 4 (emergency halt): everything flattened, HALTED latched.
        await _step_until_level(rig, 4, by=BIDS_BACK)
        assert rig.engine.control.state.value == "HALTED" and rig.engine.control.latched
        assert all(p.closable == 0 for p in rig.engine.book.held()), "level 4 sells every contract held"
        flattened = {e.position_id for e in await rig.store.list_exit_events() if e.rule == "breaker_level_4_flatten"}
        assert flattened == {call.id}, "level 4 flattens what level 3 kept"
        await rig.until(BIDS_BACK + timedelta(minutes=2))
        assert not rig.engine.book.held(), "flat once the bids are back"
        assert await rig.broker.positions() == [] and await rig.broker.open_orders() == []
        assert {p.status for p in await rig.store.list_positions()} == {"closed"}
        assert await _trips_within_their_bands(rig) == [1, 2, 3, 4]
    except BaseException:
        await rig.close()
        raise

    # The latch survives a restart on the same store and the next session's open; only an operator's
    # resume clears it, and then that session trades from level 0.
    rig = await restart_on_same_store(tmp_path, rig, "0dte", ["SPY", "QQQ"], [NEXT_DAY], at(NEXT_DAY, 9, 0), WALK)
    try:
        assert rig.engine.control.state.value == "HALTED" and rig.engine.control.latched
        await rig.until(at(NEXT_DAY, 9, 40))
        assert ("session_open", at(NEXT_DAY, 9, 30)) in rig.fired
        assert rig.engine.control.level == 4 and rig.engine.control.latched, "a new session does not lift level 4"
        refused = await _signal(rig, "walk-next-halted", "SPY", "bullish")
        assert not refused.accepted and refused.reason == "halted"
        resumed = await rig.engine.resume("ops")
        assert resumed["trading_state"] == "ACTIVE" and resumed["breaker_level"] == 0, resumed
        assert not rig.engine.control.latched
        await _entered(rig, "walk-next", "SPY", "bullish")
        assert rig.engine.control.level == 0
    finally:
        await rig.close()
