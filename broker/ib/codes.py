"""What each IB error code means to tradingd (SPEC §6.1). `docs/ib.md` lists the same table.

IB sends errors, warnings and notices through one message; only the code tells them
apart. The daemon acts on a few and logs the rest at the level given here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Effect(str, Enum):
    CONNECTIVITY_LOST = "connectivity_lost"  # counts as a disconnect: no new orders
    RESTORED_DATA_LOST = "restored_data_lost"  # reconnected: resubscribe, then reconcile
    RESTORED_DATA_KEPT = "restored_data_kept"  # reconnected: reconcile
    SOCKET_RESET = "socket_reset"  # drop the socket and reconnect
    CLIENT_ID_IN_USE = "client_id_in_use"  # connect again with the next client id
    QUOTE_STALE = "quote_stale"  # this request's market data is unusable
    LINES_EXCEEDED = "lines_exceeded"  # the account's market-data line budget is spent: this request got nothing
    ALL_QUOTES_STALE = "all_quotes_stale"  # every streamed quote is unusable until a fresh tick
    DATA_FARM_OK = "data_farm_ok"
    ORDER_REJECTED = "order_rejected"  # a new order: OrderUpdate REJECTED with the reason; a working one: logged
    ORDER_CANCELLED = "order_cancelled"  # OrderUpdate CANCELLED
    NO_CONTRACT = "no_contract"  # qualification failed
    PACING = "pacing"  # we sent too fast: a bug in the throttle, alert
    INFO = "info"


@dataclass(frozen=True, slots=True)
class CodeInfo:
    effect: Effect
    log_level: str
    meaning: str


CODES: dict[int, CodeInfo] = {
    1100: CodeInfo(Effect.CONNECTIVITY_LOST, "error", "connectivity between IB and TWS lost"),
    1101: CodeInfo(Effect.RESTORED_DATA_LOST, "warning", "connectivity restored, market data lost"),
    1102: CodeInfo(Effect.RESTORED_DATA_KEPT, "warning", "connectivity restored, market data kept"),
    1300: CodeInfo(Effect.SOCKET_RESET, "error", "TWS socket port reset"),
    326: CodeInfo(Effect.CLIENT_ID_IN_USE, "warning", "client id already in use"),
    354: CodeInfo(Effect.QUOTE_STALE, "warning", "market data not subscribed"),
    10197: CodeInfo(Effect.QUOTE_STALE, "warning", "no market data during a competing live session"),
    10168: CodeInfo(Effect.QUOTE_STALE, "warning", "market data not subscribed, delayed data not enabled"),
    # Paper accounts without shared market data, or feeds that need an API subscription.
    10089: CodeInfo(Effect.QUOTE_STALE, "warning", "market data needs an additional API subscription"),
    10090: CodeInfo(Effect.QUOTE_STALE, "warning", "part of the market data is not subscribed"),
    10091: CodeInfo(Effect.QUOTE_STALE, "warning", "part of the market data needs an additional API subscription"),
    101: CodeInfo(Effect.LINES_EXCEEDED, "error", "max number of market data lines reached"),
    2110: CodeInfo(Effect.ALL_QUOTES_STALE, "error", "connectivity between TWS and IB's servers broken"),
    2103: CodeInfo(Effect.ALL_QUOTES_STALE, "error", "market data farm connection broken"),
    2104: CodeInfo(Effect.DATA_FARM_OK, "info", "market data farm connection OK"),
    2106: CodeInfo(Effect.DATA_FARM_OK, "info", "historical data farm connection OK"),
    2158: CodeInfo(Effect.DATA_FARM_OK, "info", "sec-def data farm connection OK"),
    2105: CodeInfo(Effect.INFO, "warning", "historical data farm connection broken (not used)"),
    2107: CodeInfo(Effect.INFO, "info", "historical data farm inactive, available on demand"),
    2108: CodeInfo(Effect.INFO, "info", "market data farm inactive, available on demand"),
    2157: CodeInfo(Effect.INFO, "warning", "sec-def data farm connection broken: chains may fail"),
    2109: CodeInfo(Effect.INFO, "info", "outside-RTH attribute ignored"),
    10167: CodeInfo(Effect.INFO, "warning", "displaying delayed market data"),
    201: CodeInfo(Effect.ORDER_REJECTED, "error", "order rejected"),
    203: CodeInfo(Effect.ORDER_REJECTED, "error", "security not available for this account"),
    103: CodeInfo(Effect.ORDER_REJECTED, "error", "duplicate order id"),
    110: CodeInfo(Effect.ORDER_REJECTED, "error", "price does not conform to the minimum tick"),
    321: CodeInfo(Effect.ORDER_REJECTED, "error", "error validating the request"),
    387: CodeInfo(Effect.ORDER_REJECTED, "error", "unsupported order type"),
    434: CodeInfo(Effect.ORDER_REJECTED, "error", "order size cannot be zero"),
    202: CodeInfo(Effect.ORDER_CANCELLED, "info", "order cancelled"),
    200: CodeInfo(Effect.NO_CONTRACT, "warning", "no security definition found"),
    161: CodeInfo(Effect.INFO, "info", "cancel attempted on an order not in a cancellable state"),
    10147: CodeInfo(Effect.INFO, "info", "order to cancel not found"),
    10148: CodeInfo(Effect.INFO, "info", "order cannot be cancelled in its state"),
    100: CodeInfo(Effect.PACING, "critical", "max rate of messages per second exceeded"),
    502: CodeInfo(Effect.INFO, "error", "could not connect to TWS"),
    504: CodeInfo(Effect.INFO, "error", "not connected"),
}

# On an order IB already holds, these refuse a modification or a cancel: the order stays as IB has it
# (SPEC §6.1 "a refused order change is the broker's truth"). 103 also answers a change to another
# client's order; 10147 a cancel of an order this client cannot see (placed under another client id).
CHANGE_REFUSED = frozenset({103, 104, 105, 110, 161, 201, 321, 10147, 10148})

_UNKNOWN = CodeInfo(Effect.INFO, "warning", "unclassified IB message")


def info(code: int) -> CodeInfo:
    if code in CODES:
        return CODES[code]
    if 2100 <= code < 2200:  # IB's range of notices
        return CodeInfo(Effect.INFO, "info", "notice")
    return _UNKNOWN
