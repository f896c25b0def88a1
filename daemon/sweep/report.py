"""The sweep's report: `cells.csv` (every cell's §8 figures), `walkforward.csv`, `sweep.json` (everything,
canonical JSON) and `report.html` (one self-contained page: the walk-forward warning first, the
ranking, heatmaps of the objective over each pair of axes as inline PNGs, the walk-forward table,
and the "new" and "current" sizing baselines beside the seeds' projection)."""

from __future__ import annotations

import base64
import csv
import html
import io
import itertools
import json
import math
from pathlib import Path
from typing import Any

from daemon.backtest.report import SEEDS_PROJECTION, TABLE_ROWS, _cell
from daemon.sweep.grid import show
from daemon.sweep.objective import eligible
from daemon.sweep.plan import SweepResult

FIGURE_COLUMNS = ["trades", "open_at_end", "win_rate_pct", "avg_win_pct", "avg_loss_pct", "total_pnl",
                  "total_return_pct", "sessions", "annualized_return_pct", "max_drawdown_pct", "sharpe", "worst_day",
                  "worst_day_pnl", "breaker_events", "avg_slippage", "avg_slippage_pct_of_mid", "decisions",
                  "accepted", "refused_by_reason"]
MAX_HEATMAPS = 10


def _flat_figures(figures: dict[str, Any] | None) -> dict[str, Any]:
    if figures is None:
        return {k: "" for k in FIGURE_COLUMNS}
    row = {k: figures.get(k) for k in FIGURE_COLUMNS}
    worst = figures.get("worst_day") or {}
    row["worst_day"], row["worst_day_pnl"] = worst.get("day"), worst.get("pnl")
    row["refused_by_reason"] = json.dumps(figures.get("refused_by_reason") or {}, sort_keys=True)
    return {k: "" if v is None else v for k, v in row.items()}


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def cell_rows(result: SweepResult) -> list[dict[str, Any]]:
    obj, opts = result.obj, result.options
    position = {index: n + 1 for n, index in enumerate(result.ranking)}
    rows = []
    for cell in result.cells:
        outcome = result.full[cell.index]
        figs = outcome.get("figures")
        ok = eligible(figs, obj, opts.min_trades)
        rows.append({"cell": cell.name, **{k: show(v) for k, v in cell.overrides},
                     "rank": position[cell.index], "objective": _fmt(obj.of(figs) if figs else None),
                     "eligible": ok, **_flat_figures(figs), "error": outcome.get("error", "")})
    return sorted(rows, key=lambda r: r["rank"])


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    columns = list(dict.fromkeys(k for row in rows for k in row)) if rows else ["cell"]
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def walkforward_rows(result: SweepResult) -> list[dict[str, Any]]:
    rows = []
    for f in result.folds:
        row = {"fold": f["fold"], "train_from": f["train"][0], "train_to": f["train"][1], "test_from": f["test"][0],
               "test_to": f["test"][1], "cell": f["cell"] or "", "params": f["params"] or ""}
        for side, prefix in (("in_sample", "is"), ("out_of_sample", "oos")):
            for key in ("objective", "trades", "return_pct", "max_drawdown_pct", "pnl"):
                value = f[side].get(key)
                row[f"{prefix}_{key}"] = _fmt(value) if key == "objective" else ("" if value is None else value)
        row["warning"] = f["warning"] or ""
        rows.append(row)
    return rows


def document(result: SweepResult) -> dict[str, Any]:
    o = result.options
    return {"report": "tradingd sweep", "version": 1, "profile": o.profile, "data": result.data_name,
            "data_sha256": result.data_digest, "code_sha256": result.code,
            "window": [None if d is None else d.isoformat() for d in o.window],
            "sessions": [d.isoformat() for d in result.sessions], "signals": Path(o.signals).name,
            "objective": o.objective, "min_trades": o.min_trades,
            "walk_forward": None if o.walk_forward is None else f"{o.walk_forward[0]}:{o.walk_forward[1]}",
            "axes": [[k, [show(v) for v in vs]] for k, vs in o.grid.axes],
            "fixed": {k: show(v) for k, v in o.grid.fixed},
            "cells": [{"cell": c.name, "overrides": {k: show(v) for k, v in c.overrides}, **result.full[c.index]}
                      for c in result.cells],
            "ranking": [result.cells[i].name for i in result.ranking],
            "baselines": result.baselines, "folds": result.folds, "walk_forward_efficiency": result.wfe,
            "walk_forward_warning": result.wf_warning, "notes": result.notes, "run": result.stats.as_dict()}


# ------------------------------------------------------------------------------------------ heatmaps

def _matrix(result: SweepResult, a: int, b: int) -> list[list[float | None]]:
    """The objective over axes a × b, each square the best eligible cell over the other axes."""
    obj, axes = result.obj, result.options.grid.axes
    grid: list[list[float | None]] = [[None] * len(axes[b][1]) for _ in axes[a][1]]
    sizes = [len(vs) for _, vs in axes]
    for cell in result.cells:
        figs = result.full[cell.index].get("figures")
        if not eligible(figs, obj, result.options.min_trades):
            continue
        coords, rest = [], cell.index
        for size in reversed(sizes):
            coords.append(rest % size)
            rest //= size
        coords.reverse()
        value = obj.of(figs)  # type: ignore[arg-type]
        current = grid[coords[a]][coords[b]]
        if current is None or (value is not None and value > current):
            grid[coords[a]][coords[b]] = value
    return grid


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    return pyplot


def _png(fig: Any) -> bytes:
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})  # no version stamp: same cells, same bytes
    return buf.getvalue()


def heatmap_png(result: SweepResult, a: int, b: int) -> bytes:
    plt = _pyplot()
    axes = result.options.grid.axes
    matrix = _matrix(result, a, b)
    values = [[math.nan if v is None else v for v in row] for row in matrix]
    fig, ax = plt.subplots(figsize=(1.6 + 1.1 * len(axes[b][1]), 1.2 + 0.7 * len(axes[a][1])), dpi=90)
    try:
        image = ax.imshow(values, cmap="RdYlGn", aspect="auto")
        ax.set_xticks(range(len(axes[b][1])), [show(v) for v in axes[b][1]])
        ax.set_yticks(range(len(axes[a][1])), [show(v) for v in axes[a][1]])
        ax.set_xlabel(axes[b][0])
        ax.set_ylabel(axes[a][0])
        for i, row in enumerate(matrix):
            for j, v in enumerate(row):
                ax.text(j, i, "—" if v is None else f"{v:.2f}", ha="center", va="center", fontsize=8)
        fig.colorbar(image, ax=ax, label=result.obj.label)
        return _png(fig)
    finally:
        plt.close(fig)


def _pairs(result: SweepResult) -> list[tuple[int, int]]:
    axes = result.options.grid.axes
    usable = [i for i, (_, vs) in enumerate(axes) if len(vs) > 1]
    if len(usable) == 1:  # one axis: a one-row map of it
        return [(usable[0], usable[0])]
    return list(itertools.combinations(usable, 2))[:MAX_HEATMAPS]


def _one_axis_png(result: SweepResult, a: int) -> bytes:
    plt = _pyplot()
    key, values = result.options.grid.axes[a]
    scores: list[float] = []
    for i in range(len(values)):
        found = [result.obj.of(result.full[c.index]["figures"]) for c in result.cells
                 if dict(c.overrides)[key] == values[i] and eligible(result.full[c.index].get("figures"), result.obj,
                                                                       result.options.min_trades)]
        scores.append(max((v for v in found if v is not None), default=math.nan))
    fig, ax = plt.subplots(figsize=(6, 3), dpi=90)
    try:
        ax.bar(range(len(values)), scores)
        ax.set_xticks(range(len(values)), [show(v) for v in values])
        ax.set_xlabel(key)
        ax.set_ylabel(result.obj.label)
        return _png(fig)
    finally:
        plt.close(fig)


# ------------------------------------------------------------------------------------------ HTML

def report_html(result: SweepResult) -> str:
    e = html.escape
    o, obj, stats = result.options, result.obj, result.stats
    parts = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
             f"<title>tradingd sweep — {e(o.profile)} on {e(result.data_name)}</title>",
             "<style>body{font-family:sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;margin:.5em 0 1.5em}"
             "td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right;font-size:.9em}th{background:#f4f4f4}"
             "td.l,th.l{text-align:left}.warn{background:#fff3cd;border:1px solid #e0b000;padding:.6em 1em}"
             ".bad{background:#fde2e2}img{margin:.3em 1em .8em 0;vertical-align:top}</style></head><body>",
             f"<h1>tradingd sweep: {e(o.profile)} on {e(result.data_name)}</h1>",
             f"<p>{len(result.cells)} cells over {len(result.sessions)} sessions ({e(result.sessions[0].isoformat())} … "
             f"{e(result.sessions[-1].isoformat())}); objective <b>{e(obj.label)}</b>, at least {o.min_trades} "
             f"closed trade(s) to rank. Signals: {e(Path(o.signals).name)}. {e(stats.runner)}: {stats.jobs} replays, "
             f"{stats.cached} from the cache, {stats.replayed} run, {stats.failed} failed, {stats.workers_lost} worker "
             f"loss(es) survived. Data sha256 {e(result.data_digest[:16])}…, code sha256 {e(result.code[:16])}….</p>"]
    if result.wf_warning:
        parts.append(f"<p class='warn'><b>Walk-forward warning:</b> {e(result.wf_warning)}. The best cell of a grid "
                     "is optimistic in sample; trust the out-of-sample column.</p>")
    if o.grid.fixed:
        parts.append("<p>Every cell also sets: " + e(", ".join(f"{k}={show(v)}" for k, v in o.grid.fixed)) + "</p>")
    # ranking
    keys = o.grid.keys
    parts.append("<h2>Ranking</h2><table><tr><th>#</th><th class='l'>cell</th>"
                 + "".join(f"<th>{e(k)}</th>" for k in keys)
                 + f"<th>{e(obj.label)}</th><th>trades</th><th>win rate %</th><th>return %</th><th>max DD %</th>"
                 "<th>Sharpe</th><th>worst day</th><th>breaker events</th><th>avg. slippage</th></tr>")
    for row in cell_rows(result):
        cls = "" if row["eligible"] else " class='bad'"
        parts.append(f"<tr{cls}><td>{row['rank']}</td><td class='l'>{e(row['cell'])}</td>"
                     + "".join(f"<td>{e(str(row[k]))}</td>" for k in keys)
                     + f"<td>{e(row['objective']) or '—'}</td><td>{row['trades']}</td><td>{e(str(row['win_rate_pct']))}</td>"
                     f"<td>{e(str(row['total_return_pct']))}</td><td>{e(str(row['max_drawdown_pct']))}</td>"
                     f"<td>{e(str(row['sharpe']))}</td><td>{e(str(row['worst_day']))} {e(str(row['worst_day_pnl']))}</td>"
                     f"<td>{row['breaker_events']}</td><td>{e(str(row['avg_slippage']))}"
                     + (f" <b>{e(str(row['error']))}</b>" if row["error"] else "") + "</td></tr>")
    parts.append("</table><p>Shaded rows are not eligible (too few trades or an undefined objective).</p>")
    # heatmaps
    parts.append(f"<h2>{e(obj.label)} over pairs of parameters</h2><p>Each square is the best eligible cell over "
                 "the other axes; — where no cell is eligible.</p>")
    for a, b in _pairs(result):
        png = _one_axis_png(result, a) if a == b else heatmap_png(result, a, b)
        alt = o.grid.axes[a][0] if a == b else f"{o.grid.axes[a][0]} × {o.grid.axes[b][0]}"
        parts.append(f"<img alt='{e(alt)}' src='data:image/png;base64,{base64.b64encode(png).decode()}'>")
    # walk-forward
    if result.folds:
        shown = "undefined" if result.wfe is None else f"{result.wfe:.0%}"
        parts.append(f"<h2>Walk-forward ({e(document(result)['walk_forward'])} sessions)</h2>"
                     f"<p>Walk-forward efficiency (out-of-sample over in-sample {e(obj.label)}"
                     f"{', per session' if obj.per_session else ''}): <b>{e(shown)}</b>.</p>"
                     "<table><tr><th>fold</th><th class='l'>train</th><th class='l'>test</th><th class='l'>best cell</th>"
                     f"<th>in-sample {e(obj.label)}</th><th>in-sample trades</th><th>in-sample return %</th>"
                     f"<th>in-sample max DD %</th><th>out-of-sample {e(obj.label)}</th><th>out-of-sample trades</th>"
                     "<th>out-of-sample return %</th><th>out-of-sample max DD %</th><th class='l'>warning</th></tr>")
        for f in result.folds:
            i, s = f["in_sample"], f["out_of_sample"]
            cls = " class='bad'" if f["warning"] else ""
            parts.append(f"<tr{cls}><td>{f['fold']}</td><td class='l'>{e(' … '.join(f['train']))}</td>"
                         f"<td class='l'>{e(' … '.join(f['test']))}</td>"
                         f"<td class='l'>{e(str(f['cell']))} {e(str(f['params'] or ''))}</td>"
                         f"<td>{_fmt(i['objective']) or '—'}</td><td>{_cell(i['trades'])}</td><td>{_cell(i['return_pct'])}</td>"
                         f"<td>{_cell(i['max_drawdown_pct'])}</td><td>{_fmt(s['objective']) or '—'}</td>"
                         f"<td>{_cell(s['trades'])}</td><td>{_cell(s['return_pct'])}</td><td>{_cell(s['max_drawdown_pct'])}</td>"
                         f"<td class='l'>{e(f['warning'] or '')}</td></tr>")
        parts.append("</table>")
    # baselines
    if result.baselines:
        seeds = SEEDS_PROJECTION.get(o.profile, {})
        names = list(result.baselines)
        parts.append("<h2>Sizing baselines on the same data (the profile without the grid)</h2><table><tr>"
                     "<th class='l'>metric</th>" + "".join(f"<th>{e(n)} sizing</th>" for n in names)
                     + "".join(f"<th>{e(n)} (seeds' projection)</th>" for n in names if n in seeds) + "</tr>")
        for label, key, seed_key in TABLE_ROWS:
            cells = "".join(f"<td>{_cell((result.baselines[n].get('figures') or {}).get(key))}</td>" for n in names)
            cells += "".join(f"<td>{_cell(seeds[n].get(seed_key) if seed_key else None)}</td>" for n in names if n in seeds)
            parts.append(f"<tr><th class='l'>{e(label)}</th>{cells}</tr>")
        parts.append("</table>")
    if result.notes:
        parts.append("<h2>Data notes</h2><ul>" + "".join(f"<li>{e(n)}</li>" for n in result.notes) + "</ul>")
    parts.append("</body></html>\n")
    return "".join(parts)


def write_report(result: SweepResult, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "cells.csv", cell_rows(result))
    if result.folds:
        write_csv(out / "walkforward.csv", walkforward_rows(result))
    (out / "sweep.json").write_text(json.dumps(document(result), sort_keys=True, indent=1) + "\n", encoding="utf-8")
    (out / "report.html").write_text(report_html(result), encoding="utf-8")
