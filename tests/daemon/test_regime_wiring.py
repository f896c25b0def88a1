"""SPEC §10 wired through a replay: the calendar reaches the sizer (decision records) and the exit
rules (exit reasons), the checkpoint builds the surface and the regime, vega/theta reach the gate.

The replay week is the bundled 2019-02-11..15; its calendar here is a test file (the real calendar
has no FOMC day or Mag7 report in that week), so the effects are placed where the data is."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

from daemon.regime_report import effects_lines, regime_effects
from tests.daemon.test_live_rig import DAY1, RIDE, Rig, at

CALENDAR = """
[macro.fomc]
time = "11:00"
days = [2019-02-11]

[earnings.AAPL]
timing = "amc"
days = [2019-02-14]
"""


def _calendar(tmp_path: Path) -> str:
    path = tmp_path / "events.toml"
    path.write_text(CALENDAR)
    return str(path)


async def test_an_fomc_day_caps_the_0dte_bet_refuses_the_blackout_and_scales_the_targets(tmp_path):
    rig = Rig(tmp_path, "0dte", ["SPY"], overrides={**RIDE, "regime.events.calendar_file": _calendar(tmp_path)})
    await rig.start()
    try:
        await rig.until(at(DAY1, 10, 28))
        taken = await rig.engine.submit_signal(rig.signal("fomc-1", "SPY", "bullish", 0.95, rig.clock.now()), "test")
        assert taken.accepted, taken
        record = taken.decision
        assert record["multiplier_caps"]["macro_day"] == "1.0" and record["multiplier"] == "1.0"
        assert record["notes"]["macro_day"] == "fomc 2019-02-11 11:00 ET"
        assert Decimal(record["notional"]) == record["min_contracts"] * Decimal(record["contract_value"])  # the min bet

        await rig.until(at(DAY1, 10, 55))
        refused = await rig.engine.submit_signal(rig.signal("fomc-2", "SPY", "bearish", 0.9, rig.clock.now()), "test")
        assert (refused.accepted, refused.reason) == (False, "event_blackout")
        assert refused.decision["message"].startswith("fomc 2019-02-11 11:00 ET")

        await rig.until(at(DAY1, 16, 0))
        events = await rig.store.list_exit_events(limit=100)
        tiers = [e for e in events if e.rule.startswith("take_profit_tier")]
        assert tiers and all("macro day (fomc 2019-02-11 11:00 ET) x 0.8" in (e.reason or "") for e in tiers)

        status = rig.engine.status()["regime"]
        assert status["calendar"]["today"] == ["fomc 2019-02-11 11:00 ET"]

        # the end-of-run summary's market-regime section (the replay report of Part 7 is not built yet)
        effects = regime_effects(await rig.store.recent_decisions(limit=1000), events)
        day = effects[DAY1]
        assert day["capped_by_macro_day"] == 1 and day["refused_event_blackout"] == 1
        assert day["exits_at_macro_day_targets"] == len(tiers) and day["events"] == ["fomc 2019-02-11 11:00 ET"]
        assert effects_lines(effects, "0dte")[1].startswith("2019-02-11: capped_by_macro_day 1, ")
        assert status["vega"] is not None
    finally:
        await rig.close()


async def test_the_checkpoint_builds_the_surface_and_the_regime_and_shows_them_in_status(tmp_path):
    rig = Rig(tmp_path, "0dte", ["SPY"], overrides=RIDE)
    await rig.start()
    try:
        await rig.until(at(DAY1, 10, 28))
        await rig.engine.submit_signal(rig.signal("s-1", "SPY", "bullish", 0.7, rig.clock.now()), "test")
        await rig.until(at(DAY1, 10, 31))
        status = rig.engine.status()["regime"]
        surface = status["surfaces"]["SPY"]
        assert surface["expiries"] and surface["expiries"][0]["expiry"] == "2019-02-11"
        assert 0.03 < surface["expiries"][0]["atm_iv"] < 1.0  # the sim's modelled quotes carry their IV
        assert status["volatility_regime"]["name"] in ("calm", "normal", "stressed")
        assert status["calendar"]["source"].endswith("events.toml") and status["calendar"]["error"] is None
        decision = (await rig.store.first_decision("s-1")).breakdown
        assert decision["notes"]["volatility_regime"].split(":")[0] in ("calm", "normal", "stressed")
        assert "vega" in next(c for c in decision["checks"] if c.get("name") == "greeks_limit")["detail"]
    finally:
        await rig.close()


async def test_a_7dte_entry_whose_expiry_spans_earnings_is_capped_and_its_exits_see_the_date(tmp_path):
    wed, thu = date(2019, 2, 13), date(2019, 2, 14)
    rig = Rig(tmp_path, "7dte", ["AAPL"], days=[wed, thu],
              overrides={"regime.events.calendar_file": _calendar(tmp_path)})
    await rig.start()
    try:
        await rig.until(at(wed, 10, 28))
        outcome = await rig.engine.submit_signal(rig.signal("e-1", "AAPL", "bullish", 0.9, rig.clock.now()), "test")
        assert outcome.accepted, outcome
        record = outcome.decision
        assert record["selection"]["contract"].startswith("AAPL 20190222 C")
        assert record["multiplier_caps"]["earnings_span"] == "1.0" and record["multiplier"] == "1.0"
        assert record["notes"]["earnings_before_expiry"] == "earnings 2019-02-14 <= expiry 2019-02-22"
        await rig.until(at(wed, 10, 40))
        (position,) = rig.engine.book.held()
        market = rig.engine.core.exits.market(position, rig.clock.now())
        assert market.earnings_date == thu and market.macro_events == ()
        await rig.until(at(thu, 10, 0))
        assert rig.engine.core.exits.market(position, rig.clock.now()).earnings_date == thu  # the report day itself
        effects = regime_effects(await rig.store.recent_decisions(limit=1000), [])
        assert effects[wed] == {"events": ["earnings 2019-02-14 <= expiry 2019-02-22"], "capped_by_earnings_span": 1}
    finally:
        await rig.close()


async def test_live_the_last_vix_of_each_session_joins_the_cached_history(tmp_path):
    tue = date(2019, 2, 12)
    # live: no replay closes, the history is built from the VIX quotes seen
    rig = Rig(tmp_path, "0dte", ["SPY"], days=[DAY1, tue], overrides=RIDE, replay_closes=False)
    await rig.start()
    try:
        await rig.until(at(tue, 10, 0))
        history = list(rig.engine.core.regime.vix_history)
        assert [d for d, _ in history] == [DAY1]
        assert abs(history[0][1] - Decimal("15.97")) < Decimal("0.5")  # CBOE's close that day: 15.97
        assert await rig.store.get_meta("regime.vix_history") is not None
    finally:
        await rig.close()
