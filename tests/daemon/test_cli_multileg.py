"""`tradingd size` and `tradingd exits` with --strategy and --leg (SPEC §9): the legs printed, the
combo sized on its max loss, its exits on the whole position."""

import json
from decimal import Decimal as D

import pytest

from daemon.cli import main

CONDOR = ["--leg", "sell:P:445:1.00", "--leg", "buy:P:443:0.40", "--leg", "sell:C:455:0.90", "--leg", "buy:C:457:0.30"]
STRADDLE = ["--leg", "buy:C:450:1.20", "--leg", "buy:P:450:1.10"]


def run(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_size_a_condor_on_its_max_loss(capsys):
    code, out, _ = run(capsys, "size", "--profile", "0dte", "--underlying", "SPY", "--confidence", "0.8",
                       "--strategy", "neutral", *CONDOR, "--json")
    assert code == 0
    record = json.loads(out)
    combo = record["combo"]
    assert combo["structure"] == "iron_condor" and combo["net"] == "-1.20" and combo["max_loss_per_share"] == "0.80"
    assert [(leg["side"], leg["contract"].split()[-2:]) for leg in combo["legs"]] == [
        ("SELL", ["P", "445"]), ("BUY", ["P", "443"]), ("SELL", ["C", "455"]), ("BUY", ["C", "457"])]
    assert record["accepted"] and D(str(record["notional"])) == record["contracts"] * D(80)
    assert 12000 <= D(str(record["notional"])) <= 24000


def test_size_prints_the_legs_of_a_straddle(capsys):
    code, out, _ = run(capsys, "size", "--profile", "0dte", "--underlying", "SPY", "--confidence", "0.7",
                       "--strategy", "volatility", *STRADDLE)
    assert code == 0
    assert "combo straddle (volatility):" in out and "BUY  1 x C 450 at 1.20" in out
    assert "max loss per unit 230.00" in out


@pytest.mark.parametrize("legs, why", [
    (["--leg", "sell:C:450:1.20", "--leg", "buy:P:450:1.10"], "undefined_risk"),  # a naked call has no floor
    (["--leg", "buy:C:450:1.20"], "at least two --leg"),
    (["--leg", "buy:X:450:1.20", "--leg", "buy:P:450:1.10"], "SIDE:RIGHT:STRIKE:PRICE"),
])
def test_size_refuses_bad_legs_with_a_reason(capsys, legs, why):
    status, out, err = run(capsys, "size", "--profile", "0dte", "--underlying", "SPY", "--confidence", "0.7",
                           "--strategy", "volatility", *legs)
    assert status == 2 and why in err


def test_exits_of_a_credit_condor_on_its_net_price_path(capsys, tmp_path):
    quotes = tmp_path / "q.csv"
    quotes.write_text("time,price\n2026-11-30T10:00:00,-1.25\n2026-11-30T10:30:00,-1.60\n2026-11-30T11:00:00,-2.00\n")
    code, out, _ = run(capsys, "exits", "--profile", "0dte", "--strategy", "neutral", *CONDOR, "--contracts", "10",
                       "--entry-time", "2026-11-30T09:40:00", "--quotes", str(quotes), "--json")
    assert code == 0
    document = json.loads(out)
    assert document["combo"]["structure"] == "iron_condor"
    actions = document["actions"]
    # net -1.60: value 0.40, half the 0.80 max loss: the loss levels on the whole position; -2.00: the credit stop (2x the credit is beyond the max loss: it sits at the max loss)
    rules = [a["rule"] for a in actions]
    assert "loss_close_half" in rules and rules[-1] == "credit_stop"
    assert sum(a["quantity"] for a in actions if a["kind"] in ("close", "partial_close")) == 10
