"""Incoming TWS requests decoded into plain values (the client's side of the protocol, read)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from tests.fakegw.market import ContractQuery
from tests.fakegw.wire import UNSET_DOUBLE, Cursor, ProtocolError


def read_contract(c: Cursor) -> ContractQuery:
    """The 12 contract fields ib_async sends for most requests."""
    con_id = c.int()
    symbol, sec_type, expiry = c.str(), c.str(), c.str()
    strike = c.decimal()
    right, multiplier, exchange, primary, currency, local, trading_class = (c.str() for _ in range(7))
    return ContractQuery(con_id=con_id, symbol=symbol, sec_type=sec_type, expiry=expiry,
                         strike=strike or None, right=right, multiplier=multiplier,
                         exchange=exchange, primary_exchange=primary, currency=currency,
                         local_symbol=local, trading_class=trading_class)


@dataclass(frozen=True, slots=True)
class LegQuery:
    """One combo leg of a BAG placeOrder, as the client sent it."""

    con_id: int
    ratio: int
    action: str
    exchange: str


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    order_id: int
    contract: ContractQuery
    action: str
    qty: Decimal
    order_type: str
    lmt_price: Decimal | None
    aux_price: Decimal | None
    tif: str
    account: str
    order_ref: str
    transmit: bool
    parent_id: int
    outside_rth: bool
    what_if: bool
    legs: tuple[LegQuery, ...] = ()  # non-empty for a combo (secType BAG)
    leg_prices: tuple[Decimal | None, ...] = ()  # orderComboLegs: per-leg limits (not modelled: must be empty)


def read_place_order(fields: list[str], server_version: int) -> PlaceOrder:
    """placeOrder as ib_async 2.x writes it; every field is consumed or the message is refused."""
    c = Cursor(fields, 1)
    order_id = c.int()
    contract = read_contract(c)
    c.skip(2)  # secIdType, secId
    action, qty, order_type = c.str(), c.decimal(), c.str()
    lmt_price, aux_price = c.decimal(), c.decimal()
    tif, _oca_group, account, _open_close, _origin, order_ref = (c.str() for _ in range(6))
    transmit, parent_id = c.bool(), c.int()
    c.skip(4)  # blockOrder, sweepToFill, displaySize, triggerMethod
    outside_rth = c.bool()
    c.skip(1)  # hidden
    legs, leg_prices = _read_combo(c) if contract.sec_type == "BAG" else ((), ())
    c.skip(7 + (1 if server_version < 177 else 0))  # "", discretionary .. fa fields
    c.skip(22)  # modelCode .. volatilityType
    if c.str():  # deltaNeutralOrderType
        c.skip(9)
    else:
        c.skip(1)
    c.skip(6)  # continuousUpdate .. scaleSubsLevelSize
    increment = c.decimal()
    if increment is not None and 0 < increment < Decimal(UNSET_DOUBLE):
        c.skip(7)
    c.skip(3)  # scaleTable, activeStartTime, activeStopTime
    if c.str():  # hedgeType
        c.skip(1)
    c.skip(4)  # optOutSmartRouting, clearingAccount, clearingIntent, notHeld
    if c.bool():  # delta-neutral contract
        c.skip(3)
    if c.str():  # algoStrategy
        c.skip(2 * c.int())
    c.skip(1)  # algoId
    what_if = c.bool()
    c.skip(4)  # orderMiscOptions, solicited, randomizeSize, randomizePrice
    if order_type in ("PEG BENCH", "PEGBENCH"):
        c.skip(5)
    if c.int():
        raise ProtocolError("unsupported_by_fake: order conditions")
    c.skip(19)  # adjustedOrderType .. usePriceMgmtAlgo
    c.skip(sum(server_version >= v for v in (158, 160, 162, 166, 169)))
    if server_version >= 170:
        _skip_peg_fields(c, contract, order_type)
    if c.remaining:
        raise ProtocolError(f"unread_fields: placeOrder has {c.remaining} fields past the layout of v{server_version}")
    if qty is None or not action:
        raise ProtocolError("bad_order: missing action or quantity")
    return PlaceOrder(order_id=order_id, contract=contract, action=action, qty=qty,
                      order_type=order_type, lmt_price=lmt_price, aux_price=aux_price, tif=tif,
                      account=account, order_ref=order_ref, transmit=transmit,
                      parent_id=parent_id, outside_rth=outside_rth, what_if=what_if,
                      legs=legs, leg_prices=leg_prices)


def _read_combo(c: Cursor) -> tuple[tuple[LegQuery, ...], tuple[Decimal | None, ...]]:
    """A BAG order's combo block: the legs (8 fields each), per-leg prices, smart-combo routing params."""
    legs = []
    for _ in range(c.int()):
        con_id, ratio, action, exchange = c.int(), c.int(), c.str(), c.str()
        c.skip(4)  # openClose, shortSaleSlot, designatedLocation, exemptCode
        legs.append(LegQuery(con_id, ratio, action, exchange))
    prices = tuple(c.decimal() for _ in range(c.int()))
    c.skip(2 * c.int())  # smartComboRoutingParams tag/value pairs (NonGuaranteed etc.)
    return tuple(legs), prices


def _skip_peg_fields(c: Cursor, contract: ContractQuery, order_type: str) -> None:
    if contract.exchange == "IBKRATS":
        c.skip(1)
    if order_type in ("PEG BEST", "PEGBEST"):
        c.skip(1)
        if c.str() == "Infinite":
            c.skip(2)
    elif order_type in ("PEG MID", "PEGMID"):
        c.skip(2)


@dataclass(frozen=True, slots=True)
class MarketDataRequest:
    req_id: int
    contract: ContractQuery
    generic_ticks: frozenset[str]
    snapshot: bool
    regulatory_snapshot: bool


def read_market_data(fields: list[str]) -> MarketDataRequest:
    c = Cursor(fields, 2)
    req_id = c.int()
    contract = read_contract(c)
    if contract.sec_type == "BAG":
        raise ProtocolError("unsupported_by_fake: combo (BAG) market data")
    if c.bool():
        c.skip(3)  # delta-neutral contract
    generic = frozenset(t.strip() for t in c.str().split(",") if t.strip())
    return MarketDataRequest(req_id=req_id, contract=contract, generic_ticks=generic,
                             snapshot=c.bool(), regulatory_snapshot=c.bool())


@dataclass(frozen=True, slots=True)
class ExecutionFilter:
    req_id: int
    client_id: int
    account: str
    time: str
    symbol: str
    sec_type: str
    exchange: str
    side: str


def read_execution_filter(fields: list[str]) -> ExecutionFilter:
    c = Cursor(fields, 2)
    return ExecutionFilter(req_id=c.int(), client_id=c.int(), account=c.str(), time=c.str(),
                           symbol=c.str(), sec_type=c.str(), exchange=c.str(), side=c.str())
