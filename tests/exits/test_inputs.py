"""Bad inputs to the pure exit code are refused with a reason code, never a crash further in."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest

from market.errors import MarketValueError

from exits import ExitInputError, MarketSnapshot, SessionTimes, evaluate
from exits.numbers import share_of
from tests.exits.builders import DAY, SEVEN, ZERO, D, at, fresh, market, session, zero_position


@pytest.mark.parametrize("change", [
    {"entry_price": D(0)}, {"entry_price": D("NaN")}, {"entry_price": 10.0},
    {"entry_time": datetime(2025, 3, 3, 9, 45)},
    {"original_quantity": 0, "open_quantity": 0}, {"open_quantity": -1}, {"open_quantity": 11},
    {"original_quantity": 2.5}, {"profile": "1dte"}, {"right": "X"}, {"underlying": ""},
])
def test_bad_positions(change) -> None:
    with pytest.raises(ExitInputError) as err:
        replace(zero_position(), **change)
    assert err.value.code == "bad_position"


@pytest.mark.parametrize("field", ["option_price", "underlying_price", "vix", "previous_underlying_close"])
def test_bad_market(field) -> None:
    with pytest.raises(ExitInputError) as err:
        MarketSnapshot(**{"option_price": None, "session": None, field: D(-1)})  # type: ignore[arg-type]
    assert err.value.code == "bad_market"


def test_bad_sessions() -> None:
    with pytest.raises(MarketValueError) as err:
        SessionTimes(DAY, datetime(2025, 3, 3, 9, 30), at(DAY, 16))
    assert err.value.code == "bad_session"
    with pytest.raises(MarketValueError):
        SessionTimes(DAY, at(DAY, 16), at(DAY, 9, 30))


def test_naive_now_wrong_session_and_profile_mismatch() -> None:
    position = zero_position()
    with pytest.raises(ExitInputError) as err:
        evaluate(position, fresh(position), market("10", at(DAY, 10)), datetime(2025, 3, 3, 10), ZERO)
    assert err.value.code == "bad_time"
    with pytest.raises(ExitInputError) as err:
        evaluate(position, fresh(position), market("10", at(DAY, 10), sess=session(DAY.replace(day=4))),
                 at(DAY, 10), ZERO)
    assert err.value.code == "bad_session"
    with pytest.raises(ExitInputError) as err:
        evaluate(position, fresh(position), market("10", at(DAY, 10)), at(DAY, 10), SEVEN)
    assert err.value.code == "profile_mismatch"


@pytest.mark.parametrize(("qty", "share", "expected"), [
    (10, "0.33", 3), (10, "0.34", 3), (100, "0.34", 34), (1, "0.33", 1), (2, "0.25", 1), (2, "0.75", 2),
    (6, "0.25", 2), (10, "0.25", 3), (10, "0", 0),
])
def test_share_rounding_half_up_at_least_one(qty, share, expected) -> None:
    assert share_of(qty, D(share)) == expected
