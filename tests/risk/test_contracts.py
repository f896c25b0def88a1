import random
from decimal import Decimal as D

import pytest

from risk.capital import BetLimits
from risk.contracts import (
    apply_caps, book_cap_limits, contract_value, exposure_cap_pct, min_contracts, scaled_contracts, size_entry,
)
from risk.request import OpenPositionView
from tests.risk.builders import settings

BETS_0DTE = BetLimits(D(12000), D(24000))


def test_12000_over_300_is_exactly_40():
    assert contract_value(D("3.00"), 100) == D("300.00")
    assert min_contracts(D(12000), D("300.00")) == 40
    assert min_contracts(D("12000.01"), D("300.00")) == 41
    assert min_contracts(D(12000), D("299.99")) == 41


@pytest.mark.parametrize("multiplier, contracts", [("1", 40), ("1.25", 50), ("1.5", 60), ("2", 80), ("0.5", 40),
                                                   ("1.2375", 49)])
def test_scaled_contracts_floor_and_never_below_minimum(multiplier, contracts):
    assert scaled_contracts(40, D(multiplier)) == contracts


def test_caps_apply_in_order_by_flooring():
    contracts, bound = apply_caps(80, D(300), {"max_bet": D(24000), "per_underlying": D(20000),
                                               "total_exposure": D(21000), "buying_power": D(-5)})
    assert contracts == 0
    assert [(b.name, b.contracts_before, b.contracts_after) for b in bound] == [
        ("per_underlying", 80, 66), ("buying_power", 66, 0)]  # total_exposure (70) did not bind after 66


def test_size_entry_accepts_within_limits():
    sized = size_entry(BETS_0DTE, D(300), D("1.5"), {"total_exposure": D(48000)})
    assert (sized.min_contracts, sized.scaled, sized.contracts, sized.notional, sized.reason) == (
        40, 60, 60, D(18000), None)


def test_a_contract_dearer_than_the_max_bet():
    sized = size_entry(BETS_0DTE, D("24000.01"), D(1), {})
    assert sized.reason == "contract_too_expensive"
    assert sized.contracts == 0


def test_a_contract_exactly_the_max_bet_is_one_contract():
    sized = size_entry(BetLimits(D(12000), D(24000)), D(24000), D(2), {})
    assert (sized.contracts, sized.notional, sized.reason) == (1, D(24000), None)


def test_caps_leaving_less_than_the_minimum():
    sized = size_entry(BETS_0DTE, D(300), D(2), {"total_exposure": D("11999.99")})
    assert sized.reason == "below_minimum_bet"
    assert (sized.contracts, sized.notional) == (39, D(11700))
    assert "total_exposure" in sized.message


def test_minimum_rounding_up_can_pass_the_max_bet_and_is_then_refused():
    # min 40,000 max 50,000: ceil(40,000 / 30,000) = 2 contracts = 60,000 > max: capped to 1 = 30,000 < min
    sized = size_entry(BetLimits(D(40000), D(50000)), D(30000), D(1), {})
    assert sized.reason == "below_minimum_bet" and sized.contracts == 1


def test_book_cap_limits_count_what_is_open():
    book = (OpenPositionView("AAPL", 20, D(10)), OpenPositionView("MSFT", 10, D(5)))
    limits = book_cap_limits("AAPL", D(100000), book, D(50000), "none", settings("7dte"))
    # AAPL and MSFT share a sector (SPEC §10.3): 80% of 100,000 less the 25,000 they hold
    assert limits == {"per_underlying": D(46000), "sector": D(55000), "total_exposure": D(74000),
                      "buying_power": D(50000)}
    limits0 = book_cap_limits("SPY", D(60000), (OpenPositionView("SPY", 10, D(3)),), None, "high", settings("0dte"))
    assert limits0 == {"total_exposure": D(45000)}  # no per-underlying cap nor correlation tiers in 0dte


@pytest.mark.parametrize("book_regime, pct", [("none", "0.99"), ("moderate", "0.75"), ("high", "0.50")])
def test_7dte_exposure_cap_is_correlation_aware(book_regime, pct):
    assert exposure_cap_pct(book_regime, settings("7dte").sizing) == D(pct)
    assert exposure_cap_pct(book_regime, settings("0dte").sizing) == D("0.8")


def test_counts_are_floored_and_never_below_their_bound() -> None:
    assert scaled_contracts(3, D("1.99")) == 5 and scaled_contracts(3, D("0.5")) == 3 and scaled_contracts(0, D(2)) == 0
    contracts, bound = apply_caps(10, D(100), {"a": D("450.5"), "b": D("-250"), "c": D(0)})
    assert contracts == 0 and [(b.name, b.contracts_before, b.contracts_after) for b in bound] == [("a", 10, 4), ("b", 4, 0)]


def _apply_caps_by_int(contracts, value, limits):
    """apply_caps as it was before it skipped the caps with room (every cap's count through int())."""
    bound = []
    for name, money in limits.items():
        allowed = max(int(money / value), 0)
        if allowed < contracts:
            bound.append((name, money, contracts, allowed))
            contracts = allowed
    return contracts, bound


def test_caps_with_room_skipped_on_the_quotient_answer_as_int_counts() -> None:
    # The quotient compared with the count decides as the floored count did: edges at whole counts,
    # just under them, negative money and a count of zero included.
    rng = random.Random(6)
    values = [D("0.5"), D("1"), D("2.37"), D("300"), D("1234.56")]
    for _ in range(3000):
        value = rng.choice(values)
        contracts = rng.randint(0, 40)
        limits = {}
        for name in ("max_bet", "per_underlying", "sector", "total_exposure", "buying_power"):
            whole = rng.randint(-3, 45) * value
            limits[name] = rng.choice((whole, whole - D("0.01"), whole + D("0.01"), -whole, D(0), D("-0")))
        got_contracts, got_bound = apply_caps(contracts, value, limits)
        want = _apply_caps_by_int(contracts, value, limits)
        assert (got_contracts, [(b.name, b.limit, b.contracts_before, b.contracts_after) for b in got_bound]) == want


def test_counts_by_the_decimals_own_ceil_and_trunc_answer_as_before() -> None:
    # min_contracts / scaled_contracts call `__ceil__` / `__trunc__` directly: the ints of the old forms.
    from decimal import ROUND_CEILING
    rng = random.Random(7)
    for _ in range(3000):
        bet, value = D(rng.randint(1, 10**7)) / 100, D(rng.randint(1, 10**5)) / 100
        assert min_contracts(bet, value) == int((bet / value).to_integral_value(ROUND_CEILING))
        minimum, mult = rng.randint(0, 50), D(rng.randint(0, 400)) / 100
        assert scaled_contracts(minimum, mult) == max(int(minimum * mult), minimum)
