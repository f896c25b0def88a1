"""The exit log lines' numbers (issue 13): a fill's P&L is the fill's, not the mark's; the
parent's summary line carries the limit walk its children's reprices took."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

from broker.parent import ChildOrderResult, ExecutionResult, ExecutionStatus
from daemon.core.exits import pct as _pct
from daemon.format import limit_walk
from market.clock import EXCHANGE_TZ
from market.types import OrderStatus

T0 = datetime(2019, 2, 11, 10, 0, tzinfo=EXCHANGE_TZ)


def _position(entry: str, mark: str) -> SimpleNamespace:
    entry_price, mark_price = Decimal(entry), Decimal(mark)
    return SimpleNamespace(record=SimpleNamespace(entry_price=entry_price),
                           unrealized_pct=(mark_price - entry_price) / entry_price)


def test_pnl_pct_of_a_fill_is_the_fill_price_against_the_entry() -> None:
    # The cases: a protective stop filled at 2.42 on an entry of 3.2165 was logged -6.4 %
    # (the mark at the time); 47.20 against 44.50 on 7dte was logged 9.5 %.
    assert _pct(_position("3.2165", "3.01"), Decimal("2.42")) == "-24.8%"
    assert _pct(_position("44.50", "48.73"), Decimal("47.20")) == "6.1%"
    assert _pct(_position("3.2165", "3.01")) == "-6.4%"  # a line that is not a fill shows the mark's


def _child(n: int, limits: list[str]) -> ChildOrderResult:
    return ChildOrderResult(order_id=n, order_ref=f"tradingd:0dte:s:{n}", quantity=10, filled=10,
                            avg_price=Decimal(limits[-1]), status=OrderStatus.FILLED, sent_at=T0,
                            limits=tuple((T0 + timedelta(seconds=3 * i), Decimal(p)) for i, p in enumerate(limits)),
                            commission=Decimal("6.50"))


def test_the_parent_summary_shows_the_walk_of_every_child() -> None:
    result = ExecutionResult(parent_ref="tradingd:0dte:s", requested=20, filled=20, avg_price=Decimal("3.445"),
                             slippage_vs_mid=Decimal("0.035"),
                             children=(_child(1, ["3.41", "3.43", "3.46"]), _child(2, ["3.42"])),
                             underfilled=False, status=ExecutionStatus.FILLED)
    assert limit_walk(result) == "3.41>3.43>3.46 | 3.42"
