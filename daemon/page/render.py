"""The operator page's HTML: server-rendered, no script, every value escaped, numbers at their
units (daemon.format). Nothing here knows a token: the forms ask for the admin token at the
confirmation step and the page itself carries none."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from html import escape
from typing import Any

from daemon import format as fmt
from daemon.page.chart import equity_svg
from daemon.page.plan import ExitPlan
from daemon.page.view import PageView

ACTIONS = {
    "halt": ("Halt trading", "Latch HALTED: no new entries until resume. Open positions keep their exits."),
    "resume": ("Resume trading", "Leave HALTED for what the breakers allow."),
    "flatten": ("Flatten everything", "Close every open position now at marketable limits."),
}
NEEDS_REASON = ("halt", "flatten")
DECISIONS_OPEN = 3  # the newest decisions show their breakdown unfolded; the rest one click away

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d1d27;background:#f4f5f8}
header{background:#1d2433;color:#fff;padding:10px 18px;display:flex;gap:18px;align-items:baseline;flex-wrap:wrap}
header h1{font-size:18px;margin:0}main{padding:12px 18px;max-width:1200px}
section{background:#fff;border:1px solid #dde;border-radius:6px;padding:10px 14px;margin:0 0 14px}
h2{font-size:15px;margin:0 0 8px}table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #eef;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.state{padding:2px 8px;border-radius:4px;font-weight:600}
.ACTIVE{background:#2e7d32}.REDUCING{background:#b26a00}.HALTED{background:#c62828}
.RECONCILING,.STARTING{background:#555}.neg{color:#b71c1c}.pos{color:#1b5e20}.muted{color:#667}
.tripped{background:#fdecea}details{border-bottom:1px solid #eef;padding:4px 0}
summary{cursor:pointer}.ok{color:#1b5e20;font-weight:600}.no{color:#b71c1c;font-weight:600}
form.inline{display:inline-block;margin-right:12px}.axis{font:11px system-ui,sans-serif;fill:#556}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(260px,1fr));gap:6px 14px}
.flash{background:#e8f5e9;border-color:#a5d6a7}.error{background:#fdecea;border-color:#ef9a9a}
"""


def page(view: PageView, *, role: str, flash: str | None = None, error: str | None = None,
         refresh_s: int | None = None) -> str:
    """`refresh_s`: the browser reloads the page that often (no script: a meta refresh)."""
    status = view.status
    state = str(status.get("trading_state") or "-")
    body = [
        _header(view, state),
        "<main>",
        f'<section class="flash" id="flash">{escape(flash)}</section>' if flash else "",
        f'<section class="error" id="error">{escape(error)}</section>' if error else "",
        *(f'<section class="error">{escape(n)}</section>' for n in view.notes),
        _breakers(view),
        _positions(view),
        _controls(role),
        _decisions(view),
        '<section id="equity"><h2>Session equity curve (session P&amp;L)</h2>',
        equity_svg(view.curve, view.breaker_lines, int(status.get("breaker_level") or 0)),
        "</section>",
        f'<p class="muted">As of {view.now:%Y-%m-%d %H:%M:%S %Z}. '
        + (f'Reloads every {refresh_s} s (<a href="/">stop</a>). ' if refresh_s else
           'Reload for fresh numbers, or <a href="/?refresh=30" id="auto-refresh">every 30 s</a>. ')
        + '<a href="/logout">Sign out</a></p>',
        "</main>",
    ]
    head = f'<meta http-equiv="refresh" content="{int(refresh_s)}">' if refresh_s else ""
    return _document(f"tradingd {view.profile}: {state}", "".join(body), head)


def login(message: str | None = None) -> str:
    note = f'<p class="no" id="login-error">{escape(message)}</p>' if message else ""
    body = ("<main><section><h2>tradingd operator page</h2>"
            "<p>Sign in with the API (read) token; the admin token is asked again for halt, resume and flatten.</p>"
            f'{note}<form method="post" action="/login"><input type="password" name="token" id="token" '
            'autocomplete="off" size="50" placeholder="token" required> '
            '<button type="submit" id="sign-in">Sign in</button></form></section></main>')
    return _document("tradingd: sign in", body)


def confirm(action: str, reason: str, view_state: str, error: str | None = None) -> str:
    title, what = ACTIONS[action]
    note = f'<p class="no" id="confirm-error">{escape(error)}</p>' if error else ""
    reason_row = (f'<p>Reason: <b>{escape(reason)}</b></p><input type="hidden" name="reason" value="{escape(reason)}">'
                  if action in NEEDS_REASON else "")
    body = (f'<main><section><h2>{escape(title)}?</h2><p>{escape(what)}</p>'
            f'<p>Trading state now: <b>{escape(view_state)}</b></p>{note}'
            f'<form method="post" action="/page/{action}/confirm">{reason_row}'
            '<p><label>Admin token <input type="password" name="admin_token" id="admin-token" autocomplete="off" '
            'size="50" required></label></p>'
            f'<button type="submit" name="confirm" value="yes" id="confirm">Confirm: {escape(title.lower())}</button> '
            '<a href="/" id="cancel">Cancel</a></form></section></main>')
    return _document(f"tradingd: confirm {action}", body)


# ------------------------------------------------------------------ sections


def _header(view: PageView, state: str) -> str:
    s = view.status
    pnl = s.get("session_pnl")
    halt = f' <span id="halt-reason">({escape(str(s.get("halt_reason")))})</span>' if s.get("halt_reason") else ""
    broker = "connected" if s.get("broker_connected") else (
        "away (expected)" if s.get("disconnect_expected") else "DISCONNECTED")
    return (f'<header><h1>tradingd {escape(view.profile)}</h1>'
            f'<span>state <span class="state {escape(state)}" id="trading-state">{escape(state)}</span>{halt}</span>'
            f'<span>breaker level <b id="breaker-level">{escape(str(s.get("breaker_level")))}</b></span>'
            f'<span>session P&amp;L <b id="session-pnl">{escape(fmt.money_text(pnl))}</b></span>'
            f'<span>equity {escape(fmt.money_text(s.get("equity")))}</span>'
            f'<span>exposure {escape(fmt.money_text(s.get("exposure")))}</span>'
            f'<span>broker {escape(broker)}</span>'
            f'<span>signals {"accepted" if s.get("accepting_signals") else "NOT accepted"}</span></header>')


def _breakers(view: PageView) -> str:
    level = int(view.status.get("breaker_level") or 0)
    rows = []
    for ln in view.breaker_lines:
        tripped = ln.level <= level
        rows.append(f'<tr class="{"tripped" if tripped else ""}"><td>{ln.level}</td><td>{escape(ln.name)}</td>'
                    f'<td class="n">{fmt.pct_text(-ln.loss_pct)}</td><td class="n">{fmt.money_text(ln.pnl)}</td>'
                    f'<td>{"tripped" if tripped else ""}</td></tr>')
    pnl = fmt.money_text(view.session_pnl)
    return ('<section id="breakers"><h2>Breaker level against the session P&amp;L</h2>'
            f'<p>Session P&amp;L <b>{pnl}</b> on a capital base of {fmt.money_text(view.base)}; '
            f'level <b>{level}</b>.</p><table><tr><th>level</th><th>name</th><th class="n">loss</th>'
            f'<th class="n">trips at session P&amp;L</th><th></th></tr>{"".join(rows)}</table></section>')


def _positions(view: PageView) -> str:
    if not view.positions:
        return '<section id="positions"><h2>Open positions</h2><p class="muted">No open positions.</p></section>'
    head = ("<tr><th>id</th><th>contract</th><th class='n'>qty</th><th class='n'>entry</th><th class='n'>mark</th>"
            "<th class='n'>P&amp;L</th><th class='n'>P&amp;L %</th><th>next target</th><th class='n'>stop</th>"
            "<th class='n'>trailing stop</th><th>forced close</th></tr>")
    rows = []
    for p in view.positions:
        plan: ExitPlan | None = p.get("plan")
        contract = p.get("contract") or f'{p.get("underlying")} {p.get("expiry")} {p.get("strike")}{p.get("right")}'
        pnl = p.get("unrealized_pnl")
        rows.append(
            f'<tr class="position" data-position-id="{escape(str(p.get("position_id")))}">'
            f'<td>{escape(str(p.get("position_id")))}</td><td>{escape(str(contract))}</td>'
            f'<td class="n">{escape(str(p.get("contracts")))}</td><td class="n">{_t(p.get("entry_price"))}</td>'
            f'<td class="n">{_t(p.get("mark"))}</td><td class="n {_sign(pnl)}">{escape(fmt.money_text(pnl))}</td>'
            f'<td class="n">{_t(p.get("unrealized_pct"))}{"%" if p.get("unrealized_pct") is not None else ""}</td>'
            + (_plan_cells(plan) if plan is not None else '<td colspan="4" class="muted">no plan</td>') + "</tr>")
    return f'<section id="positions"><h2>Open positions and their exit plan</h2><table>{head}{"".join(rows)}</table></section>'


def _plan_cells(plan: ExitPlan) -> str:
    target = ("-" if plan.next_target is None else f"{fmt.price(plan.next_target)}") + (
        f' <span class="muted">({escape(plan.next_target_name)})</span>' if plan.next_target_name else "")
    stop = "-" if plan.stop is None else f'{fmt.price(plan.stop)} <span class="muted">({escape(plan.stop_rule or "")})</span>'
    trailing = "-" if plan.trailing_stop is None else fmt.price(plan.trailing_stop)
    forced = "-" if plan.forced_close is None else f"{plan.forced_close:%Y-%m-%d %H:%M}"
    return (f'<td class="next-target">{target}</td><td class="n stop">{stop}</td>'
            f'<td class="n trailing-stop">{trailing}</td><td class="forced-close">{forced}</td>')


def _controls(role: str) -> str:
    forms = []
    for action, (title, what) in ACTIONS.items():
        reason = ('<input name="reason" placeholder="reason (recorded)" maxlength="500" required '
                  f'id="{action}-reason">' if action in NEEDS_REASON else "")
        forms.append(f'<form class="inline" method="post" action="/page/{action}" title="{escape(what)}">{reason} '
                     f'<button type="submit" id="{action}-button">{escape(title)}…</button></form>')
    who = "admin" if role == "admin" else "read-only (the admin token is asked at confirmation)"
    return (f'<section id="controls"><h2>Operator actions</h2><p class="muted">Signed in: {escape(who)}. '
            f'Each action asks for confirmation and the admin token.</p>{"".join(forms)}</section>')


def _decisions(view: PageView) -> str:
    if not view.decisions:
        return '<section id="decisions"><h2>Today\'s decisions</h2><p class="muted">None yet today.</p></section>'
    items = [_decision(d, open_=i < DECISIONS_OPEN) for i, d in enumerate(view.decisions)]
    return f'<section id="decisions"><h2>Today\'s decisions ({len(items)})</h2>{"".join(items)}</section>'


def _decision(d: Mapping[str, Any], open_: bool = False) -> str:
    b = fmt.present_decision(d.get("breakdown") or {})
    verdict = ('<span class="ok">ACCEPTED</span>' if d["accepted"]
               else f'<span class="no">REFUSED {escape(str(d.get("reason")))}</span>')
    chosen = (b.get("selection") or {}).get("contract")
    sized = "" if d["accepted"] else "the sizer's answer: "
    head = (f'{d["at"]:%H:%M:%S} {escape(str(b.get("underlying") or ""))} {verdict}: {sized}'
            f'{escape(str(d.get("contracts")))} contracts, {escape(fmt.money_text(d.get("notional")))}'
            f' at ×{escape(str(fmt.ratio(d.get("multiplier"))))}'
            + (f' — {escape(str(chosen))}' if chosen else "")
            + f' <span class="muted">[{escape(str(d.get("signal_id")))}]</span>')
    parts = [f'<details class="decision"{" open" if open_ else ""} data-signal-id="{escape(str(d.get("signal_id")))}" '
             f'data-accepted="{str(bool(d["accepted"])).lower()}"><summary>{head}</summary>']
    if b.get("message"):
        parts.append(f'<p>{escape(str(b["message"]))}</p>')
    parts.append('<div class="grid">')
    parts.append(_kv("Sizing", [("capital base", fmt.money_text(b.get("capital_base"))),
                                ("minimum bet", fmt.money_text(b.get("min_bet"))),
                                ("maximum bet", fmt.money_text(b.get("max_bet"))),
                                ("contract value", fmt.money_text(b.get("contract_value"))),
                                ("minimum contracts", b.get("min_contracts")),
                                ("raw multiplier", b.get("raw_multiplier")), ("multiplier", b.get("multiplier")),
                                ("contracts", b.get("contracts")), ("notional", fmt.money_text(b.get("notional")))],
                     "sizing"))
    parts.append(_kv("Factors", list((b.get("factors") or {}).items()), "factors"))
    parts.append(_kv("Multiplier caps", list((b.get("multiplier_caps") or {}).items()), "multiplier-caps"))
    parts.append(_kv("Contract caps (money still allowed)",
                     [(k, fmt.money_text(v)) for k, v in (b.get("cap_limits") or {}).items()], "cap-limits"))
    parts.append("</div>")
    caps = b.get("caps") or []
    parts.append('<h3>Caps that bound</h3>' + (
        "<table class='caps'><tr><th>cap</th><th>kind</th><th class='n'>limit</th><th class='n'>before</th>"
        "<th class='n'>after</th></tr>" + "".join(
            f'<tr><td>{escape(str(c.get("name")))}</td><td>{escape(str(c.get("kind")))}</td>'
            f'<td class="n">{escape(str(c.get("limit")))}</td><td class="n">{escape(str(c.get("contracts_before")))}</td>'
            f'<td class="n">{escape(str(c.get("contracts_after")))}</td></tr>' for c in caps) + "</table>"
        if caps else '<p class="muted">none: nothing reduced the size</p>'))
    parts.append(_walk(b))
    checks = b.get("checks") or []
    if checks:
        parts.append("<h3>Gate checks</h3><table class='checks'>" + "".join(
            f'<tr><td>{escape(str(c.get("status")))}</td><td>{escape(str(c.get("name")))}</td>'
            f'<td>{escape(str(c.get("detail") or ""))}</td></tr>' for c in checks) + "</table>")
    notes = b.get("notes") or {}
    if notes:
        parts.append(_kv("Notes", list(notes.items()), "notes"))
    parts.append("</details>")
    return "".join(parts)


def _walk(b: Mapping[str, Any]) -> str:
    selection = b.get("selection") or {}
    tried = selection.get("tried") or {}
    rows = [f'<tr><td>{escape(str(key))}</td><td>{escape(str(why) or "passed")}</td></tr>'
            for key, why in (tried.items() if isinstance(tried, Mapping) else enumerate(tried))]
    extra = ""
    if b.get("strike_note"):
        extra = f'<p>{escape(str(b["strike_note"]))} (money strike {escape(str(b.get("money_strike")))})</p>'
    if not rows and not extra:
        return ""
    chosen = selection.get("contract")
    return (f'<h3>Strike walk</h3>{extra}<p>Chosen: <b>{escape(str(chosen or "none"))}</b>'
            + (f' — {escape(str(selection.get("reason")))} {escape(str(selection.get("detail") or ""))}'
               if selection.get("reason") else "")
            + f'</p><table class="walk"><tr><th>candidate</th><th>check</th></tr>{"".join(rows)}</table>')


def _kv(title: str, pairs: Iterable[tuple[Any, Any]], css: str) -> str:
    rows = "".join(f'<tr><td>{escape(str(k))}</td><td class="n">{escape(_show(v))}</td></tr>' for k, v in pairs)
    return f'<div class="{css}"><h3>{escape(title)}</h3><table>{rows or "<tr><td class=muted>none</td></tr>"}</table></div>'


def _show(value: Any) -> str:
    return "-" if value is None else str(value)


def _t(value: Any) -> str:
    return escape("-" if value is None else str(value))


def _sign(value: Any) -> str:
    text = str(value or "")
    return "neg" if text.startswith("-") else ("pos" if text and text not in ("0", "0.00") else "")


def _document(title: str, body: str, head: str = "") -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">{head}<title>{escape(title)}</title>'
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{STYLE}</style></head>'
            f"<body>{body}</body></html>")
