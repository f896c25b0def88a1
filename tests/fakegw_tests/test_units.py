"""The fake's pure parts: framing, number rendering, account arithmetic, matching rules, ticks."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fakegw.account import AccountBook
from tests.fakegw.contracts import make_option, make_underlying
from tests.fakegw.market import FakeQuote, Liquidity
from tests.fakegw.orders import CommissionSchedule, FakeOrder, match, stop_triggered
from tests.fakegw.session import GATEWAY_TZ, parse_filter_time
from tests.fakegw.ticks import Subscription, quote_ticks
from tests.fakegw.wire import Cursor, ProtocolError, decode_frame, encode_frame, jdouble, quantity

SPY = make_underlying("SPY")
CALL = make_option(SPY, date(2024, 1, 19), Decimal(470), "C")
NOW = datetime(2024, 1, 19, 10, 0, tzinfo=GATEWAY_TZ)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)))))
def test_frames_round_trip(fields: list[str]) -> None:
    assert decode_frame(encode_frame(list(fields))) == fields


def test_frame_with_wrong_length_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="frame_length_mismatch"):
        decode_frame(encode_frame(["1", "2"]) + b"x")


def test_numbers_render_as_tws_writes_them() -> None:
    assert (jdouble(Decimal("470")), jdouble(Decimal("1.50")), jdouble(None)) == ("470.0", "1.5", "1.7976931348623157E308")
    assert (quantity(Decimal("100")), quantity(Decimal("2.50")), quantity(Decimal("1E+2"))) == ("100", "2.5", "100")


def test_cursor_reports_short_and_bad_fields() -> None:
    with pytest.raises(ProtocolError, match="short_message"):
        Cursor(["1"], 1).str()
    with pytest.raises(ProtocolError, match="bad_int"):
        Cursor(["x"]).int()
    assert Cursor(["", "1.0"]).int(default=-1) == -1


def order(action: str, order_type: str, lmt: str | None = None, aux: str | None = None, qty: int = 5) -> FakeOrder:
    return FakeOrder(order_id=1, client_id=1, perm_id=1, contract=CALL, action=action, qty=Decimal(qty),
                     order_type=order_type, lmt_price=Decimal(lmt) if lmt else None,
                     aux_price=Decimal(aux) if aux else None, tif="DAY", order_ref="", account="DU1",
                     placed_at=NOW)


QUOTE = FakeQuote(bid=Decimal("1.50"), ask=Decimal("1.55"), bid_size=3, ask_size=4)


@pytest.mark.parametrize(("o", "expected"), [
    (order("BUY", "LMT", "1.55"), (Decimal(4), Decimal("1.55"))),
    (order("BUY", "LMT", "1.54"), None),
    (order("SELL", "LMT", "1.50"), (Decimal(3), Decimal("1.50"))),
    (order("SELL", "LMT", "1.51"), None),
    (order("BUY", "MKT", qty=2), (Decimal(2), Decimal("1.55"))),
    (order("SELL", "STP", aux="1.40"), None),  # not triggered yet
])
def test_match_takes_the_touch_up_to_displayed_size(o: FakeOrder, expected) -> None:
    assert match(o, QUOTE, Liquidity(bid=3, ask=4)) == expected


def test_stop_triggers() -> None:
    sell_stop, buy_stop = order("SELL", "STP", aux="1.50"), order("BUY", "STP", aux="1.55")
    assert stop_triggered(sell_stop, QUOTE) and stop_triggered(buy_stop, QUOTE)
    assert not stop_triggered(sell_stop, FakeQuote(bid=Decimal("1.51"), last=Decimal("1.52")))
    assert stop_triggered(sell_stop, FakeQuote(bid=Decimal("1.51"), last=Decimal("1.49")))


def test_commission_has_a_minimum() -> None:
    schedule = CommissionSchedule()
    assert schedule.charge(CALL, Decimal(1)) == Decimal("1.00")
    assert schedule.charge(CALL, Decimal(10)) == Decimal("6.50")
    assert schedule.charge(SPY, Decimal(100)) == Decimal("1.00")


def test_account_round_trip_realizes_pnl_and_restores_flat() -> None:
    book = AccountBook("DU1", "USD")
    no_marks = lambda c: None  # noqa: E731
    book.set_values(no_marks, net_liquidation=Decimal(10_000), buying_power=Decimal(40_000), cash=Decimal(10_000))
    pos, realized = book.apply_fill(CALL, "BUY", Decimal(2), Decimal("1.00"), Decimal("1.30"))
    assert (pos.qty, pos.avg_cost, realized, book.cash) == (2, Decimal("100.65"), None, Decimal("9798.70"))
    pos, realized = book.apply_fill(CALL, "SELL", Decimal(2), Decimal("1.50"), Decimal("1.30"))
    assert (pos.qty, realized, book.cash) == (0, Decimal("97.40"), Decimal("10097.40"))
    book.revalue(no_marks)
    values = {(r.tag, r.currency): r.value for r in book.update_rows}
    assert values[("NetLiquidation", "USD")] == "10097.40"
    assert values[("BuyingPower", "USD")] == "40097.40"
    assert values[("RealizedPnL", "BASE")] == "97.40"


def test_flip_from_long_to_short_opens_the_rest_at_the_fill_price() -> None:
    book = AccountBook("DU1", "USD")
    book.apply_fill(CALL, "BUY", Decimal(1), Decimal("1.00"), Decimal(0))
    pos, _ = book.apply_fill(CALL, "SELL", Decimal(3), Decimal("2.00"), Decimal(0))
    assert (pos.qty, pos.avg_cost, pos.realized_pnl) == (-2, Decimal("200.00"), Decimal("100.00"))


def test_ticks_send_only_changes_and_clear_a_vanished_side() -> None:
    sub = Subscription(7, CALL, frozenset())
    first = quote_ticks(sub, QUOTE, None, None)
    assert [f[3] for f in first] == [1, 2]
    assert quote_ticks(sub, QUOTE, None, None) == []
    smaller = FakeQuote(bid=Decimal("1.50"), ask=None, bid_size=1)
    assert quote_ticks(sub, smaller, None, None) == [[2, 6, 7, 0, 1], [1, 6, 7, 2, "-1.0", 0, 0]]


@pytest.mark.parametrize(("text", "expected"), [
    ("20240119-15:00:00", datetime(2024, 1, 19, 15, tzinfo=timezone.utc)),
    ("20240119 10:00:00 US/Eastern", datetime(2024, 1, 19, 15, tzinfo=timezone.utc)),
    ("20240119 10:00:00", datetime(2024, 1, 19, 15, tzinfo=timezone.utc)),
])
def test_execution_filter_times(text: str, expected: datetime) -> None:
    assert parse_filter_time(text) == expected


def test_bad_execution_filter_time_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        parse_filter_time("20240119 10:00:00 Mars/Olympus")
