"""The event calendar's effects in a replay report (SPEC §10.1, issue 14): one place per run that
lists every entry refused `event_blackout` (with the release it fell around), every entry whose
multiplier a macro day or an expiry spanning earnings capped (the minimum-bet cap: notional beside
the minimum bet), and every exit whose targets a macro day or pending earnings scaled (its reason
says by how much). Read from the decisions and exit events the core recorded, so the report shows
what was decided; the same marks as the run's end-of-run summary (`daemon.regime_report`)."""

from __future__ import annotations

import html
from typing import Any

# The marks exits/tiered.py and exits/partial.py put in the reasons they scale; the same as
# `daemon.regime_report.EXIT_MARKS` (a test holds them equal). Not imported from there: that module
# pulls in the store, and a backtest (a sweep worker) never loads the store.
EXIT_MARKS = {"macro day (": "macro_day_targets", "; earnings ": "earnings_thresholds"}
CALENDAR_CAPS = ("macro_day", "earnings_span")
CAP_NOTES = {"macro_day": "macro_day", "earnings_span": "earnings_before_expiry"}


def calendar_effects(decisions: list[dict[str, Any]], trades: list[dict[str, Any]]) -> dict[str, Any]:
    blackouts, capped, exits = [], [], []
    for d in decisions:
        b = d.get("breakdown") or {}
        if d["reason"] == "event_blackout":
            blackouts.append({"at": d["at"], "signal_id": d["signal_id"], "underlying": d["underlying"],
                              "release": b.get("message")})
        caps = b.get("multiplier_caps") or {}
        notes = b.get("notes") or {}
        for name in CALENDAR_CAPS:
            if name in caps:
                capped.append({"at": d["at"], "signal_id": d["signal_id"], "underlying": d["underlying"],
                               "cap": name, "cap_value": caps[name], "multiplier": d["multiplier"],
                               "event": notes.get(CAP_NOTES[name]), "expiry": b.get("expiry"),
                               "notional": d["notional"], "min_bet": b.get("min_bet"),
                               "accepted": d["accepted"], "reason": d["reason"]})
    for t in trades:
        for e in t.get("exits", []):
            for mark, effect in EXIT_MARKS.items():
                if mark in (e.get("reason") or ""):
                    exits.append({"position_id": t["position_id"], "contract": t["contract"], "at": e["at"],
                                  "rule": e["rule"], "effect": effect, "reason": e["reason"]})
    return {"event_blackout": blackouts, "capped_entries": capped, "scaled_exits": exits}


def calendar_effects_html(sizing: str, effects: dict[str, Any]) -> str:
    e = html.escape
    parts = [f"<h3>{e(sizing)} sizing: event calendar effects (SPEC §10.1)</h3>"]
    if not any(effects.values()):
        return parts[0] + "<p>none</p>"
    if effects["event_blackout"]:
        parts.append("<table><tr><th class='l'>refused event_blackout at</th><th class='l'>signal</th>"
                     "<th class='l'>underlying</th><th class='l'>release</th></tr>")
        parts.extend(f"<tr><td class='l'>{e(b['at'])}</td><td class='l'>{e(str(b['signal_id']))}</td>"
                     f"<td class='l'>{e(str(b['underlying']))}</td><td class='l'>{e(str(b['release']))}</td></tr>"
                     for b in effects["event_blackout"])
        parts.append("</table>")
    if effects["capped_entries"]:
        parts.append("<table><tr><th class='l'>capped entry at</th><th class='l'>signal</th>"
                     "<th class='l'>underlying</th>"
                     "<th class='l'>cap</th><th>cap</th><th>multiplier</th><th class='l'>event</th><th>notional</th>"
                     "<th>minimum bet</th><th class='l'>outcome</th></tr>")
        parts.extend(f"<tr><td class='l'>{e(c['at'])}</td><td class='l'>{e(str(c['signal_id']))}</td>"
                     f"<td class='l'>{e(str(c['underlying']))}</td><td class='l'>{e(c['cap'])}</td>"
                     f"<td>{e(str(c['cap_value']))}</td><td>{e(str(c['multiplier']))}</td>"
                     f"<td class='l'>{e(str(c['event']))}</td><td>{e(str(c['notional']))}</td>"
                     f"<td>{e(str(c['min_bet']))}</td>"
                     f"<td class='l'>{'accepted' if c['accepted'] else e('refused ' + str(c['reason']))}</td></tr>"
                     for c in effects["capped_entries"])
        parts.append("</table>")
    if effects["scaled_exits"]:
        parts.append("<table><tr><th class='l'>scaled exit at</th><th class='l'>position</th>"
                     "<th class='l'>contract</th>"
                     "<th class='l'>rule</th><th class='l'>effect</th><th class='l'>reason</th></tr>")
        parts.extend(f"<tr><td class='l'>{e(str(x['at']))}</td><td class='l'>{x['position_id']}</td>"
                     f"<td class='l'>{e(x['contract'])}</td><td class='l'>{e(x['rule'])}</td>"
                     f"<td class='l'>{e(x['effect'])}</td><td class='l'>{e(str(x['reason']))}</td></tr>"
                     for x in effects["scaled_exits"])
        parts.append("</table>")
    return "".join(parts)
