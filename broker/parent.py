"""A parent order and what working it produced (SPEC §4.2): the values `Working` (the synchronous
state machine) and the async `Executor` adapter share, and the child limit rule itself.

`ParentOrder.min_quantity` is the number of contracts that makes the minimum bet (SPEC §2.3):
an entry that ends below it is kept, and its result says `below_minimum` so the engine counts
and logs it (a smaller bet is less risk; unwinding it would pay the spread twice).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Literal

from broker.order_ref import OrderRefError, parent_ref
from config.errors import ReasonError
from config.models import ExecutionConfig
from market.combo import Combo, is_combo_key
from market.types import OptionContract, OrderStatus, Quote, Side

Kind = Literal["entry", "exit"]


class ExecutionError(ReasonError, ValueError):
    """`code` is a stable reason code."""


class ExecutionStatus(str, Enum):
    FILLED = "filled"
    TIMED_OUT = "timed_out"  # an entry that gave up at parent_timeout_s; what filled is kept
    REJECTED = "rejected"  # the broker (or before_send) refused a child; what filled is kept


@dataclass(frozen=True, slots=True)
class ParentOrder:
    profile: str
    source_id: str  # the signal id (entries) or exit id (exits): the orderRef's middle part
    contract: OptionContract
    side: Side
    quantity: int
    kind: Kind = "entry"
    first_child: int = 1  # child numbering in orderRefs; a resumed exit continues past what was sent
    min_quantity: int = 0  # contracts that make the minimum bet; an entry ending below it is `below_minimum`
    # SPEC §9: a combo parent (quantity in combo units, prices in the combo's value space: see
    # market.combo); its children go out as BAG orders with net limits. `contract` is legs[0]'s.
    combo: Combo | None = None

    @property
    def key(self) -> str:
        """The quote key the parent is priced on: the option's, or the combo's."""
        return self.combo.key if self.combo is not None else self.contract.key

    def validate(self) -> None:
        if self.side not in ("BUY", "SELL"):
            raise ExecutionError("bad_side", f"side must be BUY or SELL, got {self.side!r}")
        if self.kind not in ("entry", "exit"):
            raise ExecutionError("bad_kind", f"kind must be entry or exit, got {self.kind!r}")
        if isinstance(self.quantity, bool) or not isinstance(self.quantity, int) or self.quantity <= 0:
            raise ExecutionError("bad_quantity", f"quantity must be a positive integer, got {self.quantity!r}")
        if isinstance(self.first_child, bool) or not isinstance(self.first_child, int) or self.first_child < 0:
            raise ExecutionError("bad_child_number", f"first_child must be an integer >= 0, got {self.first_child!r}")
        if isinstance(self.min_quantity, bool) or not isinstance(self.min_quantity, int) or self.min_quantity < 0:
            raise ExecutionError("bad_quantity", f"min_quantity must be an integer >= 0, got {self.min_quantity!r}")
        try:
            parent_ref(self.profile, self.source_id)
        except OrderRefError as exc:
            raise ExecutionError(exc.code, str(exc)) from None


@dataclass(frozen=True, slots=True)
class ChildOrderResult:
    order_id: int
    order_ref: str
    quantity: int
    filled: int
    avg_price: Decimal | None
    status: OrderStatus
    sent_at: datetime
    limits: tuple[tuple[datetime, Decimal], ...]  # every limit the child was sent or modified at
    commission: Decimal
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    parent_ref: str
    requested: int
    filled: int
    avg_price: Decimal | None
    slippage_vs_mid: Decimal | None  # per share vs the arrival mid; positive = worse than mid
    children: tuple[ChildOrderResult, ...]
    underfilled: bool
    status: ExecutionStatus
    arrival_mid: Decimal | None = None
    commission: Decimal = Decimal(0)
    reason: str | None = None
    below_minimum: bool = False  # an entry that ended with fewer contracts than the minimum bet (kept)

    @property
    def slippage_pct(self) -> Decimal | None:
        if self.slippage_vs_mid is None or not self.arrival_mid:
            return None
        return self.slippage_vs_mid / self.arrival_mid


def two_sided(quote: Quote | None) -> bool:
    """A usable two-sided quote. A combo's value-space bid may be 0 (a condor's wings at the money)."""
    return (quote is not None and quote.usable and quote.bid is not None and quote.ask is not None
            and (quote.bid > 0 or (quote.bid >= 0 and is_combo_key(quote.key))) and quote.ask > quote.bid)


def child_limit(side: Side, bid: Decimal, ask: Decimal, step: int, cfg: ExecutionConfig,
                round_price: Callable[[Decimal, str], Decimal], cross: bool = False) -> tuple[Decimal, bool]:
    """The limit of a child at reprice `step` (0 = sent): (price, held_by_band).

    mid + step × step_pct × spread toward the far touch, never past the far touch nor past
    mid ± max_slippage_pct of mid; rounded to the tick away from the far touch so the band
    holds. `held_by_band` says the band, not the far touch, stopped the walk. `cross` returns
    the far touch itself (a marketable limit).
    """
    buy = side == "BUY"
    far = ask if buy else bid
    if cross:
        return far, False
    mid = (bid + ask) / 2
    sign = 1 if buy else -1
    raw = mid + sign * step * cfg.reprice_step_pct_of_spread * (ask - bid)
    band = mid + sign * abs(mid) * cfg.max_slippage_pct  # abs: a combo's net mid may be negative
    if buy:
        limit = min(raw, band, far)
        held = raw > band and band < far
    else:
        limit = max(raw, band, far)
        held = raw < band and band > far
    return round_price(limit, "down" if buy else "up"), held


def child_cap(quantity: int, cfg: ExecutionConfig) -> int:
    """The most one child of a sliced parent of `quantity` may hold (SPEC §4.2): max(max_child_contracts,
    ceil(quantity / (parent_timeout_s / child_interval_s))), so the whole parent can complete inside
    its timeout at one child per interval (400 contracts, 60 s, 3 s: 20 per child)."""
    if cfg.child_interval_s <= 0:
        return cfg.max_child_contracts  # children may follow at once: the timeout holds any number of them
    slots = cfg.parent_timeout_s / cfg.child_interval_s
    return max(cfg.max_child_contracts, math.ceil(Decimal(quantity) / slots))


def child_quantity(parent: ParentOrder, remaining: int, sliced: bool, shown: int, cfg: ExecutionConfig) -> int:
    """The next child's size: the whole remainder unless sliced; then at most `child_cap` and never
    more than `shown` at the far touch (a size of 0 means the feed did not report one: the cap alone)."""
    if not sliced:
        return remaining
    qty = min(remaining, child_cap(parent.quantity, cfg))
    return min(qty, shown) if shown > 0 else qty
