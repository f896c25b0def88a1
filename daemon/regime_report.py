"""The market-regime effects of a run (SPEC §10), per session day, for the end-of-run summary.

Built from what was stored only (decision breakdowns and exit events), so what is printed is what
was decided: entries capped by a macro day, an expiry spanning earnings or the volatility regime;
entries refused `event_blackout` or `sector_limit`; exits whose targets a macro day or pending
earnings scaled.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import date
from typing import Any

from daemon.store.records import DecisionRecord, ExitEventRecord
from market.session import EXCHANGE_TZ

CAPS = ("macro_day", "earnings_span", "volatility_regime")
REFUSALS = ("event_blackout", "sector_limit")
EXIT_MARKS = {"macro day (": "macro_day_targets", "; earnings ": "earnings_thresholds"}


def regime_effects(decisions: Iterable[DecisionRecord], exits: Iterable[ExitEventRecord]) -> dict[date, dict[str, Any]]:
    """{day: {"events": [labels], "<effect>": count}} for the days that had any effect."""
    days: dict[date, dict[str, Any]] = defaultdict(lambda: {"events": [], "counts": Counter()})
    for d in decisions:
        day = d.at.astimezone(EXCHANGE_TZ).date()
        record = d.breakdown if isinstance(d.breakdown, dict) else {}
        bound = {c.get("name") for c in record.get("caps", []) if isinstance(c, dict)}
        for cap in CAPS:  # entries taken smaller (a refused one's sizing is only informative)
            if d.accepted and cap in bound:
                days[day]["counts"][f"capped_by_{cap}"] += 1
        if d.reason in REFUSALS:
            days[day]["counts"][f"refused_{d.reason}"] += 1
        notes = record.get("notes", {}) if isinstance(record.get("notes"), dict) else {}
        for key in ("macro_day", "earnings_before_expiry"):
            label = notes.get(key)
            if label and label not in days[day]["events"]:
                days[day]["events"].append(label)
    for e in exits:
        for mark, name in EXIT_MARKS.items():
            if mark in (e.reason or ""):
                days[e.at.astimezone(EXCHANGE_TZ).date()]["counts"][f"exits_at_{name}"] += 1
    return {day: {"events": v["events"], **dict(sorted(v["counts"].items()))}
            for day, v in sorted(days.items()) if v["counts"] or v["events"]}


def effects_lines(effects: dict[date, dict[str, Any]], profile: str) -> list[str]:
    if not effects:
        return [f"== {profile}: market-regime effects: none"]
    lines = [f"== {profile}: market-regime effects (SPEC §10)"]
    for day, found in effects.items():
        counts = ", ".join(f"{k} {v}" for k, v in found.items() if k != "events") or "no entry or exit affected"
        events = "; ".join(found["events"])
        lines.append(f"{day:%Y-%m-%d}: {counts}" + (f" [{events}]" if events else ""))
    return lines
