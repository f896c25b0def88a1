"""The replay report: `report.json` (byte-identical for identical inputs), `report.html` (one
self-contained page: the §8 table beside the seeds' projection, per-day rows, breaker events, every
trade with its decision breakdown, the equity chart inline) and `equity.png` (matplotlib)."""

from __future__ import annotations

import base64
import html
import io
import json
from collections import defaultdict
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

from daemon.backtest.families import family_table_html, per_family
from daemon.backtest.figures import daily_pnl, equity_curve, figures

# The seeds' "Risk-Adjusted Return Projections" table (seeds/000, Performance Projections).
SEEDS_PROJECTION = {
    "0dte": {"current": {"annual_return": "45-55%", "max_drawdown": "15-20%", "sharpe": "1.3-1.5",
                         "win_rate": "62-68%", "avg_win": "12-15%", "avg_loss": "8-10%"},
             "new": {"annual_return": "70-90%", "max_drawdown": "25-35%", "sharpe": "1.2-1.4",
                     "win_rate": "60-65%", "avg_win": "12-15%", "avg_loss": "8-10%"}},
    "7dte": {"current": {"annual_return": "65-75%", "max_drawdown": "20-25%", "sharpe": "1.7-1.9",
                         "win_rate": "58-64%", "avg_win": "18-22%", "avg_loss": "12-15%"},
             "new": {"annual_return": "100-120%", "max_drawdown": "30-40%", "sharpe": "1.5-1.7",
                     "win_rate": "57-63%", "avg_win": "18-22%", "avg_loss": "12-15%"}},
}

TABLE_ROWS = [  # (label, figures key, seeds key)
    ("Trades", "trades", None), ("Win rate %", "win_rate_pct", "win_rate"), ("Avg. win %", "avg_win_pct", "avg_win"),
    ("Avg. loss %", "avg_loss_pct", "avg_loss"), ("Total P&L $", "total_pnl", None),
    ("Return over the run %", "total_return_pct", None), ("Annualized return %", "annualized_return_pct", "annual_return"),
    ("Max drawdown %", "max_drawdown_pct", "max_drawdown"), ("Sharpe", "sharpe", "sharpe"),
    ("Worst day", "worst_day", None), ("Breaker events", "breaker_events", None),
    ("Avg. slippage $/share", "avg_slippage", None), ("Avg. slippage % of mid", "avg_slippage_pct_of_mid", None),
]


def per_day(result: Any) -> list[dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {d.isoformat(): {"day": d.isoformat(), "signals": 0, "accepted": 0, "refused": 0,
                                                        "refused_by_reason": defaultdict(int), "trades_opened": 0,
                                                        "trades_closed": 0, "breaker_events": 0, "max_breaker_level": 0}
                                       for d in result.sessions}

    def row(day: str) -> dict[str, Any]:
        return rows.setdefault(day, {"day": day, "signals": 0, "accepted": 0, "refused": 0,
                                     "refused_by_reason": defaultdict(int), "trades_opened": 0, "trades_closed": 0,
                                     "breaker_events": 0, "max_breaker_level": 0})

    for d in result.decisions:
        r = row(d["at"][:10])
        r["signals"] += 1
        if d["accepted"]:
            r["accepted"] += 1
        else:
            r["refused"] += 1
            r["refused_by_reason"][str(d["reason"])] += 1
    for t in result.trades:
        row(t["opened_at"][:10])["trades_opened"] += 1
        if t["closed"]:
            row(t["closed_at"][:10])["trades_closed"] += 1
    for b in result.breaker_events:
        r = row(b["at"][:10])
        r["breaker_events"] += 1
        r["max_breaker_level"] = max(r["max_breaker_level"], int(b["level"]))
    pnl = daily_pnl(result)
    equity = Decimal(result.start_capital)
    out = []
    for day in sorted(rows):
        r = rows[day]
        equity += pnl.get(day, Decimal(0))
        r["realized_pnl"] = str(pnl.get(day, Decimal(0)).quantize(Decimal("0.01")))
        r["equity"] = str(equity.quantize(Decimal("0.01")))
        r["refused_by_reason"] = dict(sorted(r["refused_by_reason"].items()))
        out.append(r)
    return out


def run_document(result: Any) -> dict[str, Any]:
    return {"profile": result.profile, "sizing": result.sizing, "scenario": result.scenario,
            "start_capital": str(result.start_capital), "figures": figures(result), "days": per_day(result),
            "families": per_family(result),
            "equity_curve": [[t, str(e)] for t, e in equity_curve(result)],
            "trades": result.trades, "fills": result.fills, "breaker_events": result.breaker_events,
            "decisions": result.decisions, "counts": {k: v for k, v in sorted(result.counts.items())},
            "checks": result.checks}


def report_document(results: list[Any], meta: dict[str, Any]) -> dict[str, Any]:
    first = results[0]
    return {"report": "tradingd replay", "version": 1, **meta, "profile": first.profile, "data": first.data,
            "data_sha256": first.data_digest, "sessions": [d.isoformat() for d in first.sessions],
            "scenario": first.scenario, "notes": first.notes,
            "seeds_projection": SEEDS_PROJECTION.get(first.profile, {}),
            "runs": {r.sizing: run_document(r) for r in results}}


def dumps(document: dict[str, Any]) -> str:
    """Canonical JSON: sorted keys, fixed separators, no wall-clock values: identical inputs, identical bytes."""
    return json.dumps(document, sort_keys=True, indent=1, ensure_ascii=True) + "\n"


def equity_points(result: Any) -> tuple[list[datetime], list[float]]:
    """The equity curve against time: the start capital at the first session's open, then the
    realized equity at each closed trade's close time (exchange time, America/New_York)."""
    from market.clock import EXCHANGE_TZ

    curve = equity_curve(result)
    times: list[datetime] = []
    for at, _ in curve:
        if "T" in at:
            times.append(datetime.fromisoformat(at).astimezone(EXCHANGE_TZ))
        else:  # the first point is the first session's date: its open
            times.append(datetime.combine(date.fromisoformat(at), time(9, 30), tzinfo=EXCHANGE_TZ))
    return times, [float(e) for _, e in curve]


def equity_figure(results: list[Any]) -> Any:
    """The equity chart as a matplotlib figure (time on the x axis); the caller closes it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    from matplotlib import pyplot as plt

    from market.clock import EXCHANGE_TZ

    fig, ax = plt.subplots(figsize=(9, 4), dpi=100)
    for r in results:
        times, equity = equity_points(r)
        ax.step(times, equity, where="post", label=f"{r.sizing} sizing")
    locator = mdates.AutoDateLocator(tz=EXCHANGE_TZ)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=EXCHANGE_TZ))
    ax.set_xlabel("time (America/New_York)")
    ax.set_ylabel("realized equity ($)")
    first = results[0]
    ax.set_title(f"{first.profile} on {first.data}" + (f" — scenario {first.scenario}" if first.scenario else ""))
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best")
    return fig


def equity_png(results: list[Any]) -> bytes:
    from matplotlib import pyplot as plt

    fig = equity_figure(results)
    try:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", metadata={"Software": None})
        return buf.getvalue()
    finally:
        plt.close(fig)


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, dict):
        return html.escape(", ".join(f"{k} {v}" for k, v in value.items()))
    return html.escape(str(value))


def report_html(document: dict[str, Any], png: bytes) -> str:
    e = html.escape
    runs = document["runs"]
    seeds = document.get("seeds_projection") or {}
    sizings = list(runs)
    head = "".join(f"<th>{e(s)} (replay)</th>" for s in sizings) + "".join(
        f"<th>{e(s)} (seeds' projection)</th>" for s in sizings if s in seeds)
    body = []
    for label, key, seed_key in TABLE_ROWS:
        cells = "".join(f"<td>{_cell(runs[s]['figures'].get(key))}</td>" for s in sizings)
        cells += "".join(f"<td>{_cell(seeds[s].get(seed_key) if seed_key else None)}</td>"
                         for s in sizings if s in seeds)
        body.append(f"<tr><th>{e(label)}</th>{cells}</tr>")
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>tradingd replay — {e(document['profile'])} on {e(document['data'])}</title>",
        "<style>body{font-family:sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;margin:.5em 0 1.5em}"
        "td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right;font-size:.9em}th{background:#f4f4f4}"
        "td.l,th.l{text-align:left}details{margin:.2em 0}pre{font-size:.8em;white-space:pre-wrap}"
        ".neg{color:#b00}.pos{color:#070}</style></head><body>",
        f"<h1>tradingd replay: {e(document['profile'])} on {e(document['data'])}</h1>",
        f"<p>Sessions: {e(', '.join(document['sessions']))}. Scenario: {e(str(document.get('scenario') or 'none'))}. "
        f"Data sha256 {e(document['data_sha256'][:16])}….</p>",
        "<ul>" + "".join(f"<li>{e(n)}</li>" for n in document.get("notes", [])) + "</ul>",
        "<h2>Results (SPEC §8)</h2>",
        f"<table><tr><th class='l'>metric</th>{head}</tr>{''.join(body)}</table>",
        "<p>Annualizing a handful of sessions multiplies their noise: read the annualized figures as "
        "arithmetic, not as a forecast.</p>",
        family_table_html(runs),
        "<h2>Equity</h2>",
        f"<img alt='equity curve' src='data:image/png;base64,{base64.b64encode(png).decode()}'>",
    ]
    for sizing, run in runs.items():
        parts.append(f"<h2>{e(sizing)} sizing: per day</h2><table><tr><th class='l'>day</th><th>signals</th>"
                     "<th>accepted</th><th>refused</th><th class='l'>refused by reason</th><th>opened</th>"
                     "<th>closed</th><th>realized P&amp;L</th><th>equity</th><th>breaker events</th></tr>")
        for d in run["days"]:
            parts.append(f"<tr><td class='l'>{e(d['day'])}</td><td>{d['signals']}</td><td>{d['accepted']}</td>"
                         f"<td>{d['refused']}</td><td class='l'>{_cell(d['refused_by_reason'])}</td>"
                         f"<td>{d['trades_opened']}</td><td>{d['trades_closed']}</td>"
                         f"<td>{e(d['realized_pnl'])}</td><td>{e(d['equity'])}</td><td>{d['breaker_events']}</td></tr>")
        parts.append("</table>")
        parts.append(f"<h3>{e(sizing)} sizing: breaker events</h3>")
        if run["breaker_events"]:
            parts.append("<table><tr><th class='l'>at</th><th>level</th><th class='l'>from → to</th>"
                         "<th>session P&amp;L</th><th class='l'>reason</th></tr>")
            for b in run["breaker_events"]:
                parts.append(f"<tr><td class='l'>{e(b['at'])}</td><td>{b['level']}</td><td class='l'>"
                             f"{e(b['from_state'])} → {e(b['to_state'])}</td><td>{e(b['session_pnl'])}</td>"
                             f"<td class='l'>{e(str(b['reason']))}</td></tr>")
            parts.append("</table>")
        else:
            parts.append("<p>none</p>")
        parts.append(f"<h3>{e(sizing)} sizing: trades</h3><table><tr><th class='l'>#</th><th class='l'>contract</th>"
                     "<th class='l'>opened</th><th class='l'>closed</th><th>contracts</th><th>cost</th>"
                     "<th>proceeds</th><th>fees</th><th>P&amp;L</th><th>return %</th><th class='l'>decision and exits</th></tr>")
        for t in run["trades"]:
            pnl = t["pnl"]
            cls = "" if pnl is None else ("neg" if Decimal(pnl) < 0 else "pos")
            detail = json.dumps({"decision": t.get("decision"), "exits": t.get("exits")}, sort_keys=True, indent=1)
            parts.append(f"<tr><td class='l'>{t['position_id']}</td><td class='l'>{e(t['contract'])}</td>"
                         f"<td class='l'>{e(t['opened_at'])}</td><td class='l'>{e(str(t['closed_at']))}</td>"
                         f"<td>{t['contracts']}</td><td>{e(t['entry_cost'])}</td><td>{e(t['exit_proceeds'])}</td>"
                         f"<td>{e(t['commissions'])}</td><td class='{cls}'>{_cell(pnl)}</td>"
                         f"<td>{_cell(t['return_pct'])}</td><td class='l'><details><summary>breakdown</summary>"
                         f"<pre>{e(detail)}</pre></details></td></tr>")
        parts.append("</table>")
    parts.append("</body></html>\n")
    return "".join(parts)


def write_report(results: list[Any], out_dir: Path, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write report.json, equity.png and report.html into `out_dir`; returns the JSON document."""
    out_dir.mkdir(parents=True, exist_ok=True)
    document = report_document(results, meta or {})
    (out_dir / "report.json").write_text(dumps(document), encoding="utf-8")
    png = equity_png(results)
    (out_dir / "equity.png").write_bytes(png)
    (out_dir / "report.html").write_text(report_html(document, png), encoding="utf-8")
    return document
