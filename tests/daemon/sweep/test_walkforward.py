"""Walk-forward folds, the objectives, the ranking and the in-/out-of-sample warning (pure functions)."""

from __future__ import annotations

from datetime import date

import pytest

from daemon.sweep.objective import DD_FLOOR_PCT, objective, rank
from daemon.sweep.walkforward import WalkForwardError, efficiency, fold_warning, folds, parse_spec

WEEK = [date(2019, 2, d) for d in (11, 12, 13, 14, 15)]


def figs(trades: int = 5, sharpe: str | None = "1.00", ret: str = "1.00", dd: str = "2.00", sessions: int = 3,
         pnl: str = "600.00") -> dict:
    return {"trades": trades, "sharpe": sharpe, "total_return_pct": ret, "max_drawdown_pct": dd,
            "sessions": sessions, "total_pnl": pnl, "win_rate_pct": "50.00"}


def test_folds_roll_forward_by_the_test_window_without_overlapping_tests() -> None:
    got = folds(WEEK, 2, 1)
    assert [(f.train, f.test) for f in got] == [
        ((WEEK[0], WEEK[1]), (WEEK[2], WEEK[2])),
        ((WEEK[1], WEEK[2]), (WEEK[3], WEEK[3])),
        ((WEEK[2], WEEK[3]), (WEEK[4], WEEK[4])),
    ]
    assert [(f.train, f.test) for f in folds(WEEK, 3, 2)] == [((WEEK[0], WEEK[2]), (WEEK[3], WEEK[4]))]
    with pytest.raises(WalkForwardError) as err:
        folds(WEEK, 4, 2)
    assert err.value.code == "walk_forward_too_long"


@pytest.mark.parametrize("text", ["3", "a:b", "0:1", "3:0", "1:2:3"])
def test_bad_walk_forward_specs_are_refused(text: str) -> None:
    with pytest.raises(WalkForwardError) as err:
        parse_spec(text)
    assert err.value.code == "bad_walk_forward"


def test_objectives() -> None:
    f = figs(ret="3.00", dd="0.20")
    assert objective("return_dd").of(f) == pytest.approx(3.0 / DD_FLOOR_PCT)  # drawdown floored, no infinity
    assert objective("return_dd").of(figs(ret="3.00", dd="6.00")) == pytest.approx(0.5)
    assert objective("sharpe").of(figs(sharpe=None)) is None
    assert objective("return").comparable(figs(ret="3.00", sessions=3)) == pytest.approx(1.0)  # per session
    assert objective("sharpe").comparable(figs(sharpe="2.00", sessions=3)) == pytest.approx(2.0)  # as it is
    with pytest.raises(ValueError):
        objective("luck")


def test_ranking_puts_ineligible_cells_last_and_breaks_ties_by_index() -> None:
    rows = [(0, figs(sharpe="1.00")), (1, figs(sharpe="2.00", trades=1)), (2, figs(sharpe="1.00")),
            (3, figs(sharpe=None)), (4, None), (5, figs(sharpe="0.50"))]
    assert rank(rows, objective("sharpe"), min_trades=3) == [0, 2, 5, 1, 3, 4]
    assert rank(rows, objective("sharpe"), min_trades=1) == [1, 0, 2, 5, 3, 4]


def test_the_warning_rule() -> None:
    sharpe = objective("sharpe")
    assert fold_warning(sharpe, figs(sharpe="2.00"), figs(sharpe="1.20"), 1) is None  # kept 60 %
    assert "kept 40%" in fold_warning(sharpe, figs(sharpe="2.00"), figs(sharpe="0.80"), 1)
    assert "turned negative" in fold_warning(sharpe, figs(sharpe="2.00"), figs(sharpe="-0.50"), 1)
    assert "not positive" in fold_warning(sharpe, figs(sharpe="-1.00"), figs(sharpe="2.00"), 1)
    assert "too few trades" in fold_warning(sharpe, figs(), figs(trades=1), 3)
    assert "undefined out of sample" in fold_warning(sharpe, figs(), figs(sharpe=None), 1)
    assert "no eligible cell" in fold_warning(sharpe, None, None, 1)
    # return is compared per session: 3 % over 3 sessions in sample vs 0.8 % in one session out of sample
    ret = objective("return")
    assert fold_warning(ret, figs(ret="3.00", sessions=3), figs(ret="0.80", sessions=1), 1) is None
    assert "kept 40%" in fold_warning(ret, figs(ret="3.00", sessions=3), figs(ret="0.40", sessions=1), 1)


def test_walk_forward_efficiency() -> None:
    sharpe = objective("sharpe")
    pairs = [(figs(sharpe="2.00"), figs(sharpe="1.00")), (figs(sharpe="2.00"), figs(sharpe="0.00")),
             (figs(sharpe="2.00"), None)]
    assert efficiency(sharpe, pairs) == pytest.approx(0.25)
    assert efficiency(sharpe, [(figs(sharpe="-1.00"), figs(sharpe="1.00"))]) is None
