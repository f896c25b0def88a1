"""SimBroker: an in-process paper exchange behind the same Broker interface as IB.

Orders reach the "exchange" after `broker.sim.latency_ms` on the injected clock and fill
against the engine's QuoteBook: a BUY when its limit reaches the ask (at the ask), a SELL when
its limit reaches the bid (at the bid), each quote update offering its displayed size once.
A resting STP order triggers when the bid falls to its stop (BUY stops: the ask rises to it)
and then fills as a marketable order. Commissions follow IB's per-contract schedule with a
per-order minimum. Options the book has no recorded quote for are priced by an
OptionQuoteModel when one is given. The sim does not emit `on_quote`: the book it reads is
the engine's own, which already has every quote.

A process restart: IB keeps the account (positions, cash, working orders) while the daemon is
down; the in-process sim dies with it. `SimAccountState` is what the account held, built from
the store's fills and working intents by `stored_account_state`, and handed to a new sim with
`SimBroker(..., prior=...)` or `restore(...)`. Execution ids carry a per-instance session
token, so a new sim never repeats an id the store already holds.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

import structlog

from broker.base import BrokerError, BrokerListener
from broker.listings import ListingError, option_chain
from broker.quote_model import OptionQuoteModel, is_option_key
from broker.quotes import QuoteBook
from market.types import (
    AccountSnapshot,
    BrokerPosition,
    Fill,
    OpenOrder,
    OptionChain,
    OptionContract,
    OrderRequest,
    OrderStatus,
    OrderUpdate,
    Quote,
)
from config.models import Settings
from market.clock import Clock

log = structlog.get_logger(__name__)

ACCOUNT_ID = "SIM"
CURRENCY = "USD"
# Intent states whose order reached the exchange (an "intent" may never have been sent).
SENT_INTENT_STATES = frozenset({"sent", "acked", "working"})
ALL_ROWS = 10**9  # the store's listings take a limit; an account's whole history is far below it
_instances = itertools.count(1)  # with a random part, ids differ between instances of one process too


@dataclass(eq=False)
class _SimOrder:
    request: OrderRequest
    status: OrderStatus = OrderStatus.PENDING_SUBMIT
    filled: int = 0
    notional: Decimal = Decimal(0)  # Σ price × quantity of fills, for the average
    commission: Decimal = Decimal(0)
    triggered: bool = False  # STP: the stop was touched, it now trades as a market order
    active: bool = False  # it has reached the exchange (after the latency)

    @property
    def remaining(self) -> int:
        return self.request.quantity - self.filled

    @property
    def working(self) -> bool:
        return not self.status.done

    @property
    def avg_price(self) -> Decimal | None:
        return self.notional / self.filled if self.filled else None


@dataclass
class _Position:
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


@dataclass
class _Consumed:
    """How much of one quote's displayed size fills have taken (each quote update shows its size once)."""

    quote: Quote
    taken: dict[str, int] = field(default_factory=lambda: {"BUY": 0, "SELL": 0})


def _positive(price: Decimal | None) -> bool:
    return isinstance(price, Decimal) and price.is_finite() and price > 0


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


PriorState = SimAccountState | Callable[[], Awaitable[SimAccountState]]


class FillLike(Protocol):
    """A stored fill (`daemon.store.records.FillRecord`); a `market.types.Fill` also fits."""

    exec_id: str
    order_id: int
    side: str
    quantity: int
    price: Decimal
    commission: Decimal
    at: datetime


class IntentLike(Protocol):
    """A stored order intent (`daemon.store.records.IntentRecord`)."""

    order_id: int
    order_ref: str
    contract_key: str
    side: str
    quantity: int
    order_type: str
    limit_price: Decimal | None
    stop_price: Decimal | None
    tif: str
    state: str
    created_at: datetime


class OrderStatusLike(Protocol):
    """The broker's last word on an order (`daemon.store.records.OrderRecord`)."""

    order_id: int
    filled: int
    remaining: int


def starting_cash(settings: Settings) -> Decimal:
    cfg = settings.broker.sim
    return cfg.starting_cash if cfg.starting_cash is not None else settings.capital.account_size


def _fill_contract(fill: Any, multiplier: int) -> OptionContract:
    contract = getattr(fill, "contract", None)
    return contract if isinstance(contract, OptionContract) else OptionContract.from_key(fill.contract_key, multiplier)


def account_state_from_history(fills: Iterable[FillLike], intents: Iterable[IntentLike], *, cash: Decimal,
                               multiplier: int, session_day: date,
                               statuses: Iterable[OrderStatusLike] = ()) -> SimAccountState:
    """The account a sim would hold after `fills` (any order), starting from `cash`, with the
    `intents` that reached the exchange still working: DAY orders of `session_day` and GTC orders
    (a DAY order of an earlier session expired at its close), less what they already filled.

    An intent is the order as first sent; a modification changes the quantity the broker reports
    (`statuses`: filled + remaining), which wins. A modified price is not kept anywhere: such an
    order rests at its first price (the engine's stop desk re-prices its stops when it starts)."""
    quantities = {s.order_id: s.filled + s.remaining for s in statuses if s.filled + s.remaining > 0}
    positions: dict[str, _Position] = {}
    done: dict[int, tuple[int, Decimal, Decimal]] = {}  # order id -> filled, notional, commission
    for fill in sorted(fills, key=lambda f: (f.at, f.exec_id)):
        contract = _fill_contract(fill, multiplier)
        value = fill.price * fill.quantity * contract.multiplier
        cash += (value if fill.side == "SELL" else -value) - fill.commission
        pos = positions.setdefault(contract.key, _Position(contract))
        pos.apply(fill.quantity if fill.side == "BUY" else -fill.quantity, fill.price)
        qty, notional, commission = done.get(fill.order_id, (0, Decimal(0), Decimal(0)))
        done[fill.order_id] = (qty + fill.quantity, notional + fill.price * fill.quantity, commission + fill.commission)
    orders = []
    for intent in intents:
        if intent.state not in SENT_INTENT_STATES:
            continue
        if intent.tif != "GTC" and intent.created_at.date() != session_day:
            continue
        filled, notional, commission = done.get(intent.order_id, (0, Decimal(0), Decimal(0)))
        quantity = quantities.get(intent.order_id, intent.quantity)
        if filled >= quantity:
            continue
        request = OrderRequest(intent.order_id, intent.order_ref,
                               OptionContract.from_key(intent.contract_key, multiplier), intent.side,  # type: ignore[arg-type]
                               quantity, intent.order_type, intent.limit_price,  # type: ignore[arg-type]
                               intent.stop_price, intent.tif)  # type: ignore[arg-type]
        orders.append(RestingOrder(request, filled, notional, commission))
    held = tuple(BrokerPosition(p.contract, p.quantity, p.avg_cost) for p in positions.values() if p.quantity)
    return SimAccountState(held, cash, tuple(orders))


async def stored_account_state(store: Any, settings: Settings, now: datetime) -> SimAccountState:
    """The account as the store (a `daemon.store.Store` of this profile) knows it at `now`."""
    return account_state_from_history(await store.list_fills(limit=ALL_ROWS), await store.load_pending_intents(),
                                      cash=starting_cash(settings), multiplier=settings.profile.contract_multiplier,
                                      session_day=now.date(),
                                      statuses=await store.list_orders(limit=ALL_ROWS, open_only=True))


class SimBroker:
    name = "sim"

    def __init__(self, book: QuoteBook, clock: Clock, settings: Settings, *,
                 quote_model: OptionQuoteModel | None = None, account_id: str = ACCOUNT_ID,
                 prior: PriorState | None = None, session: str | None = None):
        """`prior`: the account's state to start from (see `restore`), or an async loader of it,
        awaited in `start()` (after the engine migrated the store). `session`: the token in this
        instance's execution ids; by default a fresh random one."""
        self._book = book
        self._clock = clock
        self._cfg = settings.broker.sim
        self._quote_model = quote_model
        self._account_id = account_id
        self._prior = prior
        self._session = session if session is not None else f"{uuid.uuid4().hex[:12]}{next(_instances)}"
        self._cash = starting_cash(settings)
        self._orders: dict[int, _SimOrder] = {}
        self._resting: dict[str, dict[int, _SimOrder]] = {}  # contract key -> working orders at the exchange
        self._positions: dict[str, _Position] = {}
        self._fills: list[Fill] = []
        self._consumed: dict[str, _Consumed] = {}
        self._listener: BrokerListener | None = None
        self._connected = False
        self._detach: Callable[[], None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._next_id = 1
        self._exec_seq = itertools.count(1)
        self._bids_withheld: dict[str, datetime] = {}  # fault injection: key -> until

    # ------------------------------------------------------------------ lifecycle

    @property
    def connected(self) -> bool:
        return self._connected

    def set_listener(self, listener: BrokerListener) -> None:
        self._listener = listener

    async def start(self) -> None:
        if self._connected:
            return
        if self._prior is not None:
            prior, self._prior = self._prior, None
            self.restore(prior if isinstance(prior, SimAccountState) else await prior())
        self._detach = self._book.add_listener(self._on_quote)
        if self._quote_model is not None:
            self._quote_model.attach()
        self._connected = True
        if self._listener is not None:
            self._listener.on_connection(True, "sim_started")

    def restore(self, state: SimAccountState) -> None:
        """Take over the account's prior state: positions, cash and the orders still working at the
        exchange (resting from now on, without the latency). Only on a sim that has not started
        nor traded: the state replaces the account, it is not merged into one."""
        if self._connected or self._orders or self._fills:
            raise BrokerError("restore_too_late", "a sim takes its prior state before it starts or trades")
        positions: dict[str, _Position] = {}
        for held in state.positions:
            if held.quantity == 0 or held.contract.key in positions or not (
                    isinstance(held.avg_cost, Decimal) and held.avg_cost.is_finite() and held.avg_cost >= 0):
                raise BrokerError("bad_prior_state", f"position {held.contract.key}: {held.quantity} "
                                                     f"at {held.avg_cost} (zero, repeated or a bad cost)")
            positions[held.contract.key] = _Position(held.contract, held.quantity, held.avg_cost)
        if state.cash is not None and not (isinstance(state.cash, Decimal) and state.cash.is_finite()):
            raise BrokerError("bad_prior_state", f"cash must be a finite Decimal, got {state.cash!r}")
        orders: dict[int, _SimOrder] = {}
        for resting in state.orders:
            request = resting.request
            self._validate(request)
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
        self._resting = {}
        for order_id, order in orders.items():
            self._resting.setdefault(order.request.contract.key, {})[order_id] = order
        self._next_id = max([self._next_id, *(i + 1 for i in orders)])
        log.info("sim_restored", positions=len(positions), cash=str(self._cash), orders=len(orders))

    def withhold_bids(self, key: str, until: datetime | None) -> None:
        """Fault injection (tests, drills): until `until` on the injected clock (None lifts it) the
        bids of `key` show no size: sells against them rest unfilled while the quotes go on marking
        positions, as in a gap where buyers pulled their bids. Resting sells fill on the first
        quote after it ends."""
        if until is None:
            self._bids_withheld.pop(key, None)
        else:
            self._bids_withheld[key] = until
        log.warning("sim_fault_bids_withheld", key=key, until=None if until is None else until.isoformat())

    def _bid_withheld(self, key: str) -> bool:
        until = self._bids_withheld.get(key)
        if until is None:
            return False
        if self._clock.now() < until:
            return True
        del self._bids_withheld[key]
        return False

    async def stop(self) -> None:
        if self._detach is not None:
            self._detach()
            self._detach = None
        for task in list(self._tasks):
            task.cancel()
        self._connected = False
        if self._listener is not None:
            self._listener.on_connection(False, "sim_stopped")

    # ------------------------------------------------------------------ account and data

    async def account(self) -> AccountSnapshot:
        value = Decimal(0)
        for pos in self._positions.values():
            quote = self._book.get(pos.contract.key)
            mark = quote.mid if quote is not None and quote.mid is not None else pos.avg_cost
            value += pos.quantity * mark * pos.contract.multiplier
        return AccountSnapshot(self._account_id, CURRENCY, self._cash + value, self._cash, self._cash, paper=True)

    async def next_order_id(self) -> int:
        return self._next_id

    async def chain(self, underlying: str) -> OptionChain:
        quote = self._book.get(underlying)
        spot = None if quote is None else quote.mid
        if spot is None or spot <= 0:
            raise BrokerError("no_underlying_quote", f"no price for {underlying} to list strikes around")
        try:
            return option_chain(underlying, self._clock.now().date(), spot)
        except ListingError as exc:
            raise BrokerError(exc.code, str(exc)) from None

    async def subscribe(self, keys: list[str]) -> None:
        if self._quote_model is None:
            return
        added = self._quote_model.track(keys)
        for underlying in sorted({k.split(" ", 1)[0] for k in added}):
            self._quote_model.refresh(underlying)

    async def unsubscribe(self, keys: list[str]) -> None:
        if self._quote_model is not None:
            self._quote_model.untrack(keys)

    async def snapshot(self, key: str) -> Quote:
        current = self._book.get(key)
        if self._quote_model is not None and is_option_key(key) and (current is None or current.modelled):
            modelled = self._quote_model.quote_for(OptionContract.from_key(key))
            if modelled is not None:
                self._book.update(modelled)
        quote = self._book.get(key)
        if quote is None:
            raise BrokerError("no_quote", f"no quote for {key}")
        return quote

    async def positions(self) -> list[BrokerPosition]:
        return [BrokerPosition(p.contract, p.quantity, p.avg_cost) for p in self._positions.values() if p.quantity]

    async def open_orders(self) -> list[OpenOrder]:
        return [OpenOrder(o.request, o.status, o.filled) for o in self._orders.values() if o.working]

    async def executions(self, since: datetime | None = None) -> list[Fill]:
        """Fills at or after `since` (inclusive: the caller dedupes by exec_id, a tie must not be lost)."""
        return [f for f in self._fills if since is None or f.at >= since]

    # ------------------------------------------------------------------ orders

    async def place(self, order: OrderRequest) -> None:
        self._require_connected()
        if order.order_id in self._orders:
            raise BrokerError("duplicate_order_id", f"order id {order.order_id} was used before")
        self._validate(order)
        self._next_id = max(self._next_id, order.order_id + 1)
        self._orders[order.order_id] = _SimOrder(order)
        self._after_latency(lambda: self._arrive(order.order_id))

    async def modify(self, order: OrderRequest) -> None:
        self._require_connected()
        current = self._working(order.order_id)
        self._validate(order)
        if (order.contract, order.side, order.order_type) != (current.request.contract, current.request.side,
                                                             current.request.order_type):
            raise BrokerError("modify_mismatch", "a modification may change price and quantity only")
        self._after_latency(lambda: self._replace(order))

    async def cancel(self, order_id: int) -> None:
        self._require_connected()
        self._working(order_id)
        self._after_latency(lambda: self._cancel_now(order_id))

    def _require_connected(self) -> None:
        if not self._connected:
            raise BrokerError("not_connected", "the sim broker is not started")

    def _working(self, order_id: int) -> _SimOrder:
        order = self._orders.get(order_id)
        if order is None:
            raise BrokerError("unknown_order", f"no order {order_id}")
        if not order.working:
            raise BrokerError("order_not_working", f"order {order_id} is {order.status.value}")
        return order

    @staticmethod
    def _validate(order: OrderRequest) -> None:
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

    def _after_latency(self, action: Callable[[], None]) -> None:
        async def later() -> None:
            await self._clock.sleep(self._cfg.latency_ms / 1000)
            try:
                action()
            except Exception:  # noqa: BLE001 - the exchange must keep running
                log.exception("sim_action_failed")

        task = asyncio.get_running_loop().create_task(later())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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
        self._resting.setdefault(order.request.contract.key, {})[order_id] = order
        self._emit_update(order)
        self._match(order, self._book.get(order.request.contract.key))

    def _refusal(self, request: OrderRequest) -> str | None:
        """What a cash options account refuses: buying beyond cash, selling what is not held."""
        if request.side == "BUY":
            price = request.limit_price if request.order_type == "LMT" else None
            if price is not None and request.quantity * price * request.contract.multiplier > self._cash:
                return "insufficient_funds"
        elif request.quantity > self._long_quantity(request.contract):
            return "would_open_short"
        return None

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
            self._match(order, self._book.get(request.contract.key))

    def _cancel_now(self, order_id: int) -> None:
        order = self._orders[order_id]
        if order.working:
            self._finish(order, OrderStatus.CANCELLED, "cancelled")

    def _finish(self, order: _SimOrder, status: OrderStatus, reason: str | None = None) -> None:
        order.status = status
        self._rest_no_more(order)
        self._emit_update(order, reason)

    def _rest_no_more(self, order: _SimOrder) -> None:
        self._resting.get(order.request.contract.key, {}).pop(order.request.order_id, None)

    # ------------------------------------------------------------------ matching

    def _on_quote(self, quote: Quote) -> None:
        for order in list(self._resting.get(quote.key, {}).values()):
            if order.working:
                self._match(order, quote)

    def _match(self, order: _SimOrder, quote: Quote | None) -> None:
        if quote is None or not quote.usable:
            return
        req = order.request
        buy = req.side == "BUY"
        touch, shown = (quote.ask, quote.ask_size) if buy else (quote.bid, quote.bid_size)
        if req.order_type == "STP" and not order.triggered:
            trigger = quote.ask if buy else quote.bid
            if trigger is None or (trigger < req.stop_price if buy else trigger > req.stop_price):  # type: ignore[operator]
                return
            order.triggered = True
            log.info("sim_stop_triggered", order_id=req.order_id, stop=str(req.stop_price), at=str(trigger))
        if touch is None or touch <= 0 or (not buy and self._bid_withheld(quote.key)):
            return
        if req.order_type == "LMT" and (req.limit_price < touch if buy else req.limit_price > touch):  # type: ignore[operator]
            return
        consumed = self._consumed.get(quote.key)
        if consumed is None or consumed.quote is not quote:
            consumed = self._consumed[quote.key] = _Consumed(quote)
        # A size of 0 means the feed did not report one: then the whole order can fill.
        available = shown - consumed.taken[req.side] if shown > 0 else order.remaining
        qty = min(order.remaining, available)
        if not buy:
            held = self._long_quantity(req.contract)
            if held <= 0:
                self._finish(order, OrderStatus.CANCELLED, "no_position")
                return
            qty = min(qty, held)
        if qty <= 0:
            return
        consumed.taken[req.side] += qty
        self._fill(order, qty, touch)

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
        pos = self._positions.setdefault(req.contract.key, _Position(req.contract))
        pos.apply(signed, price)
        if pos.quantity == 0:
            del self._positions[req.contract.key]
        # Zero-padded so ids of one instance sort in the order they happened.
        fill = Fill(f"SIM-{self._session}-{next(self._exec_seq):08d}", req.order_id, req.order_ref, req.contract, req.side, qty, price,
                    self._clock.now(), commission)
        self._fills.append(fill)
        order.status = OrderStatus.FILLED if order.remaining == 0 else OrderStatus.PARTIALLY_FILLED
        if order.remaining == 0:
            self._rest_no_more(order)
        log.debug("sim_fill", order_id=req.order_id, order_ref=req.order_ref, quantity=qty, price=str(price))
        if self._listener is not None:
            self._listener.on_fill(fill)
        self._emit_update(order)

    def _emit_update(self, order: _SimOrder, reason: str | None = None) -> None:
        if self._listener is None:
            return
        self._listener.on_order_update(OrderUpdate(
            order.request.order_id, order.request.order_ref, order.status, order.filled, order.remaining,
            order.avg_price, self._clock.now(), reason))
