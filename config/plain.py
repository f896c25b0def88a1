"""`plain(settings)`: the same configuration as plain read-only objects, for the sizing hot path.

Why: pydantic's BaseModel defines `__getattr__` (for private attributes), and Python 3.11 does not
specialize an attribute read on a type with that hook: each of the ~110 config reads of a sizing
decision went through the generic lookup (`slot_tp_getattr_hook`, the MRO walk, the instance dict).
A snapshot with the same attribute names holding the very same values (the same Decimal, tuple, dict
and text objects) answers every read identically at the specialized speed. Built once per Settings
object (they are frozen): `per_settings`.
"""

from __future__ import annotations

from typing import Any, cast

from pydantic import BaseModel

from config.models import Settings
from config.per_settings import per_settings


class PlainConfig:
    """One model's fields as plain attributes, read-only like the model it copies."""

    def __init__(self, model: BaseModel):
        fields = {name: _plain_value(getattr(model, name)) for name in type(model).model_fields}
        fields["_model"] = type(model).__name__
        # A dict of its own, assigned whole (read-only: nothing else writes it). Filled through
        # `self.__dict__`, it would share the class's key table with every other model's snapshot
        # (a "split" dict), and 3.11's specialized read (LOAD_ATTR_WITH_HINT) deoptimizes on each
        # read of a split dict: back to the generic lookup this module exists to avoid.
        object.__setattr__(self, "__dict__", fields)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{self._model}.{name}: the configuration is read-only")

    def __repr__(self) -> str:
        return f"PlainConfig({self._model})"


def _plain_value(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return PlainConfig(value)
    if type(value) is tuple and any(isinstance(v, BaseModel) for v in value):
        return tuple(_plain_value(v) for v in value)
    if type(value) is dict and any(isinstance(v, BaseModel) for v in value.values()):
        return {k: _plain_value(v) for k, v in value.items()}
    return value  # a Decimal, int, text, time, or a container of them: the same object


@per_settings
def plain(settings: Settings) -> Settings:
    """Typed as the Settings it copies: every attribute it is asked answers as the Settings would."""
    return settings if isinstance(settings, PlainConfig) else cast(Settings, PlainConfig(settings))
