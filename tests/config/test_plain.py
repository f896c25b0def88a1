"""`plain(settings)` answers every configuration read as the Settings do, stays read-only, and is
built once per Settings object (`per_settings`)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from config.loader import load_settings
from config.per_settings import per_settings
from config.plain import PlainConfig, plain


def _same(model: BaseModel, copy: object, path: str) -> None:
    for name in type(model).model_fields:
        value, mirrored = getattr(model, name), getattr(copy, name)
        if isinstance(value, BaseModel):
            assert isinstance(mirrored, PlainConfig), f"{path}.{name}"
            _same(value, mirrored, f"{path}.{name}")
        elif isinstance(value, tuple) and any(isinstance(v, BaseModel) for v in value):
            assert len(value) == len(mirrored), f"{path}.{name}"
            for i, (v, m) in enumerate(zip(value, mirrored)):
                _same(v, m, f"{path}.{name}[{i}]")
        elif isinstance(value, dict) and any(isinstance(v, BaseModel) for v in value.values()):
            assert list(value) == list(mirrored), f"{path}.{name}"
            for k in value:
                _same(value[k], mirrored[k], f"{path}.{name}[{k}]")
        else:
            assert mirrored is value, f"{path}.{name}: the very same object"


@pytest.mark.parametrize("profile", ["0dte", "7dte"])
def test_every_field_of_every_model_reads_the_same(profile: str) -> None:
    settings = load_settings(profile, env={})
    _same(settings, plain(settings), "settings")


def test_the_snapshot_is_read_only_built_once_per_settings_and_not_copied_again() -> None:
    settings = load_settings("0dte", env={})
    snapshot = plain(settings)
    assert plain(settings) is snapshot and plain(snapshot) is snapshot
    assert plain(load_settings("0dte", env={})) is not snapshot, "another Settings object: its own snapshot"
    for target in (snapshot, snapshot.sizing):
        with pytest.raises(AttributeError):
            target.max_positions = 99  # type: ignore[misc]
    with pytest.raises(AttributeError):
        snapshot.no_such_key  # noqa: B018


def test_per_settings_builds_once_per_object_by_identity() -> None:
    built: list[object] = []

    @per_settings
    def derive(settings: object) -> tuple[object, int]:
        built.append(settings)
        return settings, len(built)

    a, b = object(), object()
    assert derive(a) == (a, 1) and derive(a) == (a, 1) and derive(b) == (b, 2) and derive(a) == (a, 1)
    assert built == [a, b]
    many = [object() for _ in range(40)]  # past its bound the memo starts over (it holds what it caches)
    assert [derive(o)[0] for o in many] == many
    before = len(built)
    assert derive(a) == (a, before + 1), "a long-gone entry is built again, not kept forever"
