"""TWS API framing: 4-byte big-endian length, then NUL-terminated text fields.

The server side of the protocol: it reads the client's `API\\0` greeting and framed requests,
and writes framed replies whose fields are rendered the way TWS renders them.
"""

from __future__ import annotations

import asyncio
import struct
from decimal import Decimal

API_GREETING = b"API\0"
# TWS sends Java's Double.MAX_VALUE for "no value" doubles and Integer.MAX_VALUE for ints.
UNSET_DOUBLE = "1.7976931348623157E308"
UNSET_INTEGER = "2147483647"

Field = str | int | bool | Decimal | None


class ProtocolError(Exception):
    """The peer sent something that is not the TWS API protocol."""


def render(value: Field) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def jdouble(value: Decimal | None) -> str:
    """A price as Java's Double.toString writes it (`470.0`, `1.55`); None is `Double.MAX_VALUE`."""
    if value is None:
        return UNSET_DOUBLE
    text = format(value.normalize(), "f")
    return text if "." in text else f"{text}.0"


def quantity(value: Decimal) -> str:
    """A size as TWS writes its Decimal quantities: no exponent, no trailing zeros (`100`, `2.5`)."""
    text = format(value.normalize(), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def encode_frame(fields: list[Field]) -> bytes:
    body = b"".join(render(f).encode() + b"\0" for f in fields)
    return struct.pack(">I", len(body)) + body


def decode_frame(frame: bytes) -> list[str]:
    """Fields of one length-prefixed frame (the trailing empty field after the last NUL dropped)."""
    (size,) = struct.unpack(">I", frame[:4])
    body = frame[4:]
    if size != len(body):
        raise ProtocolError(f"frame_length_mismatch: header says {size}, body has {len(body)}")
    return split_body(body)


def split_body(body: bytes) -> list[str]:
    fields = body.decode(errors="backslashreplace").split("\0")
    if fields and fields[-1] == "":
        fields.pop()
    return fields


async def read_frame(reader: asyncio.StreamReader) -> list[str]:
    """Next framed message's fields; raises asyncio.IncompleteReadError at EOF."""
    header = await reader.readexactly(4)
    (size,) = struct.unpack(">I", header)
    return split_body(await reader.readexactly(size))


async def read_greeting(reader: asyncio.StreamReader) -> tuple[int, int]:
    """The client's `API\\0` + framed `v<min>..<max>[ options]`; returns (min, max) client versions."""
    magic = await reader.readexactly(len(API_GREETING))
    if magic != API_GREETING:
        raise ProtocolError(f"bad_greeting: {magic!r}")
    (text,) = (await read_frame(reader)) or [""]
    spec = text.split(" ")[0]
    try:
        low, high = spec.removeprefix("v").split("..")
        return int(low), int(high)
    except ValueError as exc:
        raise ProtocolError(f"bad_version_range: {text!r}") from exc


class Cursor:
    """Reads a request's fields in order, with the conversions the protocol implies."""

    def __init__(self, fields: list[str], start: int = 0):
        self.fields = fields
        self.pos = start

    def str(self) -> str:
        if self.pos >= len(self.fields):
            raise ProtocolError(f"short_message: wanted field {self.pos}, have {len(self.fields)}")
        value = self.fields[self.pos]
        self.pos += 1
        return value

    def int(self, default: int = 0) -> int:
        text = self.str()
        if text == "":
            return default
        try:
            return int(text)
        except ValueError:
            try:
                return int(float(text))
            except ValueError as exc:
                raise ProtocolError(f"bad_int: field {self.pos - 1} = {text!r}") from exc

    def decimal(self) -> Decimal | None:
        text = self.str()
        if text in ("", UNSET_DOUBLE, "1.7976931348623157e+308"):
            return None
        try:
            return Decimal(text)
        except ArithmeticError as exc:
            raise ProtocolError(f"bad_number: field {self.pos - 1} = {text!r}") from exc

    def bool(self) -> bool:
        return self.str() in ("1", "true", "True")

    def skip(self, n: int) -> None:
        for _ in range(n):
            self.str()

    @property
    def remaining(self) -> int:
        return len(self.fields) - self.pos
