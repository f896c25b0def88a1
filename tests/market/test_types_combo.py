"""The shared combo interface: ComboLeg and OrderRequest.legs (room `combos` builds IB BAG on it)."""

from datetime import date
from decimal import Decimal as D

import pytest

from market.types import ComboLeg, OptionContract, OrderRequest, combo_key

CALL = OptionContract("SPY", date(2019, 2, 11), D("270"), "C")
PUT = OptionContract("SPY", date(2019, 2, 11), D("270"), "P")


def test_selling_a_combo_reverses_every_leg():
    legs = (ComboLeg(CALL, "BUY"), ComboLeg(PUT, "SELL", 2))
    assert [leg.side_for("BUY") for leg in legs] == ["BUY", "SELL"]
    assert [leg.side_for("SELL") for leg in legs] == ["SELL", "BUY"]


def test_combo_order_contract_is_first_leg_and_limit_may_be_negative():
    legs = (ComboLeg(CALL, "SELL"), ComboLeg(PUT, "SELL"))
    order = OrderRequest(1, "tradingd:7dte:s1:1", CALL, "BUY", 3, limit_price=D("-1.20"), legs=legs)
    assert order.is_combo and order.limit_price == D("-1.20")
    with pytest.raises(ValueError, match="combo_contract"):
        OrderRequest(2, "tradingd:7dte:s1:2", PUT, "BUY", 3, limit_price=D("-1.20"), legs=legs)
    assert not OrderRequest(3, "r", CALL, "BUY", 1).is_combo


def test_ratio_must_be_positive_and_combo_key_is_stable():
    with pytest.raises(ValueError, match="combo_leg_ratio"):
        ComboLeg(CALL, "BUY", 0)
    assert combo_key((ComboLeg(CALL, "BUY"), ComboLeg(PUT, "SELL", 2))) == \
        "+1 SPY 20190211 C 270|-2 SPY 20190211 P 270"
