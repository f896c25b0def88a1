"""SPEC §10.1 in a replay's REPORT (issue 14): `tradingd replay --data spx5` over the real week of
2025-10-27..31 (SPX, VIX and VIX1D 5-minute bars from ../shared; FOMC on Wednesday 2025-10-29 at
14:00, and MSFT/GOOGL/META/AAPL/AMZN earnings in the bundled calendar that week). The same bullish
0.9-confidence signals at the same times every day: on the FOMC day the multiplier is capped at
the minimum bet, the take-profit targets are scaled × 0.8 (named in the exit reasons) and the
signals 5 minutes either side of 14:00 are refused `event_blackout`; on the other days they are not.

Also SPEC §4.3 "use VIX1D where the data has it": the same replay without the VIX1D bars prices the
same same-day option differently, in the direction of the σ it used."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path

import pytest

from daemon.backtest import load_dataset, run_replay
from daemon.backtest.run import replay_settings
from daemon.cli import main
from daemon.signals.jsonl import TimedSignal
from market.clock import EXCHANGE_TZ

WEEK = (date(2025, 10, 27), date(2025, 10, 31))
FOMC = "2025-10-29"
TIMES = (time(10, 0), time(11, 0), time(13, 55), time(14, 5))


def _raw(day: date, at: time, n: int) -> dict:
    when = datetime.combine(day, at, tzinfo=EXCHANGE_TZ)
    return {"id": f"wk-{n}", "profile": "0dte", "underlying": "SPX", "direction": "bullish", "strategy": "directional",
            "confidence": 0.9, "created_at": when.isoformat()}


def _signals() -> list[dict]:
    days = [date(2025, 10, d) for d in range(27, 32)]
    return [_raw(d, t, i) for i, (d, t) in enumerate(((d, t) for d in days for t in TIMES), start=1)]


@pytest.fixture(scope="module")
def report(shared_market: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    folder = tmp_path_factory.mktemp("event_week")
    signals = folder / "signals.jsonl"
    signals.write_text("".join(json.dumps(s) + "\n" for s in _signals()))
    out = folder / "rep"
    code = main(["replay", "--profile", "0dte", "--data", "spx5", "--from", WEEK[0].isoformat(), "--to",
                 WEEK[1].isoformat(), "--signals", str(signals), "--sizing", "new", "--report", str(out), "--json"])
    assert code == 0
    return json.loads((out / "report.json").read_text()), (out / "report.html").read_text()


def test_the_fomc_week_shows_the_calendar_effects_in_report_json(report) -> None:
    doc, _ = report
    assert doc["sessions"] == [f"2025-10-{d}" for d in range(27, 32)]
    run = doc["runs"]["new"]
    decisions = run["decisions"]
    fomc = [d for d in decisions if d["at"].startswith(FOMC)]
    others = [d for d in decisions if not d["at"].startswith(FOMC)]
    # the blackout: 13:55 and 14:05 are inside 14:00 ± 10 min on the FOMC day only
    refused = [d for d in fomc if not d["accepted"]]
    assert sorted(d["at"][11:16] for d in refused) == ["13:55", "14:05"]
    assert {d["reason"] for d in refused} == {"event_blackout"}
    assert not [d for d in others if d["reason"] == "event_blackout"]
    assert [d for d in others if d["accepted"] and d["at"][11:16] in ("13:55", "14:05")]
    day = next(r for r in run["days"] if r["day"] == FOMC)
    assert day["refused_by_reason"].get("event_blackout") == 2
    # the macro-day cap: a 0.9-confidence signal trades the minimum bet (multiplier 1.0), named in its breakdown
    taken = [d for d in fomc if d["accepted"]]
    assert taken
    for d in taken:
        assert d["multiplier"] == "1.0"
        assert d["breakdown"]["multiplier_caps"]["macro_day"] == "1.0"
        assert "fomc 2025-10-29 14:00 ET" in d["breakdown"]["notes"]["macro_day"]
    assert all("macro_day" not in d["breakdown"].get("multiplier_caps", {}) for d in others if d["accepted"])
    assert max(Decimal(d["multiplier"]) for d in others if d["accepted"]) > Decimal("1.0")
    # the target scaling: take-profit exits on the FOMC day name it; no other day's do
    exits = [(t["opened_at"][:10], e) for t in run["trades"] for e in t["exits"]]
    tiers = [e for d, e in exits if d == FOMC and e["rule"].startswith("take_profit")]
    assert tiers, "a take-profit tier fired on the FOMC day"
    assert all("macro day (fomc 2025-10-29 14:00 ET) x 0.8" in e["reason"] for e in tiers)
    assert not [e for d, e in exits if d != FOMC and "macro day" in (e["reason"] or "")]


def test_the_fomc_week_shows_the_calendar_effects_in_report_html(report) -> None:
    _, page = report
    assert "event_blackout 2" in page  # the per-day refusals
    assert "macro day (fomc 2025-10-29 14:00 ET) x 0.8" in page  # exit reasons in the trades' breakdowns
    assert "&quot;macro_day&quot;: &quot;1.0&quot;" in page  # the capped multiplier in the decision breakdown


def test_same_day_options_are_priced_at_vix1d_where_the_data_has_it(shared_market: Path) -> None:
    data = load_dataset("spx5").window(date(2025, 10, 27), date(2025, 10, 27))
    at = datetime.combine(date(2025, 10, 27), time(10, 0), tzinfo=EXCHANGE_TZ)
    signal = [TimedSignal(at, _raw(date(2025, 10, 27), time(10, 0), 1), 1)]
    without = replace(data, bars={s: b for s, b in data.bars.items() if s != "VIX1D"})
    runs = [run_replay(replay_settings("0dte", d), d, signal) for d in (data, without)]
    first = [next(f for f in r.fills if f["side"] == "BUY") for r in runs]
    assert first[0]["contract"] == first[1]["contract"] and first[0]["at"] == first[1]["at"]
    # the σ each used at 10:00: VIX1D's level, or VIX × the fitted same-day ratio
    settings = replay_settings("0dte", data)

    def level(symbol: str) -> Decimal:
        return next(b.close for b in reversed(data.bars[symbol]) if b.end <= at)

    vix1d, vix = level("VIX1D"), level("VIX")
    fitted = vix * settings.broker.sim.model.same_day_vix_ratio
    assert vix1d != fitted
    mids = [Decimal(f["mid"]) for f in first]
    assert mids[0] != mids[1]
    assert (mids[0] > mids[1]) == (vix1d > fitted), (mids, vix1d, fitted)


def test_the_spy_fomc_week_of_2024_03_20_shows_the_blackout_and_the_cap(shared_market: Path, tmp_path: Path) -> None:
    """The second real FOMC week we hold: SPY 1-minute bars (tradingfsd_gpt, tests-only), FOMC 2024-03-20
    14:00. At VIX ~13 the 0.9-confidence signals size at 2.0× and the 0dte vega limit refuses them
    (`greeks_limit`); on the FOMC day the macro-day cap holds them to the minimum bet and they trade,
    except inside the blackout."""
    from daemon.backtest.report import write_report

    data = load_dataset("spy1").window(date(2024, 3, 18), date(2024, 3, 22))
    signals = []
    for n, (day, at) in enumerate(((d, t) for d in data.days() for t in TIMES), start=1):
        raw = {**_raw(day, at, n), "underlying": "SPY"}
        signals.append(TimedSignal(datetime.combine(day, at, tzinfo=EXCHANGE_TZ), raw, n))
    result = run_replay(replay_settings("0dte", data), data, signals)
    doc = write_report([result], tmp_path / "rep")
    decisions = doc["runs"]["new"]["decisions"]
    fomc = {d["at"][11:16]: d for d in decisions if d["at"].startswith("2024-03-20")}
    assert fomc["13:55"]["reason"] == fomc["14:05"]["reason"] == "event_blackout"
    assert fomc["10:00"]["accepted"] and fomc["10:00"]["breakdown"]["multiplier_caps"]["macro_day"] == "1.0"
    others = [d for d in decisions if not d["at"].startswith("2024-03-20")]
    assert others and all(d["multiplier"] == "2.0" and d["reason"] == "greeks_limit" for d in others)
    assert "event_blackout 2" in (tmp_path / "rep" / "report.html").read_text()
