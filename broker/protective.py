"""Protective stops (SPEC §6.1): each open position's hard stop also rests at the broker.

A SELL STP order per position, so a dead daemon still has a floor. `sync` makes the
broker match what the engine wants: place the stop, change its quantity or price in
place (same order id), or cancel it when nothing is left to protect. The quantity to
pass is the open quantity less any exit order working on the position, so the stop and
an exit can never sell the same contract twice. The stop price only ratchets up (a
tighter stop from the exits is kept; a looser one is ignored). Broker-agnostic: any
`Broker` that takes STP orders (IB, sim).

Order ids come from the injected allocator; every new stop goes through `before_send`
(the engine writes the intent, tied to the position) before the broker sees it.
orderRef = `<prefix>:<profile>:stop-<position id>:<n>`, so `adopt` finds the stops again
after a restart.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from decimal import ROUND_FLOOR, Decimal

import structlog

from broker.base import Broker, BrokerError
from broker.execution import OrderIdAllocator
from broker.order_ref import OrderRefError, build_order_ref, parse_order_ref
from market.types import OpenOrder, OptionContract, OrderRequest, OrderStatus, OrderUpdate
from config.models import ProtectiveConfig

log = structlog.get_logger(__name__)

STOP_SOURCE = "stop-"
# Broker errors that say nothing about the order (the change never reached the broker, or no answer came):
# the stop is kept as wanted and `resync` tries again. Any other error is a refusal: the broker's truth.
UNANSWERED = frozenset({"not_connected", "timeout", "unknown_order", "bad_order"})
BeforeSend = Callable[[OrderRequest, int], Awaitable[None]]  # (request, position id)


def stop_price(entry_price: Decimal, hard_stop_pct: Decimal, tick: Decimal) -> Decimal:
    """entry x (1 + hard_stop_pct), rounded down to the tick: the broker's floor never fires before the daemon's own stop."""
    raw = entry_price * (1 + hard_stop_pct)
    price = (raw / tick).to_integral_value(rounding=ROUND_FLOOR) * tick
    return max(price, tick)


@dataclass(frozen=True, slots=True)
class RestingStop:
    position_id: int
    request: OrderRequest

    @property
    def quantity(self) -> int:
        return self.request.quantity

    @property
    def stop_price(self) -> Decimal:
        return self.request.stop_price  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class _Wanted:
    contract: OptionContract
    quantity: int
    stop_price: Decimal


class ProtectiveStops:
    def __init__(self, broker: Broker, cfg: ProtectiveConfig, *, profile: str, prefix: str,
                 allocate_order_id: OrderIdAllocator, before_send: BeforeSend):
        self._broker = broker
        self._cfg = cfg
        self._profile = profile
        self._prefix = prefix
        self._allocate = allocate_order_id
        self._before_send = before_send
        self._resting: dict[int, RestingStop] = {}
        self._wanted: dict[int, _Wanted] = {}
        self._n: dict[int, int] = {}
        self._uncontrolled: set[int] = set()

    def resting(self, position_id: int) -> RestingStop | None:
        return self._resting.get(position_id)

    @property
    def all(self) -> dict[int, RestingStop]:
        return dict(self._resting)

    def is_stop_order(self, order_id: int) -> bool:
        return any(s.request.order_id == order_id for s in self._resting.values())

    async def sync(self, position_id: int, contract: OptionContract, quantity: int,
                   stop_price: Decimal) -> RestingStop | None:
        """Make the broker's stop for `position_id` cover `quantity` at `stop_price` (0 quantity: cancel it).

        A broker refusal is logged and kept as wanted: `resync` (after a reconnect) tries again.
        """
        if not self._cfg.enabled:
            return None
        if quantity < 0 or stop_price <= 0:
            raise ValueError(f"protective stop for position {position_id}: quantity {quantity}, price {stop_price}")
        current = self._resting.get(position_id)
        if current is not None and stop_price < current.stop_price:
            stop_price = current.stop_price  # stops only ratchet up
        self._wanted[position_id] = _Wanted(contract, quantity, stop_price)
        try:
            if quantity == 0:
                await self._cancel(position_id)
                self._wanted.pop(position_id, None)
            elif current is None:
                await self._place(position_id, contract, quantity, stop_price)
            elif (current.quantity, current.stop_price) != (quantity, stop_price):
                await self._modify(current, quantity, stop_price)
        except BrokerError as exc:
            log.warning("protective_stop_not_synced", position_id=position_id, code=exc.code, error=str(exc))
            if exc.code == "timeout" and current is not None:  # no answer: ask what the broker holds now
                await self._reread(position_id, current)
            elif exc.code not in UNANSWERED:  # refused: the stop is as the broker holds it; make it right another way
                await self._replace(position_id)
        return self._resting.get(position_id)

    async def _reread(self, position_id: int, current: RestingStop) -> None:
        """A change the broker did not answer in time may or may not be in force: its open orders say which."""
        try:
            held = {o.request.order_id: o for o in await self._broker.open_orders()}
        except BrokerError as exc:
            log.warning("protective_stop_unknown", position_id=position_id, code=exc.code)
            return
        found = held.get(current.request.order_id)
        if found is None or found.status.done:
            self._resting.pop(position_id, None)  # it ended meanwhile: the next sync places a new one
        else:
            self._resting[position_id] = RestingStop(position_id, found.request)
        log.warning("protective_stop_reread", position_id=position_id, order_id=current.request.order_id,
                    contracts=None if found is None else found.request.quantity)

    def uncontrolled(self, position_id: int) -> bool:
        """The broker refused to change and to cancel this position's stop (e.g. it was placed under a client
        id this session no longer has): only an operator, or the stop itself, can end it."""
        return position_id in self._uncontrolled

    async def _replace(self, position_id: int) -> None:
        """A refused change left the broker's stop different from the wanted one: cancel it (waiting for the
        broker to confirm, so the old and the new never rest together) and place the wanted one."""
        current, wanted = self._resting.get(position_id), self._wanted.get(position_id)
        if current is None or wanted is None:
            return
        if (current.quantity, current.stop_price) == (wanted.quantity, wanted.stop_price):
            return
        try:
            await self._cancel(position_id)
        except BrokerError as exc:
            if exc.code in UNANSWERED:
                return  # resync tries again
            self._uncontrolled.add(position_id)
            # an alert line (the daemon's alert shape): an operator must look at the broker's stop
            log.error("alert", alert="protective_stop_uncontrolled", code=exc.code, position_id=position_id,
                      order_id=current.request.order_id, contracts=current.quantity, error=str(exc))
            return
        log.warning("protective_stop_replacing", position_id=position_id, old_order_id=current.request.order_id,
                    old_contracts=current.quantity, contracts=wanted.quantity)
        if wanted.quantity > 0:
            try:
                await self._place(position_id, wanted.contract, wanted.quantity, wanted.stop_price)
            except BrokerError as exc:
                log.warning("protective_stop_not_synced", position_id=position_id, code=exc.code, error=str(exc))

    async def cancel(self, position_id: int) -> None:
        """The position closed (or the daemon's own exit takes over): pull its stop."""
        wanted = self._wanted.get(position_id)
        if wanted is not None:
            self._wanted[position_id] = replace(wanted, quantity=0)
        try:
            await self._cancel(position_id)
        except BrokerError as exc:
            log.warning("protective_stop_not_cancelled", position_id=position_id, code=exc.code)
            return
        self._wanted.pop(position_id, None)

    async def resync(self) -> None:
        """Apply every wanted stop again (after a reconnect, or once a refused change can go through)."""
        for position_id, wanted in list(self._wanted.items()):
            await self.sync(position_id, wanted.contract, wanted.quantity, wanted.stop_price)

    def adopt(self, open_orders: list[OpenOrder]) -> list[RestingStop]:
        """Recognize our stops among the broker's open orders (after a restart)."""
        found = []
        for o in open_orders:
            position_id, n = self._parse(o.request.order_ref)
            if position_id is None or o.request.order_type != "STP" or o.status.done:
                continue
            stop = RestingStop(position_id, o.request)
            self._resting[position_id] = stop
            self._n[position_id] = max(self._n.get(position_id, 0), n)
            found.append(stop)
        return found

    def on_order_update(self, update: OrderUpdate) -> None:
        """Forget a stop that ended at the broker (filled, cancelled, rejected)."""
        if not update.status.done:
            return
        for position_id, stop in list(self._resting.items()):
            if stop.request.order_id == update.order_id:
                del self._resting[position_id]
                level = log.warning if update.status in (OrderStatus.REJECTED, OrderStatus.INACTIVE) else log.info
                level("protective_stop_ended", position_id=position_id, order_id=update.order_id,
                      status=update.status.value, reason=update.reason)

    # ------------------------------------------------------------------ broker

    async def _place(self, position_id: int, contract: OptionContract, quantity: int, price: Decimal) -> None:
        n = self._n.get(position_id, 0) + 1
        request = OrderRequest(
            order_id=await self._allocate_id(),
            order_ref=build_order_ref(self._profile, f"{STOP_SOURCE}{position_id}", n, self._prefix),
            contract=contract, side="SELL", quantity=quantity, order_type="STP", stop_price=price, tif=self._cfg.tif)
        self._n[position_id] = n
        await self._before_send(request, position_id)
        await self._broker.place(request)
        self._resting[position_id] = RestingStop(position_id, request)
        log.info("protective_stop_placed", position_id=position_id, order_id=request.order_id,
                 order_ref=request.order_ref, contracts=quantity, stop=str(price))

    def _confirm(self) -> dict[str, bool]:
        """A broker that can confirm changes (IB) is asked to: a stop is believed changed only once it is."""
        return {"confirm": True} if self._broker.confirms_changes else {}

    async def _modify(self, current: RestingStop, quantity: int, price: Decimal) -> None:
        request = replace(current.request, quantity=quantity, stop_price=price)
        await self._broker.modify(request, **self._confirm())
        self._resting[current.position_id] = RestingStop(current.position_id, request)
        log.info("protective_stop_changed", position_id=current.position_id, order_id=request.order_id,
                 contracts=quantity, stop=str(price))

    async def _cancel(self, position_id: int) -> None:
        current = self._resting.get(position_id)
        if current is None:
            return
        await self._broker.cancel(current.request.order_id, **self._confirm())
        self._resting.pop(position_id, None)
        self._uncontrolled.discard(position_id)
        log.info("protective_stop_cancelled", position_id=position_id, order_id=current.request.order_id)

    async def _allocate_id(self) -> int:
        value = self._allocate()
        if inspect.isawaitable(value):
            value = await value
        return int(value)

    def _parse(self, order_ref: str) -> tuple[int | None, int]:
        try:
            ref = parse_order_ref(order_ref, self._prefix)
        except OrderRefError:
            return None, 0
        if ref.profile != self._profile or not ref.source_id.startswith(STOP_SOURCE):
            return None, 0
        tail = ref.source_id[len(STOP_SOURCE):]
        return (int(tail), ref.n) if tail.isdigit() else (None, 0)
