import json

import pytest

from daemon.cli import main

BASE_0DTE = ["size", "--profile", "0dte", "--underlying", "SPY", "--price", "3.00"]


def run(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_json(capsys, *args):
    code, out, err = run(capsys, *args, "--json")
    return code, json.loads(out), err


@pytest.mark.parametrize("args, code", [
    (["--confidence", "0.7", "--price", "nan"], "invalid_price"),
    (["--confidence", "0.7", "--price", "inf"], "invalid_price"),
    (["--confidence", "0.7", "--price", "0"], "invalid_price"),
    (["--confidence", "0.7", "--price", "-3"], "invalid_price"),
    (["--confidence", "0.7", "--price", "three"], "invalid_price"),
    (["--confidence", "0.7", "--price", "0.00001"], "invalid_price"),
    (["--confidence", "1.01"], "invalid_confidence"),
    (["--confidence", "-0.1"], "invalid_confidence"),
    (["--confidence", "NaN"], "invalid_confidence"),
    (["--confidence", "0.7", "--underlying", "AAPL"], "unknown_underlying"),
    (["--confidence", "0.7", "--vix", "-2"], "invalid_vix"),
    (["--confidence", "0.7", "--equity", "0"], "invalid_capital_base"),
    (["--confidence", "0.7", "--strategy", "yolo"], "invalid_strategy"),
    (["--confidence", "0.7", "--breaker-level", "9"], "invalid_breaker_level"),
    (["--confidence", "0.7", "--breaker-level", "x"], "usage"),
    (["--confidence", "0.7", "--price", "1e13"], "invalid_price"),
    (["--confidence", "0.7", "--price", "1e999999"], "invalid_price"),
    (["--confidence", "1e999999"], "invalid_confidence"),
    (["--confidence", "0.7", "--equity", "-5"], "invalid_capital_base"),
    (["--confidence", "0.7", "--vix-open", "0"], "invalid_vix"),
    (["--confidence", "0.7", "--underlying", ""], "invalid_type"),
    (["--confidence", "0.7", "--direction", "up"], "invalid_direction"),
])
def test_bad_input_exits_2_with_one_line(capsys, args, code):
    status, out, err = run_json(capsys, *BASE_0DTE, *args)
    assert status == 2
    assert out["code"] == code and out["error"]
    assert err.count("\n") == 1 and err.startswith("tradingd: error:") and "Traceback" not in err


def test_unknown_profile(capsys):
    status, out, _ = run_json(capsys, "size", "--profile", "9dte", "--underlying", "SPY", "--confidence", "0.7",
                              "--price", "3")
    assert (status, out["code"]) == (2, "unknown_profile")


def test_unreadable_and_invalid_files(capsys, tmp_path):
    missing = tmp_path / "nope.json"
    assert run_json(capsys, *BASE_0DTE, "--confidence", "0.7", "--open-positions", str(missing))[1]["code"] == \
        "invalid_file"
    broken = tmp_path / "broken.json"
    broken.write_text("[{")
    assert run_json(capsys, *BASE_0DTE, "--confidence", "0.7", "--open-positions", str(broken))[1]["code"] == \
        "invalid_file"
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps([{"underlying": "QQQ", "contracts": -1, "price": 2}]))
    status, out, _ = run_json(capsys, *BASE_0DTE, "--confidence", "0.7", "--open-positions", str(wrong))
    assert (status, out["code"]) == (2, "invalid_open_position")
    rho = tmp_path / "rho.json"
    rho.write_text(json.dumps({"SPY": {"QQQ": 2}}))
    status, out, _ = run_json(capsys, *BASE_0DTE, "--confidence", "0.7", "--correlations", str(rho))
    assert (status, out["code"]) == (2, "invalid_correlation")
    fundamentals = tmp_path / "f.json"
    fundamentals.write_text(json.dumps({"eps": 3}))
    status, out, _ = run_json(capsys, *BASE_0DTE, "--confidence", "0.7", "--fundamentals", str(fundamentals))
    assert (status, out["code"]) == (2, "invalid_file")


def test_refusals_are_answers_exit_0(capsys):
    status, out, _ = run_json(capsys, "size", "--profile", "0dte", "--underlying", "SPY", "--confidence", "0.9",
                              "--price", "250", "--vix", "20")
    assert (status, out["accepted"], out["reason"]) == (0, False, "contract_too_expensive")


def test_book_files_change_the_size(capsys, tmp_path):
    book = tmp_path / "book.json"
    book.write_text(json.dumps([{"underlying": "QQQ", "contracts": 40, "price": 5}]))
    rho = tmp_path / "rho.json"
    rho.write_text(json.dumps({"SPY": {"QQQ": 0.9}}))
    status, out, _ = run_json(capsys, *BASE_0DTE, "--confidence", "0.9", "--vix", "14",
                              "--open-positions", str(book), "--correlations", str(rho))
    assert status == 0
    assert out["factors"]["correlation"] == 0.5
    assert (out["contracts"], out["notional"]) == (40, 12000)


def test_7dte_fundamentals_file(capsys, tmp_path):
    f = tmp_path / "f.json"
    f.write_text(json.dumps({"earnings_surprise_pct": 12, "analyst_buy_pct": 80}))
    status, out, _ = run_json(capsys, "size", "--profile", "7dte", "--underlying", "aapl", "--confidence", "0.7",
                              "--price", "10", "--fundamentals", str(f))
    assert status == 0
    assert (out["factors"]["fundamentals"], out["contracts"]) == (2, 66)


def test_breaker_and_buying_power_flags(capsys):
    _, out, _ = run_json(capsys, *BASE_0DTE, "--confidence", "0.9", "--vix", "14", "--breaker-level", "1")
    assert (out["accepted"], out["contracts"]) == (True, 40)
    _, out, _ = run_json(capsys, *BASE_0DTE, "--confidence", "0.9", "--vix", "14", "--breaker-level", "2")
    assert (out["accepted"], out["reason"], out["contracts"]) == (False, "halted", 40)
    _, out, _ = run_json(capsys, *BASE_0DTE, "--confidence", "0.9", "--vix", "14", "--buying-power", "13000")
    assert (out["contracts"], out["caps"][-1]["name"]) == (43, "buying_power")


def test_human_output_shows_the_breakdown(capsys):
    status, out, err = run(capsys, *BASE_0DTE, "--confidence", "0.9", "--vix", "20")
    assert status == 0 and err == ""
    assert "ACCEPTED" in out and "contracts    60" in out and "18000.00" in out
    assert "vix_regime (multiplier, limit 1.50): 80 -> 60 contracts" in out
    for check in ("halted", "confidence_below_threshold", "below_minimum_bet", "greeks_limit"):
        assert check in out
    status, out, _ = run(capsys, *BASE_0DTE, "--confidence", "0.6", "--vix", "20")
    assert status == 0 and "REFUSED: confidence_below_threshold" in out and "contracts    40" in out


@pytest.mark.parametrize("text, code", [
    ("", "invalid_file"),
    ("{}", "invalid_open_position"),
    (json.dumps([{"underlying": "QQQ", "contracts": 10 ** 26, "price": 2}]), "invalid_open_position"),
    (json.dumps([{"underlying": "QQQ", "contracts": 2, "price": 1e300}]), "invalid_open_position"),
    (json.dumps([{"underlying": "QQQ", "contracts": -2, "price": 2}]), "invalid_open_position"),
    (json.dumps([{"underlying": "QQQ", "contracts": 2, "price": 2, "side": "long"}]), "invalid_open_position"),
])
def test_odd_open_positions_files(capsys, tmp_path, text, code):
    book = tmp_path / "book.json"
    book.write_text(text)
    status, out, err = run_json(capsys, *BASE_0DTE, "--confidence", "0.7", "--open-positions", str(book))
    assert (status, out["code"]) == (2, code)
    assert err.count("\n") == 1 and "Traceback" not in err


def test_calendar_is_applied_only_when_asked(capsys, tmp_path, monkeypatch):
    """SPEC §10.1 in the what-if: an expiry spanning earnings caps the 7dte bet at the minimum."""
    calendar = tmp_path / "events.toml"
    calendar.write_text('[earnings.AAPL]\ntiming = "amc"\ndays = [2099-01-02]\n')
    monkeypatch.setenv("TRADINGD_REGIME__EVENTS__CALENDAR_FILE", str(calendar))
    args = ["size", "--profile", "7dte", "--underlying", "AAPL", "--price", "10", "--confidence", "0.9",
            "--expiry", "2099-01-09"]
    code, plain, _ = run_json(capsys, *args)
    assert code == 0 and plain["contracts"] == 66 and "earnings_span" not in plain["multiplier_caps"]
    code, capped, _ = run_json(capsys, *args, "--calendar")
    assert code == 0 and capped["contracts"] == 33 and capped["multiplier_caps"]["earnings_span"] == 1
    code, out, _ = run_json(capsys, *args[:-2], "--expiry", "soon", "--calendar")
    assert code == 2 and out["code"] == "invalid_expiry"
