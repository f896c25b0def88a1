"""SPEC §5.1 check, through the API, through `tradingd exits --json` and a real subprocess.

Entry 10.00 before 11:00, more than 3 h to the close, held less than 3 h, VIX 20:
10.30 nothing; 10.50 close 33 %; 10.80 nothing; 11.00 close 33 %; 11.50 close the rest; 12.00 nothing.
Also the seeds' `test_tiered_take_profit_strategy` in intent (its last tier closes the rest).
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from config import load_settings
from market import calendar
from daemon.cli import main
from exits import EXCHANGE_TZ, ExitPosition, MarketSnapshot, evaluate, new_state

DAY = date(2025, 3, 3)
PRICES = ["10.30", "10.50", "10.80", "11.00", "11.50", "12.00"]
TIMES = [datetime(2025, 3, 3, 10, 5 * i, tzinfo=EXCHANGE_TZ) for i in range(len(PRICES))]
# (kind, quantity) per price for 100 and for 10 contracts: 33 %, 33 %, the rest
EXPECTED = {
    100: [None, ("partial_close", 33), None, ("partial_close", 33), ("close", 34), None],
    10: [None, ("partial_close", 3), None, ("partial_close", 3), ("close", 4), None],
}


def _api(contracts: int) -> list[tuple[str, int] | None]:
    settings = load_settings("0dte", env={})
    position = ExitPosition(Decimal("10.00"), datetime(2025, 3, 3, 9, 45, tzinfo=EXCHANGE_TZ),
                            contracts, contracts, DAY, "SPY", "0dte")
    state = new_state(position, settings)
    out = []
    for when, price in zip(TIMES, PRICES, strict=True):
        market = MarketSnapshot(Decimal(price), calendar.session_for(DAY), vix=Decimal(20))
        actions, state = evaluate(position, state, market, when, settings)
        assert len(actions) <= 1
        out.append((actions[0].kind, actions[0].quantity) if actions else None)
        if actions:
            position = replace(position, open_quantity=position.open_quantity - actions[0].quantity)
    return out


@pytest.mark.parametrize("contracts", [100, 10])
def test_spec_5_1_check_through_the_api(contracts: int) -> None:
    assert _api(contracts) == EXPECTED[contracts]


def _quotes(tmp_path: Path) -> Path:
    path = tmp_path / "path.csv"
    path.write_text("time,price\n" + "".join(f"{t:%Y-%m-%dT%H:%M:%S},{p}\n" for t, p in zip(TIMES, PRICES, strict=True)))
    return path


ARGS = ["exits", "--profile", "0dte", "--entry", "10.00", "--contracts", "100",
        "--entry-time", "2025-03-03T09:45:00", "--vix", "20", "--json"]


def _by_time(records: list[dict]) -> list[tuple[str, int] | None]:
    found = {r["time"]: (r["kind"], r["quantity"]) for r in records}
    assert len(found) == len(records)
    return [found.get(t.isoformat()) for t in TIMES]


def test_spec_5_1_check_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*ARGS, "--quotes", str(_quotes(tmp_path))]) == 0
    records = json.loads(capsys.readouterr().out)
    assert _by_time(records) == EXPECTED[100]
    assert [r["rule"] for r in records] == ["take_profit_tier_1", "take_profit_tier_2", "take_profit_tier_3"]


def test_spec_5_1_check_through_a_real_subprocess(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "tradingd"
    if not exe.exists():
        pytest.skip(f"{exe} is not installed (pip install -e .)")
    done = subprocess.run([str(exe), *ARGS, "--quotes", str(_quotes(tmp_path))],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert _by_time(json.loads(done.stdout)) == EXPECTED[100]
