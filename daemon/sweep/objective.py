"""The figure a sweep ranks its cells by, and which cells may be ranked at all.

- `sharpe`      the §8 Sharpe (daily returns, annualized)
- `return`      the run's return % (total realized P&L over the start capital)
- `return_dd`   return % divided by the maximum drawdown %, the drawdown floored at `DD_FLOOR_PCT`
                so a cell with one lucky trade and no drawdown does not divide into infinity
- `pnl`         total realized P&L in dollars
- `win_rate`    win rate %

A cell with fewer closed trades than `--min-trades`, or whose objective is undefined (Sharpe of a
single day, say), is not eligible: it is listed, ranked after every eligible cell, and never
picked as a walk-forward winner. Ties break on the cell's index (file order): the ranking is
deterministic.

For the walk-forward comparison, `return` and `pnl` grow with the window's length (the training
window is longer than the test window), so they are compared per session (`per_session`); Sharpe,
return/drawdown and win rate are compared as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

DD_FLOOR_PCT = 1.0


def _num(value: Any) -> float | None:
    return None if value is None else float(Decimal(str(value)))


def _return_dd(f: dict[str, Any]) -> float | None:
    ret, dd = _num(f.get("total_return_pct")), _num(f.get("max_drawdown_pct"))
    if ret is None or dd is None:
        return None
    return ret / max(dd, DD_FLOOR_PCT)


@dataclass(frozen=True)
class Objective:
    name: str
    label: str
    value: Callable[[dict[str, Any]], float | None]
    per_session: bool = False  # additive over sessions: compare rates, not totals

    def of(self, figures: dict[str, Any]) -> float | None:
        return self.value(figures)

    def comparable(self, figures: dict[str, Any]) -> float | None:
        """The objective on a scale that does not grow with the window (for in- vs out-of-sample)."""
        value = self.of(figures)
        if value is None or not self.per_session:
            return value
        sessions = int(figures.get("sessions") or 0)
        return value / sessions if sessions else None


OBJECTIVES: dict[str, Objective] = {
    "sharpe": Objective("sharpe", "Sharpe", lambda f: _num(f.get("sharpe"))),
    "return": Objective("return", "return %", lambda f: _num(f.get("total_return_pct")), per_session=True),
    "return_dd": Objective("return_dd", "return % / max drawdown %", _return_dd),
    "pnl": Objective("pnl", "P&L $", lambda f: _num(f.get("total_pnl")), per_session=True),
    "win_rate": Objective("win_rate", "win rate %", lambda f: _num(f.get("win_rate_pct"))),
}


def objective(name: str) -> Objective:
    try:
        return OBJECTIVES[name]
    except KeyError:
        raise ValueError(f"unknown objective {name!r}; one of {', '.join(OBJECTIVES)}") from None


def eligible(figures: dict[str, Any] | None, obj: Objective, min_trades: int) -> bool:
    return figures is not None and int(figures.get("trades") or 0) >= min_trades and obj.of(figures) is not None


def rank(rows: list[tuple[int, dict[str, Any] | None]], obj: Objective, min_trades: int) -> list[int]:
    """Cell indexes best first: eligible cells by objective (descending), then the rest, ties by index."""
    def sort_key(row: tuple[int, dict[str, Any] | None]) -> tuple[int, float, int]:
        index, figures = row
        if not eligible(figures, obj, min_trades):
            return (1, 0.0, index)
        value = obj.of(figures)  # type: ignore[arg-type]
        assert value is not None
        return (0, -value, index)

    return [index for index, _ in sorted(rows, key=sort_key)]
