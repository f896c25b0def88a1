"""The session's equity curve as inline SVG: session P&L over the day, the zero line and the
breaker lines it is measured against. No script, no library: a polyline a browser draws."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from html import escape

from daemon.format import money_text
from daemon.page.view import BreakerLine, Point

WIDTH, HEIGHT = 760, 240
LEFT, RIGHT, TOP, BOTTOM = 78, 12, 12, 26  # margins for the axis labels


def equity_svg(points: Sequence[Point], lines: Sequence[BreakerLine], level: int) -> str:
    if not points:
        return '<p class="muted">No checkpoint yet today: the curve starts at the first one.</p>'
    shown = [ln for ln in lines if ln.level <= max(level + 1, 2)]  # the next level up and those passed
    values = [p.pnl for p in points] + [ln.pnl for ln in shown] + [Decimal(0)]
    low, high = min(values), max(values)
    if high == low:
        high, low = high + 1, low - 1
    pad = (high - low) / 10
    low, high = low - pad, high + pad
    start, end = points[0].at, points[-1].at
    span = max((end - start).total_seconds(), 1.0)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(at: object) -> float:
        return LEFT + plot_w * ((at - start).total_seconds() / span)  # type: ignore[operator]

    def y(value: Decimal) -> float:
        return TOP + plot_h * float((high - value) / (high - low))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
             f'height="{HEIGHT}" role="img" aria-label="session P&amp;L today" id="equity-curve">',
             f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="#fbfbfd" stroke="#ccd"/>']
    parts.append(_hline(y(Decimal(0)), "#889", "0", "$0.00"))
    for ln in shown:
        parts.append(_hline(y(ln.pnl), "#c33" if ln.level <= level else "#e99",
                            "6 4", f"L{ln.level} {ln.name} {money_text(ln.pnl)}"))
    coords = " ".join(f"{x(p.at):.1f},{y(p.pnl):.1f}" for p in points)
    parts.append(f'<polyline fill="none" stroke="#1f5fbf" stroke-width="2" points="{coords}"/>')
    last = points[-1]
    parts.append(f'<circle cx="{x(last.at):.1f}" cy="{y(last.pnl):.1f}" r="3.5" fill="#1f5fbf"/>')
    parts.append(f'<text x="{LEFT}" y="{HEIGHT - 8}" class="axis">{start:%H:%M}</text>')
    parts.append(f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 8}" text-anchor="end" class="axis">{end:%H:%M}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _hline(at_y: float, color: str, dash: str, label: str) -> str:
    return (f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{at_y:.1f}" y2="{at_y:.1f}" stroke="{color}" '
            f'stroke-dasharray="{dash}"/><text x="{WIDTH - RIGHT - 4}" y="{at_y - 4:.1f}" text-anchor="end" '
            f'class="axis">{escape(label)}</text>')
