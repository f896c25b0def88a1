"""The §8 table of one replay: trades, win rate, average win and loss %, annualized return, maximum
drawdown, Sharpe, worst day, breaker events, average slippage. Computed from the result's trades
(closed positions, realized P&L net of commissions) on a realized-equity curve."""

from __future__ import annotations

import math
from collections import defaultdict
from decimal import Decimal
from typing import Any

TRADING_DAYS = 252
_2 = Decimal("0.01")


def equity_curve(result: Any) -> list[tuple[str, Decimal]]:
    """(time, equity) after each closed trade, starting at the start capital (realized P&L only)."""
    equity = Decimal(result.start_capital)
    points = [(result.sessions[0].isoformat() if result.sessions else "", equity)]
    for trade in sorted((t for t in result.trades if t["closed"]), key=lambda t: (t["closed_at"], t["position_id"])):
        equity += Decimal(trade["pnl"])
        points.append((trade["closed_at"], equity))
    return points


def max_drawdown(points: list[tuple[str, Decimal]]) -> Decimal:
    """Largest peak-to-trough fall of the equity curve, as a fraction of the peak."""
    peak, worst = None, Decimal(0)
    for _, equity in points:
        peak = equity if peak is None or equity > peak else peak
        if peak and peak > 0:
            worst = max(worst, (peak - equity) / peak)
    return worst


def daily_pnl(result: Any) -> dict[str, Decimal]:
    days: dict[str, Decimal] = {d.isoformat(): Decimal(0) for d in result.sessions}
    for trade in result.trades:
        if trade["closed"]:
            day = trade["closed_at"][:10]
            days[day] = days.get(day, Decimal(0)) + Decimal(trade["pnl"])
    return dict(sorted(days.items()))


def figures(result: Any) -> dict[str, Any]:
    """The §8 table as plain values (Decimals as strings, None where a figure is undefined)."""
    closed = [t for t in result.trades if t["closed"]]
    wins = [t for t in closed if Decimal(t["pnl"]) > 0]
    losses = [t for t in closed if Decimal(t["pnl"]) <= 0]
    start = Decimal(result.start_capital)
    total = sum((Decimal(t["pnl"]) for t in closed), Decimal(0))
    curve = equity_curve(result)
    days = daily_pnl(result)
    n_days = len(days)
    # Daily returns on the equity at the start of each day.
    equity, returns = start, []
    for pnl in days.values():
        returns.append(float(pnl / equity) if equity > 0 else 0.0)
        equity += pnl
    total_return = float(total / start) if start else 0.0
    annualized = ((1 + total_return) ** (TRADING_DAYS / n_days) - 1) if n_days and total_return > -1 else None
    sharpe = None
    if len(returns) >= 2:
        mean = sum(returns) / len(returns)
        sd = math.sqrt(sum((r - mean) ** 2 for r in returns) / (len(returns) - 1))
        sharpe = mean / sd * math.sqrt(TRADING_DAYS) if sd > 0 else None
    worst_day = min(days.items(), key=lambda kv: (kv[1], kv[0])) if days else None
    slips = [Decimal(f["slippage"]) for f in result.fills if f["slippage"] is not None]
    slip_pct = [Decimal(f["slippage"]) / Decimal(f["mid"]) for f in result.fills
                if f["slippage"] is not None and f["mid"] and Decimal(f["mid"]) > 0]

    def avg_pct(ts: list[dict[str, Any]]) -> str | None:
        if not ts:
            return None
        return str((sum(Decimal(t["return_pct"]) for t in ts) / len(ts)).quantize(_2))

    return {
        "trades": len(closed),
        "open_at_end": len(result.trades) - len(closed),
        "win_rate_pct": None if not closed else str((Decimal(len(wins)) / len(closed) * 100).quantize(_2)),
        "avg_win_pct": avg_pct(wins),
        "avg_loss_pct": avg_pct(losses),
        "total_pnl": str(total.quantize(_2)),
        "total_return_pct": str((total / start * 100).quantize(_2)) if start else None,
        "sessions": n_days,
        "annualized_return_pct": None if annualized is None else f"{annualized * 100:.2f}",
        "max_drawdown_pct": str((max_drawdown(curve) * 100).quantize(_2)),
        "sharpe": None if sharpe is None else f"{sharpe:.2f}",
        "worst_day": None if worst_day is None else {"day": worst_day[0], "pnl": str(worst_day[1].quantize(_2))},
        "breaker_events": len(result.breaker_events),
        "avg_slippage": None if not slips else str((sum(slips) / len(slips)).quantize(Decimal("0.0001"))),
        "avg_slippage_pct_of_mid": None if not slip_pct else str((sum(slip_pct) / len(slip_pct) * 100).quantize(_2)),
        "decisions": len(result.decisions),
        "accepted": sum(1 for d in result.decisions if d["accepted"]),
        "refused_by_reason": dict(sorted(_count(d["reason"] for d in result.decisions if not d["accepted"]).items())),
    }


def _count(items: Any) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for item in items:
        out[str(item)] += 1
    return dict(out)
