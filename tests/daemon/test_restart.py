"""Kill the engine mid-day (its tasks cancelled, no clean shutdown) and start a new one on the
same store file: positions, fired rules, stops, peaks and a latched level-4 halt come back,
and nothing fires twice."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from broker.sim import stored_account_state
from market.types import OpenOrder
from tests.daemon.test_live_rig import DAY1, RIDE, Rig, at, breaker_levels

OVERRIDES = {**RIDE, **breaker_levels(0.01, 0.02, 0.03, 0.05)}


async def restart_on_same_store(tmp_path: Path, old: Rig, profile: str, symbols: list[str], days: list[date],
                   when: datetime, overrides: dict | None = None) -> Rig:
    """A new process on the same database, its clock at `when`, replaying from there on."""
    old.engine.kill()
    await old.store.close()
    held, cash = await old.broker.positions(), (await old.broker.account()).cash
    resting = sorted(_resting(o) for o in await old.broker.open_orders())
    rig = Rig(tmp_path, profile, symbols, days=days, db=old.db, overrides=overrides, start=when)
    # IB keeps the account across a daemon restart; the in-process sim died with the old process,
    # so the new one is given what the store says the account held (as `tradingd run` does).
    # Its execution ids carry its own session token: they cannot repeat the dead sim's.
    rig.broker.restore(await stored_account_state(rig.store, rig.settings, when))
    assert await rig.broker.positions() == held and (await rig.broker.account()).cash == cash
    # A modified price is not stored: the stop desk re-prices the stops when the engine starts.
    assert sorted(_resting(o) for o in await rig.broker.open_orders()) == resting
    rig.feed.bars = {s: [b for b in bars if b.start >= when] for s, bars in rig.feed.bars.items()}
    await rig.start()
    return rig


def _resting(order: OpenOrder) -> tuple[int, str, str, int, int]:
    r = order.request
    return r.order_id, r.side, r.order_type, r.quantity, order.filled


async def test_restart_restores_positions_tiers_and_stops_and_fires_nothing_twice(tmp_path: Path) -> None:
    rig = Rig(tmp_path, "0dte", ["SPY"])
    await rig.start()
    await rig.until(at(DAY1, 10, 28))
    outcome = await rig.engine.submit_signal(rig.signal("rs-1", "SPY", "bearish", 0.91, rig.clock.now()), "test")
    assert outcome.accepted
    await rig.until(at(DAY1, 10, 32))
    (before,) = rig.engine.book.held()
    assert "take_profit_tier_1" in before.exit_state.fired and before.open_qty < before.record.original_qty
    state_before, open_before = before.exit_state, before.open_qty

    kill_at = rig.clock.now()
    rig = await restart_on_same_store(tmp_path, rig, "0dte", ["SPY"], [DAY1], kill_at)
    try:
        (after,) = rig.engine.book.held()
        assert after.id == before.id and after.open_qty == open_before
        assert after.exit_state == state_before  # fired tiers, stop, peak
        assert after.exit_state.stop_price is not None and after.exit_state.peak_price is not None
        await rig.until(at(DAY1, 16, 0))
        events = await rig.store.list_exit_events(after.id)
        rules = [e.rule for e in events if e.kind != "alert"]
        assert rules.count("take_profit_tier_1") == 1
        assert len(rules) == len(set(rules)), f"a rule fired twice: {rules}"
        position = await rig.store.get_position(after.id)
        assert position is not None and position.status == "closed"
        fills = await rig.store.list_fills(limit=1000)
        bought = sum(f.quantity for f in fills if f.side == "BUY")
        assert sum(f.quantity for f in fills if f.side == "SELL") == bought == position.original_qty
    finally:
        await rig.close()


async def test_level_4_reached_while_down_flattens_and_stays_latched_across_restarts(tmp_path: Path) -> None:
    day = date(2019, 2, 12)
    overrides = OVERRIDES
    rig = Rig(tmp_path, "0dte", ["SPY"], days=[day], overrides=overrides)
    await rig.start()
    await rig.until(at(day, 10, 0))
    assert (await rig.engine.submit_signal(rig.signal("gap-1", "SPY", "bearish", 0.9, rig.clock.now()),
                                           "test")).accepted
    await rig.until(at(day, 10, 1))
    assert rig.engine.control.level < 4 and rig.engine.book.held()

    # Down from 10:01 to 12:00 while the market moves against the position.
    rig = await restart_on_same_store(tmp_path, rig, "0dte", ["SPY"], [day], at(day, 12, 0), overrides)
    await rig.until(at(day, 12, 10))
    assert rig.engine.control.level == 4
    assert rig.engine.control.state.value == "HALTED" and rig.engine.control.latched
    assert not rig.engine.book.held(), "level 4 flattens everything"
    events = await rig.store.list_breaker_events()
    assert events[0].level == 4
    exit_rules = {e.rule for e in await rig.store.list_exit_events()}
    assert "breaker_level_4_flatten" in exit_rules

    rig = await restart_on_same_store(tmp_path, rig, "0dte", ["SPY"], [day], at(day, 12, 30), overrides)
    try:
        assert rig.engine.control.state.value == "HALTED" and rig.engine.control.latched
        await rig.until(at(day, 12, 40))
        refused = await rig.engine.submit_signal(rig.signal("gap-2", "SPY", "bullish", 0.9, rig.clock.now()),
                                                 "test")
        assert not refused.accepted and refused.reason == "halted"
        resumed = await rig.engine.resume("ops")
        # Within the session that tripped it the losses remain: no entries until the next session.
        assert resumed["trading_state"] == "REDUCING"
        assert [a.action for a in await rig.store.list_operator_actions()] == ["resume"]
        assert len([e for e in await rig.store.list_breaker_events() if e.level == 4]) == 1
    finally:
        await rig.close()
