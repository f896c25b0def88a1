"""A recorded TWS session (shared/data/ib-captures): its reply frames, and a fake configured like it.

Keys are `<request msg id>_<second request field>` (`API_` is the handshake); values are the
frames TWS sent back, 4-byte length prefix included.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.fakegw.account import AccountRow
from tests.fakegw.gateway import FakeGateway
from tests.fakegw.session import GATEWAY_TZ
from tests.fakegw.wire import decode_frame

CAPTURE_FILE = "ib-captures/tws-v176-paper-session.json"


@dataclass(frozen=True, slots=True)
class Capture:
    frames: dict[str, list[bytes]]

    @classmethod
    def load(cls, path: Path) -> Capture:
        raw = json.loads(Path(path).read_text())
        return cls({key: [base64.b64decode(f) for f in frames] for key, frames in raw.items()})

    def fields(self, key: str) -> list[list[str]]:
        return [decode_frame(f) for f in self.frames.get(key, [])]

    def _first(self, key: str, msg_id: str) -> list[str]:
        for fields in self.fields(key):
            if fields[0] == msg_id:
                return fields
        raise KeyError(f"capture_missing: no message {msg_id} under {key}")

    @property
    def server_version(self) -> int:
        return int(self.fields("API_")[0][0])

    @property
    def connection_time(self) -> str:
        return self.fields("API_")[0][1]

    @property
    def account(self) -> str:
        return self._first("71_2", "15")[2]

    @property
    def next_valid_id(self) -> int:
        return int(self._first("71_2", "9")[2])

    @property
    def farm_notices(self) -> tuple[tuple[int, str], ...]:
        return tuple((int(f[3]), f[4]) for f in self.fields("71_2") if f[0] == "4")

    @property
    def currency(self) -> str:
        for row in self.account_rows():
            if row.tag == "Currency" and row.currency != "BASE":
                return row.currency
        raise KeyError("capture_missing: no base currency row")

    @property
    def account_time(self) -> str:
        return self._first("6_2", "8")[2]

    def account_rows(self) -> list[AccountRow]:
        return [AccountRow(f[2], f[3], f[4]) for f in self.fields("6_2") if f[0] == "6"]

    def multi_rows(self) -> list[AccountRow]:
        return [AccountRow(f[5], f[6], f[7]) for f in self.fields("76_1") if f[0] == "73"]

    def summary_rows(self) -> list[AccountRow]:
        return [AccountRow(f[4], f[5], f[6], account=f[3]) for f in self.fields("62_1") if f[0] == "63"]


def gateway_like(capture: Capture, clock: Any | None = None, **kwargs: Any) -> FakeGateway:
    """A FakeGateway with the recorded session's account, ids, notices and account rows."""
    if clock is None:
        hh, mm = (int(x) for x in capture.account_time.split(":"))
        moment = datetime(2023, 10, 21, hh, mm, tzinfo=GATEWAY_TZ)

        def clock() -> datetime:
            return moment

    gw = FakeGateway(account=capture.account, currency=capture.currency,
                     server_version=capture.server_version, next_valid_id=capture.next_valid_id,
                     connection_time=capture.connection_time, clock=clock, **kwargs)
    gw.farm_notices = capture.farm_notices
    gw.account.load_rows(capture.account_rows(), capture.multi_rows(), capture.summary_rows())
    return gw
