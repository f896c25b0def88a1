"""The fake against a real TWS v176 session (shared/data/ib-captures): bytes and decoded values."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from ib_async import IB

from tests.fakegw import FakeGateway
from tests.fakegw import messages as msg
from tests.fakegw.capture import CAPTURE_FILE, Capture, gateway_like
from tests.fakegw.contracts import FakeContract
from tests.fakegw.rawclient import RawClient
from tests.fakegw.replay import ReplayPeer
from tests.fakegw.wire import decode_frame, encode_frame
from tests.fakegw_tests.conftest import SHARED_DATA

CAPTURE_PATH = SHARED_DATA / CAPTURE_FILE
pytestmark = pytest.mark.skipif(
    not CAPTURE_PATH.exists(), reason=f"recorded TWS session absent: {CAPTURE_PATH} (needs ../shared/data)")
# The tag list ib_async sends with reqAccountSummary (the recorded session used the same).
SUMMARY_TAGS = (
    "AccountType,NetLiquidation,TotalCashValue,SettledCash,AccruedCash,BuyingPower,"
    "EquityWithLoanValue,PreviousDayEquityWithLoanValue,GrossPositionValue,RegTEquity,RegTMargin,"
    "SMA,InitMarginReq,MaintMarginReq,AvailableFunds,ExcessLiquidity,Cushion,FullInitMarginReq,"
    "FullMaintMarginReq,FullAvailableFunds,FullExcessLiquidity,LookAheadNextChange,"
    "LookAheadInitMarginReq,LookAheadMaintMarginReq,LookAheadAvailableFunds,"
    "LookAheadExcessLiquidity,HighestSeverity,DayTradesRemaining,DayTradesRemainingT+1,"
    "DayTradesRemainingT+2,DayTradesRemainingT+3,DayTradesRemainingT+4,Leverage,$LEDGER:ALL")


@pytest.fixture
def capture() -> Capture:
    return Capture.load(CAPTURE_PATH)


@pytest.fixture
async def recorded_gw(capture: Capture) -> AsyncIterator[FakeGateway]:
    gw = gateway_like(capture)
    await gw.start()
    yield gw
    await gw.stop()
    assert not gw.internal_errors


@pytest.fixture
async def raw(recorded_gw: FakeGateway) -> AsyncIterator[RawClient]:
    client = RawClient()
    yield client
    await client.close()


def test_capture_describes_the_recorded_account(capture: Capture) -> None:
    assert (capture.account, capture.currency, capture.next_valid_id) == ("DU5509097", "GBP", 217)
    assert capture.server_version == 176 and len(capture.account_rows()) == 153


async def test_handshake_bytes_equal_the_recorded_reply(recorded_gw: FakeGateway, raw: RawClient, capture: Capture) -> None:
    assert await raw.connect("127.0.0.1", recorded_gw.port) == capture.frames["API_"][0]


async def test_start_api_bytes_equal_the_recorded_reply(recorded_gw: FakeGateway, raw: RawClient, capture: Capture) -> None:
    await raw.connect("127.0.0.1", recorded_gw.port)
    assert await raw.start_api(0, frames=8) == capture.frames["71_2"]


@pytest.mark.parametrize(("key", "request_fields", "last_msg_id"), [
    ("6_2", (6, 2, 1, "DU5509097"), "54"),
    ("76_1", (76, 1, 217, "DU5509097", "", 0), "74"),
    ("61_1", (61, 1), "62"),
    ("5_1", (5, 1), "53"),
    ("99_0", (99, 0), "102"),
    ("7_3", (7, 3, 218, 0, "", "", "", "", "", ""), "55"),
])
async def test_account_and_sync_replies_equal_the_recording(
        recorded_gw: FakeGateway, raw: RawClient, capture: Capture,
        key: str, request_fields: tuple[Any, ...], last_msg_id: str) -> None:
    await raw.connect("127.0.0.1", recorded_gw.port)
    await raw.start_api(0, frames=8)
    raw.send(*request_fields)
    assert await raw.read_until(last_msg_id) == capture.frames[key]


async def test_account_summary_equals_the_recording(recorded_gw: FakeGateway, raw: RawClient, capture: Capture) -> None:
    await raw.connect("127.0.0.1", recorded_gw.port)
    await raw.start_api(0, frames=8)
    raw.send(62, 1, 221, "All", SUMMARY_TAGS)
    # The recording window also caught pushes of the other subscriptions (account time, multi).
    recorded = [f for f in capture.frames["62_1"] if decode_frame(f)[0] in ("63", "64")]
    assert await raw.read_until("64") == recorded


@pytest.mark.parametrize("frame_index", [0, 1])
def test_open_order_layout_reproduces_recorded_what_if_frames(capture: Capture, frame_index: int) -> None:
    recorded = capture.frames["3_219"][0] if frame_index == 0 else capture.frames["3_220"][1]
    fields = decode_frame(recorded)
    eur_usd = FakeContract(con_id=12087792, symbol="EUR", sec_type="CASH", exchange="IDEALPRO",
                           local_symbol="EUR.USD", trading_class="EUR.USD")
    view = msg.OrderView(order_id=219, client_id=0, perm_id=665616366, contract=eur_usd, action="BUY",
                         qty=Decimal(100), order_type="MKT", lmt_price=None, aux_price=None, tif="DAY",
                         account="DU5509097", order_ref="", status="PreSubmitted", what_if=True,
                         margin=tuple(fields[95:104]), commission=tuple(fields[104:108]),  # type: ignore[arg-type]
                         warning=fields[108])
    assert encode_frame(msg.open_order(176, view)) == recorded


async def observe(port: int) -> dict[str, Any]:
    """What ib_async decodes from a peer during connect, sync and an account summary."""
    ib = IB()
    notices: list[tuple[int, int, str]] = []
    valid_ids: list[int] = []
    ib.errorEvent += lambda req_id, code, text, contract: notices.append((req_id, code, text))
    ib.wrapper.nextValidId = valid_ids.append  # type: ignore[method-assign]
    try:
        await ib.connectAsync("127.0.0.1", port, clientId=0, timeout=2)
        summary = await asyncio.wait_for(ib.accountSummaryAsync(), 2)
        return {
            "accounts": ib.managedAccounts(), "next_valid_id": valid_ids, "notices": notices,
            "values": sorted(ib.accountValues(), key=repr), "summary": sorted(summary, key=repr),
            "positions": ib.positions(), "trades": ib.trades(), "fills": ib.fills(),
        }
    finally:
        ib.disconnect()


async def test_ib_async_decodes_the_same_from_fake_and_recording(recorded_gw: FakeGateway, capture: Capture) -> None:
    peer = ReplayPeer(capture)
    await peer.start()
    try:
        recorded = await observe(peer.port)
        assert peer.unanswered == [[ "15", "1", "1"]]  # reqAutoOpenOrders: TWS answers nothing either
    finally:
        await peer.stop()
    faked = await observe(recorded_gw.port)
    assert recorded["accounts"] == ["DU5509097"] and recorded["next_valid_id"] == [217]
    assert len(recorded["values"]) > 150 and len(recorded["summary"]) == 80
    assert faked == recorded
