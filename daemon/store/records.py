"""What the store hands back: frozen value objects, never ORM instances.

Rows are read on the store's writer thread; copying them into these dataclasses there
means nothing mutable or session-bound crosses into the event loop. Money and prices are
Decimal, times timezone-aware America/New_York, JSON columns plain dicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

SignalStatus = Literal["received", "accepted", "refused"]
IntentState = Literal["intent", "sent", "acked", "working", "filled", "cancelled", "rejected"]
PositionStatus = Literal["open", "closed"]
OperatorAction = Literal["halt", "resume", "flatten", "ack"]

INTENT_STATES: tuple[IntentState, ...] = ("intent", "sent", "acked", "working", "filled", "cancelled", "rejected")
TERMINAL_INTENT_STATES: frozenset[str] = frozenset({"filled", "cancelled", "rejected"})


@dataclass(frozen=True, slots=True)
class SignalRecord:
    signal_id: str
    received_at: datetime
    payload: dict[str, Any]
    status: SignalStatus
    reason: str | None


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    id: int
    signal_id: str | None
    at: datetime
    accepted: bool
    reason: str | None
    contracts: int
    notional: Decimal
    multiplier: Decimal
    breakdown: dict[str, Any]


@dataclass(frozen=True, slots=True)
class IntentRecord:
    """An order as we meant to send it; written before `placeOrder` (SPEC §6.1)."""

    order_id: int
    order_ref: str
    parent_ref: str | None
    contract_key: str
    side: str
    quantity: int
    order_type: str
    limit_price: Decimal | None
    stop_price: Decimal | None
    tif: str
    position_id: int | None
    state: IntentState
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """The broker's last word on one order id."""

    order_id: int
    order_ref: str
    status: str
    filled: int
    remaining: int
    avg_fill_price: Decimal | None
    reason: str | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class FillRecord:
    exec_id: str
    order_id: int
    order_ref: str
    contract_key: str
    side: str
    quantity: int
    price: Decimal
    commission: Decimal
    at: datetime
    position_id: int | None
    realized_pnl: Decimal  # what this fill realized, commission included


@dataclass(frozen=True, slots=True)
class PositionRecord:
    id: int
    underlying: str
    contract_key: str
    expiry: date
    strike: Decimal
    right: str
    multiplier: int
    entry_time: datetime
    entry_price: Decimal  # average premium paid per share, commissions excluded
    original_qty: int  # every contract ever bought into it (entry slices and scale-ins)
    open_qty: int
    realized_pnl: Decimal  # net of every commission paid on it
    status: PositionStatus
    opened_by_signal_id: str | None
    closed_at: datetime | None
    close_reason: str | None


@dataclass(frozen=True, slots=True)
class FillOutcome:
    """`new` is False when the exec id was already applied: nothing changed."""

    new: bool
    fill: FillRecord
    position: PositionRecord | None
    unmatched_qty: int = 0  # contracts sold beyond the open quantity (a broker/store mismatch to alert on)


@dataclass(frozen=True, slots=True)
class ExitEventRecord:
    id: int
    position_id: int
    rule: str
    kind: str
    quantity: int
    reason: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class BreakerEventRecord:
    id: int
    level: int
    from_state: str
    to_state: str
    session_pnl: Decimal
    reason: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class TradingStateRecord:
    """The profile's trading state; `latched` is the level-4 halt that only an operator clears."""

    state: str
    breaker_level: int
    latched: bool
    reason: str | None
    since: datetime


@dataclass(frozen=True, slots=True)
class OperatorActionRecord:
    id: int
    action: OperatorAction
    who: str
    why: str | None
    at: datetime
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CheckpointRecord:
    at: datetime
    equity: Decimal
    session_pnl: Decimal
    drawdown: Decimal
    exposure: Decimal
    open_positions: int
    greeks: dict[str, Any]
    breaker_level: int
    state: str


@dataclass(frozen=True, slots=True)
class BlockedUnderlying:
    underlying: str
    reason: str
    detail: dict[str, Any]
    blocked_at: datetime
    acknowledged: bool
    acknowledged_by: str | None
    acknowledged_at: datetime | None


@dataclass(frozen=True, slots=True)
class DaySummary:
    """One session date (exchange time) of a run, for the end-of-run report."""

    session_date: date
    signals: int
    accepted: int
    refused: int
    refused_by_reason: dict[str, int]
    trades_opened: int
    trades_closed: int
    realized_pnl: Decimal  # sum of what that day's fills realized, commissions included
    commissions: Decimal
    breaker_events: int
    max_breaker_level: int


@dataclass(frozen=True, slots=True)
class StoreSnapshot:
    """What the engine loads at start-up, read in one transaction."""

    trading_state: TradingStateRecord | None
    open_positions: tuple[PositionRecord, ...]
    exit_states: dict[int, dict[str, Any]]
    pending_intents: tuple[IntentRecord, ...]
    blocked_underlyings: tuple[BlockedUnderlying, ...]
    highest_order_id: int
    last_execution_time: datetime | None
    combos: dict[int, dict[str, Any]] = field(default_factory=dict)  # SPEC §9: open combo positions' legs
    combo_leg_fills: tuple[tuple[int, Any], ...] = ()  # (position id, leg Fill) of open combos, in order
