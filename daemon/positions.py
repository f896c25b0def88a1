"""The engine's book of open positions: what the store says, plus marks, greeks and the
session's mark-to-market P&L (SPEC §3's breakers measure it).

Session P&L per position is measured from `session_ref`: the entry price for a position
opened this session, its mark at the session open for one carried in (7dte). So
session P&L = Σ realized since the open against that reference − commissions
              + Σ open × (mark − reference) × multiplier.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from market.combo import Combo
from market.types import OptionContract, Quote
from daemon.store.records import FillRecord, PositionRecord
from exits.position import ExitPosition
from exits.state import ExitState
from risk.request import OpenPositionView

ZERO = Decimal(0)


@dataclass
class LivePosition:
    record: PositionRecord
    contract: OptionContract
    exit_state: ExitState
    session_ref: Decimal
    mark: Decimal | None = None
    marked_at: datetime | None = None
    delta: Decimal | None = None
    gamma: Decimal | None = None
    pending_exit: int = 0  # contracts in working exit orders: never asked to close twice
    entry_pending: int = 0  # contracts an entry (or scale-in) parent may still buy
    entry_limit: Decimal | None = None  # the price it was sized at
    entry_complete: bool = False  # no entry parent order is working (exits wait for it)
    band: Any = None  # exits.bands.PriceBand: premiums where the exit policy cannot act (the core's fast path)
    # SPEC §9: a multi-leg position, priced in its value space (market.combo); `record.contract_key`
    # is the combo's key and `contract` its first leg.
    combo: Combo | None = None

    @property
    def id(self) -> int:
        return self.record.id

    @property
    def key(self) -> str:
        return self.record.contract_key

    @property
    def underlying(self) -> str:
        return self.record.underlying

    @property
    def multiplier(self) -> int:
        return self.record.multiplier

    @property
    def open_qty(self) -> int:
        return self.record.open_qty

    @property
    def closable(self) -> int:
        return max(0, self.record.open_qty - self.pending_exit)

    @property
    def exposure(self) -> Decimal:
        return self.record.open_qty * self.record.entry_price * self.multiplier

    def price(self) -> Decimal:
        """The mark when there is one, else what was paid (a position is never marked at zero by default)."""
        if self.mark is not None:
            return self.mark
        return self.record.entry_price or self.entry_limit or ZERO

    @property
    def unrealized(self) -> Decimal:
        return self.record.open_qty * (self.price() - self.record.entry_price) * self.multiplier

    @property
    def unrealized_pct(self) -> Decimal | None:
        entry = self.record.entry_price
        return None if entry <= 0 else (self.price() - entry) / entry

    def session_unrealized(self) -> Decimal:
        return self.record.open_qty * (self.price() - self.session_ref) * self.multiplier

    def exit_view(self, profile: str) -> ExitPosition:
        return ExitPosition(entry_price=self.record.entry_price, entry_time=self.record.entry_time,
                            original_quantity=max(1, self.record.original_qty), open_quantity=self.record.open_qty,
                            expiry=self.record.expiry, underlying=self.record.underlying,
                            profile=profile, right=self.record.right,  # type: ignore[arg-type]
                            adverse_gap="" if self.combo is None else self.combo.adverse_gap)

    def apply_quote(self, quote: Quote) -> None:
        mid = quote.mid
        if mid is not None and mid > 0 and quote.usable:
            self.mark = mid
            self.marked_at = quote.received_at
        if quote.delta is not None:
            self.delta = quote.delta
        if quote.gamma is not None:
            self.gamma = quote.gamma


class Book:
    """Open positions by id and by option key, and the session's realized P&L."""

    def __init__(self) -> None:
        self.positions: dict[int, LivePosition] = {}
        self.session_realized = ZERO  # since the session open, against each position's session_ref
        self.session_day: date | None = None
        self.closed_today: list[int] = []

    def add(self, position: LivePosition) -> None:
        self.positions[position.id] = position

    def get(self, position_id: int | None) -> LivePosition | None:
        return None if position_id is None else self.positions.get(position_id)

    def remove(self, position_id: int) -> LivePosition | None:
        return self.positions.pop(position_id, None)

    def by_key(self, key: str) -> list[LivePosition]:
        return [p for p in self.positions.values() if p.key == key]

    def by_underlying(self, underlying: str) -> list[LivePosition]:
        return [p for p in self.positions.values() if p.underlying == underlying]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(list(self.positions.values()))

    def __len__(self) -> int:
        return len(self.positions)

    def held(self) -> list[LivePosition]:
        """Positions that hold contracts."""
        return [p for p in self.positions.values() if p.open_qty > 0]

    def views(self) -> tuple[OpenPositionView, ...]:
        """The book as sizing sees it: an entry still being bought counts at its full size, so two
        signals a second apart cannot both take the last slot."""
        views = []
        for p in self.positions.values():
            contracts = p.open_qty + p.entry_pending
            if contracts <= 0:
                continue
            price = p.record.entry_price if p.open_qty > 0 and p.record.entry_price else (p.entry_limit or p.price())
            views.append(OpenPositionView(p.underlying, contracts, price))
        return tuple(views)

    def exposure(self) -> Decimal:
        return sum((p.exposure for p in self.positions.values()), ZERO)

    def unrealized(self) -> Decimal:
        return sum((p.unrealized for p in self.positions.values()), ZERO)

    def session_pnl(self) -> Decimal:
        return self.session_realized + sum((p.session_unrealized() for p in self.positions.values()), ZERO)

    def greeks(self) -> dict[str, Decimal]:
        """Portfolio delta and gamma in share-equivalents (Σ greek × multiplier × contracts)."""
        delta = gamma = ZERO
        for p in self.held():
            if p.delta is not None:
                delta += p.delta * p.multiplier * p.open_qty
            if p.gamma is not None:
                gamma += p.gamma * p.multiplier * p.open_qty
        return {"delta": delta, "gamma": gamma}

    def known_greeks(self) -> dict[str, Decimal | None]:
        """Portfolio greeks for the gate: 0 with nothing open; None for a greek some held position has
        no quote for yet (an unknown greek is not zero: the gate then refuses, "greeks unavailable")."""
        totals: dict[str, Decimal | None] = {"delta": ZERO, "gamma": ZERO}
        for p in self.held():
            for name, value in (("delta", p.delta), ("gamma", p.gamma)):
                total = totals[name]
                totals[name] = None if value is None or total is None else total + value * p.multiplier * p.open_qty
        return totals

    def record_fill(self, position: LivePosition, fill: FillRecord, before: PositionRecord) -> None:
        """Account a fill already applied by the store (`before` is the record it applied to)."""
        mult = before.multiplier
        if fill.side == "BUY":
            held = before.open_qty
            total = held + fill.quantity
            # The reference averages like the entry price does, so a scale-in shifts it the same way.
            position.session_ref = ((position.session_ref * held + fill.price * fill.quantity) / total
                                    if total else fill.price)
        else:
            self.session_realized += (fill.price - position.session_ref) * fill.quantity * mult
        self.session_realized -= fill.commission

    def start_session(self) -> None:
        """A new session: carried-in positions are measured from their last mark."""
        self.session_realized = ZERO
        self.closed_today = []
        for p in self.positions.values():
            p.session_ref = p.price()
