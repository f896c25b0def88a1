"""What crosses the broker boundary: contracts, quotes, orders, fills, account, positions.

Plain frozen dataclasses named in the broker's own vocabulary, shared by `sim` and `ib`.
Money and prices are Decimal; times are timezone-aware (America/New_York in the engine).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, Literal

from market.frozen import fast_init

Right = Literal["C", "P"]
Side = Literal["BUY", "SELL"]


@dataclass(frozen=True, slots=True)
class OptionContract:
    underlying: str
    expiry: date
    strike: Decimal
    right: Right
    multiplier: int = 100
    con_id: int | None = field(default=None, compare=False)
    exchange: str = field(default="SMART", compare=False)
    trading_class: str | None = field(default=None, compare=False)

    @property
    def key(self) -> str:
        """Stable identifier used across quote book, store and orderRef parsing: `SPY 20190211 C 270`."""
        return f"{self.underlying} {self.expiry:%Y%m%d} {self.right} {self.strike.normalize():f}"

    @staticmethod
    def from_key(key: str, multiplier: int = 100) -> OptionContract:
        underlying, expiry, right, strike = key.split(" ")
        return OptionContract(underlying, _yyyymmdd(expiry), Decimal(strike), right, multiplier)  # type: ignore[arg-type]


def _yyyymmdd(text: str) -> date:
    """`datetime.strptime(text, "%Y%m%d").date()`: eight ASCII digits can only split 4-2-2 there (%Y takes
    four, %m and %d at most two each), so they are sliced (~0.8 us against strptime's ~5: the regime parses
    every chain key at each checkpoint); anything else goes to strptime for its answer and its error."""
    if len(text) == 8 and text.isascii() and text.isdigit():
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    return datetime.strptime(text, "%Y%m%d").date()


@dataclass(frozen=True, slots=True)
class Quote:
    """Top of book for one instrument (an underlying symbol such as `SPY`, or an OptionContract.key)."""

    key: str
    bid: Decimal | None
    ask: Decimal | None
    last: Decimal | None
    received_at: datetime
    bid_size: int = 0
    ask_size: int = 0
    open_interest: int | None = None
    delta: Decimal | None = None
    gamma: Decimal | None = None
    iv: Decimal | None = None
    modelled: bool = False  # a model priced it (no recorded option quote): labelled in logs and reports
    usable: bool = True  # False after IB stale-data codes (354, 10197, 2103) until a fresh tick
    delayed: bool = False  # IB delayed data (paper accounts that allow it): labelled, never taken for live

    @property
    def mid(self) -> Decimal | None:
        bid, ask = self.bid, self.ask  # each read once: the replay asks ~2 million mids a week
        if bid is None or ask is None or bid <= 0 or ask < bid:
            return self.last
        return (bid + ask) / 2

    @property
    def spread(self) -> Decimal | None:
        if self.bid is None or self.ask is None:
            return None
        return self.ask - self.bid

    def age_s(self, now: datetime) -> Decimal:
        return Decimal(str((now - self.received_at).total_seconds()))


# The generated frozen `__init__` calls `object.__setattr__` per field (~1.5 us a Quote, ~0.8 us through the
# slots' own descriptors), and a replay builds one per modelled option quote: `market.frozen.fast_init`.
fast_init(Quote)


@dataclass(frozen=True, slots=True)
class OptionChain:
    underlying: str
    expiries: tuple[date, ...]
    strikes: tuple[Decimal, ...]
    multiplier: int = 100
    # Real chains are uneven (weeklies list fewer strikes): the strikes of each expiry where known.
    strikes_by_expiry: tuple[tuple[date, tuple[Decimal, ...]], ...] = ()

    def strikes_for(self, expiry: date) -> tuple[Decimal, ...]:
        """The strikes listed for `expiry`; the union `strikes` when the broker did not say per expiry."""
        for day, strikes in self.strikes_by_expiry:
            if day == expiry:
                return strikes
        return self.strikes


class OrderStatus(str, Enum):
    PENDING_SUBMIT = "PendingSubmit"
    SUBMITTED = "Submitted"
    PARTIALLY_FILLED = "PartiallyFilled"
    FILLED = "Filled"
    CANCELLED = "Cancelled"
    REJECTED = "Rejected"
    INACTIVE = "Inactive"

    @property
    def done(self) -> bool:
        return self in (OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.INACTIVE)


def opposite(side: Side) -> Side:
    return "SELL" if side == "BUY" else "BUY"


@dataclass(frozen=True, slots=True)
class ComboLeg:
    """One leg of a combo (IB BAG). `side` is the leg's side when the combo is BOUGHT; selling the
    combo reverses every leg. `ratio` is contracts of this leg per combo unit."""

    contract: OptionContract
    side: Side
    ratio: int = 1

    def __post_init__(self) -> None:
        if self.ratio < 1:
            raise ValueError(f"combo_leg_ratio: ratio must be >= 1, got {self.ratio}")

    def side_for(self, combo_side: Side) -> Side:
        """The side this leg trades when the combo is traded `combo_side`."""
        return self.side if combo_side == "BUY" else opposite(self.side)


def combo_key(legs: tuple[ComboLeg, ...]) -> str:
    """Stable identifier of a combo: its legs' keys with side and ratio, `+1 SPY 20190211 C 270|-1 ...`."""
    return "|".join(f"{'+' if leg.side == 'BUY' else '-'}{leg.ratio} {leg.contract.key}" for leg in legs)


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """One order as the daemon wants it sent. `order_id` is allocated by the daemon (SPEC §6.1).

    A non-empty `legs` makes it a combo order (IB BAG): `quantity` counts combo units, `limit_price` is
    the net price per unit for the combo's `side` (a BUY of a credit combo has a negative net limit; IB
    allows negative limits on BAG orders) and `contract` is `legs[0].contract`, kept so code reading one
    contract does not break; a combo's `contract` is never traded alone.
    """

    order_id: int
    order_ref: str  # tradingd:<profile>:<signal or exit id>:<n>
    contract: OptionContract
    side: Side
    quantity: int
    order_type: Literal["LMT", "STP", "MKT"] = "LMT"
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    tif: Literal["DAY", "GTC"] = "DAY"
    legs: tuple[ComboLeg, ...] = ()

    def __post_init__(self) -> None:
        if self.legs and self.contract != self.legs[0].contract:
            raise ValueError("combo_contract: a combo order's contract must be legs[0].contract")

    @property
    def is_combo(self) -> bool:
        return bool(self.legs)


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    order_id: int
    order_ref: str
    status: OrderStatus
    filled: int
    remaining: int
    avg_fill_price: Decimal | None
    at: datetime
    reason: str | None = None  # rejection text or IB error code


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution. A combo order fills per leg: one Fill per leg execution, carrying the combo order's
    order_id/order_ref, the leg's contract, the leg's own side and its contract quantity."""

    exec_id: str
    order_id: int
    order_ref: str
    contract: OptionContract
    side: Side
    quantity: int
    price: Decimal
    at: datetime
    commission: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class OpenOrder:
    request: OrderRequest
    status: OrderStatus
    filled: int


@dataclass(frozen=True, slots=True)
class BrokerPosition:
    contract: OptionContract
    quantity: int  # signed: long > 0
    avg_cost: Decimal  # per contract share price (premium), not × multiplier


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    account_id: str
    currency: str
    net_liquidation: Decimal
    buying_power: Decimal
    cash: Decimal
    paper: bool
    server_version: int | None = None
