"""The order desk: accepts, modifies, cancels and fills orders, and reports each step.

It owns the order book and the executions; the gateway gives it the market, the account and
a way to reach the clients (`Outbox`), so the same code runs with or without anyone connected.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from tests.fakegw import messages as msg
from tests.fakegw.account import AccountBook
from tests.fakegw.contracts import FakeContract, FakeLeg, make_bag
from tests.fakegw.market import Market
from tests.fakegw.orders import (
    STOP_TYPES,
    CommissionSchedule,
    FakeExecution,
    FakeOrder,
    match,
    match_combo,
    price_conforms,
    stop_triggered,
)
from tests.fakegw.requests import PlaceOrder
from tests.fakegw.wire import Field, jdouble

SUPPORTED_TYPES = frozenset({"LMT", "MKT", "STP", "STP LMT"})
COMBO_TYPES = frozenset({"LMT", "MKT"})  # what the fake fills for a BAG (tradingd sends LMT)
NO_CONTRACT = (200, "No security definition has been found for the request")
COMBO_WITHOUT_LEGS = (321, "Error validating request.-'bN' : cause - Security type 'BAG' requires combo leg details.")
FIRST_PERM_ID = 1_500_000_000


class Outbox(Protocol):
    """How the desk reaches connected clients."""

    server_version: int

    def to_owner(self, client_id: int, fields: list[Field]) -> None: ...
    def error_to(self, client_id: int, req_id: int, code: int, message: str) -> None: ...
    def account_changed(self, con_id: int | None) -> None: ...


@dataclass(slots=True)
class OrderDesk:
    market: Market
    account: AccountBook
    out: Outbox
    clock: Callable[[], datetime]
    commission: CommissionSchedule = field(default_factory=CommissionSchedule)
    auto_fill: bool = True
    next_valid_id: int = 1
    orders: dict[int, FakeOrder] = field(default_factory=dict)
    executions: list[FakeExecution] = field(default_factory=list)
    reject_reasons: list[str] = field(default_factory=list)
    _perm_ids: itertools.count = field(default_factory=lambda: itertools.count(FIRST_PERM_ID))
    _exec_seq: itertools.count = field(default_factory=lambda: itertools.count(1))

    # --- placing -------------------------------------------------------------------
    def place(self, client_id: int, req: PlaceOrder) -> None:
        if req.what_if:
            self._what_if(client_id, req)
            return
        existing = self.orders.get(req.order_id)
        if self.reject_reasons:
            self._reject(client_id, req, existing, self.reject_reasons.pop(0))
        elif existing is not None:
            self._modify(client_id, existing, req)
        else:
            self._new(client_id, req)

    def _new(self, client_id: int, req: PlaceOrder) -> None:
        if req.order_id < self.next_valid_id:
            self._refuse(client_id, req, 103, "Duplicate order id")
            return
        self.next_valid_id = req.order_id + 1
        contract, problem = self._resolve(req)
        if contract is None:
            self._refuse(client_id, req, *(problem or NO_CONTRACT))
            return
        order = self._order_from(client_id, req, contract)
        problem = problem or self._validate(order)
        self.orders[order.order_id] = order
        if problem:
            order.error = problem
            order.set_status("Inactive")
            self.out.error_to(client_id, order.order_id, *problem)
            return
        order.set_status("PreSubmitted" if order.order_type in STOP_TYPES else "Submitted")
        self._report(order)
        self._rematch(order)

    def _rematch(self, order: FakeOrder) -> None:
        """Match again where the order trades: its contract, or every leg of a combo."""
        for leg in order.contract.legs:
            self.run_matching(leg.contract.con_id)
        if not order.contract.legs:
            self.run_matching(order.contract.con_id)

    def _resolve(self, req: PlaceOrder) -> tuple[FakeContract | None, tuple[int, str] | None]:
        """The contract an order names: one instrument, or a BAG built from its legs' conIds (each leg must
        be a known option of the combo's symbol). (None, why) when there is none."""
        if req.contract.sec_type != "BAG":
            found = self.market.find(req.contract)
            return (found[0], None) if len(found) == 1 else (None, NO_CONTRACT)
        if not req.legs:
            return None, COMBO_WITHOUT_LEGS
        legs = []
        for leg in req.legs:
            contract = self.market.contracts.get(leg.con_id)
            if contract is None:
                return None, NO_CONTRACT
            if not contract.is_option or contract.symbol != req.contract.symbol:
                return None, (321, f"Error validating request.-'bN' : cause - Invalid combo leg {leg.con_id}")
            if leg.ratio <= 0 or leg.action not in ("BUY", "SELL"):
                return None, (321, f"Error validating request.-'bN' : cause - Invalid combo leg {leg.con_id}")
            legs.append(FakeLeg(contract, leg.ratio, leg.action, leg.exchange or "SMART"))
        if len({leg.contract.con_id for leg in legs}) != len(legs):
            return None, (321, "Error validating request.-'bN' : cause - Duplicate combo leg")
        if any(p is not None for p in req.leg_prices):
            return None, (321, "unsupported_by_fake: per-leg prices (orderComboLegs)")
        return make_bag(req.contract.symbol, tuple(legs), req.contract.currency or self.account.currency), None

    def _modify(self, client_id: int, order: FakeOrder, req: PlaceOrder) -> None:
        if order.client_id != client_id:
            self.out.error_to(client_id, req.order_id, 103, "Duplicate order id")
        elif order.done:
            code, text = (104, "Can't modify a filled order") if order.status == "Filled" else (103, "Duplicate order id")
            self.out.error_to(client_id, req.order_id, code, text)
        elif self._differs(order, req):
            self.out.error_to(client_id, req.order_id, 105, "Order being modified does not match original order")
        else:
            candidate = self._order_from(client_id, req, order.contract)
            problem = self._validate(candidate) or (
                (105, "Order being modified does not match original order") if req.qty < order.filled else None)
            if problem:
                self.out.error_to(client_id, req.order_id, *problem)
                return
            for name in ("qty", "order_type", "lmt_price", "aux_price", "tif", "order_ref", "outside_rth"):
                setattr(order, name, getattr(candidate, name))
            order.revisions += 1
            waiting_stop = order.order_type in STOP_TYPES and not order.triggered
            order.set_status("PreSubmitted" if waiting_stop else "Submitted")
            if getattr(self.out, "silent_modifications", False):  # taken, but never echoed (a lost reply)
                self._rematch(order)
                return
            self._report(order)
            self._rematch(order)

    def _differs(self, order: FakeOrder, req: PlaceOrder) -> bool:
        contract, _ = self._resolve(req)
        if contract is None or req.action != order.action:
            return True
        return contract.con_id != order.contract.con_id or contract.legs != order.contract.legs

    def _order_from(self, client_id: int, req: PlaceOrder, contract: FakeContract) -> FakeOrder:
        return FakeOrder(order_id=req.order_id, client_id=client_id, perm_id=next(self._perm_ids),
                         contract=contract, action=req.action, qty=_whole(req.qty),
                         order_type=req.order_type, lmt_price=req.lmt_price, aux_price=req.aux_price,
                         tif=req.tif or "DAY", order_ref=req.order_ref,
                         account=req.account or self.account.account, placed_at=self.clock(),
                         parent_id=req.parent_id, outside_rth=req.outside_rth)

    def _validate(self, order: FakeOrder) -> tuple[int, str] | None:
        if order.qty <= 0:
            return 434, "The order size cannot be zero"
        if order.action not in ("BUY", "SELL"):
            return 321, f"Error validating request.-'bN' : cause - Invalid side: {order.action}"
        if order.order_type not in (COMBO_TYPES if order.contract.is_combo else SUPPORTED_TYPES):
            return 387, "Unsupported order type for this exchange and security type."
        if order.account != self.account.account:
            return 321, f"Error validating request.-'bN' : cause - Invalid account: {order.account}"
        needs_limit = order.order_type in ("LMT", "STP LMT")
        needs_stop = order.order_type in STOP_TYPES
        if (needs_limit and order.lmt_price is None) or (needs_stop and order.aux_price is None):
            return 321, "Error validating request.-'bN' : cause - Missing order price"
        tick = order.contract.min_tick
        prices = [order.lmt_price if needs_limit else None, order.aux_price if needs_stop else None]
        if not all(price_conforms(p, tick) for p in prices):
            return 110, "The price does not conform to the minimum price variation for this contract."
        return None

    def _refuse(self, client_id: int, req: PlaceOrder, code: int, text: str) -> None:
        """A new order TWS never accepts: the error goes out, the attempt is kept for tests."""
        if req.order_id not in self.orders:
            found, _ = self._resolve(req)
            if found is not None:
                order = self._order_from(client_id, req, found)
                order.error = (code, text)
                order.set_status("Inactive")
                self.orders.setdefault(req.order_id, order)
        self.out.error_to(client_id, req.order_id, code, text)

    def _reject(self, client_id: int, req: PlaceOrder, existing: FakeOrder | None, reason: str) -> None:
        text = f"Order rejected - reason:{reason}"
        if existing is not None:  # a rejected modification leaves the working order as it was
            self.out.error_to(client_id, req.order_id, 201, text)
            return
        found, problem = self._resolve(req)
        if found is None:
            self._refuse(client_id, req, *(problem or NO_CONTRACT))
            return
        self.next_valid_id = max(self.next_valid_id, req.order_id + 1)
        order = self._order_from(client_id, req, found)
        order.error = (201, text)
        order.set_status("Inactive")
        self.orders[order.order_id] = order
        self.out.error_to(client_id, order.order_id, 201, text)
        self.out.to_owner(client_id, msg.order_status(order.view()))

    def _what_if(self, client_id: int, req: PlaceOrder) -> None:
        found = self.market.find(req.contract)
        if len(found) != 1:
            self.out.error_to(client_id, req.order_id, 200, "No security definition has been found for the request")
            return
        order = self._order_from(client_id, req, found[0])
        mark = self.market.mark(order.contract) or order.lmt_price or Decimal(0)
        cost = (mark * order.qty * order.contract.contract_multiplier).quantize(Decimal("0.01"))
        equity = self.account.cash
        margin = ("0.0", "0.0", jdouble(equity), jdouble(cost), jdouble(cost), jdouble(-cost),
                  jdouble(cost), jdouble(cost), jdouble(equity - cost))
        fee = self.commission.charge(order.contract, order.qty)
        view = replace(order.view(), status="PreSubmitted", what_if=True, margin=margin,
                       commission=("", jdouble(fee), jdouble(fee), self.account.currency))
        self.out.to_owner(client_id, msg.open_order(self.out.server_version, view))

    def _report(self, order: FakeOrder) -> None:
        view = order.view()
        self.out.to_owner(order.client_id, msg.open_order(self.out.server_version, view))
        self.out.to_owner(order.client_id, msg.order_status(view))

    # --- cancelling ----------------------------------------------------------------
    def cancel(self, client_id: int, order_id: int) -> None:
        order = self.orders.get(order_id)
        if order is None or order.client_id != client_id:
            self.out.error_to(client_id, order_id, 10147,
                              f"OrderId {order_id} that needs to be cancelled is not found.")
        elif order.done:
            self.out.error_to(client_id, order_id, 10148,
                              f"OrderId {order_id} that needs to be cancelled cannot be cancelled, state: {order.status}.")
        else:
            self._cancelled(order)

    def cancel_all(self) -> None:
        for order in list(self.orders.values()):
            if not order.done:
                self._cancelled(order)

    def _cancelled(self, order: FakeOrder) -> None:
        order.set_status("Cancelled")
        order.completed_at = self.clock()
        self.out.to_owner(order.client_id, msg.order_status(order.view()))
        self.out.error_to(order.client_id, order.order_id, 202, "Order Canceled - reason:")

    # --- matching and fills --------------------------------------------------------
    def run_matching(self, con_id: int) -> None:
        quote, liquidity = self.market.quote(con_id), self.market.liquidity.get(con_id)
        if quote is None or liquidity is None:
            return
        working = sorted((o for o in self.orders.values() if not o.done and (
            o.contract.con_id == con_id if not o.contract.is_combo
            else any(leg.contract.con_id == con_id for leg in o.contract.legs))), key=lambda o: o.order_id)
        for order in working:
            if order.contract.is_combo:
                self._match_combo(order)
                continue
            if order.order_type in STOP_TYPES and not order.triggered and stop_triggered(order, quote):
                order.triggered = True
                order.set_status("Submitted")
                self.out.to_owner(order.client_id, msg.order_status(order.view()))
            if not self.auto_fill:
                continue
            taken = match(order, quote, liquidity)
            if taken is None:
                continue
            qty, price = taken
            if order.action == "BUY":
                liquidity.ask -= int(qty)
            else:
                liquidity.bid -= int(qty)
            self.fill(order, qty, price)

    def _match_combo(self, order: FakeOrder) -> None:
        if not self.auto_fill:
            return
        taken = match_combo(order, self.market.quotes, self.market.liquidity)
        if taken is None:
            return
        units, prices = taken
        for leg in order.contract.legs:
            book = self.market.liquidity[leg.contract.con_id]
            if leg.action_for(order.action) == "BUY":
                book.ask -= int(units) * leg.ratio
            else:
                book.bid -= int(units) * leg.ratio
        self.fill_combo(order, units, prices)

    def fill_combo(self, order: FakeOrder, units: Decimal, leg_prices: tuple[Decimal, ...],
                   when: datetime | None = None) -> FakeExecution:
        """Fill `units` whole combo units, every leg in this one step (never one leg without the others).

        What TWS sends, in order: each leg's execDetails (the leg's contract and side, the combo's order id
        and orderRef), the BAG's own execDetails (combo units at the net price), the BAG's orderStatus in
        combo units, then each leg's commissionReport (the BAG execution carries no commission of its own).
        `drop_mid_combo` on the gateway cuts the sockets right after the first leg's execDetails."""
        if order.done:
            raise ValueError(f"order_done: order {order.order_id} is {order.status}")
        legs = order.contract.legs
        if units <= 0 or units > order.remaining or units != units.to_integral_value():
            raise ValueError(f"bad_fill_qty: {units} combo units for order {order.order_id} with {order.remaining} remaining")
        if len(leg_prices) != len(legs):
            raise ValueError(f"bad_leg_prices: {len(leg_prices)} prices for {len(legs)} legs")
        net = sum((p * leg.ratio if leg.action == "BUY" else -p * leg.ratio for p, leg in zip(leg_prices, legs)),
                  Decimal(0))
        order.record_fill(units, net)
        at = when or self.clock()
        out, owner = self.out, order.client_id
        zone = not getattr(out, "exec_times_without_zone", False)
        details, reports = [], []
        for leg, price in zip(legs, leg_prices):
            qty, action = units * leg.ratio, leg.action_for(order.action)
            commission = self.commission.charge(leg.contract, qty)
            _, realized = self.account.apply_fill(leg.contract, action, qty, price, commission)
            execution = self._execution(order, leg.contract, action, qty, price, at, commission, realized,
                                        cum_qty=order.filled * leg.ratio, avg_price=price)
            details.append(msg.exec_details(out.server_version, -1, execution.view(), zone=zone))
            reports.append(msg.commission_report(execution.view()))
        bag = self._execution(order, order.contract, order.action, units, net, at, Decimal(0), None,
                              cum_qty=order.filled, avg_price=order.avg_fill_price)
        details.append(msg.exec_details(out.server_version, -1, bag.view(), zone=zone))
        if order.done:
            order.completed_at = at
        status = msg.order_status(order.view())
        messages = [status, *details] if getattr(out, "status_before_exec", False) else [*details, status]
        cut = getattr(out, "drop_mid_combo", False)
        for n, fields in enumerate(messages):
            out.to_owner(owner, fields)
            if cut and n == 0:
                out.drop_mid_combo = False  # type: ignore[attr-defined]
                out.cut_sockets()  # type: ignore[attr-defined]
        if order.done and getattr(out, "duplicate_filled_status", False):
            out.to_owner(owner, status)
        delay = getattr(out, "commission_delay_s", 0)
        for report in reports:
            if delay:
                asyncio.get_running_loop().call_later(delay, out.to_owner, owner, report)
            else:
                out.to_owner(owner, report)
        for leg in legs:
            out.account_changed(leg.contract.con_id)
        return bag

    def _execution(self, order: FakeOrder, contract: FakeContract, action: str, qty: Decimal, price: Decimal,
                   at: datetime, commission: Decimal, realized: Decimal | None, *, cum_qty: Decimal,
                   avg_price: Decimal) -> FakeExecution:
        seq = next(self._exec_seq)
        execution = FakeExecution(
            exec_id=f"0000f00d.{order.perm_id:08x}.{seq:02d}.01", order_id=order.order_id,
            client_id=order.client_id, perm_id=order.perm_id, order_ref=order.order_ref, contract=contract,
            action=action, qty=qty, price=price, time=at, commission=commission, cum_qty=cum_qty,
            avg_price=avg_price, account=order.account, currency=self.account.currency, realized_pnl=realized)
        self.executions.append(execution)
        return execution

    def fill(self, order: FakeOrder, qty: Decimal, price: Decimal, when: datetime | None = None) -> FakeExecution:
        if order.contract.is_combo:
            raise ValueError(f"combo_order: fill order {order.order_id} with fill_combo (every leg at once)")
        if order.done:
            raise ValueError(f"order_done: order {order.order_id} is {order.status}")
        if qty <= 0 or qty > order.remaining:
            raise ValueError(f"bad_fill_qty: {qty} for order {order.order_id} with {order.remaining} remaining")
        order.record_fill(qty, price)
        commission = self.commission.charge(order.contract, qty)
        _, realized = self.account.apply_fill(order.contract, order.action, qty, price, commission)
        execution = self._execution(order, order.contract, order.action, qty, price, when or self.clock(), commission,
                                    realized, cum_qty=order.filled, avg_price=order.avg_fill_price)
        if order.done:
            order.completed_at = execution.time
        # Real gateways' orderings (issue 9), set on the gateway: the status may come before the
        # execution, a Filled status may come twice, the commission report may come late.
        out, owner = self.out, order.client_id
        status = msg.order_status(order.view())
        details = msg.exec_details(out.server_version, -1, execution.view(),
                                   zone=not getattr(out, "exec_times_without_zone", False))
        report = msg.commission_report(execution.view())
        first, second = (status, details) if getattr(out, "status_before_exec", False) else (details, status)
        out.to_owner(owner, first)
        out.to_owner(owner, second)
        if order.done and getattr(out, "duplicate_filled_status", False):
            out.to_owner(owner, status)
        delay = getattr(out, "commission_delay_s", 0)
        if delay:
            asyncio.get_running_loop().call_later(delay, out.to_owner, owner, report)
        else:
            out.to_owner(owner, report)
        out.account_changed(order.contract.con_id)
        return execution

    def working(self, client_id: int | None = None) -> list[FakeOrder]:
        return [o for o in self.orders.values()
                if not o.done and (client_id is None or o.client_id == client_id)]


def _whole(qty: Decimal) -> Decimal:
    """`1.0` as ib_async sends a float quantity becomes `1`; fractions stay."""
    return qty.quantize(Decimal(1)) if qty == qty.to_integral_value() else qty
