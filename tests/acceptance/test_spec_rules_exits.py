"""SPEC §1, §3 and §5 exit rules that had no test of their own, through `exits.evaluate` and
`tradingd exits`. Every docstring quotes the SPEC line it checks; the worked checks of §5.1 and
§5.2 are in `test_exit_tiered.py` and `test_exit_partial.py`.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from daemon.cli import main
from exits import MarketSnapshot, evaluate
from tests.exits.builders import DAY, EXPIRY_7, FRI, SEVEN, at, fresh, seven_position, walk, zero_position

NEXT_DAY = date(2025, 3, 4)
SATURDAY_AFTER = date(2025, 3, 8)


def _kinds(actions) -> list[tuple[str, int, str]]:
    return [(a.kind, a.quantity, a.rule) for a in actions]


@pytest.mark.parametrize("price", ["10.60", None])
def test_0dte_position_still_open_the_next_session_is_closed_first(price):
    """§5.1: "All 0dte positions are closed by 15:45" — a position still open after its expiry day
    (the daemon was down) is closed on the first look, before any take-profit tier can fire."""
    position = zero_position()
    steps, _ = walk(position, [(at(NEXT_DAY, 10), price)])
    assert _kinds(steps[0][1]) == [("close", 10, "closeout")]


def test_7dte_position_past_expiry_is_closed_at_any_hour():
    """§5.3: "On expiry day close what is left by 15:30" — still open the day after, or on the
    weekend with no session and no quote, it closes at once rather than trailing on."""
    position = seven_position()
    actions, _ = evaluate(position, fresh(position), MarketSnapshot(None, None), at(SATURDAY_AFTER, 10), SEVEN)
    assert _kinds(actions) == [("close", 20, "expiry_close")]
    steps, _ = walk(position, [(at(date(2025, 3, 10), 10), "130")])
    assert _kinds(steps[0][1]) == [("close", 20, "expiry_close")]


def test_7dte_expiry_day_before_1530_still_trades():
    """§5.3: "On expiry day close what is left by 15:30" — not earlier: at 15:29 the rules run as usual."""
    steps, _ = walk(seven_position(), [(at(EXPIRY_7, 15, 29), "100")])
    assert [a.kind for a in steps[0][1]] == ["tighten_stop"]  # the last-day floor, nothing closes


@pytest.mark.parametrize("path, expected", [
    (["93.01"], [[]]),
    (["93"], [[("alert", 0, "loss_alert")]]),
    (["85.01"], [[("alert", 0, "loss_alert")]]),
    (["85"], [[("alert", 0, "loss_alert"), ("partial_close", 10, "loss_close_half")]]),
    (["85", "80.01"], [[("alert", 0, "loss_alert"), ("partial_close", 10, "loss_close_half")], []]),
    (["85", "80"], [[("alert", 0, "loss_alert"), ("partial_close", 10, "loss_close_half")],
                    [("close", 10, "hard_stop")]]),
])
def test_7dte_per_position_levels(path, expected):
    """§3: "Per position …, on premium: −7% alert; −15% close half; hard stop of §1 closes the rest"
    with §1 "hard stop per position | −25% of premium | −20% of premium" (7dte: 80 on an entry of 100)."""
    steps, _ = walk(seven_position(qty=20), [(at(FRI, 10, i + 1), p) for i, p in enumerate(path)])
    assert [_kinds(actions) for _, actions in steps] == expected


@pytest.mark.parametrize("price, closes", [("7.51", False), ("7.50", True)])
def test_0dte_hard_stop_at_minus_25_percent(price, closes):
    """§1: "hard stop per position | −25% of premium" (0dte: 7.50 on an entry of 10.00)."""
    position = zero_position()
    state = fresh(position)
    steps, _ = walk(position, [(at(DAY, 10), price)], state=state)
    assert ("hard_stop" in [a.rule for a in steps[0][1]]) is closes


def test_exits_command_closes_a_path_that_runs_past_expiry(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """§5.1: "All 0dte positions are closed by 15:45" — through `tradingd exits`, a quotes file
    whose first rows are already the next session closes the position there, not by a tier."""
    quotes = tmp_path / "q.csv"
    quotes.write_text("time,price\n2025-03-04T10:00,10.60\n2025-03-04T10:05,11.50\n")
    assert main(["exits", "--profile", "0dte", "--entry", "10", "--contracts", "10", "--entry-time",
                 "2025-03-03T09:45", "--quotes", str(quotes), "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [(r["time"], r["kind"], r["quantity"], r["rule"]) for r in records] == [
        ("2025-03-04T10:00:00-05:00", "close", 10, "closeout")]


def test_close_half_is_half_of_what_is_open_then():
    """§3: "−15% close half; hard stop of §1 closes the rest" — after tier 1 took 3 of 10, half of the
    7 still open (3.5, halves up: 4) goes at −15 %, and the hard stop closes the last 3."""
    path = [(at(DAY, 10), "10.50"), (at(DAY, 10, 5), "8.50"), (at(DAY, 10, 10), "7.50")]
    steps, state = walk(zero_position(qty=10), path)
    assert [_kinds(actions) for _, actions in steps] == [
        [("partial_close", 3, "take_profit_tier_1")],
        [("alert", 0, "loss_alert"), ("partial_close", 4, "loss_close_half")],
        [("close", 3, "hard_stop")],
    ]
    assert state.quantity_closed == 10


def test_7dte_partial_counts_only_what_profit_taking_closed():
    """§5.2: "Cumulative: at profit p close (sum of shares of the thresholds ≤ p) − (already closed)".
    Read (docs/decisions/exits.md) as already closed *by this rule*: the §3 close-half at −15 % does not
    pay for a threshold, so after it the +20 % threshold still takes 25 % of the original 20."""
    path = [(at(FRI, 10, 1), "85"), (at(FRI, 10, 2), "120"), (at(FRI, 10, 3), "135")]
    steps, state = walk(seven_position(qty=20), path)
    assert [[(k, q, r) for k, q, r in _kinds(actions) if k != "tighten_stop"] for _, actions in steps] == [
        [("alert", 0, "loss_alert"), ("partial_close", 10, "loss_close_half")],
        [("partial_close", 5, "partial_profit")],
        [("close", 5, "partial_profit")],
    ]
    assert (state.quantity_closed, state.profit_closed) == (20, 10)
