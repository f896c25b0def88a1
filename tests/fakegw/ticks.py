"""Market data ticks: what a subscription has been told, and the ticks a new quote implies.

TWS streams only what changed; a side that disappears is sent as price -1 / size 0.
Delayed data carries the same values under the delayed tick types (ib_async fills the same
Ticker fields from them); open interest has no delayed type and keeps 27 / 28.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from tests.fakegw import messages as msg
from tests.fakegw.contracts import FakeContract
from tests.fakegw.market import FakeQuote
from tests.fakegw.wire import Field

BID, ASK, LAST, CLOSE = 1, 2, 4, 9
BID_SIZE, ASK_SIZE = 0, 3
MODEL_GREEKS = 13
CALL_OPEN_INTEREST, PUT_OPEN_INTEREST = 27, 28
OPEN_INTEREST_GENERIC = "101"
# TWS's delayed counterparts: bid/ask/last 66-68, sizes 69/70, close 75, model greeks 83.
DELAYED_TICK = {BID: 66, ASK: 67, LAST: 68, BID_SIZE: 69, ASK_SIZE: 70, CLOSE: 75, MODEL_GREEKS: 83}


@dataclass(slots=True)
class Subscription:
    req_id: int
    contract: FakeContract
    generic_ticks: frozenset[str]
    delayed: bool = False
    last_only: bool = False  # 10090 on a paper account: only subscription-independent ticks (last)
    sent: dict[str, object] = field(default_factory=dict)

    def tick(self, tick_type: int) -> int:
        """The tick type this subscription sends `tick_type`'s value under."""
        return DELAYED_TICK.get(tick_type, tick_type) if self.delayed else tick_type


def quote_ticks(sub: Subscription, quote: FakeQuote, underlying_price: Decimal | None,
                open_interest: dict[str, int] | None) -> list[list[Field]]:
    """The tick messages that bring `sub` up to `quote`; updates `sub.sent`."""
    out: list[list[Field]] = []
    if sub.last_only:
        if quote.last is not None and sub.sent.get("last") != quote.last:
            out.append(msg.tick_price(sub.req_id, sub.tick(LAST), quote.last, 0))
            sub.sent["last"] = quote.last
        return out
    for name, tick, size_tick, price, size in (
        ("bid", BID, BID_SIZE, quote.bid, quote.bid_size),
        ("ask", ASK, ASK_SIZE, quote.ask, quote.ask_size),
    ):
        before = sub.sent.get(name)
        now = (price, size if price is not None else 0)
        if before == now or (before is None and price is None):
            continue
        if before is not None and before[0] == price:  # type: ignore[index]
            out.append(msg.tick_size(sub.req_id, sub.tick(size_tick), now[1]))
        else:
            out.append(msg.tick_price(sub.req_id, sub.tick(tick), price, now[1]))
        sub.sent[name] = now
    for name, tick, price in (("last", LAST, quote.last), ("close", CLOSE, quote.close)):
        if price is not None and sub.sent.get(name) != price:
            out.append(msg.tick_price(sub.req_id, sub.tick(tick), price, 0))
            sub.sent[name] = price
    out += _greeks(sub, quote, underlying_price)
    out += _open_interest(sub, quote, open_interest)
    return out


def _greeks(sub: Subscription, quote: FakeQuote, underlying_price: Decimal | None) -> list[list[Field]]:
    if not sub.contract.is_option or all(v is None for v in (quote.iv, quote.delta, quote.gamma)):
        return []
    greeks = (quote.iv, quote.delta, quote.mid, quote.gamma, quote.vega, quote.theta, underlying_price)
    if sub.sent.get("greeks") == greeks:
        return []
    sub.sent["greeks"] = greeks
    return [msg.tick_option_computation(sub.req_id, sub.tick(MODEL_GREEKS), *greeks)]


def _open_interest(sub: Subscription, quote: FakeQuote, totals: dict[str, int] | None) -> list[list[Field]]:
    if OPEN_INTEREST_GENERIC not in sub.generic_ticks:
        return []
    if sub.contract.is_option:
        if quote.open_interest is None:
            return []
        values = {CALL_OPEN_INTEREST if sub.contract.right == "C" else PUT_OPEN_INTEREST: quote.open_interest}
    else:
        totals = totals or {}
        values = {CALL_OPEN_INTEREST: totals.get("C", 0), PUT_OPEN_INTEREST: totals.get("P", 0)}
    out = []
    for tick, value in values.items():
        key = f"oi{tick}"
        if sub.sent.get(key) != value:
            out.append(msg.tick_size(sub.req_id, tick, value))
            sub.sent[key] = value
    return out
