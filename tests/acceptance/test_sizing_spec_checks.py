"""SPEC §2.2's worked checks, through `risk.sizing.evaluate` and through `tradingd size --json`."""

import json
import subprocess
import sys
from decimal import Decimal as D
from pathlib import Path

import pytest

from daemon.cli import main
from risk.sizing import evaluate
from tests.risk.builders import request, settings

REPO = Path(__file__).resolve().parents[2]

# (confidence, VIX) -> (contracts, notional, accepted, reason); option price 3.00
ZERO_DTE = [
    ("0.6", "20", 40, 12000, False, "confidence_below_threshold"),
    ("0.7", "20", 50, 15000, True, None),
    ("0.8", "20", 60, 18000, True, None),
    ("0.9", "20", 60, 18000, True, None),  # the VIX 15-25 regime caps at 1.5
    ("0.9", "14", 80, 24000, True, None),
]
# equity 100,000, AAPL, option 10.00, no fundamentals
SEVEN_DTE = [("0.6", 33, False, "confidence_below_threshold"), ("0.7", 41, True, None),
             ("0.8", 49, True, None), ("0.9", 66, True, None)]


@pytest.mark.parametrize("confidence, vix, contracts, notional, accepted, reason", ZERO_DTE)
def test_0dte_through_evaluate(confidence, vix, contracts, notional, accepted, reason):
    d = evaluate(request("0dte", D("3.00"), confidence=D(confidence), vix=D(vix)), settings("0dte"))
    assert (d.contracts, d.notional, d.accepted, d.reason) == (contracts, D(notional), accepted, reason)
    assert (d.min_bet, d.max_bet) == (D(12000), D(24000))


def test_0dte_regime_cap_is_recorded():
    d = evaluate(request("0dte", D("3.00"), confidence=D("0.9"), vix=D(20)), settings("0dte"))
    assert (d.raw_multiplier, d.multiplier) == (D(2), D("1.5"))
    assert [(c.name, c.limit, c.contracts_before, c.contracts_after) for c in d.caps] == [
        ("vix_regime", D("1.5"), 80, 60)]


@pytest.mark.parametrize("confidence, contracts, accepted, reason", SEVEN_DTE)
def test_7dte_through_evaluate(confidence, contracts, accepted, reason):
    d = evaluate(request("7dte", D("10.00"), confidence=D(confidence), capital_base=D(100000)), settings("7dte"))
    assert (d.contracts, d.notional, d.accepted, d.reason) == (contracts, D(contracts * 1000), accepted, reason)


def size_json(capsys, *args: str) -> dict:
    assert main(["size", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("confidence, vix, contracts, notional, accepted, reason", ZERO_DTE)
def test_0dte_through_the_cli(capsys, confidence, vix, contracts, notional, accepted, reason):
    out = size_json(capsys, "--profile", "0dte", "--underlying", "SPY", "--confidence", confidence,
                    "--price", "3.00", "--vix", vix)
    assert (out["contracts"], out["notional"], out["accepted"], out["reason"]) == (contracts, notional, accepted, reason)
    assert (out["min_bet"], out["max_bet"]) == (12000, 24000)
    assert {"multiplier", "factors", "caps", "checks"} <= set(out)


@pytest.mark.parametrize("confidence, contracts, accepted, reason", SEVEN_DTE)
def test_7dte_through_the_cli(capsys, confidence, contracts, accepted, reason):
    out = size_json(capsys, "--profile", "7dte", "--underlying", "AAPL", "--confidence", confidence,
                    "--price", "10.00", "--equity", "100000")
    assert (out["contracts"], out["notional"], out["accepted"], out["reason"]) == (
        contracts, contracts * 1000, accepted, reason)


def test_the_installed_command_answers_in_a_real_process():
    exe = REPO / ".venv" / "bin" / "tradingd"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "daemon.cli"]
    run = subprocess.run([*cmd, "size", "--profile", "0dte", "--underlying", "SPY", "--confidence", "0.9",
                          "--price", "3.00", "--vix", "14", "--json"],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert (out["accepted"], out["contracts"], out["notional"]) == (True, 80, 24000)
