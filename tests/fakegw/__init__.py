"""A fake IB Gateway speaking the TWS API wire protocol, for testing the `ib` broker over a real socket.

    gw = FakeGateway(account="DU1234567", next_valid_id=1)
    await gw.start()            # gw.port is the bound port
    gw.market.set_stock("SPY", 470.00, 470.02)
    gw.market.entitle("QQQ", live=False)   # 354 live; delayed ticks after reqMarketDataType(3)
    ...
    await gw.stop()
"""

from tests.fakegw.account import AccountRow, FakePosition
from tests.fakegw.contracts import FakeContract
from tests.fakegw.entitlements import Entitlement
from tests.fakegw.gateway import ERROR_TEXT, FARM_NOTICES, FakeGateway
from tests.fakegw.market import FakeQuote, Market
from tests.fakegw.orders import CommissionSchedule, FakeExecution, FakeOrder

__all__ = [
    "AccountRow", "CommissionSchedule", "ERROR_TEXT", "Entitlement", "FARM_NOTICES", "FakeContract",
    "FakeExecution", "FakeGateway", "FakeOrder", "FakePosition", "FakeQuote", "Market",
]
