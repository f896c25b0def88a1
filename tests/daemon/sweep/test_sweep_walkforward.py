"""A walk-forward over the recorded bundled week through `tradingd sweep`: rolling 2-session training
windows, each fold's best cell replayed on the next session; the report shows in-sample and
out-of-sample columns, and the out-of-sample figures are that cell's own replay of the test window."""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path

import pytest

from daemon.backtest import figures, load_dataset, run_replay
from daemon.backtest.run import replay_settings
from daemon.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

GRID = """
[grid]
"exits.seven_dte.initial_stop_pct" = [0.10, 0.30]
"""


def test_walk_forward_shows_in_sample_and_out_of_sample(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID, encoding="utf-8")
    report = tmp_path / "report"
    code = main(["sweep", "--profile", "7dte", "--grid", str(grid), "--walk-forward", "2:1", "--objective", "return",
                 "--min-trades", "1", "--workers", "2", "--report", str(report), "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    doc = json.loads((report / "sweep.json").read_text())
    assert [f["train"] for f in doc["folds"]] == [["2019-02-11", "2019-02-12"], ["2019-02-12", "2019-02-13"],
                                                  ["2019-02-13", "2019-02-14"]]
    assert [f["test"] for f in doc["folds"]] == [["2019-02-13"] * 2, ["2019-02-14"] * 2, ["2019-02-15"] * 2]
    rows = list(csv.DictReader((report / "walkforward.csv").open()))
    assert len(rows) == 3
    for column in ("is_objective", "is_trades", "is_return_pct", "oos_objective", "oos_trades", "oos_return_pct",
                   "warning"):
        assert column in rows[0]
    page = (report / "report.html").read_text()
    assert "in-sample return %" in page and "out-of-sample return %" in page and "Walk-forward efficiency" in page
    # every fold's warning (or its absence) is in the page, and the overall one on top when there is one
    summary = json.loads(out)
    if summary["walk_forward_warning"]:
        assert "Walk-forward warning" in page
    # the out-of-sample column is the winner's own replay of the test session, nothing else
    data = load_dataset("bundled")
    fold = doc["folds"][0]
    winner = next(c for c in doc["cells"] if c["cell"] == fold["cell"])
    settings = replay_settings("7dte", data, "new", overrides=winner["overrides"])
    alone = figures(run_replay(settings, data, "reference", (date(2019, 2, 13), date(2019, 2, 13))))
    assert fold["out_of_sample"]["trades"] == alone["trades"]
    assert fold["out_of_sample"]["return_pct"] == alone["total_return_pct"]
    assert rows[0]["oos_return_pct"] == alone["total_return_pct"]
    # and the winner was the better of the two on the training window
    others = [c for c in doc["cells"] if c["cell"] != fold["cell"]]
    other = replay_settings("7dte", data, "new", overrides=others[0]["overrides"])
    rival = figures(run_replay(other, data, "reference", (date(2019, 2, 11), date(2019, 2, 12))))
    assert float(fold["in_sample"]["return_pct"]) >= float(rival["total_return_pct"])
