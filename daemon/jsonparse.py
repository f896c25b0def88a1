"""Strict JSON for the API (Part 8): size, nesting depth and duplicate keys checked, never a crash.

Python's `json` recurses once per nesting level, so 30,000 `[` raise RecursionError (a 500 and a
traceback); it also lets the last of two equal keys win silently, so `{"confidence": 0.1,
"confidence": 0.9}` would be read as whichever a proxy or a log viewer did not show. Here the
depth is measured with a flat scan before parsing, and a duplicate key is an error.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from config.errors import ReasonError

MALFORMED_JSON = "malformed_json"
JSON_TOO_DEEP = "json_too_deep"
DUPLICATE_KEY = "duplicate_key"
BODY_TOO_LARGE = "body_too_large"

_OPEN, _CLOSE, _QUOTE, _BACKSLASH = frozenset(b"[{"), frozenset(b"]}"), ord('"'), ord("\\")


class JsonRefused(ReasonError):
    """A body that is not acceptable JSON. `code` is one of this module's reason codes."""


def nesting_depth(raw: bytes, stop_above: int | None = None) -> int:
    """The deepest nesting of arrays and objects in `raw` (brackets inside strings do not count).
    Stops counting, and returns, as soon as the depth passes `stop_above`."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == _BACKSLASH:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPEN:
            depth += 1
            if depth > deepest:
                deepest = depth
                if stop_above is not None and deepest > stop_above:
                    return deepest
        elif byte in _CLOSE:
            depth -= 1
    return deepest


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise JsonRefused(DUPLICATE_KEY, f"duplicate key {key[:64]!r}")
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(raw: bytes, *, max_bytes: int, max_depth: int, allow_constants: bool = False) -> Any:
    """The decoded value, or JsonRefused. `allow_constants`: NaN/Infinity/-Infinity decode to floats
    (signals: so the signal rules refuse them with their own reason code and the refusal is stored)."""
    if len(raw) > max_bytes:
        raise JsonRefused(BODY_TOO_LARGE, f"body larger than {max_bytes} bytes")
    depth = nesting_depth(raw, stop_above=max_depth)
    if depth > max_depth:
        raise JsonRefused(JSON_TOO_DEEP, f"JSON nested more than {max_depth} levels deep")
    constant: Callable[[str], Any] = float if allow_constants else _no_constant
    try:
        text = raw.decode("utf-8")
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=constant)
    except JsonRefused:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise JsonRefused(MALFORMED_JSON, f"body is not valid JSON: {exc}") from None
