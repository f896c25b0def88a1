"""Orders at IB: our OrderRequest out (our order id, orderRef always), OrderUpdate and Fill back.

Fills are taken from every live execution message, also for orders ib_async no longer
tracks (placed before a reconnect): the store applies them exactly once by exec id. A
fill waits up to `commission_wait_s` for its commission report. A rejection (201, 203,
103, 110 on a new order) becomes OrderUpdate REJECTED with IB's reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo
from typing import Any

import structlog
from ib_async import IB, Contract, ExecutionFilter, Order, Trade
from ib_async.objects import CommissionReport, Execution

from broker.base import BrokerError
from broker.ib import codes
from broker.ib.contracts import BAG, ContractBook, option_from_ib
from market.types import ComboLeg, Fill, OpenOrder, OrderRequest, OrderStatus, OrderUpdate, combo_key
from market.clock import EXCHANGE_TZ, Clock

log = structlog.get_logger("broker.ib")

Pace = Callable[[], Awaitable[None]]
Within = Callable[[Awaitable[Any]], Awaitable[Any]]
WithinSeconds = Callable[[Awaitable[Any], float], Awaitable[Any]]
Spawn = Callable[[Coroutine[Any, Any, Any]], Any]

_STATUS = {
    "ApiPending": OrderStatus.PENDING_SUBMIT,
    "PendingSubmit": OrderStatus.PENDING_SUBMIT,
    "PreSubmitted": OrderStatus.SUBMITTED,
    "Submitted": OrderStatus.SUBMITTED,
    "Filled": OrderStatus.FILLED,
    "Cancelled": OrderStatus.CANCELLED,
    "ApiCancelled": OrderStatus.CANCELLED,
    "Inactive": OrderStatus.INACTIVE,
}
_ORDER_TYPES = frozenset({"LMT", "STP", "MKT"})
# A combo is sent as LMT (net price, may be negative) or MKT; its protective stop is the daemon's own rule
# (docs/decisions/combos.md): IB only simulates stops on combos, triggered on a combo "last" that
# SMART-routed option combos rarely print.
_COMBO_ORDER_TYPES = frozenset({"LMT", "MKT"})
PRICE_EPSILON = Decimal("0.000001")  # a price back from the wire as a float: equal within this
REQUEST_ID_FLOOR = 1 << 30  # session.REQ_ID_BASE: ib_async's own request ids start there


def map_status(ib_status: str, filled: float) -> OrderStatus | None:
    """Our status for IB's; None for IB's transient ones (PendingCancel, ValidationError)."""
    status = _STATUS.get(ib_status)
    if status is OrderStatus.SUBMITTED and filled > 0:
        return OrderStatus.PARTIALLY_FILLED
    return status


def ib_order(req: OrderRequest, account: str) -> Order:
    _validate(req)
    order = Order(orderId=req.order_id, action=req.side, totalQuantity=req.quantity, orderType=req.order_type,
                  tif=req.tif, orderRef=req.order_ref, account=account, transmit=True)
    if req.order_type == "LMT":
        order.lmtPrice = float(req.limit_price)  # type: ignore[arg-type]
    elif req.order_type == "STP":
        order.auxPrice = float(req.stop_price)  # type: ignore[arg-type]
    return order


def _validate(req: OrderRequest) -> None:
    problem = _common_problem(req) or (_combo_problem(req) if req.legs else _single_problem(req))
    if problem:
        raise BrokerError("bad_order", f"order {req.order_id}: {problem}")


def _common_problem(req: OrderRequest) -> str | None:
    if req.order_id <= 0:
        return f"order id {req.order_id} must be positive"
    if req.quantity <= 0:
        return f"quantity {req.quantity} must be positive"
    if not req.order_ref:
        return "every order carries an orderRef"
    if req.side not in ("BUY", "SELL"):
        return f"side {req.side!r} is not BUY or SELL"
    return None


def _single_problem(req: OrderRequest) -> str | None:
    if req.order_type == "LMT" and not (req.limit_price and req.limit_price > 0):
        return "a LMT order needs a positive limit price"
    if req.order_type == "STP" and not (req.stop_price and req.stop_price > 0):
        return "a STP order needs a positive stop price"
    if req.order_type not in _ORDER_TYPES:
        return f"order type {req.order_type!r} is not one of {sorted(_ORDER_TYPES)}"
    return None


def _combo_problem(req: OrderRequest) -> str | None:
    """A combo's own rules: units, a net limit of either sign, legs of one underlying, each contract once."""
    if req.order_type == "STP":
        raise BrokerError("combo_stop_unsupported", f"order {req.order_id}: a combo's protective stop is the "
                          "daemon's rule on the net mark, never a STP order at IB (docs/decisions/combos.md)")
    underlyings = {leg.contract.underlying for leg in req.legs}
    if any(leg.side not in ("BUY", "SELL") for leg in req.legs):
        return "every leg is BUY or SELL"
    if req.order_type not in _COMBO_ORDER_TYPES:
        return f"order type {req.order_type!r} is not one of {sorted(_COMBO_ORDER_TYPES)} for a combo"
    if req.order_type == "LMT" and (req.limit_price is None or not req.limit_price.is_finite()):
        return "a combo LMT order needs a net limit price"
    if len(underlyings) != 1:
        return f"the legs are on {sorted(underlyings)}: a combo trades one underlying"
    if len({leg.contract.key for leg in req.legs}) != len(req.legs):
        return "a contract appears in two legs"
    return None


class Orders:
    """Orders go out as raw protocol messages and come back through wrapper hooks, so nothing depends
    on ib_async's own trade bookkeeping (lost on every reconnect, and wrong after a refused change)."""

    def __init__(self, ib: IB, book: ContractBook, clock: Clock, *, account: Callable[[], str],
                 pace: Pace, within: Within, spawn: Spawn, commission_wait_s: float, multiplier: int,
                 emit_update: Callable[[OrderUpdate], None], emit_fill: Callable[[Fill], None],
                 within_s: WithinSeconds | None = None):
        self.ib = ib
        self.book = book
        self.clock = clock
        self._account = account
        self._pace = pace
        self._within = within
        self._within_s = within_s or (lambda aw, s: asyncio.wait_for(aw, s))
        self._spawn = spawn
        self._commission_wait_s = commission_wait_s
        self._multiplier = multiplier
        self._emit_update = emit_update
        self._emit_fill = emit_fill
        self._requests: dict[int, OrderRequest] = {}
        self._last_sent: dict[int, tuple[Any, ...]] = {}
        self._final: dict[int, OrderStatus] = {}
        self._acked: set[int] = set()
        self._errors: dict[int, str] = {}
        self._pending_fills: dict[str, Fill] = {}
        self._emitted_execs: set[str] = set()
        self._commissions: dict[str, Decimal] = {}
        # The highest order id seen at the gateway from any client (openOrder, orderStatus, executions):
        # the next id must be above it, or two profiles on one account collide (103).
        self.highest_seen = 0
        self._completed_times: dict[int, str] = {}  # permId -> completedTime
        self.client_of: dict[int, int] = {}  # order id -> the client id IB ties it to (reqAllOpenOrders)
        # A change (modify or cancel) sent and not yet answered: what IB held before it, and who waits.
        self._previous: dict[int, OrderRequest] = {}
        self._change_waiters: dict[int, tuple[str, asyncio.Future[None]]] = {}
        ib.errorEvent += self._on_error
        self._hook_wrapper()

    # ------------------------------------------------------------------ requests

    async def place(self, req: OrderRequest) -> None:
        if req.order_id in self._requests:
            raise BrokerError("duplicate_order_id", f"order id {req.order_id} was already used; ids never repeat")
        await self._send(req, "sent")

    async def modify(self, req: OrderRequest, confirm_s: float = 0) -> None:
        """Change a working order (same id). `confirm_s` > 0: return only once IB took the change, raise
        BrokerError with IB's code when it refused it (the order is then as it was: the broker's truth)."""
        known = self._requests.get(req.order_id)
        if known is None:
            raise BrokerError("unknown_order", f"order {req.order_id} was not placed by this daemon; cannot modify it")
        if known.contract.key != req.contract.key or known.side != req.side or known.legs != req.legs:
            raise BrokerError("bad_order", f"order {req.order_id}: a modification keeps the contract, legs and side")
        if req.order_id in self._final:
            raise BrokerError("order_not_working", f"order {req.order_id} is {self._final[req.order_id].value}")
        self._previous[req.order_id] = known
        waiter = self._expect_answer(req.order_id, "modify") if confirm_s else None
        await self._send(req, "modified")
        if waiter is not None:
            await self._answer(req.order_id, waiter, confirm_s)

    def _expect_answer(self, order_id: int, kind: str) -> asyncio.Future[None]:
        old = self._change_waiters.pop(order_id, None)
        if old is not None and not old[1].done():
            old[1].cancel()
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._change_waiters[order_id] = (kind, fut)
        return fut

    async def _answer(self, order_id: int, fut: asyncio.Future[None], seconds: float) -> None:
        """Wait until IB took the change (openOrder with the new terms; Cancelled) or refused it (BrokerError
        with IB's code). No answer in time is BrokerError `timeout`: the change may or may not be in force."""
        try:
            await self._within_s(fut, seconds)
        except TimeoutError:
            raise BrokerError("timeout", f"IB did not answer the change of order {order_id} within {seconds} s") from None
        finally:
            if self._change_waiters.get(order_id, (None, None))[1] is fut:
                del self._change_waiters[order_id]

    async def _send(self, req: OrderRequest, what: str) -> None:
        """placeOrder: a new id places, a known one modifies (IB's own rule)."""
        order = ib_order(req, self._account())
        contract = await (self.book.combo(req.legs) if req.legs else self.book.qualify(req.contract.key))
        self._requests[req.order_id] = req
        self.note_order_id(req.order_id)
        await self._pace()
        with _on_the_wire(req.order_id):
            self.ib.client.placeOrder(req.order_id, contract, order)
        log.info("order", order_id=req.order_id, order_ref=req.order_ref, underlying=req.contract.underlying,
                 contract=combo_key(req.legs) if req.legs else req.contract.key, side=req.side, contracts=req.quantity, type=req.order_type,
                 limit=str(req.limit_price) if req.limit_price is not None else None,
                 stop=str(req.stop_price) if req.stop_price is not None else None, status=what)

    async def cancel(self, order_id: int, confirm_s: float = 0) -> None:
        """`confirm_s` > 0: return once IB reports the order Cancelled; BrokerError when it refused (10147, 161,
        10148, 103: e.g. an order of another client id) or the order filled first (`order_filled`)."""
        waiter = self._expect_answer(order_id, "cancel") if confirm_s else None
        if waiter is not None and self._final.get(order_id) is OrderStatus.CANCELLED:
            self._change_waiters.pop(order_id, None)
            return
        await self._pace()
        with _on_the_wire(order_id):
            self.ib.client.cancelOrder(order_id, "")
        if waiter is not None:
            await self._answer(order_id, waiter, confirm_s)

    def adopt(self, orders: list[OpenOrder]) -> None:
        """Open orders seen at the broker (reconcile): they may be modified and cancelled, never reused."""
        for o in orders:
            self._requests.setdefault(o.request.order_id, o.request)
            if o.status in (OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED):
                self._acked.add(o.request.order_id)

    async def open_orders(self) -> list[OpenOrder]:
        await self._pace()
        trades: list[Trade] = await self._within(self.ib.reqAllOpenOrdersAsync())
        result = []
        for trade in trades:
            self.client_of[trade.order.orderId] = trade.order.clientId
            legs = await self._legs(trade.contract) if trade.contract.secType == BAG else ()
            converted = self._open_order(trade, legs)
            if converted is not None:
                result.append(converted)
        return result

    async def _legs(self, bag: Contract) -> tuple[ComboLeg, ...] | None:
        """Our legs of a BAG IB reported (each leg's conId looked up); None when a leg is not a known option."""
        legs = []
        for leg in bag.comboLegs or []:
            opt = await self.book.option_by_con_id(leg.conId)
            if opt is None or leg.action not in ("BUY", "SELL") or int(leg.ratio) < 1:
                log.warning("ib_combo_leg_unknown", con_id=leg.conId, action=leg.action, ratio=leg.ratio)
                return None
            legs.append(ComboLeg(opt, leg.action, int(leg.ratio)))
        return tuple(legs) or None

    async def completed_orders(self) -> list[CompletedOrder]:
        """Orders IB lists as completed (filled or cancelled), from any day it still keeps: what executions
        (the current day only) no longer show, e.g. a fill made while the daemon was down across midnight."""
        await self._pace()
        trades: list[Trade] = await self._within(self.ib.reqCompletedOrdersAsync(True))
        result = []
        for trade in trades:
            o, st = trade.order, trade.orderStatus
            opt = option_from_ib(trade.contract, self._multiplier)
            if trade.contract.secType == BAG:
                # IB gives a completed combo's units and net limit, no leg prices: its legs cannot be rebuilt
                # as fills, so the position check sees the legs and adopts or blocks them (docs/ib.md)
                log.info("ib_completed_combo_skipped", order_ref=o.orderRef, perm_id=o.permId)
                continue
            if opt is None or not o.orderRef or o.action not in ("BUY", "SELL"):
                continue
            filled = _price(o.filledQuantity)
            result.append(CompletedOrder(
                order_ref=o.orderRef, perm_id=o.permId, contract=opt, side=o.action, quantity=int(o.totalQuantity),
                filled=int(filled) if filled is not None else 0, status=st.status, order_type=o.orderType,
                limit_price=_price(o.lmtPrice) if o.orderType == "LMT" else None,
                stop_price=_price(o.auxPrice) if o.orderType in ("STP", "STP LMT") else None,
                completed_at=_completed_time(self._completed_times.get(o.permId, ""))))
        return result

    async def executions(self, since: datetime | None) -> list[Fill]:
        await self._pace()
        found = await self._within(self.ib.reqExecutionsAsync(ExecutionFilter(acctCode=self._account())))
        fills = []
        for f in found:
            seen = self.ib.wrapper.fills.get(f.execution.execId)
            report = seen.commissionReport if seen is not None and seen.commissionReport.execId else f.commissionReport
            fill = self._fill(f.contract, f.execution, _commission(report))
            if fill is not None and (since is None or fill.at >= since):
                fills.append(fill)
        return sorted(fills, key=lambda x: (x.at, x.exec_id))

    # ------------------------------------------------------------------ events

    def _hook_wrapper(self) -> None:
        """Every order status, live execution and commission report, straight from the decoder."""
        wrapper = self.ib.wrapper
        order_status = wrapper.orderStatus
        open_order = wrapper.openOrder
        exec_details = wrapper.execDetails
        commission_report = wrapper.commissionReport

        completed_order = wrapper.completedOrder

        def on_completed(contract: Contract, order: Order, state: Any) -> None:
            # ib_async keeps only the status of a completed order; its completion time is kept here
            self._completed_times[order.permId] = getattr(state, "completedTime", "")
            completed_order(contract, order, state)

        wrapper.completedOrder = on_completed  # type: ignore[method-assign]

        def on_open_order(order_id: int, contract: Contract, order: Order, *rest: Any) -> None:
            self.note_order_id(order_id)
            open_order(order_id, contract, order, *rest)
            self._on_open_order(order_id, order)

        def on_status(order_id: int, status: str, filled: float, remaining: float, avg_fill_price: float,
                      *rest: Any) -> None:
            self.note_order_id(order_id)
            order_status(order_id, status, filled, remaining, avg_fill_price, *rest)
            self._on_status(order_id, status, filled, remaining, avg_fill_price)

        def on_exec(req_id: int, contract: Contract, execution: Execution) -> None:
            live = req_id not in wrapper._futures
            self.note_order_id(execution.orderId)
            exec_details(req_id, contract, execution)
            if live:
                self._on_execution(contract, execution)

        def on_commission(report: CommissionReport) -> None:
            commission_report(report)
            self._on_commission(report)

        wrapper.openOrder = on_open_order  # type: ignore[method-assign]
        wrapper.orderStatus = on_status  # type: ignore[method-assign]
        wrapper.execDetails = on_exec  # type: ignore[method-assign]
        wrapper.commissionReport = on_commission  # type: ignore[method-assign]

    def note_order_id(self, order_id: int) -> None:
        if 0 < order_id < REQUEST_ID_FLOOR:  # ib_async's request ids (what-if orders) are not order ids
            self.highest_seen = max(self.highest_seen, order_id)

    def _on_open_order(self, order_id: int, order: Order) -> None:
        """IB states the order's terms: a modification waiting for them is taken when they are the new ones."""
        req = self._requests.get(order_id)
        kind, fut = self._change_waiters.get(order_id, (None, None))
        if req is None or kind != "modify" or fut is None or fut.done():
            return
        price = order.auxPrice if req.order_type == "STP" else order.lmtPrice
        wanted = req.stop_price if req.order_type == "STP" else req.limit_price
        same_price = wanted is None or (price is not None and abs(Decimal(str(price)) - wanted) < PRICE_EPSILON)
        if int(order.totalQuantity) == req.quantity and same_price:
            self._previous.pop(order_id, None)
            fut.set_result(None)

    def _resolve_cancel(self, order_id: int, status: OrderStatus) -> None:
        kind, fut = self._change_waiters.get(order_id, (None, None))
        if kind != "cancel" or fut is None or fut.done():
            return
        if status is OrderStatus.CANCELLED:
            fut.set_result(None)
        elif status.done:
            fut.set_exception(BrokerError("order_filled" if status is OrderStatus.FILLED else status.value,
                                          f"order {order_id} ended {status.value} before the cancel"))

    def _on_status(self, order_id: int, ib_status: str, filled: float, remaining: float, avg: float) -> None:
        status = map_status(ib_status, filled)
        if status is None:
            return
        self._resolve_cancel(order_id, status)
        if status in (OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED):
            self._acked.add(order_id)
        reason = self._errors.get(order_id) if status in (OrderStatus.CANCELLED, OrderStatus.INACTIVE) else None
        self._send_update(order_id, self._ref(order_id), status, filled, remaining, avg, reason)

    def _on_error(self, req_id: int, code: int, message: str, _contract: Any) -> None:
        if req_id in self._change_waiters and code in codes.CHANGE_REFUSED:
            self._change_refused(req_id, code, message)
            return
        if req_id not in self._requests or not _rejects(code):
            return  # not about one of our orders (request ids live far above order ids)
        reason = f"{code}: {message}"
        self._errors[req_id] = reason
        if req_id in self._acked:
            self._change_refused(req_id, code, message)
            return  # a refused modification: the order itself is still working
        req = self._requests[req_id]
        self._send_update(req_id, req.order_ref, OrderStatus.REJECTED, 0, req.quantity, 0.0, reason)

    def _change_refused(self, order_id: int, code: int, message: str) -> None:
        """IB kept the order as it was: so do we (its terms go back to what IB holds), and whoever waits hears why."""
        previous = self._previous.pop(order_id, None)
        if previous is not None:
            self._requests[order_id] = previous
        kind, fut = self._change_waiters.get(order_id, (None, None))
        log.warning("order_change_refused", order_id=order_id, code=code, reason=message, change=kind,
                    restored_quantity=previous.quantity if previous is not None else None)
        if fut is not None and not fut.done():
            fut.set_exception(BrokerError(str(code), f"IB refused to {kind} order {order_id}: {message}"))

    def _ref(self, order_id: int) -> str:
        req = self._requests.get(order_id)
        if req is not None:
            return req.order_ref
        trade = self.ib.wrapper.trades.get((self.ib.wrapper.clientId, order_id))
        return trade.order.orderRef if trade is not None else ""

    def _send_update(self, order_id: int, order_ref: str, status: OrderStatus, filled: float, remaining: float,
                     avg_price: float, reason: str | None) -> None:
        final = self._final.get(order_id)
        if final is not None and not (final is OrderStatus.INACTIVE and status is OrderStatus.REJECTED):
            return  # IB may report an order again after it ended (Inactive after a rejection)
        signature = (status, filled, remaining, reason)
        if self._last_sent.get(order_id) == signature:
            return
        self._last_sent[order_id] = signature
        if status.done:
            self._final[order_id] = status
        avg = Decimal(str(avg_price)) if filled > 0 and avg_price and avg_price > 0 else None
        update = OrderUpdate(order_id=order_id, order_ref=order_ref, status=status, filled=int(filled),
                             remaining=max(0, int(remaining)), avg_fill_price=avg, at=self.clock.now(), reason=reason)
        (log.warning if status is OrderStatus.REJECTED else log.info)(
            "order_update", order_id=order_id, order_ref=order_ref, status=status.value, filled=int(filled),
            remaining=update.remaining, reason=reason)
        self._emit_update(update)

    def _on_execution(self, contract: Contract, execution: Execution) -> None:
        if contract.secType == BAG:
            return  # a combo's own execution (units at the net price): its legs' executions are the fills
        exec_id = execution.execId
        if exec_id in self._emitted_execs or exec_id in self._pending_fills:
            return
        early = self._commissions.pop(exec_id, None)  # its commission report came first
        fill = self._fill(contract, execution, early)
        if fill is None:
            return
        if early is not None or self._commission_wait_s <= 0:
            self._release(fill)
            return
        self._pending_fills[exec_id] = fill
        self._spawn(self._release_later(exec_id))

    def _on_commission(self, report: CommissionReport) -> None:
        commission = _commission(report)
        pending = self._pending_fills.pop(report.execId, None)
        if pending is None:
            if report.execId not in self._emitted_execs:
                self._commissions[report.execId] = commission
            return
        self._release(replace(pending, commission=commission))

    async def _release_later(self, exec_id: str) -> None:
        await self.clock.sleep(self._commission_wait_s)
        pending = self._pending_fills.pop(exec_id, None)
        if pending is not None:
            log.info("fill_without_commission", exec_id=exec_id, order_id=pending.order_id)
            self._release(pending)

    def _release(self, fill: Fill) -> None:
        self._emitted_execs.add(fill.exec_id)
        log.info("fill", exec_id=fill.exec_id, order_id=fill.order_id, order_ref=fill.order_ref,
                 underlying=fill.contract.underlying, side=fill.side, contracts=fill.quantity, price=str(fill.price))
        self._emit_fill(fill)

    # ------------------------------------------------------------------ conversions

    def _fill(self, contract: Contract, ex: Execution, commission: Decimal | None) -> Fill | None:
        if contract.secType == BAG:
            return None  # the combo's summary execution; its legs' executions are the fills
        opt = option_from_ib(contract, self._multiplier)
        if opt is None:
            log.warning("ib_execution_not_an_option", exec_id=ex.execId, symbol=contract.symbol, sec_type=contract.secType)
            return None
        req = self._requests.get(ex.orderId)
        ref = ex.orderRef or (req.order_ref if req is not None else "")
        at = ex.time.astimezone(EXCHANGE_TZ) if ex.time.tzinfo else ex.time.replace(tzinfo=EXCHANGE_TZ)
        return Fill(exec_id=ex.execId, order_id=ex.orderId, order_ref=ref, contract=opt,
                    side="BUY" if ex.side.upper() in ("BOT", "BUY") else "SELL", quantity=int(ex.shares),
                    price=Decimal(str(ex.price)), at=at, commission=commission or Decimal(0))

    def _open_order(self, trade: Trade, legs: tuple[ComboLeg, ...] | None = ()) -> OpenOrder | None:
        """Our OpenOrder for IB's; a BAG becomes a combo order over `legs` (units, net limit of either sign)."""
        o = trade.order
        opt = legs[0].contract if legs else option_from_ib(trade.contract, self._multiplier)
        status = map_status(trade.orderStatus.status, trade.orderStatus.filled) or OrderStatus.SUBMITTED
        if opt is None or o.orderType not in _ORDER_TYPES or o.action not in ("BUY", "SELL"):
            log.info("ib_open_order_skipped", order_id=o.orderId, order_ref=o.orderRef, type=o.orderType,
                     sec_type=trade.contract.secType)
            return None
        req = OrderRequest(
            order_id=o.orderId, order_ref=o.orderRef, contract=opt, side=o.action, quantity=int(o.totalQuantity),
            order_type=o.orderType,  # type: ignore[arg-type]
            limit_price=_price(o.lmtPrice) if o.orderType == "LMT" else None,
            stop_price=_price(o.auxPrice) if o.orderType == "STP" else None,
            tif="GTC" if o.tif == "GTC" else "DAY", legs=legs or (),
        )
        return OpenOrder(request=req, status=status, filled=int(trade.orderStatus.filled))


@dataclass(frozen=True, slots=True)
class CompletedOrder:
    """One order IB reports completed. IB gives its filled quantity but no fill price and no order id."""

    order_ref: str
    perm_id: int
    contract: Any  # OptionContract
    side: str
    quantity: int
    filled: int
    status: str
    order_type: str
    limit_price: Decimal | None
    stop_price: Decimal | None
    completed_at: datetime | None

    @property
    def price_estimate(self) -> Decimal | None:
        """The order's own price: a limit fills at it or better, a stop at about it (IB does not say)."""
        return self.limit_price if self.limit_price is not None else self.stop_price


def _completed_time(text: str) -> datetime | None:
    """`yyyymmdd hh:mm:ss <zone>` as TWS writes completedTime; None when absent or unreadable."""
    text = (text or "").strip()
    if not text:
        return None
    day, clock, *zone = text.split()
    try:
        tz = ZoneInfo(zone[0]) if zone else EXCHANGE_TZ
        return datetime.strptime(f"{day} {clock}", "%Y%m%d %H:%M:%S").replace(tzinfo=tz).astimezone(EXCHANGE_TZ)
    except (ValueError, KeyError):
        return None


@contextmanager
def _on_the_wire(order_id: int) -> Iterator[None]:
    """ib_async raises ConnectionError when the socket went between our check and the send: the
    order did not leave, which the senders know as BrokerError `not_connected`."""
    try:
        yield
    except ConnectionError as exc:
        raise BrokerError("not_connected", f"order {order_id} not sent, connection to IB lost: {exc}") from None


def _rejects(code: int) -> bool:
    return codes.info(code).effect in (codes.Effect.ORDER_REJECTED, codes.Effect.NO_CONTRACT)


def _commission(report: CommissionReport) -> Decimal:
    value = report.commission
    if value is None or value != value or abs(value) > 1e12:  # NaN or IB's "unset" sentinel
        return Decimal(0)
    return Decimal(str(value))


def _price(x: float) -> Decimal | None:
    if x is None or x != x or abs(x) > 1e12:
        return None
    return Decimal(str(x))


__all__ = ["Orders", "ib_order", "map_status"]
