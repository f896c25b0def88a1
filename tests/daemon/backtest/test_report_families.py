"""SPEC §9 in the replay report: the bundled week with a mixed signal file shows all three strategy
families side by side, in report.json and report.html (daemon.backtest.families)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from daemon.backtest import load_dataset, run_replay
from daemon.backtest.report import write_report
from daemon.backtest.run import replay_settings

MIXED = Path(__file__).resolve().parents[3] / "examples" / "signals-7dte-mixed.jsonl"


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[dict, str, object]:
    data = load_dataset("bundled")
    result = run_replay(replay_settings("7dte", data), data, str(MIXED))
    out = tmp_path_factory.mktemp("multileg-report")
    write_report([result], out)
    return json.loads((out / "report.json").read_text()), (out / "report.html").read_text(), result


def test_report_json_has_a_row_per_family_each_with_trades(report):
    document, _, result = report
    rows = {r["family"]: r for r in document["runs"]["new"]["families"]}
    assert set(rows) == {"directional", "neutral", "volatility"}
    for family, row in rows.items():
        assert row["trades"] >= 1, family
    assert "iron_condor" in rows["neutral"]["structures"]
    assert set(rows["volatility"]["structures"]) <= {"straddle", "strangle"}
    # each row adds up from the report's own trades
    for family, row in rows.items():
        closed = [t for t in result.trades if t["family"] == family and t["closed"]]
        assert Decimal(row["total_pnl"]) == sum((Decimal(t["pnl"]) for t in closed), Decimal(0))


def test_combo_trades_carry_their_combo_key_and_value_space_cost(report):
    document, _, _ = report
    combos = [t for t in document["runs"]["new"]["trades"] if t["family"] != "directional"]
    assert combos and all("|" in t["contract"] for t in combos)
    for t in combos:
        decision = t["decision"]["combo"]
        assert decision["key"] == t["contract"]
        per_unit = Decimal(decision["max_loss_per_unit"])
        assert Decimal(t["entry_cost"]) > 0 and abs(Decimal(t["entry_cost"]) / t["contracts"] - per_unit) < per_unit / 5


def test_report_html_shows_the_families_table(report):
    _, page, _ = report
    assert "Strategy families (SPEC §9)" in page
    section = page[page.index("Strategy families"):page.index("<h2>Equity</h2>")]
    for family in ("directional", "neutral", "volatility"):
        assert f"<td class='l'>{family}</td>" in section
    assert "iron_condor" in section
