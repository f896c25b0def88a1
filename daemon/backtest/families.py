"""The replay report's per-family rows (SPEC §9): directional, neutral and volatility side by side.

A trade's family is its signal's strategy; its P&L and return are the report's own (return on the
entry cost: the premium paid, for a combo its maximum loss, the value it was bought at)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

FAMILIES = ("directional", "neutral", "volatility")
ZERO = Decimal(0)


def per_family(result: Any) -> list[dict[str, Any]]:
    rows = []
    for family in FAMILIES:
        trades = [t for t in result.trades if t.get("family", "directional") == family]
        closed = [t for t in trades if t["closed"] and t["pnl"] is not None]
        wins = [t for t in closed if Decimal(t["pnl"]) > 0]
        pnl = sum((Decimal(t["pnl"]) for t in closed), ZERO)
        cost = sum((Decimal(t["entry_cost"]) for t in closed), ZERO)
        structures = sorted({t.get("structure", "single") for t in trades})
        rows.append({"family": family, "trades": len(trades), "closed": len(closed), "structures": structures,
                     "win_rate_pct": str((Decimal(len(wins)) / len(closed) * 100).quantize(Decimal("0.1")))
                     if closed else None,
                     "total_pnl": str(pnl.quantize(Decimal("0.01"))),
                     "return_on_risk_pct": str((pnl / cost * 100).quantize(Decimal("0.01"))) if cost else None,
                     "max_loss_at_entry": str(cost.quantize(Decimal("0.01")))})
    return rows


def family_table_html(runs: dict[str, Any]) -> str:
    import html

    e = html.escape
    parts = ["<h2>Strategy families (SPEC §9)</h2><table><tr><th class='l'>sizing</th><th class='l'>family</th>"
             "<th>trades</th><th>closed</th><th class='l'>structures</th><th>win rate %</th><th>P&amp;L $</th>"
             "<th>return on max loss %</th></tr>"]
    for sizing, run in runs.items():
        for row in run.get("families", []):
            parts.append(f"<tr><td class='l'>{e(sizing)}</td><td class='l'>{e(row['family'])}</td>"
                         f"<td>{row['trades']}</td><td>{row['closed']}</td>"
                         f"<td class='l'>{e(', '.join(row['structures']) or '—')}</td>"
                         f"<td>{e(str(row['win_rate_pct'] or '—'))}</td><td>{e(row['total_pnl'])}</td>"
                         f"<td>{e(str(row['return_on_risk_pct'] or '—'))}</td></tr>")
    parts.append("</table>")
    return "".join(parts)
