from decimal import Decimal

import pytest

from risk.capital import bet_limits, capital_base
from risk.numbers import InvalidInput
from tests.risk.builders import settings, settings_with


def test_fixed_base_ignores_pnl():
    cfg = settings("0dte").capital
    assert capital_base(cfg, realized_pnl=Decimal(-5000), net_liquidation=Decimal(1)) == Decimal(60000)


def test_equity_base_is_starting_capital_plus_realized_pnl():
    cfg = settings("7dte").capital
    assert capital_base(cfg) == Decimal(100000)
    assert capital_base(cfg, realized_pnl=Decimal("-2500.50")) == Decimal("97499.50")


def test_broker_base_is_net_liquidation_and_refuses_without_it():
    cfg = settings_with("7dte", **{"capital.source": "broker"}).capital
    assert capital_base(cfg, net_liquidation=Decimal("123456.78")) == Decimal("123456.78")
    with pytest.raises(InvalidInput) as info:
        capital_base(cfg)
    assert info.value.code == "capital_unavailable"


def test_0dte_limits():
    bets = bet_limits(Decimal(60000), settings("0dte").sizing)
    assert (bets.min_bet, bets.max_bet) == (Decimal(12000), Decimal(24000))


@pytest.mark.parametrize("equity, minimum, maximum", [
    (Decimal(100000), Decimal(33000), Decimal(66000)),
    (Decimal(200000), Decimal(66000), Decimal(132000)),
    (Decimal(60000), Decimal(33000), Decimal(39600)),  # the floor wins below 100,000
    (Decimal(40000), Decimal(33000), Decimal(26400)),  # min above max: nothing can be sized
])
def test_7dte_limits(equity, minimum, maximum):
    bets = bet_limits(equity, settings("7dte").sizing)
    assert (bets.min_bet, bets.max_bet) == (minimum, maximum)


def test_limits_round_inward_to_the_cent():
    bets = bet_limits(Decimal("100000.37"), settings("7dte").sizing)
    assert bets.min_bet == Decimal("33000.13")  # 33000.1221 rounded up
    assert bets.max_bet == Decimal("66000.24")  # 66000.2442 rounded down
