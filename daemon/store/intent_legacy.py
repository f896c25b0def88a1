"""Session 4's intent log frames (a pickle each), read once at the first start after the upgrade (room tidy).

Session 4 pickled the records; this release writes `daemon.store.intent_codec`'s JSON. A log left by a
killed session-4 run must still fold in (an exit's intent may be pending across the upgrade), so its
frames are read here, but never by a plain `pickle.loads`: the unpickler builds only the classes those
payloads held, named as session 4 named them, and refuses anything else (`UndecodableValue`: the file
is then kept aside by `intent_log.open_for`, not dropped).
"""

from __future__ import annotations

import io
import pickle
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from daemon.store.intent_codec import UndecodableValue
from market.types import ComboLeg, Fill, OptionContract, OrderRequest, OrderStatus, OrderUpdate


def _zone_unpickle(cls: Any, name: str) -> Any:
    if cls is not ZoneInfo or name != "_unpickle":
        raise pickle.UnpicklingError(f"session 4's intent log does not reach {cls!r}.{name}")
    return ZoneInfo._unpickle  # type: ignore[attr-defined]


# Session 4's payloads held only these (every op written through the journal: a fill, an order, an update,
# a contract, Decimals, dates, zoned datetimes), pickled under these names. A name maps to wherever the
# class lives now; the frames are read once, at the first start after the upgrade.
_LEGACY_CLASSES: dict[tuple[str, str], Any] = {
    ("market.types", "OptionContract"): OptionContract,
    ("market.types", "ComboLeg"): ComboLeg,
    ("market.types", "OrderRequest"): OrderRequest,
    ("market.types", "OrderUpdate"): OrderUpdate,
    ("market.types", "Fill"): Fill,
    ("market.types", "OrderStatus"): OrderStatus,
    ("decimal", "Decimal"): Decimal,
    ("datetime", "date"): date,
    ("datetime", "datetime"): datetime,
    ("datetime", "timezone"): timezone,
    ("datetime", "timedelta"): timedelta,
    ("zoneinfo", "ZoneInfo"): ZoneInfo,
    ("builtins", "getattr"): _zone_unpickle,  # how a ZoneInfo pickles itself: getattr(ZoneInfo, "_unpickle")
}


class _LegacyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _LEGACY_CLASSES[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"{module}.{name} is not a class session 4's intent log held") from None


def decode(body: bytes) -> tuple[str, list[tuple[int, str, dict[str, Any]]]]:
    try:
        generation, records = _LegacyUnpickler(io.BytesIO(body)).load()
        return generation, [(seq, op, payload) for seq, op, payload in records]
    except Exception as exc:  # noqa: BLE001 - a class not on the list, one that no longer takes its fields, a wrong shape
        raise UndecodableValue(f"session 4's frame: {type(exc).__name__}: {exc}") from None


__all__ = ["decode"]
