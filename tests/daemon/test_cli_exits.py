"""`tradingd exits`: output forms, defaults, and one-line refusals of bad input (exit 2)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from config import load_settings
from daemon.cli import main
from daemon.commands.exits import default_expiry

BASE = ["exits", "--profile", "0dte", "--entry", "10.00", "--contracts", "10", "--entry-time", "2025-03-03T09:45"]


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "q.csv"
    path.write_text(text)
    return path


def _run(capsys, argv) -> tuple[int, str, str]:
    rc = main(argv)
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def test_table_output(tmp_path, capsys) -> None:
    q = _file(tmp_path, "time,price\n2025-03-03T10:00,10.50\n2025-03-03T10:05,9.30\n")
    rc, out, _ = _run(capsys, [*BASE, "--quotes", str(q)])
    lines = out.splitlines()
    assert rc == 0 and lines[0].split()[:4] == ["time", "kind", "qty", "rule"]
    assert "take_profit_tier_1" in lines[1] and "partial_close" in lines[1] and "loss_alert" in lines[2]


def test_no_actions_says_so(tmp_path, capsys) -> None:
    q = _file(tmp_path, "time,price\n2025-03-03T10:00,10.10\n")
    assert _run(capsys, [*BASE, "--quotes", str(q)])[:2] == (0, "no exit actions\n")
    assert _run(capsys, [*BASE, "--quotes", str(q), "--json"])[:2] == (0, "[]\n")


def test_half_day_closeout_through_the_cli(tmp_path, capsys) -> None:
    # flat by 12:45 (15 min before the 13:00 close): the close-out starts one parent timeout (60 s) before
    q = _file(tmp_path, "time,price\n2025-11-28T12:43,10.10\n2025-11-28T12:44,10.10\n2025-11-28T12:45,10.10\n")
    argv = ["exits", "--profile", "0dte", "--entry", "10", "--contracts", "2", "--entry-time", "2025-11-28T10:00",
            "--quotes", str(q), "--json"]
    rc, out, _ = _run(capsys, argv)
    assert rc == 0
    assert [(r["time"], r["kind"], r["quantity"], r["rule"]) for r in json.loads(out)] == [
        ("2025-11-28T12:43:00-05:00", "close", 2, "closeout")]


def test_overnight_gap_through_the_cli(tmp_path, capsys) -> None:
    q = _file(tmp_path, "time,price,underlying\n"
                        "2025-03-03T15:55,100,200\n"
                        "2025-03-03T20:00,,193\n"
                        "2025-03-04T09:30,90,192\n")
    argv = ["exits", "--profile", "7dte", "--entry", "100", "--contracts", "4", "--entry-time", "2025-03-03T10:00",
            "--quotes", str(q), "--json"]
    rc, out, _ = _run(capsys, argv)
    assert rc == 0
    assert [(r["kind"], r["rule"]) for r in json.loads(out)] == [("alert", "overnight_gap"), ("close", "overnight_exit")]


def test_timezone_aware_times_are_accepted(tmp_path, capsys) -> None:
    q = _file(tmp_path, "time,price\n2025-03-03T15:00:00+00:00,10.50\n")  # 10:00 in New York
    rc, out, _ = _run(capsys, [*BASE, "--quotes", str(q), "--json"])
    assert rc == 0 and json.loads(out)[0]["time"] == "2025-03-03T10:00:00-05:00"


@pytest.mark.parametrize(("entry", "expected"), [
    (date(2025, 2, 28), date(2025, 3, 7)),    # Friday -> next Friday
    (date(2025, 3, 3), date(2025, 3, 7)),     # Monday -> the Friday 4 days out is nearest 7
    (date(2025, 3, 4), date(2025, 3, 14)),    # Tuesday -> 10 days out is nearer than 3
    (date(2025, 3, 6), date(2025, 3, 14)),    # Thursday -> 8 days
    (date(2025, 4, 11), date(2025, 4, 17)),   # Good Friday 2025-04-18 is a holiday: Thursday
])
def test_default_7dte_expiry(entry, expected) -> None:
    assert default_expiry(load_settings("7dte", env={}), entry) == expected


def test_default_0dte_expiry_is_the_entry_day() -> None:
    assert default_expiry(load_settings("0dte", env={}), date(2025, 3, 3)) == date(2025, 3, 3)


GOOD = "time,price\n2025-03-03T10:00,10.50\n"


@pytest.mark.parametrize(("text", "extra", "needle"), [
    ("time,last\n2025-03-03T10:00,10\n", [], "header must have time,price"),
    ("time,price\n", [], "no quote rows"),
    ("time,price\nyesterday,10\n", [], "not an ISO datetime"),
    ("time,price\n2025-03-03T10:00,abc\n", [], "not a number"),
    ("time,price\n2025-03-03T10:00,-1\n", [], "must be a finite number > 0"),
    ("time,price\n2025-03-03T10:00,NaN\n", [], "must be a finite number > 0"),
    ("time,price\n2025-03-03T09:00,10\n", [], "before the entry time"),
    ("time,price\n2025-03-03T10:05,10\n2025-03-03T10:00,10\n", [], "before the row before"),
    ("time,price\n2025-03-03T10:00,10,7\n", [], "more fields than the header"),
    ("time,price,underlying\n2025-03-03T10:00,10,zero\n", [], "not a number"),
    (GOOD, ["--entry", "0"], "--entry"),
    (GOOD, ["--contracts", "0"], "--contracts"),
    (GOOD, ["--contracts", "1.5"], "--contracts"),
    (GOOD, ["--vix", "-3"], "--vix"),
    (GOOD, ["--expiry", "03/07/2025"], "--expiry"),
    (GOOD, ["--expiry", "2025-03-01"], "before the entry date"),
    (GOOD, ["--earnings", "soon"], "--earnings"),
    (GOOD, ["--entry-time", "09:45"], "--entry-time"),
    (GOOD, ["--profile", "nope"], "unknown profile"),
    ("time,price\n2025-03-03T10:00,1e999999\n", [], "at most"),
    ("time,price\n2025-03-03T10:00,1e30\n", [], "at most"),
    ("time,price,underlying\n2025-03-03T10:00,10\n", [], "fewer fields than the header"),
    ("time,price\n2025-03-03T10:00\n", [], "fewer fields than the header"),
    ("time,price\n2262-04-12T10:00,10\n", [], "outside the exchange calendar"),
    (GOOD, ["--entry", "1e999999"], "--entry"),
    (GOOD, ["--vix", "1e999999"], "--vix"),
    (GOOD, ["--contracts", "99999999999999999999999"], "--contracts"),
    (GOOD, ["--contracts", "-3"], "--contracts"),
    (GOOD, ["--underlying", "AAPL"], "not traded by profile 0dte"),
    (GOOD, ["--underlying", ""], "not traded by profile 0dte"),
    (GOOD, ["--expiry", "2300-01-01"], "outside the exchange calendar"),
    (GOOD, ["--entry-time", "1980-01-02T10:00"], "outside the exchange calendar"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, text, extra, needle) -> None:
    q = _file(tmp_path, text)
    rc, out, err = _run(capsys, [*BASE, "--quotes", str(q), *extra, "--json"])
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and needle in err and "Traceback" not in err
    assert needle in json.loads(out)["error"]


def test_missing_file_and_binary_file(tmp_path, capsys) -> None:
    rc, out, err = _run(capsys, [*BASE, "--quotes", str(tmp_path / "none.csv"), "--json"])
    assert rc == 2 and json.loads(out)["code"] == "file_not_found"
    blob = tmp_path / "blob.csv"
    blob.write_bytes(b"\xff\xfe\x00\x01")
    rc, _, err = _run(capsys, [*BASE, "--quotes", str(blob)])
    assert rc == 2 and "cannot read quotes file" in err


def test_a_spreadsheet_bom_and_padded_cells_are_read(tmp_path, capsys) -> None:
    q = tmp_path / "q.csv"
    q.write_bytes("\ufefftime , price \n 2025-03-03T10:00 , 10.50 \n".encode())
    rc, out, _ = _run(capsys, [*BASE, "--quotes", str(q), "--json"])
    assert rc == 0 and [r["rule"] for r in json.loads(out)] == ["take_profit_tier_1"]


def test_lower_case_underlying_is_the_profiles_symbol(tmp_path, capsys) -> None:
    rc, out, _ = _run(capsys, [*BASE, "--underlying", "qqq", "--quotes", str(_file(tmp_path, GOOD)), "--json"])
    assert rc == 0 and json.loads(out)[0]["rule"] == "take_profit_tier_1"
