"""SimVenue: the sim exchange as a synchronous, deterministic object (SPEC §4.3, §6.4).

It holds the paper account (cash, positions, orders, executions) and matches orders against
the recorded or modelled quotes it is told about: a BUY when its limit reaches the ask (at the
ask), a SELL when its limit reaches the bid (at the bid), each quote offering its displayed size
once across all orders. A resting STP order triggers when the bid falls to its stop (BUY stops:
the ask rises to it) and then trades as a marketable order. Commissions follow IB's
per-contract schedule with a per-order minimum. It refuses what a cash options account refuses
(buying beyond cash, selling what is not held).

No asyncio, no clock, no randomness: time comes in on every call. An order (or a change, or a
cancel) reaches the exchange `latency_ms` after it was sent: it is a scheduled venue event, due
at `next_deadline()`, carried out by `advance(now)` with the venue's time set to when it was due.
What happens comes out of `take_events()` (OrderUpdate and Fill, in the order they happened).

Execution ids are `SIM-[<session>-]<order id>-<filled so far>`: derived from the order and its
cumulative filled quantity, so they are the same on every replay and never repeat for one order,
even for a resting order restored after a restart (its filled quantity comes with it). `session`
(injectable; empty by default, as replay wants) keeps two live sims on one store apart.

Per quote, when nothing rests on its key, `on_quote` is one dict lookup.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from collections.abc import Callable
from typing import Any, Protocol

import structlog

from broker.base import BrokerError
from config.models import SimBrokerConfig
from market.combo import leg_touch, net_touch
from market.intrinsic import intrinsic
from market.types import (
    AccountSnapshot,
    BrokerPosition,
    Fill,
    OpenOrder,
    OptionContract,
    OrderRequest,
    OrderStatus,
    OrderUpdate,
    Quote,
)

log = structlog.get_logger(__name__)

ACCOUNT_ID = "SIM"
CURRENCY = "USD"
VenueEvent = OrderUpdate | Fill
# (level, event, fields): where the venue's notes go; None (the default) keeps it silent (replay).
LogSink = Callable[[str, str, dict[str, Any]], None]


class QuoteSource(Protocol):
    def get(self, key: str) -> Quote | None: ...


@dataclass(eq=False, slots=True)
class _SimOrder:
    request: OrderRequest
    status: OrderStatus = OrderStatus.PENDING_SUBMIT
    filled: int = 0
    notional: Decimal = Decimal(0)  # Σ price × quantity of fills, for the average
    commission: Decimal = Decimal(0)
    triggered: bool = False  # STP: the stop was touched, it now trades as a market order
    active: bool = False  # it has reached the exchange (after the latency)
    ended: bool = False  # filled, cancelled or rejected (status.done, kept as a plain flag for the quote path)

    @property
    def remaining(self) -> int:
        return self.request.quantity - self.filled

    @property
    def working(self) -> bool:
        return not self.ended

    @property
    def avg_price(self) -> Decimal | None:
        return self.notional / self.filled if self.filled else None


@dataclass(slots=True)
class Position:
    contract: OptionContract
    quantity: int = 0
    avg_cost: Decimal = Decimal(0)

    def apply(self, signed_qty: int, price: Decimal) -> None:
        q = self.quantity
        if q == 0 or (q > 0) == (signed_qty > 0):
            self.avg_cost = (abs(q) * self.avg_cost + abs(signed_qty) * price) / (abs(q) + abs(signed_qty))
        elif abs(signed_qty) > abs(q):  # through zero: what is left was opened at this price
            self.avg_cost = price
        self.quantity = q + signed_qty


@dataclass(frozen=True, slots=True)
class RestingOrder:
    """An order the exchange still works after the daemon restarted, with what it already did:
    `filled` contracts, `notional` (Σ price × quantity of those fills) and the `commission` charged."""

    request: OrderRequest
    filled: int = 0
    notional: Decimal = Decimal(0)
    commission: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class SimAccountState:
    """What the paper account held when its last process stopped. `cash` None: the starting cash."""

    positions: tuple[BrokerPosition, ...] = ()
    cash: Decimal | None = None
    orders: tuple[RestingOrder, ...] = ()


def _positive(price: Decimal | None) -> bool:
    return isinstance(price, Decimal) and price.is_finite() and price > 0


def validate_order(order: OrderRequest) -> None:
    if order.legs:
        _validate_combo(order)
        return
    if order.quantity <= 0:
        raise BrokerError("bad_quantity", f"quantity must be positive, got {order.quantity}")
    if order.side not in ("BUY", "SELL"):
        raise BrokerError("bad_side", f"side must be BUY or SELL, got {order.side!r}")
    if order.order_type == "LMT" and not _positive(order.limit_price):
        raise BrokerError("bad_price", f"a limit order needs a positive limit, got {order.limit_price}")
    if order.order_type == "STP" and not _positive(order.stop_price):
        raise BrokerError("bad_price", f"a stop order needs a positive stop, got {order.stop_price}")
    if order.order_type not in ("LMT", "STP", "MKT"):
        raise BrokerError("bad_order_type", f"unknown order type {order.order_type!r}")


def _validate_combo(order: OrderRequest) -> None:
    """A combo (BAG) order: a limit (net, any sign: a credit is negative) on two or more legs."""
    if order.quantity <= 0:
        raise BrokerError("bad_quantity", f"quantity must be positive, got {order.quantity}")
    if order.side not in ("BUY", "SELL"):
        raise BrokerError("bad_side", f"side must be BUY or SELL, got {order.side!r}")
    if order.order_type != "LMT":
        raise BrokerError("combo_order_type", f"the sim takes combo orders as limits only, got {order.order_type}")
    price = order.limit_price
    if not (isinstance(price, Decimal) and price.is_finite()):
        raise BrokerError("bad_price", f"a combo limit must be a finite net price, got {price}")
    if len(order.legs) < 2 or len({leg.contract.key for leg in order.legs}) != len(order.legs):
        raise BrokerError("bad_combo", "a combo needs two or more distinct legs")


def _request_of(cmd: object) -> OrderRequest:
    request = getattr(cmd, "request", cmd)
    if not isinstance(request, OrderRequest):
        raise BrokerError("bad_command", f"expected an order, got {type(cmd).__name__}")
    return request


class SimVenue:
    def __init__(self, cfg: SimBrokerConfig, *, quotes: QuoteSource, cash: Decimal, session: str = "",
                 account_id: str = ACCOUNT_ID, log_to: LogSink | None = None):
        self._cfg = cfg
        self._log_to = log_to
        self.failures = 0  # venue actions that raised (logged; the exchange keeps running)
        self._quotes = quotes
        self._account_id = account_id
        self._exec_prefix = f"SIM-{session}-" if session else "SIM-"
        self._latency = timedelta(milliseconds=cfg.latency_ms)
        self._cash = cash
        self._orders: dict[int, _SimOrder] = {}
        # contract key -> the working orders resting there, in arrival order; a tuple, replaced when one
        # comes or goes (rare), so a quote walks it without copying. One dict for the venue's life (`resting`
        # is the same object, read-only outside: the replay asks it before calling `on_quote`)
        self._resting: dict[str, tuple[_SimOrder, ...]] = {}
        self.resting = self._resting
        self._positions: dict[str, Position] = {}
        self._fills: list[Fill] = []
        self._consumed: dict[str, list] = {}  # key -> [quote, taken BUY, taken SELL]: each quote shows its size once
        # what happened here and is not taken yet; one list for the venue's life (`events` is the same
        # object, read-only outside: the replay tests it for emptiness after each quote, without a call)
        self._events: list[VenueEvent] = []
        self.events = self._events
        self._due: list[tuple[datetime, int, str, object]] = []  # (when, seq, what, payload): latency
        self._seq = itertools.count()
        self._next_id = 1
        self._bids_withheld: dict[str, datetime] = {}  # fault injection: key -> until
        self._now: datetime | None = None

    # ------------------------------------------------------------------ state

    @property
    def latency(self) -> timedelta:
        return self._latency

    @property
    def cash(self) -> Decimal:
        return self._cash

    @property
    def next_order_id(self) -> int:
        return self._next_id

    @property
    def traded(self) -> bool:
        return bool(self._orders or self._fills)

    def restore(self, state: SimAccountState) -> None:
        """Take over the account's prior state: positions, cash and the orders still working at the
        exchange (resting from now on, without the latency). Only on a venue that has not traded:
        the state replaces the account, it is not merged into one. Raises BrokerError
        `bad_prior_state` (or the order's own reason) and changes nothing on a bad state."""
        if self._orders or self._fills:
            raise BrokerError("restore_too_late", "a sim takes its prior state before it starts or trades")
        positions: dict[str, Position] = {}
        for held in state.positions:
            if held.quantity == 0 or held.contract.key in positions or not (
                    isinstance(held.avg_cost, Decimal) and held.avg_cost.is_finite() and held.avg_cost >= 0):
                raise BrokerError("bad_prior_state", f"position {held.contract.key}: {held.quantity} "
                                                     f"at {held.avg_cost} (zero, repeated or a bad cost)")
            positions[held.contract.key] = Position(held.contract, held.quantity, held.avg_cost)
        if state.cash is not None and not (isinstance(state.cash, Decimal) and state.cash.is_finite()):
            raise BrokerError("bad_prior_state", f"cash must be a finite Decimal, got {state.cash!r}")
        orders: dict[int, _SimOrder] = {}
        for resting in state.orders:
            request = resting.request
            validate_order(request)
            if request.order_id in orders or not 0 <= resting.filled < request.quantity:
                raise BrokerError("bad_prior_state", f"order {request.order_id}: repeated, or filled "
                                                     f"{resting.filled} of {request.quantity}")
            orders[request.order_id] = _SimOrder(
                request, OrderStatus.PARTIALLY_FILLED if resting.filled else OrderStatus.SUBMITTED,
                resting.filled, resting.notional, resting.commission, active=True)
        self._positions = positions
        if state.cash is not None:
            self._cash = state.cash
        self._orders = orders
        self._resting.clear()
        for order in orders.values():
            self._rest(order)
        self._next_id = max([self._next_id, *(i + 1 for i in orders)])
        self._note("info", "sim_restored", positions=len(positions), cash=str(self._cash), orders=len(orders))

    def withhold_bids(self, key: str, until: datetime | None) -> None:
        """Fault injection (tests, drills): until `until` (None lifts it) the bids of `key` show no
        size: sells against them rest unfilled while the quotes go on marking positions, as in a gap
        where buyers pulled their bids. Resting sells fill on the first quote after it ends."""
        if until is None:
            self._bids_withheld.pop(key, None)
        else:
            self._bids_withheld[key] = until
        self._note("warning", "sim_fault_bids_withheld", key=key,
                   until=None if until is None else until.isoformat())

    def _bid_withheld(self, key: str, now: datetime | None) -> bool:
        until = self._bids_withheld.get(key)
        if until is None:
            return False
        if now is not None and now < until:
            return True
        del self._bids_withheld[key]
        return False

    def account(self) -> AccountSnapshot:
        value = Decimal(0)
        for pos in self._positions.values():
            quote = self._quotes.get(pos.contract.key)
            mark = quote.mid if quote is not None and quote.mid is not None else pos.avg_cost
            value += pos.quantity * mark * pos.contract.multiplier
        return AccountSnapshot(self._account_id, CURRENCY, self._cash + value, self._cash, self._cash, paper=True)

    def positions(self) -> list[BrokerPosition]:
        return [BrokerPosition(p.contract, p.quantity, p.avg_cost) for p in self._positions.values() if p.quantity]

    def open_orders(self) -> list[OpenOrder]:
        return [OpenOrder(o.request, o.status, o.filled) for o in self._orders.values() if o.working]

    def executions(self, since: datetime | None = None) -> list[Fill]:
        """Fills at or after `since` (inclusive: the caller dedupes by exec_id, a tie must not be lost)."""
        return [f for f in self._fills if since is None or f.at >= since]

    def settle_expired(self, now: datetime, prices: dict[str, Decimal]) -> list[BrokerPosition]:
        """SPEC §6.3 (room expiry), as the exchange does after an expiry's close: every contract that
        expired before `now`'s date, or on it (`now` is after its close), leaves the account; cash
        takes its intrinsic value from `prices` (underlying -> settlement price; a missing underlying
        settles at 0), leg by leg for combos (each leg is its own position here), a short leg paying
        it. Working orders on those contracts are cancelled. Returns the positions settled."""
        self._now = now
        today = now.date()
        settled = []
        for key, pos in list(self._positions.items()):
            if pos.contract.expiry > today:
                continue
            price = prices.get(pos.contract.underlying)
            value = Decimal(0) if price is None else intrinsic(pos.contract, price)
            self._cash += value * pos.quantity * pos.contract.multiplier
            settled.append(BrokerPosition(pos.contract, pos.quantity, pos.avg_cost))
            del self._positions[key]
            self._note("info", "sim_expired", key=key, quantity=pos.quantity, settlement=str(value))
        for order in list(self._orders.values()):
            contracts = [leg.contract for leg in order.request.legs] or [order.request.contract]
            if order.working and any(c.expiry <= today for c in contracts):
                self._cancel_now(order.request.order_id)
        return settled

    # ------------------------------------------------------------------ orders in

    def place(self, cmd: object, now: datetime) -> None:
        """Send an order (a `Place` command or an OrderRequest); it reaches the exchange after the
        latency. Raises BrokerError for what is refused on the spot (duplicate id, bad order)."""
        order = _request_of(cmd)
        if order.order_id in self._orders:
            raise BrokerError("duplicate_order_id", f"order id {order.order_id} was used before")
        validate_order(order)
        self._next_id = max(self._next_id, order.order_id + 1)
        self._orders[order.order_id] = _SimOrder(order)
        self._schedule(now, "arrive", order.order_id)

    def modify(self, cmd: object, now: datetime) -> None:
        order = _request_of(cmd)
        current = self._working(order.order_id)
        validate_order(order)
        if (order.contract, order.side, order.order_type) != (current.request.contract, current.request.side,
                                                             current.request.order_type):
            raise BrokerError("modify_mismatch", "a modification may change price and quantity only")
        self._schedule(now, "replace", order)

    def cancel(self, cmd: object, now: datetime) -> None:
        order_id = cmd if isinstance(cmd, int) else getattr(cmd, "order_id", None)
        if not isinstance(order_id, int):
            raise BrokerError("bad_command", f"expected an order id, got {cmd!r}")
        self._working(order_id)
        self._schedule(now, "cancel", order_id)

    def _working(self, order_id: int) -> _SimOrder:
        order = self._orders.get(order_id)
        if order is None:
            raise BrokerError("unknown_order", f"no order {order_id}")
        if not order.working:
            raise BrokerError("order_not_working", f"order {order_id} is {order.status.value}")
        return order

    # ------------------------------------------------------------------ time

    def _schedule(self, now: datetime, what: str, payload: object) -> None:
        self._now = now
        heapq.heappush(self._due, (now + self._latency, next(self._seq), what, payload))

    def next_deadline(self) -> datetime | None:
        """When the next order, change or cancel reaches the exchange; None when nothing travels."""
        return self._due[0][0] if self._due else None

    def advance(self, now: datetime) -> None:
        """Carry out every venue event due at or before `now`, each at the moment it was due."""
        due = self._due
        while due and due[0][0] <= now:
            when, _, what, payload = heapq.heappop(due)
            self._now = when
            try:
                if what == "arrive":
                    self._arrive(payload)  # type: ignore[arg-type]
                elif what == "replace":
                    self._replace(payload)  # type: ignore[arg-type]
                else:
                    self._cancel_now(payload)  # type: ignore[arg-type]
            except Exception as exc:  # noqa: BLE001 - the exchange must keep running
                self.failures += 1
                log.exception("sim_action_failed", action=what, error=repr(exc))
        if self._now is None or now > self._now:
            self._now = now

    def take_events(self) -> list[VenueEvent]:
        events = self._events[:]
        self._events.clear()
        return events

    @property
    def has_events(self) -> bool:
        return bool(self._events)

    # ------------------------------------------------------------------ the exchange

    def _arrive(self, order_id: int) -> None:
        order = self._orders[order_id]
        if not order.working:
            return
        refusal = self._refusal(order.request)
        if refusal is not None:
            self._finish(order, OrderStatus.REJECTED, refusal)
            return
        order.active = True
        order.status = OrderStatus.SUBMITTED
        self._rest(order)
        self._emit_update(order)
        self._match(order, self._quotes.get(order.request.contract.key))

    def _refusal(self, request: OrderRequest) -> str | None:
        """What a cash options account refuses: buying beyond cash, selling what is not held."""
        if request.legs:
            return self._combo_refusal(request)
        if request.side == "BUY":
            price = request.limit_price if request.order_type == "LMT" else None
            if price is not None and request.quantity * price * request.contract.multiplier > self._cash:
                return "insufficient_funds"
        elif request.quantity > self._long_quantity(request.contract):
            return "would_open_short"
        return None

    def _combo_refusal(self, request: OrderRequest) -> str | None:
        """A combo either opens a defined-risk position (every short leg covered by a long leg of the
        same right and expiry in the same combo, the debit within cash) or closes one that is held
        (every leg reduces what the account holds): anything else is refused whole, no leg trades."""
        qty = request.quantity
        if all(self._reduces(leg.contract, leg.side_for(request.side), leg.ratio * qty) for leg in request.legs):
            return None
        longs: dict[tuple[object, str], int] = {}
        for leg in request.legs:
            if leg.side_for(request.side) == "BUY":
                longs[(leg.contract.expiry, leg.contract.right)] = longs.get(
                    (leg.contract.expiry, leg.contract.right), 0) + leg.ratio
        for leg in request.legs:
            if leg.side_for(request.side) == "SELL" and longs.get((leg.contract.expiry, leg.contract.right), 0) < leg.ratio:
                return "would_open_short"
        assert request.limit_price is not None
        net = request.limit_price if request.side == "BUY" else -request.limit_price
        if qty * max(net, Decimal(0)) * request.contract.multiplier > self._cash:
            return "insufficient_funds"
        return None

    def _reduces(self, contract: OptionContract, side: str, quantity: int) -> bool:
        pos = self._positions.get(contract.key)
        held = 0 if pos is None else pos.quantity
        return held >= quantity if side == "SELL" else -held >= quantity

    def _replace(self, request: OrderRequest) -> None:
        order = self._orders[request.order_id]
        if not order.working:
            return  # it filled or was cancelled while the modification travelled
        order.request = request
        if order.remaining <= 0:
            self._finish(order, OrderStatus.FILLED)
            return
        order.status = OrderStatus.PARTIALLY_FILLED if order.filled else OrderStatus.SUBMITTED
        self._emit_update(order)
        if order.active:
            self._match(order, self._quotes.get(request.contract.key))

    def _cancel_now(self, order_id: int) -> None:
        order = self._orders[order_id]
        if order.working:
            self._finish(order, OrderStatus.CANCELLED, "cancelled")

    def _finish(self, order: _SimOrder, status: OrderStatus, reason: str | None = None) -> None:
        order.status = status
        order.ended = status.done
        self._rest_no_more(order)
        self._emit_update(order, reason)

    def _rest(self, order: _SimOrder) -> None:
        for key in _keys(order.request):  # a combo rests on every leg: any leg's quote may complete it
            self._resting[key] = (*self._resting.get(key, ()), order)

    def _rest_no_more(self, order: _SimOrder) -> None:
        for key in _keys(order.request):
            resting = self._resting.get(key)
            if resting is not None and order in resting:
                left = tuple(o for o in resting if o is not order)
                if left:
                    self._resting[key] = left
                else:
                    del self._resting[key]

    # ------------------------------------------------------------------ matching

    def on_quote(self, quote: Quote, now: datetime) -> None:
        """A quote of `quote.key` at `now`: match what rests on that key (nothing to do, no allocation,
        when nothing rests there)."""
        resting = self._resting.get(quote.key)
        if resting is None:
            return
        self._now = now
        if not quote.usable:
            return
        for order in resting:
            if not order.ended:  # an earlier one in this walk may have ended it
                self._match(order, quote)

    def _match(self, order: _SimOrder, quote: Quote | None) -> None:
        if order.request.legs:
            self._match_combo(order)
            return
        if quote is None or not quote.usable:
            return
        req = order.request
        buy = req.side == "BUY"
        if req.order_type == "STP" and not order.triggered:  # the common case of a resting stop: one compare
            trigger = quote.ask if buy else quote.bid
            if trigger is None or (trigger < req.stop_price if buy else trigger > req.stop_price):  # type: ignore[operator]
                return
            order.triggered = True
            self._note("info", "sim_stop_triggered", order_id=req.order_id, stop=str(req.stop_price), at=str(trigger))
        touch, shown = (quote.ask, quote.ask_size) if buy else (quote.bid, quote.bid_size)
        if touch is None or touch <= 0 or (not buy and self._bid_withheld(quote.key, self._now)):
            return
        if req.order_type == "LMT" and (req.limit_price < touch if buy else req.limit_price > touch):  # type: ignore[operator]
            return
        consumed = self._consumed.get(quote.key)
        if consumed is None or consumed[0] is not quote:
            consumed = self._consumed[quote.key] = [quote, 0, 0]
        side = 1 if buy else 2
        # A size of 0 means the feed did not report one: then the whole order can fill.
        available = shown - consumed[side] if shown > 0 else order.remaining
        qty = min(order.remaining, available)
        if not buy:
            held = self._long_quantity(req.contract)
            if held <= 0:
                self._finish(order, OrderStatus.CANCELLED, "no_position")
                return
            qty = min(qty, held)
        if qty <= 0:
            return
        consumed[side] += qty
        self._fill(order, qty, touch)

    def _match_combo(self, order: _SimOrder) -> None:
        """All legs or none: the combo trades when its net touch (from every leg's quote) reaches the
        limit, as many units as every leg shows (each quote's size offered once), every leg at its touch."""
        req = order.request
        quotes = []
        for leg in req.legs:
            quote = self._quotes.get(leg.contract.key)
            if quote is None or not quote.usable:
                return
            quotes.append(quote)
        touch = net_touch(req.legs, quotes, req.side)
        if touch is None or (req.limit_price < touch if req.side == "BUY" else req.limit_price > touch):  # type: ignore[operator]
            return
        qty = order.remaining
        takes = []
        for leg, quote in zip(req.legs, quotes):
            buy = leg.side_for(req.side) == "BUY"
            if not buy and self._bid_withheld(quote.key, self._now):
                return
            shown = quote.ask_size if buy else quote.bid_size
            consumed = self._consumed.get(quote.key)
            if consumed is None or consumed[0] is not quote:
                consumed = self._consumed[quote.key] = [quote, 0, 0]
            side = 1 if buy else 2
            if shown > 0:
                qty = min(qty, (shown - consumed[side]) // leg.ratio)
            takes.append((leg, quote, buy, consumed, side))
        if qty <= 0:
            return
        refusal = self._combo_refusal(replace(req, quantity=qty))
        if refusal is not None:  # the account changed while it rested: refused whole, no leg trades
            self._finish(order, OrderStatus.CANCELLED, refusal)
            return
        for leg, quote, buy, consumed, side in takes:
            consumed[side] += qty * leg.ratio
        self._fill_combo(order, qty, [(leg, leg_touch(quote, "BUY" if buy else "SELL")) for leg, quote, buy, _, _ in takes])

    def _fill_combo(self, order: _SimOrder, qty: int, prices: list) -> None:  # type: ignore[type-arg]
        req = order.request
        contracts = sum(leg.ratio for leg, _ in prices)
        total = max(self._cfg.commission_per_contract * contracts * (order.filled + qty),
                    self._cfg.commission_min_per_order)
        commission = total - order.commission
        order.commission = total
        order.filled += qty
        net = sum(((p if leg.side == "BUY" else -p) * leg.ratio for leg, p in prices), Decimal(0))
        order.notional += net * qty
        fills = []
        for i, (leg, price) in enumerate(prices):
            side = leg.side_for(req.side)
            leg_qty = qty * leg.ratio
            value = price * leg_qty * leg.contract.multiplier
            self._cash += -value if side == "BUY" else value
            pos = self._positions.get(leg.contract.key)
            if pos is None:
                pos = self._positions[leg.contract.key] = Position(leg.contract)
            pos.apply(leg_qty if side == "BUY" else -leg_qty, price)
            if pos.quantity == 0:
                del self._positions[leg.contract.key]
            # the order's commission is charged once, on its first leg's execution
            fills.append(Fill(f"{self._exec_prefix}{req.order_id:08d}-{order.filled:06d}-{i}", req.order_id,
                              req.order_ref, leg.contract, side, leg_qty, price, self._now,  # type: ignore[arg-type]
                              commission if i == 0 else Decimal(0)))
        self._cash -= commission
        self._fills.extend(fills)
        order.status = OrderStatus.FILLED if order.remaining == 0 else OrderStatus.PARTIALLY_FILLED
        if order.remaining == 0:
            order.ended = True
            self._rest_no_more(order)
        self._note("debug", "sim_combo_fill", order_id=req.order_id, order_ref=req.order_ref, quantity=qty,
                   net=str(net))
        self._events.extend(fills)
        self._emit_update(order)

    def _long_quantity(self, contract: OptionContract) -> int:
        pos = self._positions.get(contract.key)
        return pos.quantity if pos is not None and pos.quantity > 0 else 0

    def _fill(self, order: _SimOrder, qty: int, price: Decimal) -> None:
        req = order.request
        # IB charges per contract with a minimum per order: partial fills share the one minimum.
        total = max(self._cfg.commission_per_contract * (order.filled + qty), self._cfg.commission_min_per_order)
        commission = total - order.commission
        order.commission = total
        order.filled += qty
        order.notional += price * qty
        value = price * qty * req.contract.multiplier
        signed = qty if req.side == "BUY" else -qty
        self._cash += -value - commission if req.side == "BUY" else value - commission
        pos = self._positions.get(req.contract.key)
        if pos is None:
            pos = self._positions[req.contract.key] = Position(req.contract)
        pos.apply(signed, price)
        if pos.quantity == 0:
            del self._positions[req.contract.key]
        # Zero-padded so one order's ids (and orders placed in id order) sort in the order they happened.
        fill = Fill(f"{self._exec_prefix}{req.order_id:08d}-{order.filled:06d}", req.order_id, req.order_ref,
                    req.contract, req.side, qty, price, self._now, commission)  # type: ignore[arg-type]
        self._fills.append(fill)
        order.status = OrderStatus.FILLED if order.remaining == 0 else OrderStatus.PARTIALLY_FILLED
        if order.remaining == 0:
            order.ended = True
            self._rest_no_more(order)
        self._note("debug", "sim_fill", order_id=req.order_id, order_ref=req.order_ref, quantity=qty, price=str(price))
        self._events.append(fill)
        self._emit_update(order)

    def _note(self, level: str, event: str, **fields: Any) -> None:
        if self._log_to is not None:
            self._log_to(level, event, fields)

    def _emit_update(self, order: _SimOrder, reason: str | None = None) -> None:
        self._events.append(OrderUpdate(
            order.request.order_id, order.request.order_ref, order.status, order.filled, order.remaining,
            order.avg_price, self._now, reason))  # type: ignore[arg-type]


def _keys(request: OrderRequest) -> tuple[str, ...]:
    return tuple(leg.contract.key for leg in request.legs) if request.legs else (request.contract.key,)
