"""Parent orders in flight, as effects: `broker.working.Working` does the slicing, repricing,
timeouts and pacing; this desk numbers the orders, writes each one's intent before it goes
out (SPEC §6.1: write-ahead), marks entries durable, and tells who owns each parent.

An entry's child is `PlaceOrder(durable=True)`: the shell commits its intent first and
answers `store_unavailable` when it cannot. Exits and stops are never held up by storage.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from broker.order_ref import parent_ref
from daemon.core.effects import CancelOrder, ModifyOrder, Outbox, PlaceOrder, RequestSnapshot
from daemon.core.ids import Counter
from daemon.core.ports import Execution
from market.combo import COMBO_SEP


@dataclass
class Owner:
    position_id: int
    kind: str  # entry | exit
    quantity: int


class OrderDesk:
    def __init__(self, execution: Execution, next_order_id: Counter, prefix: str):
        self.execution = execution
        self.next_order_id = next_order_id
        self.prefix = prefix
        self.owners: dict[str, Owner] = {}  # parent orderRef -> who asked
        self.order_positions: dict[int, int] = {}  # order id -> position id (fills find their position)

    def start(self, parent: Any, position_id: int, now: datetime, out: Outbox) -> None:
        ref = parent_ref(parent.profile, parent.source_id, self.prefix)
        self.owners[ref] = Owner(position_id, parent.kind, parent.quantity)
        self.execution.start(parent, now, self.next_order_id)
        self.pump(now, out)

    def pump(self, now: datetime, out: Outbox) -> list[Any]:
        """The execution's commands become effects (each Place after its intent); returns finished parents."""
        for command in self.execution.take_commands():
            request = getattr(command, "request", None)
            if request is None:
                if type(command).__name__ == "SnapshotWanted":  # an exit on a stale quote (SPEC 4.4, 6.1)
                    for key in command.key.split(COMBO_SEP):  # a combo's: a snapshot of every leg
                        out.add(RequestSnapshot(key.split(" ", 1)[1] if COMBO_SEP in command.key else key))
                else:
                    out.add(CancelOrder(command.order_id))
                continue
            if type(command).__name__ == "Modify":
                out.add(ModifyOrder(request))
                continue
            if request.order_id < self.next_order_id.last:
                # A later id went out first (a protective stop while this child waited for its pacing
                # token): IB takes new ids only in increasing order, so the child takes a fresh one now.
                fresh = self.next_order_id()
                self.execution.renumber(request.order_id, fresh)
                request = dataclasses.replace(request, order_id=fresh)
            parent = request.order_ref.rsplit(":", 1)[0]
            owner = self.owners.get(parent)
            position_id = None if owner is None else owner.position_id
            if position_id is not None:
                self.order_positions[request.order_id] = position_id
            out.persist("write_intent", request=request, at=now, parent_ref=parent, position_id=position_id)
            out.log("debug", "order", order_id=request.order_id, order_ref=request.order_ref,
                    underlying=request.contract.underlying, side=request.side, contracts=request.quantity,
                    type=request.order_type, limit=request.limit_price, stop=request.stop_price, status="sending")
            out.metric("observe_order", outcome="submitted", level="child")
            out.add(PlaceOrder(request, durable=owner is not None and owner.kind == "entry"))
        return self.execution.take_results()

    def bind(self, order_id: int, position_id: int) -> None:
        self.order_positions[order_id] = position_id
