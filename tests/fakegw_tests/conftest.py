"""Fixtures for testing the fake gateway itself with a real ib_async client over a real socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from ib_async import IB

from tests.fakegw import FakeGateway

EXPIRY = date(2024, 1, 19)
STRIKES = [Decimal(465), Decimal(470), Decimal(475)]
CONNECT_TIMEOUT = 2.0
SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"

Connect = Callable[..., Awaitable[IB]]


def seed_market(gw: FakeGateway) -> None:
    """SPY and VIX quoted, one SPY expiry with three strikes, the 470 call and put quoted."""
    gw.market.set_stock("SPY", "470.00", "470.02", last="470.01", bid_size=300, ask_size=200)
    gw.market.set_stock("VIX", None, None, last="14.50")
    gw.market.add_chain("SPY", [EXPIRY], STRIKES)
    gw.market.set_option("SPY", EXPIRY, Decimal(470), "C", "1.50", "1.55", 10, 12,
                         open_interest=1234, delta="0.52", gamma="0.045", iv="0.151")
    gw.market.set_option("SPY", EXPIRY, Decimal(470), "P", "1.40", "1.45", 8, 9, open_interest=987)


async def settle(ib: IB, predicate: Callable[[], bool], timeout: float = 2.0) -> None:
    """Let the client read what the gateway wrote until `predicate` holds (socket hops, not time)."""
    async def wait() -> None:
        while not predicate():
            await ib.updateEvent
    if not predicate():
        await asyncio.wait_for(wait(), timeout)


@pytest.fixture(autouse=True)
def no_decode_errors(caplog: pytest.LogCaptureFixture):
    """ib_async logs and swallows what it cannot decode; here that fails the test."""
    yield
    failures = [r.getMessage() for phase in ("setup", "call") for r in caplog.get_records(phase)
                if r.name == "ib_async.Decoder" and r.levelname == "ERROR"]
    assert not failures, failures


@pytest.fixture
async def gw() -> AsyncIterator[FakeGateway]:
    gateway = FakeGateway(account="DU1234567", next_valid_id=1)
    await gateway.start()
    seed_market(gateway)
    yield gateway
    await gateway.stop()
    assert not gateway.internal_errors, gateway.internal_errors[0][1]
    leaked = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
    assert not leaked, leaked


@pytest.fixture
async def connect(gw: FakeGateway) -> AsyncIterator[Connect]:
    clients: list[IB] = []

    async def _connect(client_id: int = 1, port: int | None = None, timeout: float = CONNECT_TIMEOUT) -> IB:
        ib = IB()
        clients.append(ib)
        await ib.connectAsync("127.0.0.1", port or gw.port, clientId=client_id, timeout=timeout)
        return ib

    yield _connect
    for ib in clients:
        ib.disconnect()
    await asyncio.sleep(0)  # let the gateway see the sockets close


@pytest.fixture
async def ib(connect: Connect) -> IB:
    return await connect()
