"""0dte tiered take-profit (SPEC §5.1): bands, VIX, time compression, held factor, quantities."""

from __future__ import annotations

from datetime import time

import pytest

from exits.tiered import band_for, hours, tiered_take_profit, time_scale, vix_scale
from tests.exits.builders import DAY, D, ZERO_CFG, at, ctx, fresh, walk, zero_position


@pytest.mark.parametrize(("hh", "mm", "first_target"), [
    (9, 30, "0.05"), (10, 59, "0.05"), (11, 0, "0.03"), (13, 59, "0.03"), (14, 0, "0.05"), (15, 30, "0.05"),
])
def test_band_by_entry_time(hh: int, mm: int, first_target: str) -> None:
    band = band_for(ctx(zero_position(entered=at(DAY, hh, mm)), "10", at(DAY, 15, 40)), ZERO_CFG)
    assert band.tiers[0].target == D(first_target)
    assert len(band.tiers) == (1 if hh >= 14 else 3)


def _first_fire(entered, now, prices, vix="20"):
    """The first price of `prices` at which tier 1 fires, evaluated alone from a fresh state."""
    position = zero_position(entered=entered)
    for price in prices:
        actions, _ = tiered_take_profit(ctx(position, price, now, vix=vix), fresh(position), ZERO_CFG)
        if actions:
            return price, actions
    return None, ()


def test_midday_band_fires_at_three_percent() -> None:
    price, actions = _first_fire(at(DAY, 11, 30), at(DAY, 11, 40), ["10.29", "10.30"])
    assert price == "10.30" and actions[0].rule == "take_profit_tier_1" and actions[0].quantity == 3


def test_late_band_closes_everything_at_one_tier() -> None:
    # 14:10 entry, 14:15 is < 2 h to the close: 5 % x 0.7 = 3.5 %
    price, actions = _first_fire(at(DAY, 14, 10), at(DAY, 14, 15), ["10.34", "10.35"])
    assert price == "10.35"
    assert [(a.kind, a.quantity) for a in actions] == [("close", 10)]


@pytest.mark.parametrize(("vix", "miss", "hit"), [
    ("14", "10.39", "10.40"),   # < 15: x 0.8 -> 4 %
    ("15", "10.49", "10.50"),   # at the edge: no scaling
    ("25", "10.49", "10.50"),
    ("26", "10.69", "10.70"),   # > 25: x 1.4 -> 7 %
    (None, "10.49", "10.50"),   # no VIX: no scaling
])
def test_vix_scaling(vix, miss, hit) -> None:
    price, _ = _first_fire(at(DAY, 9, 45), at(DAY, 10), [miss, hit], vix=vix)
    assert price == hit


def test_vix_scale_values() -> None:
    assert vix_scale(D(14), ZERO_CFG) == D("0.8")
    assert vix_scale(D(30), ZERO_CFG) == D("1.4")
    assert vix_scale(D(20), ZERO_CFG) == 1


@pytest.mark.parametrize(("hh", "mm", "scale", "miss", "hit"), [
    (13, 0, "1", "10.29", "10.30"),      # exactly 3 h to the close: not < 3 h
    (13, 30, "0.8", "10.23", "10.24"),   # < 3 h: 3 % x 0.8 = 2.4 %
    (14, 30, "0.7", "10.20", "10.21"),   # < 2 h: 2.1 %
    (15, 30, "0.5", "10.14", "10.15"),   # < 1 h: 1.5 %
])
def test_time_to_close_compression(hh, mm, scale, miss, hit) -> None:
    entered, now = at(DAY, 12, 45), at(DAY, hh, mm)  # held < 3 h throughout
    assert time_scale(ctx(zero_position(entered=entered), "10", now), ZERO_CFG) == D(scale)
    price, _ = _first_fire(entered, now, [miss, hit])
    assert price == hit


def test_held_over_three_hours_scales_by_0_9() -> None:
    # entered 09:31, now 12:32: held 3 h 01, 3 h 28 to the close -> only the held factor
    entered, now = at(DAY, 9, 31), at(DAY, 12, 32)
    assert time_scale(ctx(zero_position(entered=entered), "10", now), ZERO_CFG) == D("0.9")
    price, _ = _first_fire(entered, now, ["10.44", "10.45"])
    assert price == "10.45"


def test_held_exactly_three_hours_is_not_over() -> None:
    assert time_scale(ctx(zero_position(entered=at(DAY, 9, 30)), "10", at(DAY, 12, 30)), ZERO_CFG) == 1


def test_held_factor_multiplies_compression() -> None:
    assert time_scale(ctx(zero_position(entered=at(DAY, 9, 45)), "10", at(DAY, 15, 30)), ZERO_CFG) == D("0.45")


def test_half_day_compresses_against_the_early_close() -> None:
    from tests.exits.builders import session

    half = session(DAY, close=time(13), early=True)
    c = ctx(zero_position(entered=at(DAY, 9, 45)), "10", at(DAY, 10, 30), sess=half)
    assert time_scale(c, ZERO_CFG) == D("0.8")  # 2.5 h to a 13:00 close


def test_hours_is_exact() -> None:
    assert hours(at(DAY, 16) - at(DAY, 13)) == 3


@pytest.mark.parametrize(("qty", "expected"), [
    (1, [("close", 1)]),
    (2, [("partial_close", 1), ("close", 1)]),
    (3, [("partial_close", 1), ("partial_close", 1), ("close", 1)]),
    (10, [("partial_close", 3), ("partial_close", 3), ("close", 4)]),
    (100, [("partial_close", 33), ("partial_close", 33), ("close", 34)]),
])
def test_quantities_round_at_least_one_last_takes_the_rest(qty, expected) -> None:
    path = [(at(DAY, 10, i), p) for i, p in enumerate(["10.50", "11.00", "11.50", "12.00"])]
    steps, state = walk(zero_position(qty=qty), path)
    fired = [(a.kind, a.quantity) for _, actions in steps for a in actions]
    assert fired == expected
    assert state.quantity_closed == qty


def test_jump_fires_every_reached_tier_in_order() -> None:
    steps, _ = walk(zero_position(), [(at(DAY, 10), "11.50")])
    assert [(a.rule, a.quantity) for a in steps[0][1]] == [
        ("take_profit_tier_1", 3), ("take_profit_tier_2", 3), ("take_profit_tier_3", 4)]


def test_each_tier_fires_once_through_a_dip() -> None:
    prices = ["10.50", "10.00", "10.50", "10.60"]
    steps, state = walk(zero_position(), [(at(DAY, 10, i), p) for i, p in enumerate(prices)])
    assert [len(actions) for _, actions in steps] == [1, 0, 0, 0]
    assert state.fired == {"take_profit_tier_1"}


def test_untriggered_tiers_compress_late_in_the_day() -> None:
    # tier 1 at 10:00; at 15:30 (x 0.5, held > 3 h x 0.9) tier 2 = 4.5 %, tier 3 = 6.75 %
    steps, _ = walk(zero_position(), [(at(DAY, 10), "10.50"), (at(DAY, 15, 30), "10.70")])
    assert [a.rule for a in steps[1][1]] == ["take_profit_tier_2", "take_profit_tier_3"]


def test_never_more_than_open() -> None:
    position = zero_position(qty=10, open_qty=2)
    steps, state = walk(position, [(at(DAY, 10), "10.50"), (at(DAY, 10, 1), "11.00")])
    assert [(a.kind, a.quantity) for a in steps[0][1]] == [("close", 2)]
    assert steps[1][1] == ()
