"""How the intent log's records are written (room tidy, issue 8): JSON with explicitly typed values.

Session 4 pickled them, so a release that renamed or moved a class (an `OrderRequest`, an enum) would
have made the next start unable to read a log an older release left, the one moment it matters: an
exit's intent pending across an upgrade. Now every value a journal operation's payload holds is written
under a stable tag of its own, independent of where the class lives:

| value | written as |
|---|---|
| str, int, float, bool, None, list | themselves |
| dict with str keys (none of them `"$"`) | itself |
| any other dict | `{"$": "dict", "v": [[key, value], ...]}` |
| tuple | `{"$": "tuple", "v": [...]}` |
| Decimal | `{"$": "decimal", "v": "3.30"}` (the exact text: exponent and sign kept) |
| datetime | `{"$": "datetime", "v": ISO 8601 with its UTC offset, "zone": "America/New_York"}` (zone only for a ZoneInfo; naive stays naive) |
| date | `{"$": "date", "v": "2024-03-06"}` |
| an enum of `ENUMS` | `{"$": <its tag>, "v": its value}` |
| a dataclass of `DATACLASSES` | `{"$": <its tag>, <field>: <value>, ...}` |

Types are matched exactly (a subclass of str or int is not a str or an int), so anything else, a new
type in a payload included, raises `UnencodableValue` when the record is written, on the live path,
not when a later start reads it. A class that moves keeps its tag: change the import here, not the tag.
A tag a reader does not know raises `UndecodableValue` (a newer release's log after a downgrade).
"""

from __future__ import annotations

import dataclasses
import json
import operator
from collections.abc import Callable, Mapping
from datetime import date, datetime, timezone
from decimal import Decimal
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo

from market.types import ComboLeg, Fill, OptionContract, OrderRequest, OrderStatus, OrderUpdate

TAG = "$"

# The stable names of the types a payload may hold (see the table above); a tag is never reused.
DATACLASSES: dict[str, type] = {
    "OptionContract": OptionContract,
    "ComboLeg": ComboLeg,
    "OrderRequest": OrderRequest,
    "OrderUpdate": OrderUpdate,
    "Fill": Fill,
}
ENUMS: dict[str, type[Enum]] = {"OrderStatus": OrderStatus}

Record = tuple[int, str, Mapping[str, Any]]


class UnencodableValue(TypeError):
    """A payload holds a value of a type the intent log has no tag for (a bug: add it to this module)."""


class UndecodableValue(ValueError):
    """A record holds a tag (or a shape) this release cannot read."""


def encode(generation: str, records: list[Record]) -> bytes:
    """The frame body's JSON for one `IntentLog.append`; raises `UnencodableValue` naming the op and field."""
    out = []
    plain = _PLAIN
    for seq, op, payload in records:
        fields = {}
        for name, value in payload.items():
            try:
                fields[name] = value if type(value) in plain else _encode(value)
            except UnencodableValue as exc:
                raise UnencodableValue(f"{op}.{name}: {exc}") from None
        out.append([seq, op, fields])
    return _JSON.encode([generation, out]).encode()


def decode(body: bytes) -> tuple[str, list[tuple[int, str, dict[str, Any]]]]:
    """`encode`'s inverse: (generation, [(seq, op, payload), ...]); raises `UndecodableValue`."""
    try:
        generation, records = json.loads(body, object_hook=_decode_tagged)
        return generation, [(seq, op, payload) for seq, op, payload in records]
    except UndecodableValue:
        raise
    except (ValueError, TypeError, KeyError) as exc:  # bad JSON, a wrong shape, a field a class no longer takes
        raise UndecodableValue(f"{type(exc).__name__}: {exc}") from None


# ---------------------------------------------------------------------- encoding (the loop's thread: kept lean)

_PLAIN = frozenset({str, int, float, bool, type(None)})
# no cycle check: a payload is a tree of values (a cycle could not be a record anyway, and is refused as one)
_JSON = json.JSONEncoder(separators=(",", ":"), check_circular=False)


def _encode(value: Any) -> Any:
    kind = type(value)
    if kind in _PLAIN:
        return value
    encoder = _ENCODERS.get(kind)
    if encoder is None:
        raise UnencodableValue(f"no intent log tag for {kind.__module__}.{kind.__qualname__}")
    return encoder(value)


def _list(value: list[Any]) -> list[Any]:
    plain = _PLAIN
    return [item if type(item) in plain else _encode(item) for item in value]


def _dict(value: dict[Any, Any]) -> Any:
    if TAG not in value:
        plain, out = _PLAIN, {}
        for key, item in value.items():
            if type(key) is not str:
                break
            out[key] = item if type(item) in plain else _encode(item)
        else:
            return out
    return {TAG: "dict", "v": [[_encode(key), _encode(item)] for key, item in value.items()]}


_last_datetime: tuple[Any, Any] = (None, None)  # the records of one exit share one `at`: encoded once


def _datetime(value: datetime) -> dict[str, Any]:
    global _last_datetime
    last, encoded = _last_datetime
    if value is last:
        return encoded  # type: ignore[no-any-return]
    zone = value.tzinfo
    if zone is None or type(zone) is timezone:  # naive, or a fixed offset (UTC): the ISO text says it all
        encoded = {TAG: "datetime", "v": value.isoformat()}
    elif type(zone) is ZoneInfo and zone.key:
        encoded = {TAG: "datetime", "v": value.isoformat(), "zone": zone.key}
    else:
        raise UnencodableValue(f"no intent log tag for a datetime in {type(zone).__qualname__} {zone!r}")
    _last_datetime = (value, encoded)
    return encoded


def _dataclass(tag: str, names: tuple[str, ...]) -> Callable[[Any], dict[str, Any]]:
    # every field in one call: half the time of a getattr each (a tuple even for a one-field class)
    fields_of = operator.attrgetter(*names) if len(names) > 1 else lambda value: (getattr(value, names[0]),)

    def encode_one(value: Any) -> dict[str, Any]:
        out = {TAG: tag}
        plain = _PLAIN
        for name, item in zip(names, fields_of(value)):
            out[name] = item if type(item) in plain else _encode(item)
        return out

    return encode_one


def _enum(tag: str) -> Callable[[Enum], dict[str, Any]]:
    return lambda value: {TAG: tag, "v": value.value}


_ENCODERS: dict[type, Callable[[Any], Any]] = {
    list: _list,
    dict: _dict,
    tuple: lambda value: {TAG: "tuple", "v": _list(value)},
    Decimal: lambda value: {TAG: "decimal", "v": str(value)},
    datetime: _datetime,
    date: lambda value: {TAG: "date", "v": value.isoformat()},
    **{cls: _dataclass(tag, tuple(f.name for f in dataclasses.fields(cls))) for tag, cls in DATACLASSES.items()},
    **{cls: _enum(tag) for tag, cls in ENUMS.items()},
}

# ---------------------------------------------------------------------- decoding (at start only)


def _decode_datetime(obj: dict[str, Any]) -> datetime:
    value = datetime.fromisoformat(obj["v"])
    zone = obj.get("zone")
    return value if zone is None else value.astimezone(ZoneInfo(zone))  # the same instant, in its own zone


def _decode_dataclass(cls: type) -> Callable[[dict[str, Any]], Any]:
    return lambda obj: cls(**{name: item for name, item in obj.items() if name != TAG})


def _decode_enum(cls: type[Enum]) -> Callable[[dict[str, Any]], Any]:
    return lambda obj: cls(obj["v"])


_DECODERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "dict": lambda obj: {key: item for key, item in obj["v"]},
    "tuple": lambda obj: tuple(obj["v"]),
    "decimal": lambda obj: Decimal(obj["v"]),
    "datetime": _decode_datetime,
    "date": lambda obj: date.fromisoformat(obj["v"]),
    **{tag: _decode_dataclass(cls) for tag, cls in DATACLASSES.items()},
    **{tag: _decode_enum(cls) for tag, cls in ENUMS.items()},
}


def _decode_tagged(obj: dict[str, Any]) -> Any:
    tag = obj.get(TAG)
    if tag is None:
        return obj
    decoder = _DECODERS.get(tag)
    if decoder is None:
        raise UndecodableValue(f"unknown intent log tag {tag!r} (written by another release?)")
    return decoder(obj)


__all__ = ["DATACLASSES", "ENUMS", "UndecodableValue", "UnencodableValue", "decode", "encode"]
