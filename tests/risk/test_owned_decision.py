"""`owned_decision` (the sizer's lean build) gives the very `Decision` the constructor would: same fields
in declaration order, read-only maps, frozen. Checked on the bench's seeded requests, both profiles."""

from __future__ import annotations

import dataclasses
import gc
import random
from types import MappingProxyType

import pytest

from bench.bench_sizing import SEED, requests
from config.loader import load_settings
from risk.decision import Decision
from risk.sizing import evaluate

MAPS = ("factors", "multiplier_caps", "cap_limits", "notes")


@pytest.mark.parametrize("profile", ["0dte", "7dte"])
def test_evaluate_builds_what_the_constructor_builds(profile: str) -> None:
    settings = load_settings(profile, env={})
    names = [f.name for f in dataclasses.fields(Decision)]
    for request in requests(settings, random.Random(SEED))[:100]:
        built = evaluate(request, settings)
        assert type(built) is Decision
        assert list(vars(built)) == names  # every field, in declaration order (as fast_init stores them)
        again = Decision(**{name: getattr(built, name) for name in names})
        assert built == again and vars(built) == vars(again)
        for name in MAPS:
            assert type(getattr(built, name)) is MappingProxyType
        with pytest.raises(dataclasses.FrozenInstanceError):
            built.accepted = not built.accepted  # type: ignore[misc]


def test_no_two_decisions_share_a_map() -> None:
    # The sizer hands its own dicts over without a copy: each decision's maps must be dicts no other
    # decision (nor the multiplier's two passes on 0dte) holds.
    settings = load_settings("0dte", env={})
    kept = [evaluate(r, settings) for r in requests(settings, random.Random(SEED))[:50]]
    inner = [gc.get_referents(getattr(d, name))[0] for d in kept for name in MAPS]  # the dict behind each view
    assert all(type(m) is dict for m in inner)
    assert len({id(m) for m in inner}) == len(inner)
