"""ExitState records: JSON-safe round trip and clear refusals of bad records."""

from __future__ import annotations

import json

import pytest

from exits import ExitInputError, ExitState
from tests.exits.builders import FRI, D, at


def _full() -> ExitState:
    return ExitState(fired=frozenset({"take_profit_tier_1", "loss_alert"}), quantity_closed=7, profit_closed=3,
                     peak_price=D("131.25"), stop_price=D("115.625"), stop_rule="trailing_stop",
                     stop_announced=D("110"), exit_at_open_since=at(FRI, 17, 5))


def test_round_trip_through_json() -> None:
    state = _full()
    record = json.loads(json.dumps(state.to_record()))
    assert ExitState.from_record(record) == state
    assert ExitState.from_record(ExitState().to_record()) == ExitState()


def test_record_is_deterministic() -> None:
    assert json.dumps(_full().to_record()) == json.dumps(_full().to_record())
    assert _full().to_record()["fired"] == ["loss_alert", "take_profit_tier_1"]


@pytest.mark.parametrize("mutate", [
    lambda r: "not a dict",
    lambda r: {**r, "v": 99},
    lambda r: {k: v for k, v in r.items() if k != "stop_price"},
    lambda r: {**r, "peak_price": "abc"},
    lambda r: {**r, "peak_price": 1.5},
    lambda r: {**r, "peak_price": "NaN"},
    lambda r: {**r, "quantity_closed": -1},
    lambda r: {**r, "quantity_closed": True},
    lambda r: {**r, "fired": "tier"},
    lambda r: {**r, "fired": [1]},
    lambda r: {**r, "stop_rule": 3},
    lambda r: {**r, "exit_at_open_since": "2025-02-28T17:05:00"},
    lambda r: {**r, "exit_at_open_since": "yesterday"},
    lambda r: {**r, "profit_closed": 9},
])
def test_bad_records_are_refused_with_a_code(mutate) -> None:
    with pytest.raises(ExitInputError) as err:
        ExitState.from_record(mutate(_full().to_record()))
    assert err.value.code == "bad_exit_state"
