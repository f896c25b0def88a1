"""`tradingd replay` end to end: the three files, both sizings, events/s, clear refusals."""

from __future__ import annotations

import json
from pathlib import Path

from daemon.cli import main


def test_replay_command_writes_the_report_for_both_sizings(capsys, tmp_path: Path) -> None:
    out = tmp_path / "rep"
    code = main(["replay", "--profile", "0dte", "--from", "2019-02-13", "--to", "2019-02-13", "--report", str(out),
                 "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert {p.name for p in out.iterdir()} == {"report.json", "report.html", "equity.png"}
    printed = json.loads(captured.out)
    assert set(printed["figures"]) == {"new", "current"}
    assert "events/s" in captured.err
    doc = json.loads((out / "report.json").read_text())
    assert doc["sessions"] == ["2019-02-13"] and doc["window"] == ["2019-02-13", "2019-02-13"]
    assert doc["seeds_projection"]["new"]["max_drawdown"] == "25-35%"


def test_bad_inputs_are_refused_with_a_reason(capsys, tmp_path: Path) -> None:
    assert main(["replay", "--profile", "0dte", "--scenario", "nope", "--report", str(tmp_path), "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["code"] == "bad_scenario"
    assert main(["replay", "--profile", "0dte", "--data", str(tmp_path / "none"), "--report", str(tmp_path),
                 "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["code"] == "replay_data_missing"
    assert main(["replay", "--profile", "0dte", "--from", "2019-02-14", "--to", "2019-02-13", "--report",
                 str(tmp_path), "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["code"] == "bad_window"
