"""Fakes for the core's collaborators: an execution that fills what it is told, a chain source,
quotes made to pass (or fail) the liquidity rules, and a Core assembled from them."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from broker.parent import ExecutionResult, ExecutionStatus, ParentOrder
from broker.listings import option_chain
from broker.order_ref import build_order_ref, parent_ref
from config.loader import load_settings
from config.models import Settings
from daemon.core.core import Core
from daemon.core.effects import CancelOrder, LogLine, ModifyOrder, Persist, PlaceOrder
from daemon.core.timers import Timers
from daemon.scheduler import job_specs
from market import calendar
from market.session import EXCHANGE_TZ
from market.types import Fill, OptionChain, OrderRequest, OrderUpdate, Quote

DAY = date(2026, 11, 30)  # a Monday session


def at(hour: int, minute: int, second: int = 0, day: date = DAY) -> datetime:
    return datetime.combine(day, time(hour, minute, second), tzinfo=EXCHANGE_TZ)


@dataclass(frozen=True)
class Place:
    request: OrderRequest


@dataclass(frozen=True)
class Modify:
    request: OrderRequest


@dataclass(frozen=True)
class Cancel:
    order_id: int


class FakeExecution:
    """Each parent goes out as one child limit at `price`; it finishes when filled (or refused)."""

    def __init__(self, price: Decimal = Decimal("2.00")):
        self.price = price
        self.started: list[ParentOrder] = []
        self.commands: list[Any] = []
        self.results: list[ExecutionResult] = []
        self.fills: list[Fill] = []
        self.updates: list[OrderUpdate] = []
        self.refusals: list[tuple[int, str]] = []
        self.shrunk: list[tuple[str, int]] = []
        self.deadline: datetime | None = None
        self.timers: list[datetime] = []
        self._runs: dict[str, tuple[ParentOrder, int, int]] = {}  # parent ref -> parent, order id, filled

    def start(self, parent: ParentOrder, now: datetime, next_id: Any) -> None:
        self.started.append(parent)
        order_id = next_id()
        request = OrderRequest(order_id, build_order_ref(parent.profile, parent.source_id, 1), parent.contract,
                               parent.side, parent.quantity, limit_price=self.price)
        self._runs[parent_ref(parent.profile, parent.source_id)] = (parent, order_id, 0)
        self.commands.append(Place(request))

    def on_update(self, update: OrderUpdate, now: datetime) -> None:
        self.updates.append(update)

    def on_fill(self, fill: Fill, now: datetime) -> None:
        self.fills.append(fill)
        ref = fill.order_ref.rsplit(":", 1)[0]
        if ref not in self._runs:
            return
        parent, order_id, filled = self._runs[ref]
        filled += fill.quantity
        self._runs[ref] = (parent, order_id, filled)
        if filled >= parent.quantity:
            del self._runs[ref]
            self.results.append(_result(ref, parent, filled, ExecutionStatus.FILLED))

    def on_quote(self, key: str, now: datetime) -> None:
        pass

    def on_timer(self, now: datetime) -> None:
        self.timers.append(now)
        self.deadline = None

    def next_deadline(self) -> datetime | None:
        return self.deadline

    def take_commands(self) -> list[Any]:
        out, self.commands = self.commands, []
        return out

    def take_results(self) -> list[ExecutionResult]:
        out, self.results = self.results, []
        return out

    def refused(self, order_id: int, reason: str, now: datetime) -> None:
        self.refusals.append((order_id, reason))
        for ref, (parent, oid, filled) in list(self._runs.items()):
            if oid == order_id:
                del self._runs[ref]
                self.results.append(_result(ref, parent, filled, ExecutionStatus.REJECTED))

    def abandon(self, ref: str, now: datetime) -> list[int]:
        run = self._runs.pop(ref, None)
        return [] if run is None else [run[1]]

    def shrink(self, ref: str, by: int, now: datetime) -> int:
        run = self._runs.get(ref)
        if run is None:
            return 0
        parent, oid, filled = run
        given_up = min(by, parent.quantity - filled)
        self.shrunk.append((ref, given_up))
        self._runs[ref] = (replace(parent, quantity=parent.quantity - given_up), oid, filled)
        return given_up

    def order_of(self, ref: str) -> int:
        return self._runs[ref][1]


def _result(ref: str, parent: ParentOrder, filled: int, status: ExecutionStatus) -> ExecutionResult:
    return ExecutionResult(parent_ref=ref, requested=parent.quantity, filled=filled,
                           avg_price=Decimal("2.00") if filled else None, slippage_vs_mid=Decimal(0), children=(),
                           underfilled=filled < parent.quantity, status=status)


class FakeChains:
    def __init__(self) -> None:
        self.asked: list[tuple[str, date]] = []

    def chain(self, underlying: str, day: date, spot: Decimal) -> OptionChain | None:
        self.asked.append((underlying, day))
        return option_chain(underlying, day, spot)


def settings_for(profile: str = "0dte") -> Settings:
    return load_settings(profile)


def make_core(profile: str = "0dte", start: datetime | None = None, daily_closes: Any = None,
              execution: FakeExecution | None = None) -> tuple[Core, FakeExecution]:
    settings = settings_for(profile)
    execution = execution or FakeExecution()
    timers = Timers(job_specs(settings, calendar.session_for), calendar.session_for, start or at(0, 0))
    core = Core(settings, execution=execution, chains=FakeChains(), timers=timers, sessions=calendar.session_for,
                sessions_between=calendar.sessions_between, daily_closes=daily_closes)
    core.buying_power = Decimal(1_000_000)
    core.start(start or at(0, 0))
    core.take_effects()
    return core, execution


def underlying(key: str, price: str, when: datetime) -> Quote:
    p = Decimal(price)
    return Quote(key, p - Decimal("0.01"), p + Decimal("0.01"), p, when, bid_size=100, ask_size=100)


def vix(value: str, when: datetime) -> Quote:
    return Quote("VIX", None, None, Decimal(value), when)


def option(key: str, mid: str, when: datetime, delta: str = "0.50", gamma: str = "0.05") -> Quote:
    m = Decimal(mid)
    return Quote(key, m - Decimal("0.02"), m + Decimal("0.02"), m, when, bid_size=50, ask_size=50,
                 open_interest=5000, delta=Decimal(delta), gamma=Decimal(gamma))


def signal(sid: str, underlying_: str, direction: str, when: datetime, confidence: float = 0.9,
           profile: str = "0dte", **extra: Any) -> dict[str, Any]:
    return {"id": sid, "profile": profile, "underlying": underlying_, "direction": direction,
            "strategy": "directional", "confidence": confidence, "created_at": when.isoformat(), **extra}


def persists(effects: list[Any], op: str | None = None) -> list[Persist]:
    return [e for e in effects if isinstance(e, Persist) and (op is None or e.op == op)]


def orders(effects: list[Any]) -> list[Any]:
    return [e for e in effects if isinstance(e, (PlaceOrder, ModifyOrder, CancelOrder))]


def logs(effects: list[Any], event: str) -> list[LogLine]:
    return [e for e in effects if isinstance(e, LogLine) and e.event == event]


def fill_of(request: OrderRequest, when: datetime, price: str = "2.00", quantity: int | None = None,
            n: int = 1) -> Fill:
    return Fill(f"e{request.order_id}.{n}", request.order_id, request.order_ref, request.contract, request.side,
                quantity or request.quantity, Decimal(price), when)
