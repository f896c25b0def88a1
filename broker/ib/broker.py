"""IBBroker: the `broker.base.Broker` interface over TWS / IB Gateway through ib_async.

The parts: `session` (connection, heartbeat, reconnect, paper check), `contracts`
(qualification, chains), `market_data` (quotes), `orders` (orders, updates, fills).
Every message to the gateway passes one Throttle (<= execution.max_messages_per_s).

Connection states for the engine, through `listener.on_connection(connected, reason)`:
(False, <why>) when the connection is lost (no new orders); (True, "reconciling") after
each (re)connect, while entries must be refused; (True, "ready") once market data is
resubscribed and the reconciler set with `set_reconciler` has returned. `state` says
the same at any time.
"""

from __future__ import annotations

import os
import random
import tempfile
from collections.abc import Awaitable, Callable, Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import structlog
from ib_async import IB

from broker.base import BrokerError, BrokerListener
from broker.ib.account import is_paper, snapshot_from_values
from broker.ib.contracts import ContractBook, option_from_ib
from broker.ib.market_data import MarketData
from broker.ib.lines import AccountLines, lines_path
from broker.ib.order_ids import AccountTurn, lock_path
from broker.ib.orders import CompletedOrder, Orders
from broker.ib.session import AlertHook, ConnectionState, IBSession
from broker.throttle import Throttle
from market.types import (
    AccountSnapshot,
    BrokerPosition,
    Fill,
    OpenOrder,
    OptionChain,
    OrderRequest,
    OrderUpdate,
    Quote,
)
from config.models import IBConfig, Settings
from market.clock import Clock, LiveClock

log = structlog.get_logger("broker.ib")

Reconciler = Callable[[str], Awaitable[Any]]
RESTORED_DATA_KEPT = "1102"  # market data survived: no resubscription needed


class IBBroker:
    name = "ib"
    # capabilities (broker.base.Broker); `shares_order_ids`, `confirms_changes` are declared by their methods
    reconciles = True
    loads_chains = True
    has_daily_closes = True
    reports_completed_orders = True

    def __init__(self, settings: Settings, clock: Clock | None = None, *, throttle: Throttle | None = None,
                 alert: AlertHook | None = None, ib: IB | None = None, rng: random.Random | None = None,
                 ib_config: IBConfig | None = None):
        self.settings = settings
        self.cfg = ib_config or settings.broker.ib
        self.clock = clock or LiveClock()
        self.ib = ib or IB()
        self.throttle = throttle or Throttle(self.clock, settings.execution.max_messages_per_s)
        pace = self.throttle.acquire
        self._session = IBSession(self.cfg, self.clock, pace=pace, ib=self.ib, rng=rng, alert=alert)
        self._session.set_hooks(self._on_up, self._on_down, self._on_ready)
        multiplier = settings.profile.contract_multiplier
        self._book = ContractBook(self.ib, currency=self.cfg.currency, multiplier=multiplier,
                                  index_symbols={settings.profile.vix_symbol}, pace=pace, within=self._request,
                                  expiry_days=self.cfg.chain_expiry_days)
        self._md = MarketData(self.ib, self._book, self.clock, lines=self.cfg.market_data_lines, pace=pace,
                              within=self._session.within, snapshot_timeout_s=float(self.cfg.snapshot_timeout_s),
                              emit=self._emit_quote, alert=self._session.alert)
        self._orders = Orders(self.ib, self._book, self.clock, account=lambda: self._session.account,
                              pace=pace, within=self._request,
                              spawn=self._session.spawn, commission_wait_s=float(self.cfg.commission_wait_s),
                              multiplier=multiplier, emit_update=self._emit_update, emit_fill=self._emit_fill,
                              within_s=self._session.within)
        self._listener: BrokerListener | None = None
        self._reconciler: Reconciler | None = None
        self._turn: AccountTurn | None = None
        self._reconcile_failures = 0

    # ------------------------------------------------------------------ state

    @property
    def connected(self) -> bool:
        return self._session.state in (ConnectionState.RECONCILING, ConnectionState.READY)

    @property
    def state(self) -> ConnectionState:
        return self._session.state

    @property
    def disconnect_expected(self) -> bool:
        return self._session.disconnect_expected

    @property
    def account_id(self) -> str:
        return self._session.account

    @property
    def client_id(self) -> int:
        return self._session.client_id

    @property
    def server_version(self) -> int | None:
        return self.ib.client.serverVersion() or None

    @property
    def subscriptions(self) -> tuple[str, ...]:
        return self._md.keys

    @property
    def reconnects(self) -> int:
        return self._session.reconnects

    def set_listener(self, listener: BrokerListener) -> None:
        self._listener = listener

    def set_reconciler(self, reconciler: Reconciler | None) -> None:
        """Awaited after every (re)connect with the reason; the broker stays RECONCILING until it returns."""
        self._reconciler = reconciler

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        await self._session.start()
        # Chains before the first signal needs one (SPEC §6.1: loaded before the open); in the
        # background, so a slow sec-def farm does not hold the start-up.
        self._session.spawn(self.load_chains(self.settings.profile.underlyings))

    async def probe(self) -> None:
        """Connect once for `tradingd broker check`: no heartbeat, no reconnect, no chains, no reconciliation."""
        await self._session.start(keep_alive=False)

    async def current_time(self) -> datetime:
        """The gateway's clock (one reqCurrentTime round trip), or BrokerError `timeout`."""
        self._require_socket()
        await self.throttle.acquire()
        try:
            return await self._session.within(self.ib.reqCurrentTimeAsync(), float(self.cfg.heartbeat_timeout_s))
        except TimeoutError:
            raise BrokerError("timeout", f"IB did not answer reqCurrentTime within {self.cfg.heartbeat_timeout_s} s") from None

    def _delayed_ok(self) -> bool:
        """Delayed data may be used only when the config allows it and the account is paper (never live)."""
        return bool(self.cfg.delayed_data_on_paper) and is_paper(self._session.account)

    async def stop(self) -> None:
        self.release_order_id_claim()
        await self._session.stop()
        if self._md.shared is not None:
            self._md.shared.publish(0)  # this profile's lines are free for the others

    async def load_chains(self, underlyings: Iterable[str]) -> dict[str, OptionChain]:
        """Fetch (again) the chains of `underlyings`, e.g. before the open; failures are logged, not raised."""
        loaded = {}
        for underlying in underlyings:
            try:
                loaded[underlying] = await self._book.chain(underlying, self.clock.now().date(), refresh=True)
            except BrokerError as exc:
                log.warning("ib_chain_failed", underlying=underlying, code=exc.code, error=str(exc))
        return loaded

    async def market_data_status(self, keys: Iterable[str]) -> dict[str, str]:
        """`live`, `delayed` or `missing` for each key (what `tradingd broker check` reports)."""
        self._require_socket()
        return await self._md.probe(keys, float(self.cfg.snapshot_timeout_s))

    # ------------------------------------------------------------------ Broker

    async def account(self) -> AccountSnapshot:
        self._require_socket()
        values = self.ib.accountValues(self._session.account)
        try:
            return snapshot_from_values(self._session.account, values, self.server_version)
        except BrokerError:
            summary = await self._request(self.ib.accountSummaryAsync(self._session.account))
            return snapshot_from_values(self._session.account, summary, self.server_version)

    # Order ids are per account at IB: every profile on it draws from one sequence (SPEC §6.1).
    shares_order_ids = True

    async def next_order_id(self) -> int:
        """The lowest id no client on the account has used: above the gateway's nextValidId (reqIds, asked
        now) and above every id seen in any openOrder, orderStatus or execution, from any client."""
        self._require_socket()
        return max(await self._session.request_next_valid_id(), self._orders.highest_seen + 1)

    async def claim_order_id_floor(self) -> int:
        """Take the account's order-id turn (other profiles wait), then `order_id_floor()`. The turn is
        held until `release_order_id_claim()`: after the order was placed or given up."""
        if self._turn is None:
            self._turn = AccountTurn(lock_path(self._lock_dir(), self.cfg.host, self.cfg.port, self._session.account),
                                     max_hold_s=float(self.cfg.order_id_turn_max_s),
                                     max_wait_s=float(self.cfg.order_id_turn_max_s))
        await self._turn.acquire()
        return await self.order_id_floor()

    def _lock_dir(self) -> str:
        """Where the profiles on one account meet: the order-id turn and the market-data lines files."""
        return self.cfg.order_id_lock_dir or tempfile.gettempdir()

    def release_order_id_claim(self) -> None:
        if self._turn is not None:
            self._turn.release()

    async def order_id_floor(self) -> int:
        """`next_order_id()` for each new order, never raising: without an answer, the highest id seen + 1
        (the place that follows fails on its own if the connection is gone)."""
        try:
            return await self.next_order_id()
        except BrokerError as exc:
            log.warning("ib_order_id_floor_unknown", code=exc.code, error=str(exc))
            return self._orders.highest_seen + 1

    async def chain(self, underlying: str) -> OptionChain:
        self._require_socket()
        return await self._book.chain(underlying, self.clock.now().date())

    async def subscribe(self, keys: list[str]) -> None:
        self._require_socket()
        await self._md.subscribe(keys)

    async def unsubscribe(self, keys: list[str]) -> None:
        await self._md.unsubscribe(keys)

    async def snapshot(self, key: str) -> Quote:
        self._require_socket()
        return await self._md.snapshot(key)

    async def place(self, order: OrderRequest) -> None:
        self._require_connected()
        await self._orders.place(order)

    # `modify`/`cancel` with `confirm=True` return only once IB took the change and raise BrokerError
    # with IB's code when it refused it (the order is then as IB holds it): protective stops use it.
    confirms_changes = True

    async def modify(self, order: OrderRequest, *, confirm: bool = False) -> None:
        self._require_connected()
        await self._orders.modify(order, float(self.cfg.change_confirm_timeout_s) if confirm else 0)

    async def cancel(self, order_id: int, *, confirm: bool = False) -> None:
        self._require_connected()
        await self._orders.cancel(order_id, float(self.cfg.change_confirm_timeout_s) if confirm else 0)

    async def positions(self) -> list[BrokerPosition]:
        self._require_socket()
        await self.throttle.acquire()
        found = await self._request(self.ib.reqPositionsAsync())
        result = []
        for p in found:
            if p.account != self._session.account or not p.position:
                continue
            opt = option_from_ib(p.contract, self.settings.profile.contract_multiplier)
            if opt is None:
                log.warning("ib_position_not_an_option", symbol=p.contract.symbol, sec_type=p.contract.secType,
                            quantity=p.position)
                continue
            avg = Decimal(str(p.avgCost)) / opt.multiplier  # IB: per contract including the multiplier
            result.append(BrokerPosition(opt, int(p.position), avg))
        return result

    async def open_orders(self) -> list[OpenOrder]:
        self._require_socket()
        orders = await self._orders.open_orders()
        self._orders.adopt(orders)
        return orders

    def orders_of_other_clients(self, orders: Iterable[OpenOrder]) -> list[OpenOrder]:
        """Those of `orders` IB ties to another client id than this session's (after a 326 move): this
        session can neither change nor cancel them (103, 10147), and does not hear their fills live."""
        mine = self._session.client_id
        return [o for o in orders if self._orders.client_of.get(o.request.order_id, mine) != mine]

    async def daily_closes(self, symbol: str, sessions: int) -> list[tuple[date, Decimal]]:
        """The last `sessions` daily closes of an underlying from IB's historical data (SPEC §2.5), oldest first.
        BrokerError when IB has none or does not answer. The caller paces (IB limits historical requests)."""
        self._require_socket()
        contract = await self._book.qualify(symbol)
        await self.throttle.acquire()
        what = "TRADES"
        bars = await self._request(self.ib.reqHistoricalDataAsync(
            contract, endDateTime="", durationStr=f"{sessions} D", barSizeSetting="1 day", whatToShow=what,
            useRTH=True, formatDate=1))
        result = []
        for bar in bars or []:
            day = bar.date if isinstance(bar.date, date) else datetime.strptime(str(bar.date)[:8], "%Y%m%d").date()
            if bar.close and bar.close > 0:
                result.append((day, Decimal(str(bar.close))))
        if not result:
            raise BrokerError("no_history", f"IB returned no daily bars for {symbol}")
        return result

    async def completed_orders(self) -> list[CompletedOrder]:
        """Filled and cancelled orders IB still lists (also from before midnight, unlike executions)."""
        self._require_socket()
        return await self._orders.completed_orders()

    async def executions(self, since: datetime | None = None) -> list[Fill]:
        """Executions at or after `since` (inclusive: the store dedupes by exec id)."""
        self._require_socket()
        return await self._orders.executions(since)

    # ------------------------------------------------------------------ hooks

    async def _on_up(self, reason: str) -> None:
        self._notify(True, ConnectionState.RECONCILING.value)
        self._md.shared = AccountLines(lines_path(self._lock_dir(), self.cfg.host, self.cfg.port, self._session.account),
                                       f"{os.getpid()}:{self._session.client_id}")
        self._md.publish()
        self._md.delayed_ok = self._delayed_ok()
        if self._md.delayed_ok:  # "live where subscribed, delayed otherwise" (IB market data type 3)
            await self.throttle.acquire()
            self.ib.reqMarketDataType(3)
        if reason != RESTORED_DATA_KEPT:
            await self._md.resubscribe()
        if self._reconciler is not None:
            self._check_reconciled(await self._reconciler(reason), reason)

    def _check_reconciled(self, report: Any, reason: str) -> None:
        """A reconciliation that got no answer to some step (a withheld end marker) timed out there and went
        on without it: the connection is READY (exits and stops never wait), an alert says what is missing,
        and the reconciliation runs again with backoff, `reconcile_retries` times at most."""
        missing = tuple(getattr(report, "incomplete", ()) or ())
        if not missing:
            if self._reconcile_failures:
                log.info("ib_reconcile_complete", after_retries=self._reconcile_failures)
            self._reconcile_failures = 0
            return
        self._reconcile_failures += 1
        attempt = self._reconcile_failures
        gave_up = attempt > self.cfg.reconcile_retries
        self._session.alert("ib_reconcile_gave_up" if gave_up else "ib_reconcile_incomplete", {
            "steps": list(missing), "attempt": attempt, "reason": reason,
            "message": f"IB did not answer {', '.join(missing)} within {self.cfg.connect_timeout_s} s"
                       + ("; no more retries until the next reconnect" if gave_up else "; retrying")})
        if not gave_up:
            delay = min(float(self.cfg.reconnect_max_s), float(self.cfg.reconnect_initial_s) * 2 ** (attempt - 1))
            self._session.spawn(self._reconcile_again(delay))

    async def _reconcile_again(self, delay: float) -> None:
        await self.clock.sleep(delay)
        if self._reconciler is None or self.state is not ConnectionState.READY:
            return  # a reconnect reconciles anyway
        try:
            self._check_reconciled(await self._reconciler("retry"), "retry")
        except (BrokerError, ConnectionError) as exc:
            log.warning("ib_reconcile_retry_failed", error=str(exc))

    def _on_ready(self, _reason: str) -> None:
        self._notify(True, ConnectionState.READY.value)

    def _on_down(self, reason: str) -> None:
        self._md.mark_all_stale(reason)
        self._notify(False, reason)

    def _notify(self, connected: bool, reason: str) -> None:
        self._tell("on_connection", connected, reason)

    def _emit_quote(self, quote: Quote) -> None:
        self._tell("on_quote", quote)

    def _emit_update(self, update: OrderUpdate) -> None:
        self._tell("on_order_update", update)

    def _emit_fill(self, fill: Fill) -> None:
        self._tell("on_fill", fill)

    def _tell(self, callback: str, *args: Any) -> None:
        """Call the listener; what it raises is logged here, never let into ib_async's decoder nor into
        the heartbeat and reconnect paths (a listener bug must not keep the connection from coming up)."""
        if self._listener is None:
            return
        try:
            getattr(self._listener, callback)(*args)
        except Exception as exc:  # noqa: BLE001
            log.exception("ib_listener_failed", code="listener_error", callback=callback, error=repr(exc))

    async def _request(self, awaitable: Awaitable[Any]) -> Any:
        try:
            return await self._session.within(awaitable, float(self.cfg.connect_timeout_s))
        except TimeoutError:
            raise BrokerError("timeout", f"IB did not answer within {self.cfg.connect_timeout_s} s") from None
        except ConnectionError as exc:
            raise BrokerError("not_connected", f"connection to IB lost: {exc}") from None

    def _require_socket(self) -> None:
        if not self._session.socket_up:
            raise BrokerError("not_connected", "not connected to IB")

    def _require_connected(self) -> None:
        if not self.connected:
            raise BrokerError("not_connected", f"IB connection is {self.state.value}: no new orders")
