"""Orders the fake gateway holds, the fills it made, and the matching rules (pure functions)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from tests.fakegw.contracts import FakeContract
from tests.fakegw.market import FakeQuote, Liquidity
from tests.fakegw.messages import ExecutionView, OrderView

DONE_STATUSES = frozenset({"Filled", "Cancelled", "ApiCancelled", "Inactive"})
STOP_TYPES = frozenset({"STP", "STP LMT"})
MARKET_TYPES = frozenset({"MKT", "STP"})


@dataclass(slots=True)
class FakeOrder:
    """One order as the gateway knows it now; `revisions` counts accepted modifications."""

    order_id: int
    client_id: int
    perm_id: int
    contract: FakeContract
    action: str  # BUY / SELL
    qty: Decimal
    order_type: str  # LMT, MKT, STP, STP LMT
    lmt_price: Decimal | None
    aux_price: Decimal | None
    tif: str
    order_ref: str
    account: str
    placed_at: datetime
    parent_id: int = 0
    outside_rth: bool = False
    status: str = "PendingSubmit"
    filled: Decimal = Decimal(0)
    avg_fill_price: Decimal = Decimal(0)
    last_fill_price: Decimal = Decimal(0)
    triggered: bool = False
    revisions: int = 0
    error: tuple[int, str] | None = None
    history: list[str] = field(default_factory=list)
    completed_at: datetime | None = None  # when it was filled or cancelled (reqCompletedOrders)

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.filled

    @property
    def done(self) -> bool:
        return self.status in DONE_STATUSES

    def set_status(self, status: str) -> None:
        self.status = status
        self.history.append(status)

    def record_fill(self, qty: Decimal, price: Decimal) -> None:
        total = self.avg_fill_price * self.filled + price * qty
        self.filled += qty
        self.avg_fill_price = total / self.filled
        self.last_fill_price = price
        self.set_status("Filled" if self.remaining <= 0 else "Submitted")

    def view(self) -> OrderView:
        return OrderView(order_id=self.order_id, client_id=self.client_id, perm_id=self.perm_id,
                         contract=self.contract, action=self.action, qty=self.qty,
                         order_type=self.order_type, lmt_price=self.lmt_price,
                         aux_price=self.aux_price, tif=self.tif, account=self.account,
                         order_ref=self.order_ref, status=self.status, filled=self.filled,
                         avg_fill_price=self.avg_fill_price, last_fill_price=self.last_fill_price,
                         parent_id=self.parent_id, outside_rth=self.outside_rth)


@dataclass(frozen=True, slots=True)
class FakeExecution:
    exec_id: str
    order_id: int
    client_id: int
    perm_id: int
    order_ref: str
    contract: FakeContract
    action: str
    qty: Decimal
    price: Decimal
    time: datetime
    commission: Decimal
    cum_qty: Decimal
    avg_price: Decimal
    account: str
    currency: str
    realized_pnl: Decimal | None

    @property
    def side(self) -> str:
        return "BOT" if self.action == "BUY" else "SLD"

    def view(self) -> ExecutionView:
        return ExecutionView(exec_id=self.exec_id, order_id=self.order_id, client_id=self.client_id,
                             perm_id=self.perm_id, contract=self.contract, time=self.time,
                             account=self.account, side=self.side, shares=self.qty,
                             price=self.price, cum_qty=self.cum_qty, avg_price=self.avg_price,
                             order_ref=self.order_ref, commission=self.commission,
                             currency=self.currency, realized_pnl=self.realized_pnl)


@dataclass(frozen=True, slots=True)
class CommissionSchedule:
    """IB's tiered-ish US rates, enough to make commission reports non-trivial."""

    per_option_contract: Decimal = Decimal("0.65")
    per_share: Decimal = Decimal("0.005")
    minimum: Decimal = Decimal("1.00")

    def charge(self, contract: FakeContract, qty: Decimal) -> Decimal:
        rate = self.per_option_contract if contract.is_option else self.per_share
        return max(self.minimum, (rate * qty).quantize(Decimal("0.01")))


def stop_triggered(order: FakeOrder, quote: FakeQuote) -> bool:
    """A sell stop fires when the bid or last trades at or through it; a buy stop on the ask or last."""
    stop = order.aux_price
    if stop is None:
        return False
    if order.action == "SELL":
        return any(p is not None and p <= stop for p in (quote.bid, quote.last))
    return any(p is not None and p >= stop for p in (quote.ask, quote.last))


def match(order: FakeOrder, quote: FakeQuote, liquidity: Liquidity) -> tuple[Decimal, Decimal] | None:
    """(qty, price) the order takes from the touch now, or None. Caller consumes the liquidity."""
    if order.done or order.remaining <= 0:
        return None
    if order.order_type in STOP_TYPES and not order.triggered:
        return None
    marketable_any = order.order_type in MARKET_TYPES
    if order.action == "BUY":
        touch, size = quote.ask, liquidity.ask
        crosses = touch is not None and (marketable_any or (order.lmt_price is not None and order.lmt_price >= touch))
    else:
        touch, size = quote.bid, liquidity.bid
        crosses = touch is not None and (marketable_any or (order.lmt_price is not None and order.lmt_price <= touch))
    if not crosses or size <= 0 or touch is None or touch <= 0:
        return None
    return min(order.remaining, Decimal(size)), touch


def price_conforms(price: Decimal | None, min_tick: Decimal) -> bool:
    return price is None or price % min_tick == 0


def combo_touch(order: FakeOrder, quotes: dict[int, FakeQuote]) -> tuple[Decimal, tuple[Decimal, ...]] | None:
    """(net price per combo unit, each leg's touch) for `order`'s side now, or None when a leg has no touch.

    The net follows IB's convention for the combo as bought: a leg bought adds its price, a leg sold
    subtracts it. A BUY takes each leg's touch on its own side (ask when the leg buys, bid when it sells);
    a SELL reverses every leg, so its net is what selling the combo brings in."""
    net, touches = Decimal(0), []
    for leg in order.contract.legs:
        quote = quotes.get(leg.contract.con_id)
        side = leg.action_for(order.action)
        touch = None if quote is None else (quote.ask if side == "BUY" else quote.bid)
        if touch is None or touch <= 0:
            return None
        touches.append(touch)
        net += touch * leg.ratio if leg.action == "BUY" else -touch * leg.ratio
    return net, tuple(touches)


def match_combo(order: FakeOrder, quotes: dict[int, FakeQuote],
                liquidity: dict[int, Liquidity]) -> tuple[Decimal, tuple[Decimal, ...]] | None:
    """(whole combo units, each leg's price) the order takes now, or None. Leg-consistent: a unit fills
    only when every leg has its ratio's size at its touch, and every leg of it fills in the same step."""
    if order.done or order.remaining <= 0 or not order.contract.legs:
        return None
    touch = combo_touch(order, quotes)
    if touch is None:
        return None
    net, prices = touch
    if order.order_type == "LMT":
        limit = order.lmt_price
        if limit is None or (limit < net if order.action == "BUY" else limit > net):
            return None
    elif order.order_type != "MKT":
        return None
    units = order.remaining
    for leg in order.contract.legs:
        book = liquidity.get(leg.contract.con_id)
        size = 0 if book is None else (book.ask if leg.action_for(order.action) == "BUY" else book.bid)
        units = min(units, Decimal(size // leg.ratio))
    return (units, prices) if units > 0 else None
