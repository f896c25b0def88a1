"""Per-leg executions folded into whole combo units (daemon.core.combos, SPEC §9)."""

from datetime import date, datetime
from decimal import Decimal as D

import pytest

from daemon.core.combos import ComboFills
from market.combo import Combo
from market.session import EXCHANGE_TZ
from market.types import ComboLeg, Fill, OptionContract

T = datetime(2026, 11, 30, 10, 0, tzinfo=EXCHANGE_TZ)
E = date(2026, 11, 30)
SP, LP = OptionContract("SPY", E, D(445), "P"), OptionContract("SPY", E, D(443), "P")
SC, LC = OptionContract("SPY", E, D(455), "C"), OptionContract("SPY", E, D(457), "C")
CONDOR = Combo("neutral", "iron_condor", (ComboLeg(SP, "SELL"), ComboLeg(LP, "BUY"), ComboLeg(SC, "SELL"),
                                          ComboLeg(LC, "BUY")), D(2))


def leg(n, contract, side, qty, price, order_id=7, commission="0"):
    return Fill(f"e{n}", order_id, "tradingd:0dte:n1:1", contract, side, qty, D(price), T, D(commission))


def test_no_unit_until_every_leg_has_filled_then_the_value_of_the_units():
    folds = ComboFills()
    assert folds.add(CONDOR, leg(1, SP, "SELL", 3, "1.00", commission="2.60")) is None
    assert folds.add(CONDOR, leg(2, LP, "BUY", 3, "0.40")) is None
    assert folds.add(CONDOR, leg(3, SC, "SELL", 2, "0.90")) is None  # a leg ahead of the others is no unit
    unit = folds.add(CONDOR, leg(4, LC, "BUY", 2, "0.30"))
    assert unit is not None and (unit.side, unit.quantity) == ("BUY", 2)
    # net -1.00 + 0.40 - 0.90 + 0.30 = -1.20: value = width 2 - credit 1.20 = 0.80 (the max loss per unit)
    assert unit.price == D("0.80") and unit.commission == D("2.60")
    assert unit.exec_id == "COMBO-7-000002" and unit.order_id == 7 and unit.contract == SP
    last = folds.add(CONDOR, leg(5, SC, "SELL", 1, "0.90"))
    assert last is None
    last = folds.add(CONDOR, leg(6, LC, "BUY", 1, "0.36"))
    assert last is not None and last.quantity == 1 and last.price == D("0.86")  # this unit's own legs


def test_selling_the_combo_gives_sell_units_and_a_stranger_is_refused():
    folds = ComboFills()
    for n, (c, side, price) in enumerate(((SP, "BUY", "0.50"), (LP, "SELL", "0.10"), (SC, "BUY", "0.40"))):
        assert folds.add(CONDOR, leg(n, c, side, 1, price, order_id=9)) is None
    unit = folds.add(CONDOR, leg(9, LC, "SELL", 1, "0.05", order_id=9))
    assert unit is not None and unit.side == "SELL" and unit.price == D("1.25")  # 2 - (0.50 - 0.10 + 0.40 - 0.05)
    with pytest.raises(ValueError):
        folds.add(CONDOR, leg(10, OptionContract("SPY", E, D(450), "C"), "BUY", 1, "1"))
