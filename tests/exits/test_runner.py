"""7dte runner (SPEC §5.3): initial stop, R-multiple take-profit, trailing stop, last day."""

from __future__ import annotations

from datetime import date

import pytest

from exits.runner import r_multiple, ratchet, runner_take_profit, stop_candidate
from tests.exits.builders import FRI, SEVEN_CFG, D, at, ctx, fresh, seven_position, walk

LAST_DAY = date(2025, 3, 6)  # 1 DTE for the 2025-03-07 expiry


def test_initial_stop_is_entry_less_20_percent() -> None:
    state = fresh(seven_position())
    assert state.stop_price == D(80) and state.peak_price == D(100)


@pytest.mark.parametrize(("peak", "r"), [("100", "1.5"), ("114.99", "1.5"), ("115", "2.0"), ("129.99", "2.0"),
                                         ("130", "3.0"), ("170", "3.0")])
def test_r_multiple_by_peak(peak: str, r: str) -> None:
    c = ctx(seven_position(), "100", at(FRI, 11))
    assert r_multiple(c, SEVEN_CFG, D(peak)) == D(r)


@pytest.mark.parametrize(("peak", "expected"), [
    ("110", None), ("115", ("103.75", "trailing_stop")), ("120", ("105", "trailing_stop")),
    ("130", ("115", "trailing_stop")), ("150", ("125", "trailing_stop")),
])
def test_trailing_locks_a_share_of_the_gain(peak, expected) -> None:
    found = stop_candidate(ctx(seven_position(), "100", at(FRI, 11)), SEVEN_CFG, D(peak))
    assert (None if found is None else (found[0], found[1])) == (None if expected is None else (D(expected[0]), expected[1]))


def test_trailing_stop_only_ratchets_up_and_is_hit_on_the_way_down() -> None:
    prices = ["115", "110", "130", "120", "116", "115"]
    steps, state = walk(seven_position(), [(at(FRI, 10, i + 1), p) for i, p in enumerate(prices)])
    tightened = [(p, a.stop_price) for p, acts in steps for a in acts if a.kind == "tighten_stop"]
    assert tightened == [("115", D("103.75")), ("130", D(115))]
    last = steps[-1][1]
    assert [(a.kind, a.rule, a.quantity) for a in last] == [("close", "trailing_stop", 15)]  # 5 went at +20 %
    assert state.stop_price == D(115)


def test_ratchet_never_lowers_the_stop() -> None:
    position = seven_position()
    high = ratchet(ctx(position, "130", at(FRI, 11)), fresh(position), SEVEN_CFG)
    lower = ratchet(ctx(position, "101", at(FRI, 11, 5)), high, SEVEN_CFG)
    assert high.stop_price == lower.stop_price == D(115)
    assert lower.peak_price == D(130)


def test_take_profit_of_the_remainder_at_3r_after_a_run() -> None:
    prices = ["120", "135", "150", "160", "160.01"]
    steps, state = walk(seven_position(qty=20), [(at(FRI, 10, i + 1), p) for i, p in enumerate(prices)])
    final = [(a.kind, a.quantity, a.rule) for a in steps[-1][1]]
    assert final == [("close", 5, "runner_take_profit")]
    assert [a for a in steps[-2][1] if a.kind != "tighten_stop"] == []
    assert state.quantity_closed == 20


def test_take_profit_uses_r_on_the_peak_including_this_quote() -> None:
    position = seven_position()
    # a jump to 150: the peak is +50 %, R = 3, target 160 -> nothing from this rule
    assert runner_take_profit(ctx(position, "150", at(FRI, 11)), fresh(position), SEVEN_CFG)[0] == ()


def test_lower_r_fires_while_the_peak_is_below_its_band() -> None:
    # R = 1.0 until +50 %: target 120 is passed just above a peak of +20 %
    cfg = SEVEN_CFG.model_copy(update={"r_multiples": (SEVEN_CFG.r_multiples[0].model_copy(update={"at": D("0.5")}),
                                                      SEVEN_CFG.r_multiples[2].model_copy(update={"value": D(1)}))})
    position = seven_position()
    assert runner_take_profit(ctx(position, "120", at(FRI, 11)), fresh(position), cfg)[0] == ()
    actions, _ = runner_take_profit(ctx(position, "120.01", at(FRI, 11)), fresh(position), cfg)
    assert [(a.kind, a.rule) for a in actions] == [("close", "runner_take_profit")]


def test_last_day_locks_half_and_floors_at_90_percent() -> None:
    position = seven_position()
    c = ctx(position, "100", at(LAST_DAY, 10))
    assert stop_candidate(c, SEVEN_CFG, D(100)) == (D(90), "last_day_stop")
    assert stop_candidate(c, SEVEN_CFG, D(110)) == (D(90), "last_day_stop")    # no trail yet: the floor
    assert stop_candidate(c, SEVEN_CFG, D(120)) == (D(110), "last_day_stop")   # trail locks 50 %, not 25 %
    assert stop_candidate(c, SEVEN_CFG, D(130)) == (D(115), "last_day_stop")


def test_last_day_stop_announced_then_hit() -> None:
    steps, _ = walk(seven_position(), [(at(LAST_DAY, 10), "95"), (at(LAST_DAY, 10, 5), "90")])
    assert [(a.kind, a.rule, a.stop_price) for a in steps[0][1]] == [("tighten_stop", "last_day_stop", D(90))]
    assert [(a.kind, a.rule) for a in steps[1][1]] == [("close", "last_day_stop")]


def test_last_day_floor_above_the_market_closes_at_once() -> None:
    # stop was 80 (initial); on the last day the floor is 90 and the premium is 85
    steps, _ = walk(seven_position(), [(at(LAST_DAY, 10), "85")])
    assert [(a.kind, a.rule, a.quantity) for a in steps[0][1]] == [("close", "last_day_stop", 20)]
