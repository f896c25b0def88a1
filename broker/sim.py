"""SimBroker: the in-process paper exchange behind the same Broker interface as IB, for the live shell.

A thin async adapter over `broker.sim_venue.SimVenue`, which holds the account and does the
matching (see there: fills at the touch by displayed size, resting stops, commissions, refusals).
This adapter feeds it the engine's QuoteBook (it listens to the book: every stored quote is
offered to the venue at once), carries out the venue's modelled latency on the injected clock
(a task sleeps until the venue's next deadline and advances it), and hands the venue's order
updates and fills to the listener as soon as they happen. Options the book has no recorded
quote for are priced by an OptionQuoteModel when one is given. The sim does not emit
`on_quote`: the book it reads is the engine's own, which already has every quote.

A process restart: IB keeps the account (positions, cash, working orders) while the daemon is
down; the in-process sim dies with it. `SimAccountState` is what the account held, built from
the store's fills and working intents by `stored_account_state`, and handed to a new sim with
`SimBroker(..., prior=...)` or `restore(...)`. Execution ids carry a per-instance session
token (random unless given), so a new sim never repeats an id the store already holds.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

import structlog

from broker.base import BrokerError, BrokerListener
from broker.listings import ListingError, option_chain
from broker.quote_model import OptionQuoteModel, is_option_key
from broker.quotes import QuoteBook
from broker.sim_venue import ACCOUNT_ID, CURRENCY, Position, RestingOrder, SimAccountState, SimVenue
from config.models import Settings
from market import settled as settled_record
from market.clock import Clock
from market.intrinsic import intrinsic
from market.settled import Settlements
from market.types import (
    AccountSnapshot,
    BrokerPosition,
    Fill,
    OpenOrder,
    OptionChain,
    OptionContract,
    OrderRequest,
    Quote,
)

log = structlog.get_logger(__name__)
ZERO = Decimal(0)


def structlog_sink(level: str, event: str, fields: dict[str, Any]) -> None:
    getattr(log, level)(event, **fields)

__all__ = ["ACCOUNT_ID", "CURRENCY", "RestingOrder", "SimAccountState", "SimBroker", "account_state_from_history",
           "starting_cash", "stored_account_state"]

# Intent states whose order reached the exchange (an "intent" may never have been sent).
SENT_INTENT_STATES = frozenset({"sent", "acked", "working"})
ALL_ROWS = 10**9  # the store's listings take a limit; an account's whole history is far below it
_instances = itertools.count(1)  # with a random part, ids differ between instances of one process too

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
                               statuses: Iterable[OrderStatusLike] = (),
                               settlements: Settlements | None = None) -> SimAccountState:
    """The account a sim would hold after `fills` (any order), starting from `cash`, with the
    `intents` that reached the exchange still working: DAY orders of `session_day` and GTC orders
    (a DAY order of an earlier session expired at its close), less what they already filled.

    An intent is the order as first sent; a modification changes the quantity the broker reports
    (`statuses`: filled + remaining), which wins. A modified price is not kept anywhere: such an
    order rests at its first price (the engine's stop desk re-prices its stops when it starts).

    `settlements` (`market.settled`): the expiries the core settled. A contract held of one leaves the
    account, cash taking its intrinsic value from the stored price (0 without one), and no order on it
    rests, as `SimVenue.settle_expired` did before the restart."""
    quantities = {s.order_id: s.filled + s.remaining for s in statuses if s.filled + s.remaining > 0}
    positions: dict[str, Position] = {}
    done: dict[int, tuple[int, Decimal, Decimal]] = {}  # order id -> filled, notional, commission
    for fill in sorted(fills, key=lambda f: (f.at, f.exec_id)):
        contract = _fill_contract(fill, multiplier)
        value = fill.price * fill.quantity * contract.multiplier
        cash += (value if fill.side == "SELL" else -value) - fill.commission
        pos = positions.setdefault(contract.key, Position(contract))
        pos.apply(fill.quantity if fill.side == "BUY" else -fill.quantity, fill.price)
        qty, notional, commission = done.get(fill.order_id, (0, Decimal(0), Decimal(0)))
        done[fill.order_id] = (qty + fill.quantity, notional + fill.price * fill.quantity, commission + fill.commission)
    settled = settlements or {}
    for key, pos in list(positions.items()):
        contract = pos.contract
        if (contract.underlying, contract.expiry) in settled:
            price = settled[(contract.underlying, contract.expiry)]
            cash += (ZERO if price is None else intrinsic(contract, price)) * pos.quantity * contract.multiplier
            del positions[key]
    orders = []
    for intent in intents:
        if intent.state not in SENT_INTENT_STATES:
            continue
        if intent.tif != "GTC" and intent.created_at.date() != session_day:
            continue
        if _settled_contract(intent.contract_key, settled):
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


def _settled_contract(contract_key: str, settled: Settlements) -> bool:
    if not settled:
        return False
    try:
        contract = OptionContract.from_key(contract_key)
    except (ValueError, ArithmeticError):  # not one option's key: no expiry of its own to look up
        return False
    return (contract.underlying, contract.expiry) in settled


async def stored_account_state(store: Any, settings: Settings, now: datetime) -> SimAccountState:
    """The account as the store (a `daemon.store.Store` of this profile) knows it at `now`: its fills,
    its orders still working, and the expiries the core settled."""
    return account_state_from_history(await store.list_fills(limit=ALL_ROWS), await store.load_pending_intents(),
                                      cash=starting_cash(settings), multiplier=settings.profile.contract_multiplier,
                                      session_day=now.date(),
                                      statuses=await store.list_orders(limit=ALL_ROWS, open_only=True),
                                      settlements=settled_record.parse(
                                          await store.meta_with_prefix(settled_record.PREFIX)))


class SimBroker:
    name = "sim"
    # capabilities (broker.base.Broker): the daemon reconciles it, the listing rules give its chains
    reconciles = False
    loads_chains = False
    has_daily_closes = False
    shares_order_ids = False
    reports_completed_orders = False
    confirms_changes = False
    throttle = None
    disconnect_expected = False

    def __init__(self, book: QuoteBook, clock: Clock, settings: Settings, *,
                 quote_model: OptionQuoteModel | None = None, account_id: str = ACCOUNT_ID,
                 prior: PriorState | None = None, session: str | None = None):
        """`prior`: the account's state to start from (see `restore`), or an async loader of it,
        awaited in `start()` (after the engine migrated the store). `session`: the token in this
        instance's execution ids; by default a fresh random one."""
        self._book = book
        self._clock = clock
        self._quote_model = quote_model
        self._prior = prior
        session = session if session is not None else f"{uuid.uuid4().hex[:12]}{next(_instances)}"
        self.venue = SimVenue(settings.broker.sim, quotes=book, cash=starting_cash(settings), session=session,
                              account_id=account_id, log_to=structlog_sink)
        self._listener: BrokerListener | None = None
        self._connected = False
        self._detach: Callable[[], None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

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
        if self._connected:
            raise BrokerError("restore_too_late", "a sim takes its prior state before it starts or trades")
        self.venue.restore(state)

    def settle_expired(self, at: datetime, prices: dict[str, Decimal]) -> None:
        """The paper account settles its expired contracts as the core did (`SimVenue.settle_expired`)."""
        self.venue.settle_expired(at, prices)
        self._deliver()

    def withhold_bids(self, key: str, until: datetime | None) -> None:
        """Fault injection (tests, drills): see `SimVenue.withhold_bids`; `until` on the injected clock."""
        self.venue.withhold_bids(key, until)

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
        return self.venue.account()

    async def next_order_id(self) -> int:
        return self.venue.next_order_id

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
        return self.venue.positions()

    async def open_orders(self) -> list[OpenOrder]:
        return self.venue.open_orders()

    async def executions(self, since: datetime | None = None) -> list[Fill]:
        """Fills at or after `since` (inclusive: the caller dedupes by exec_id, a tie must not be lost)."""
        return self.venue.executions(since)

    # ------------------------------------------------------------------ orders

    async def place(self, order: OrderRequest) -> None:
        self._require_connected()
        self.venue.place(order, self._clock.now())
        self._after_latency()

    async def modify(self, order: OrderRequest, *, confirm: bool = False) -> None:
        # the venue applies it before this returns: confirmed either way
        self._require_connected()
        self.venue.modify(order, self._clock.now())
        self._after_latency()

    async def cancel(self, order_id: int, *, confirm: bool = False) -> None:
        self._require_connected()
        self.venue.cancel(order_id, self._clock.now())
        self._after_latency()

    def _require_connected(self) -> None:
        if not self._connected:
            raise BrokerError("not_connected", "the sim broker is not started")

    def _after_latency(self) -> None:
        """The venue scheduled what was just sent (due after its latency): a task wakes on the clock then."""
        async def later() -> None:
            await self._clock.sleep(self.venue.latency.total_seconds())
            try:
                self.venue.advance(self._clock.now())
            except Exception:  # noqa: BLE001 - the exchange must keep running
                log.exception("sim_action_failed")
            self._deliver()

        task = asyncio.get_running_loop().create_task(later())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ matching

    def _on_quote(self, quote: Quote) -> None:
        self.venue.on_quote(quote, self._clock.now())
        if self.venue.has_events:
            self._deliver()

    def _deliver(self) -> None:
        events = self.venue.take_events()
        listener = self._listener
        if listener is None:
            return
        for event in events:
            if isinstance(event, Fill):
                listener.on_fill(event)
            else:
                listener.on_order_update(event)
