"""Each position's protective stop resting at the broker (SPEC §6.1), as effects.

What a position's stop should be:
- quantity = open contracts less those a working exit is selling (the stop and an exit never
  sell the same contract), plus what the stop order itself already filled (a modification
  states the order's total quantity);
- price = the hard stop (SPEC §1) rounded down to the tick, raised to the exit rules' own stop
  when they tighten it; it never comes down;
- nothing left to protect: cancelled.

`follow(position)` compares that with the stop it last sent and emits the one order effect
that closes the gap (place, modify or cancel), after its intent record. Until `activate` (the
start-up reconciliation is done) nothing is sent: the stops resting at the broker are not
known yet. Adopted stops (`adopt`) are followed like our own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from broker.order_ref import OrderRefError, build_order_ref, parse_order_ref
from broker.protective import STOP_SOURCE, stop_price
from config.models import Settings
from daemon.core.effects import CancelOrder, ModifyOrder, Outbox, PlaceOrder
from daemon.positions import LivePosition
from market.types import Fill, OpenOrder, OrderRequest, OrderUpdate

ZERO = Decimal(0)


@dataclass(frozen=True)
class Resting:
    position_id: int
    request: OrderRequest


class StopDesk:
    def __init__(self, settings: Settings, next_order_id: Callable[[], int]):
        self.cfg = settings.broker.protective
        self.profile = settings.profile.name
        self.prefix = settings.execution.order_ref_prefix
        self.hard_stop_pct = settings.position_levels.hard_stop_pct
        self.next_order_id = next_order_id
        self.active = False
        self.resting: dict[int, Resting] = {}
        self._n: dict[int, int] = {}
        self._filled: dict[int, int] = {}  # stop order id -> contracts it sold

    def is_stop(self, order_ref: str | None) -> bool:
        return self.position_of(order_ref) is not None

    def position_of(self, order_ref: str | None) -> int | None:
        if not order_ref:
            return None
        # every fill and order update asks; most refs are not stops (no parse), and parses are kept per ref
        # (`parse_order_ref`)
        if isinstance(order_ref, str) and STOP_SOURCE not in order_ref:  # its source id cannot start with it
            return None
        try:
            ref = parse_order_ref(order_ref, self.prefix)
        except OrderRefError:
            return None
        tail = ref.source_id[len(STOP_SOURCE):]
        if ref.profile != self.profile or not ref.source_id.startswith(STOP_SOURCE) or not tail.isdigit():
            return None
        return int(tail)

    def price(self, position: LivePosition) -> Decimal | None:
        entry = position.record.entry_price
        if entry is None or entry <= 0:
            return None
        tick = self.cfg.price_tick
        price = stop_price(entry, self.hard_stop_pct, tick)
        tightened = position.exit_state.stop_price
        if tightened is not None and tightened > 0:
            price = max(price, stop_price(tightened, ZERO, tick))
        return price

    # ------------------------------------------------------------------ following the book

    def follow(self, position: LivePosition, held: bool, now: datetime, out: Outbox) -> None:
        """Make the resting stop match the position now (`held`: it is still in the book)."""
        if not self.active or position.combo is not None:
            return  # a combo's stop is the daemon-side rule of the exit desk (docs/decisions/multileg.md)
        price = self.price(position)
        if price is None:
            return
        wanted = max(0, position.open_qty - position.pending_exit) if held else 0
        current = self.resting.get(position.id)
        done = self._filled.get(current.request.order_id, 0) if current is not None and wanted else 0
        quantity = wanted + done
        if quantity <= done:
            self.cancel(position.id, out)
        elif current is None:
            n = self._n.get(position.id, 0) + 1
            self._n[position.id] = n
            request = OrderRequest(order_id=self.next_order_id(),
                                   order_ref=build_order_ref(self.profile, f"{STOP_SOURCE}{position.id}", n,
                                                             self.prefix),
                                   contract=position.contract, side="SELL", quantity=quantity, order_type="STP",
                                   stop_price=price, tif=self.cfg.tif)
            self.resting[position.id] = Resting(position.id, request)
            out.persist("write_intent", request=request, at=now, parent_ref=request.order_ref.rsplit(":", 1)[0],
                        position_id=position.id)
            out.add(PlaceOrder(request, durable=False))
            out.log("info", "protective_stop_placed", position_id=position.id, order_id=request.order_id,
                    order_ref=request.order_ref, contracts=quantity, stop=str(price))
        elif current.request.quantity != quantity or current.request.stop_price != price:
            new_price = max(price, current.request.stop_price or price)  # a stop never comes down
            request = replace(current.request, quantity=quantity, stop_price=new_price)
            self.resting[position.id] = Resting(position.id, request)
            out.add(ModifyOrder(request))
            out.log("info", "protective_stop_changed", position_id=position.id, order_id=request.order_id,
                    contracts=quantity, stop=str(new_price))

    def cancel(self, position_id: int, out: Outbox) -> None:
        current = self.resting.pop(position_id, None)
        if current is None or not self.active:
            return
        if self._filled.get(current.request.order_id, 0) >= current.request.quantity:
            return  # it sold all it held (its Filled status is on its way): nothing is left to cancel
        out.add(CancelOrder(current.request.order_id))
        out.log("info", "protective_stop_cancelled", position_id=position_id, order_id=current.request.order_id)

    def numbered(self, order_refs: list[str]) -> None:
        """Stop orderRefs this profile ever wrote (the store's intents, at start-up): a stop placed after a
        restart takes the next number, never one already sent (a stop cancelled before the restart is not
        at the broker to be adopted, but its orderRef was used)."""
        for order_ref in order_refs:
            position_id = self.position_of(order_ref)
            if position_id is None:
                continue
            try:
                n = parse_order_ref(order_ref, self.prefix).n
            except OrderRefError:
                continue
            self._n[position_id] = max(self._n.get(position_id, 0), n)

    def adopt(self, open_orders: list[OpenOrder]) -> list[Resting]:
        """The stops still resting at the broker after a restart, taken over (their numbering continues)."""
        adopted = []
        for order in open_orders:
            position_id = self.position_of(order.request.order_ref)
            if position_id is None or order.status.done:
                continue
            try:
                n = parse_order_ref(order.request.order_ref, self.prefix).n
            except OrderRefError:
                continue
            self._n[position_id] = max(self._n.get(position_id, 0), n)
            self._filled[order.request.order_id] = order.filled
            resting = Resting(position_id, order.request)
            self.resting[position_id] = resting
            adopted.append(resting)
        return adopted

    # ------------------------------------------------------------------ broker events

    def on_update(self, update: OrderUpdate, out: Outbox) -> None:
        position_id = self.position_of(update.order_ref)
        if position_id is None or not update.status.done:
            return
        current = self.resting.get(position_id)
        if current is not None and current.request.order_id == update.order_id:
            del self.resting[position_id]
            level = "warning" if update.status.value in ("Rejected", "Inactive") else "info"
            out.log(level, "protective_stop_ended", position_id=position_id, order_id=update.order_id,
                    status=update.status.value, reason=update.reason)

    def on_fill(self, fill: Fill) -> bool:
        """Count a stop's own fill (True when `fill` is one)."""
        if not self.is_stop(fill.order_ref):
            return False
        self._filled[fill.order_id] = self._filled.get(fill.order_id, 0) + fill.quantity
        return True
