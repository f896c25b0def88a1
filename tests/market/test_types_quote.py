"""`Quote`'s `__init__` (`market.frozen.fast_init`): the dataclass's own signature and effect, built faster."""

from __future__ import annotations

import dataclasses
import inspect
import pickle
from datetime import datetime
from decimal import Decimal

import pytest

from market.clock import EXCHANGE_TZ
from market.types import Quote

AT = datetime(2019, 2, 11, 10, 0, tzinfo=EXCHANGE_TZ)


def test_the_signature_is_the_fields_in_order_with_their_defaults() -> None:
    params = list(inspect.signature(Quote).parameters.values())
    assert [(p.name, p.default) for p in params] == [
        (f.name, inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default)
        for f in dataclasses.fields(Quote)]


def test_every_field_is_set_positionally_or_by_keyword_and_stays_frozen() -> None:
    values = ("SPY 20190211 C 270", Decimal("1.20"), Decimal("1.25"), Decimal("1.22"), AT, 10, 12, 900,
              Decimal("0.51"), Decimal("0.04"), Decimal("0.18"), True, False, True)
    names = [f.name for f in dataclasses.fields(Quote)]
    by_position, by_name = Quote(*values), Quote(**dict(zip(names, values)))
    assert [getattr(by_position, n) for n in names] == list(values) == [getattr(by_name, n) for n in names]
    assert by_position == by_name and hash(by_position) == hash(by_name)
    assert dataclasses.replace(by_position, usable=True).usable and not by_position.usable
    assert pickle.loads(pickle.dumps(by_position)) == by_position
    with pytest.raises(dataclasses.FrozenInstanceError):
        by_position.bid = Decimal(0)  # type: ignore[misc]
    with pytest.raises(TypeError):
        Quote("SPY", None, None, None)  # type: ignore[call-arg]  # received_at has no default


def test_the_constructor_is_the_fast_one() -> None:
    # stores through each slot's descriptor, not object.__setattr__ per field (fast_init's refusals: test_frozen)
    names = Quote.__init__.__code__.co_names
    assert "_set_key" in names and "__setattr__" not in names
