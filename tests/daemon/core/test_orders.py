"""The order desk (`daemon.core.orders.OrderDesk`): each Place after its intent, in increasing id order.

IB takes new order ids only in increasing order. A child that waited for its pacing token while a
later id went out (a protective stop, sent at once) takes a fresh id as it leaves, so what reaches
the venue is always in id order; a child whose id is still the newest keeps it.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from broker.working import Place
from daemon.core.effects import Outbox, PlaceOrder, Persist
from daemon.core.ids import Counter
from daemon.core.orders import OrderDesk
from market.clock import EXCHANGE_TZ
from market.types import OptionContract, OrderRequest

T0 = datetime(2019, 2, 11, 10, 0, tzinfo=EXCHANGE_TZ)
CONTRACT = OptionContract("SPY", T0.date(), Decimal("270"), "C")


class FakeExecution:
    def __init__(self) -> None:
        self.commands: list[Any] = []
        self.renumbered: list[tuple[int, int]] = []

    def take_commands(self) -> list[Any]:
        out, self.commands = self.commands, []
        return out

    def take_results(self) -> list[Any]:
        return []

    def renumber(self, old_id: int, new_id: int) -> bool:
        self.renumbered.append((old_id, new_id))
        return True


def child(order_id: int) -> Place:
    return Place(OrderRequest(order_id, "tradingd:0dte:sig:1", CONTRACT, "BUY", 5, "LMT", Decimal("1.00")))


def places(out: Outbox) -> list[int]:
    return [e.request.order_id for e in out.take() if isinstance(e, PlaceOrder)]


def test_a_child_overtaken_by_a_later_id_takes_a_fresh_one_as_it_leaves() -> None:
    ids, execution = Counter(), FakeExecution()
    desk = OrderDesk(execution, ids, "tradingd")  # type: ignore[arg-type]
    waiting = ids()  # the child's id, taken when it was built (it then waits for its pacing token)
    stop_id = ids()  # a protective stop takes the next id and goes out at once
    assert (waiting, stop_id) == (1, 2)
    execution.commands.append(child(waiting))
    out = Outbox()
    desk.pump(T0, out)
    items = out.items[:]
    assert places(out) == [3] and execution.renumbered == [(1, 3)]
    intents = [e for e in items if isinstance(e, Persist) and e.op == "write_intent"]
    assert [i.payload["request"].order_id for i in intents] == [3]  # the intent carries the id that is sent


def test_a_child_whose_id_is_still_the_newest_keeps_it() -> None:
    ids, execution = Counter(), FakeExecution()
    desk = OrderDesk(execution, ids, "tradingd")  # type: ignore[arg-type]
    execution.commands.append(child(ids()))
    out = Outbox()
    desk.pump(T0, out)
    assert places(out) == [1] and execution.renumbered == []
