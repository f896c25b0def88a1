"""SPEC §5.1 "All 0dte positions are closed by 15:45 (half days: 15 minutes before the early close)",
through the replay's core on real SPX 5-minute data (`--data spx5`, tests-only): the Wednesday before
Thanksgiving 2025 (a full session) and Black Friday 2025-11-28 (NYSE closes at 13:00, so flat by 12:45).

Targets, loss levels and breakers are set out of reach so the positions are still open when the close-out
starts (two parent timeouts, 120 s, before the deadline): the close-out alone takes them flat, and the
last fill is at or before the deadline, not after it."""

from __future__ import annotations

from datetime import date, datetime, time
from pathlib import Path

import pytest

from daemon.backtest import load_dataset, run_replay
from daemon.backtest.run import replay_settings
from daemon.signals.jsonl import TimedSignal
from market.clock import EXCHANGE_TZ

FULL_DAY, HALF_DAY = date(2025, 11, 26), date(2025, 11, 28)
HOLD = {  # nothing but the close-out ends a position; limits wide enough that both signals are sized
    "gate.max_abs_delta": 1_000_000, "gate.max_gamma": 1_000_000, "regime.greeks.max_abs_vega": 1_000_000_000,
    "position_levels.alert_pct": "-0.97", "position_levels.close_half_pct": "-0.98",
    "position_levels.hard_stop_pct": "-0.99",
    "exits.zero_dte.bands": [{"starts": time(0), "tiers": [{"target": 50, "share": 1}]}],
    "breakers.levels": [{"level": n, "name": name, "loss_pct": pct} for n, name, pct in (
        (1, "caution", "0.90"), (2, "daily_limit", "0.92"), (3, "reduce", "0.94"), (4, "emergency_halt", "0.96"))],
}


def _signal(day: date, at: time, n: int) -> TimedSignal:
    when = datetime.combine(day, at, tzinfo=EXCHANGE_TZ)
    return TimedSignal(when, {"id": f"cd-{n}", "profile": "0dte", "underlying": "SPX", "direction": "bullish",
                              "strategy": "directional", "confidence": 0.9, "created_at": when.isoformat()}, n)


@pytest.fixture(scope="module")
def result(shared_market: Path):  # type: ignore[no-untyped-def]
    data = load_dataset("spx5").window(FULL_DAY, HALF_DAY)
    signals = [_signal(d, t, i) for i, (d, t) in enumerate(((d, t) for d in (FULL_DAY, HALF_DAY)
                                                             for t in (time(9, 45), time(10, 0))), start=1)]
    return run_replay(replay_settings("0dte", data, "new", HOLD), data, signals)


@pytest.mark.parametrize(("day", "start", "deadline"), [(FULL_DAY, time(15, 43), time(15, 45)),
                                                         (HALF_DAY, time(12, 43), time(12, 45))])
def test_0dte_is_flat_by_the_deadline_on_a_full_and_a_half_day(result, day: date, start: time,
                                                               deadline: time) -> None:
    assert day in result.sessions
    trades = [t for t in result.trades if t["opened_at"].startswith(day.isoformat())]
    assert trades, result.decisions
    for trade in trades:
        assert trade["closed"], trade
        closeouts = [e for e in trade["exits"] if e["rule"] == "closeout"]
        assert [e["rule"] for e in trade["exits"]] == ["closeout"], trade["exits"]  # nothing else ended it
        assert datetime.fromisoformat(closeouts[0]["at"]).astimezone(EXCHANGE_TZ).time() == start
        assert f"to be flat by {deadline:%H:%M}" in closeouts[0]["reason"]
        sells = [f for f in result.fills if f["position_id"] == trade["position_id"] and f["side"] == "SELL"]
        assert sum(f["quantity"] for f in sells) == trade["contracts"]
        for fill in sells:
            at = datetime.fromisoformat(fill["at"]).astimezone(EXCHANGE_TZ)
            assert at.date() == day and start <= at.time() <= deadline, fill
