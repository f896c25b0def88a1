"""What the operator page shows, gathered from a running engine (read only, never blocking it).

The page talks to the `EngineControl` seam (status, positions) and, where the control is the
real engine, reads a little more: today's decisions and checkpoints from its store (async reads
through the store's own executor), each open position's exit plan (`daemon.page.plan`), the
capital base for the breaker lines. A control without those (the API tests' fake) gets a page
with those sections empty, not an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time
from decimal import Decimal
from typing import Any

from config.models import Settings
from daemon.format import present_position, present_status
from daemon.logging import get_logger
from daemon.page.plan import ExitPlan, exit_plan
from market import calendar
from market.clock import EXCHANGE_TZ

log = get_logger("daemon.page")

DECISIONS_SHOWN = 200


@dataclass(frozen=True)
class BreakerLine:
    level: int
    name: str
    loss_pct: Decimal
    pnl: Decimal  # the session P&L at which it trips (negative)


@dataclass(frozen=True)
class Point:
    at: datetime
    pnl: Decimal
    equity: Decimal | None


@dataclass
class PageView:
    profile: str
    now: datetime
    status: dict[str, Any]  # at units (daemon.format)
    session_pnl: Decimal | None  # exact, for the chart
    base: Decimal
    breaker_lines: list[BreakerLine]
    positions: list[dict[str, Any]]  # at units, with "plan": ExitPlan | None
    decisions: list[dict[str, Any]]  # today's, newest first: at, accepted, reason, contracts, breakdown
    curve: list[Point] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what could not be read, said on the page


async def gather(control: Any, settings: Settings) -> PageView:
    raw_status = control.status()
    now = _now(control, raw_status)
    base = _base(control, settings)
    session_pnl = _decimal(raw_status.get("session_pnl"))
    lines = [BreakerLine(lv.level, lv.name, lv.loss_pct, -(lv.loss_pct * base)) for lv in settings.breakers.levels]
    view = PageView(profile=settings.profile.name, now=now, status=present_status(raw_status),
                    session_pnl=session_pnl, base=base, breaker_lines=lines,
                    positions=_positions(control, settings, now), decisions=[])
    store = getattr(control, "store", None)
    if store is not None:
        start = datetime.combine(now.date(), time(0), tzinfo=EXCHANGE_TZ)
        try:
            records = await store.recent_decisions(DECISIONS_SHOWN)
            view.decisions = [_decision(r) for r in records if r.at.astimezone(EXCHANGE_TZ) >= start]
        except Exception as exc:  # noqa: BLE001 - a store fault shows as a note, the page still answers
            view.notes.append(f"decisions unavailable: {type(exc).__name__}: {exc}")
        try:
            view.curve = [Point(c.at, c.session_pnl, c.equity) for c in await store.list_checkpoints(since=start)]
        except Exception as exc:  # noqa: BLE001
            view.notes.append(f"equity curve unavailable: {type(exc).__name__}: {exc}")
    if session_pnl is not None:
        view.curve.append(Point(now, session_pnl, _decimal(raw_status.get("equity"))))
    return view


def _now(control: Any, status: dict[str, Any]) -> datetime:
    clock = getattr(control, "clock", None)
    if clock is not None:
        return clock.now().astimezone(EXCHANGE_TZ)
    if isinstance(status.get("now"), str):
        return datetime.fromisoformat(status["now"]).astimezone(EXCHANGE_TZ)
    return datetime.now(EXCHANGE_TZ)


def _base(control: Any, settings: Settings) -> Decimal:
    capital_base = getattr(control, "capital_base", None)
    if callable(capital_base):
        try:
            return Decimal(capital_base())
        except Exception:  # noqa: BLE001 - the configured account size is the fallback line
            pass
    return settings.capital.account_size


def _positions(control: Any, settings: Settings, now: datetime) -> list[dict[str, Any]]:
    plans = _plans(control, settings, now)
    rows = []
    for raw in control.positions():
        row = present_position(raw)
        row["plan"] = plans.get(raw.get("position_id"))
        rows.append(row)
    return rows


def _plans(control: Any, settings: Settings, now: datetime) -> dict[Any, ExitPlan]:
    """Each live position's plan, when the control is an engine with a book and an exit desk."""
    book, desk = getattr(control, "book", None), getattr(control, "exits", None)
    if book is None or desk is None:
        return {}
    plans = {}
    for position in book:
        try:
            expiry = calendar.session_for(position.record.expiry)
            plans[position.id] = exit_plan(position.exit_view(settings.profile.name), position.exit_state,
                                           desk.market(position, now), now, settings, expiry)
        except Exception as exc:  # noqa: BLE001 - one bad position must not blank the page
            log.warning("page_exit_plan_failed", position_id=getattr(position, "id", None), error=repr(exc))
    return plans


def _decision(record: Any) -> dict[str, Any]:
    return {"at": record.at.astimezone(EXCHANGE_TZ), "signal_id": record.signal_id, "accepted": record.accepted,
            "reason": record.reason, "contracts": record.contracts, "notional": record.notional,
            "multiplier": record.multiplier, "breakdown": record.breakdown or {}}


def _decimal(value: Any) -> Decimal | None:
    try:
        return None if value is None else Decimal(str(value))
    except ArithmeticError:
        return None
