"""The per-day summary printed at the end of a run (and by the daily-report job).

Built from `Store.summary_by_day` only, so what is printed is what was stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from daemon import format as fmt
from daemon.store.records import DaySummary


def day_lines(day: DaySummary) -> list[str]:
    refused = ", ".join(f"{reason} {count}" for reason, count in sorted(day.refused_by_reason.items())) or "none"
    return [
        f"{day.session_date:%Y-%m-%d}: signals {day.signals}, accepted {day.accepted}, refused {day.refused} ({refused})",
        f"    trades opened {day.trades_opened}, closed {day.trades_closed}; realized P&L {_money(day.realized_pnl)} "
        f"(commissions {_money(day.commissions)}); breaker events {day.breaker_events}"
        + (f" (max level {day.max_breaker_level})" if day.breaker_events else ""),
    ]


def summary_text(days: Sequence[DaySummary], profile: str) -> str:
    if not days:
        return f"== {profile}: no sessions with activity"
    lines = [f"== {profile}: per-day summary"]
    for day in days:
        lines.extend(day_lines(day))
    lines.append(_totals_line(days))
    return "\n".join(lines)


def summary_json(days: Iterable[DaySummary]) -> list[dict[str, Any]]:
    return [
        {
            "session_date": day.session_date.isoformat(),
            "signals": day.signals,
            "accepted": day.accepted,
            "refused": day.refused,
            "refused_by_reason": dict(sorted(day.refused_by_reason.items())),
            "trades_opened": day.trades_opened,
            "trades_closed": day.trades_closed,
            "realized_pnl": fmt.money(day.realized_pnl),
            "commissions": fmt.money(day.commissions),
            "breaker_events": day.breaker_events,
            "max_breaker_level": day.max_breaker_level,
        }
        for day in days
    ]


def _totals_line(days: Sequence[DaySummary]) -> str:
    pnl = sum((d.realized_pnl for d in days), Decimal(0))
    return (f"total: signals {sum(d.signals for d in days)}, accepted {sum(d.accepted for d in days)}, "
            f"refused {sum(d.refused for d in days)}, trades {sum(d.trades_opened for d in days)}, "
            f"realized P&L {_money(pnl)}, breaker events {sum(d.breaker_events for d in days)}")


def _money(value: Decimal) -> str:
    return fmt.money_text(value)
