"""Decoding what ib_async actually writes, for every server version the fake speaks."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import pytest
from ib_async import ComboLeg, Contract, ExecutionFilter, LimitOrder, MarketOrder, Option, Order, StopOrder, TagValue
from ib_async.client import Client

from tests.fakegw.requests import read_execution_filter, read_market_data, read_place_order
from tests.fakegw.wire import ProtocolError

VERSIONS = [170, 176, 177, 178]
CALL = Option("SPY", "20240119", 470, "C", "SMART", multiplier="100", currency="USD", conId=123)


def written(server_version: int, send) -> list[str]:
    """The fields ib_async's Client writes for one request at `server_version`."""
    client = Client(SimpleNamespace())
    client._serverVersion = server_version
    client.connState = Client.CONNECTED
    sent: list[str] = []
    client.sendMsg = sent.append  # type: ignore[method-assign]
    try:
        send(client)
    finally:
        client.connState = Client.DISCONNECTED
    (message,) = sent
    return message.split("\0")[:-1]


ORDERS = {
    "limit": LimitOrder("BUY", 2, 1.55, orderRef="tradingd:0dte:s:1", tif="DAY"),
    "stop": StopOrder("SELL", 3, 1.20, orderRef="tradingd:7dte:stop:2", tif="GTC"),
    "market": MarketOrder("SELL", 1),
    "stop_limit": Order(action="SELL", totalQuantity=1, orderType="STP LMT", lmtPrice=1.1, auxPrice=1.2),
    "algo": LimitOrder("BUY", 1, 1.5, algoStrategy="Adaptive", algoParams=[TagValue("adaptivePriority", "Normal")]),
    "hedge": LimitOrder("BUY", 1, 1.5, hedgeType="D", hedgeParam="0.5"),
    "delta_neutral": Order(action="BUY", totalQuantity=1, orderType="VOL", volatility=0.2,
                           volatilityType=2, deltaNeutralOrderType="MKT"),
    "peg_mid": Order(action="BUY", totalQuantity=1, orderType="PEG MID", midOffsetAtWhole=0.01,
                     midOffsetAtHalf=0.005),
    "what_if": LimitOrder("BUY", 1, 1.5, whatIf=True),
}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", sorted(ORDERS))
def test_place_order_is_read_field_for_field(version: int, name: str) -> None:
    order = ORDERS[name]
    fields = written(version, lambda c: c.placeOrder(77, CALL, order))
    req = read_place_order(fields, version)
    assert (req.order_id, req.action, req.qty, req.order_type) == (77, order.action, Decimal(str(float(order.totalQuantity))), order.orderType)
    assert req.contract.con_id == 123 and req.contract.strike == Decimal("470.0")
    assert req.order_ref == order.orderRef and req.what_if == order.whatIf
    if name in ("limit", "stop_limit"):
        assert req.lmt_price == Decimal(str(order.lmtPrice))
    if name == "stop":
        assert (req.aux_price, req.tif, req.lmt_price) == (Decimal("1.2"), "GTC", None)


def test_place_order_with_extra_fields_is_refused() -> None:
    fields = written(176, lambda c: c.placeOrder(1, CALL, ORDERS["limit"]))
    with pytest.raises(ProtocolError, match="unread_fields"):
        read_place_order([*fields, "surplus"], 176)


@pytest.mark.parametrize("version", VERSIONS)
def test_combo_order_legs_and_negative_net_limit_are_read(version: int) -> None:
    legs = [ComboLeg(conId=11, ratio=1, action="SELL", exchange="SMART"),
            ComboLeg(conId=12, ratio=2, action="BUY", exchange="SMART")]
    bag = Contract(secType="BAG", symbol="SPY", exchange="SMART", currency="USD", comboLegs=legs)
    order = LimitOrder("BUY", 3, -1.25, orderRef="tradingd:7dte:c:1",
                       smartComboRoutingParams=[TagValue("NonGuaranteed", "0")])
    req = read_place_order(written(version, lambda c: c.placeOrder(5, bag, order)), version)
    assert (req.contract.sec_type, req.contract.symbol, req.qty, req.lmt_price) == ("BAG", "SPY", 3, Decimal("-1.25"))
    assert [(leg.con_id, leg.ratio, leg.action, leg.exchange) for leg in req.legs] == [
        (11, 1, "SELL", "SMART"), (12, 2, "BUY", "SMART")]
    assert req.order_ref == "tradingd:7dte:c:1" and req.leg_prices == ()


def test_a_single_order_has_no_legs() -> None:
    assert read_place_order(written(176, lambda c: c.placeOrder(1, CALL, ORDERS["limit"])), 176).legs == ()


def test_market_data_request_is_read() -> None:
    fields = written(176, lambda c: c.reqMktData(9, CALL, "100,101", False, False, []))
    req = read_market_data(fields)
    assert (req.req_id, req.contract.con_id, req.generic_ticks, req.snapshot) == (9, 123, {"100", "101"}, False)


def test_execution_filter_is_read() -> None:
    flt = ExecutionFilter(clientId=3, acctCode="DU1", time="20240119 09:30:00 US/Eastern", symbol="SPY", side="BUY")
    req = read_execution_filter(written(176, lambda c: c.reqExecutions(5, flt)))
    assert (req.req_id, req.client_id, req.account, req.time, req.symbol, req.side) == (
        5, 3, "DU1", "20240119 09:30:00 US/Eastern", "SPY", "BUY")
