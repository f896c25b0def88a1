"""7dte partial profit-taking (SPEC §5.2): cumulative thresholds, DTE bands, earnings."""

from __future__ import annotations

from datetime import date

import pytest

from exits.partial import dte_scale, partial_profit
from tests.exits.builders import EXPIRY_7, FRI, SEVEN_CFG, D, at, ctx, fresh, seven_position, walk


@pytest.mark.parametrize(("dte", "scale"), [
    (-1, "0.4"), (0, "0.4"), (1, "0.4"), (2, "0.6"), (3, "0.75"), (4, "0.9"), (5, "0.9"), (6, "1"), (7, "1"), (9, "1"),
])
def test_dte_bands(dte: int, scale: str) -> None:
    assert dte_scale(dte, SEVEN_CFG) == D(scale)


@pytest.mark.parametrize(("day", "miss", "hit"), [
    (date(2025, 2, 28), "119.99", "120"),   # 7 DTE: 20 %
    (date(2025, 3, 2), "117.99", "118"),    # 5 DTE: x 0.9 = 18 %
    (date(2025, 3, 4), "114.99", "115"),    # 3 DTE: x 0.75 = 15 %
    (date(2025, 3, 5), "111.99", "112"),    # 2 DTE: x 0.6 = 12 %
    (date(2025, 3, 6), "107.99", "108"),    # 1 DTE: x 0.4 = 8 %
])
def test_first_threshold_by_dte_through_the_rule(day, miss, hit) -> None:
    position = seven_position()
    now = at(day, 11)
    assert partial_profit(ctx(position, miss, now), fresh(position), SEVEN_CFG)[0] == ()
    actions, _ = partial_profit(ctx(position, hit, now), fresh(position), SEVEN_CFG)
    assert [(a.kind, a.quantity) for a in actions] == [("partial_close", 5)]


@pytest.mark.parametrize(("earnings", "hit"), [
    (date(2025, 3, 5), "115"),    # before expiry: 20 % x 0.75
    (EXPIRY_7, "115"),            # on expiry day counts as before expiry
    (date(2025, 3, 10), "120"),   # after expiry: no change
    (date(2025, 2, 27), "120"),   # already past: no change
])
def test_earnings_before_expiry(earnings, hit) -> None:
    position = seven_position()
    c = ctx(position, hit, at(FRI, 11), earnings_date=earnings)
    below = ctx(position, str(D(hit) - D("0.01")), at(FRI, 11), earnings_date=earnings)
    assert partial_profit(below, fresh(position), SEVEN_CFG)[0] == ()
    assert partial_profit(c, fresh(position), SEVEN_CFG)[0][0].quantity == 5


def test_earnings_and_dte_multiply() -> None:
    position = seven_position()  # 3 DTE and earnings: 20 % x 0.75 x 0.75 = 11.25 %
    c = ctx(position, "111.25", at(date(2025, 3, 4), 11), earnings_date=date(2025, 3, 5))
    assert partial_profit(c, fresh(position), SEVEN_CFG)[0][0].quantity == 5


def test_jump_from_zero_to_fifty_closes_75_percent_at_once() -> None:
    steps, state = walk(seven_position(qty=20), [(at(FRI, 10, 5), "150")])
    closes = [a for a in steps[0][1] if a.kind in ("close", "partial_close")]
    assert [(a.kind, a.quantity, a.rule) for a in closes] == [("partial_close", 15, "partial_profit")]
    assert {"partial_profit_1", "partial_profit_2", "partial_profit_3"} <= state.fired


def test_cumulative_never_pays_a_threshold_twice() -> None:
    prices = ["120", "110", "120", "135"]
    steps, state = walk(seven_position(qty=20), [(at(FRI, 10, i + 1), p) for i, p in enumerate(prices)])
    partials = [[a.quantity for a in acts if a.rule == "partial_profit"] for _, acts in steps]
    assert partials == [[5], [], [], [5]]
    assert state.profit_closed == 10


@pytest.mark.parametrize(("qty", "expected"), [
    (1, [("close", 1)]),
    (2, [("partial_close", 1), ("close", 1)]),
    (33, [("partial_close", 8), ("partial_close", 9), ("partial_close", 8)]),
])
def test_small_and_odd_positions(qty, expected) -> None:
    steps, _ = walk(seven_position(qty=qty), [(at(FRI, 10, i + 1), p) for i, p in enumerate(["120", "135", "150"])])
    fired = [(a.kind, a.quantity) for _, acts in steps for a in acts if a.rule == "partial_profit"]
    assert fired == expected


def test_below_every_threshold_holds() -> None:
    position = seven_position()
    assert partial_profit(ctx(position, "110", at(FRI, 11)), fresh(position), SEVEN_CFG) == ((), fresh(position))
