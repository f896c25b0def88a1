"""Outgoing TWS messages, field by field, as a server of version 170-178 writes them.

The layouts follow what `ib_async`'s decoder reads for that version range; constant fields
take the values a real TWS v176 sent in the recorded session (shared/data/ib-captures).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from tests.fakegw.contracts import FakeContract
from tests.fakegw.wire import UNSET_DOUBLE, UNSET_INTEGER, Field, jdouble, quantity

TWS_TIME_ZONE = "US/Eastern"
OPTION_ORDER_TYPES = "ACTIVETIM,AD,ADJUST,ALERT,ALLOC,AVGCOST,BASKET,COND,CONDORDER,DAY,DEACT,DEACTDIS,DEACTEOD,GAT,GTC,GTD,GTT,HID,ICE,IOC,LIT,LMT,MIT,MKT,MTL,NGCOMB,NONALGO,OCA,OPENCLOSE,PAON,PEGMIDVOL,PEGMKTVOL,PEGPRMVOL,PEGSRFVOL,POSTONLY,PRICECHK,REL,RELPCTOFS,RELSTK,SCALE,SCALERST,SIZECHK,SMARTSTG,SNAPMID,SNAPMKT,SNAPREL,STP,STPLMT,TRAIL,TRAILLIT,TRAILLMT,TRAILMIT,VOLAT,WHATIF"
STOCK_ORDER_TYPES = "ACTIVETIM,AD,ADJUST,ALERT,ALGO,ALLOC,AVGCOST,BASKET,BENCHPX,COND,CONDORDER,DARKONLY,DARKPOLL,DAY,DEACT,DEACTDIS,DEACTEOD,DIS,GAT,GTC,GTD,GTT,HID,IBKRATS,ICE,IMB,IOC,LIT,LMT,LOC,MIDPX,MIT,MKT,MOC,MTL,NGCOMB,NODARK,NONALGO,OCA,OPG,OPGREROUT,PEGBENCH,PEGMID,POSTATS,POSTONLY,PREOPGRTH,PRICECHK,REL,REL2MID,RELPCTOFS,RPI,RTH,SCALE,SCALEODD,SCALERST,SIZECHK,SNAPMID,SNAPMKT,SNAPREL,STP,STPLMT,SWEEP,TRAIL,TRAILLIT,TRAILLMT,TRAILMIT,WHATIF"


def error(server_version: int, req_id: int, code: int, message: str) -> list[Field]:
    fields: list[Field] = [4, 2, req_id, code, message]
    if server_version >= 166:
        fields.append("")  # advancedOrderRejectJson
    return fields


def managed_accounts(accounts: str) -> list[Field]:
    return [15, 1, accounts]


def next_valid_id(order_id: int) -> list[Field]:
    return [9, 1, order_id]


def current_time(epoch: int) -> list[Field]:
    return [49, 1, epoch]


# --- positions and account ---------------------------------------------------------------
def position(account: str, contract: FakeContract, qty: Decimal, avg_cost: Decimal) -> list[Field]:
    return [61, 3, account, *contract.position_fields(), quantity(qty), jdouble(avg_cost)]


def position_multi(req_id: int, account: str, contract: FakeContract, qty: Decimal,
                   avg_cost: Decimal, model_code: str) -> list[Field]:
    return [71, 1, req_id, account, *contract.position_fields(), quantity(qty), jdouble(avg_cost),
            model_code]


def account_value(tag: str, value: str, currency: str, account: str) -> list[Field]:
    return [6, 2, tag, value, currency, account]


def portfolio(contract: FakeContract, qty: Decimal, market_price: Decimal, market_value: Decimal,
              avg_cost: Decimal, unrealized: Decimal, realized: Decimal, account: str) -> list[Field]:
    return [7, 8, *contract.portfolio_fields(), quantity(qty), jdouble(market_price),
            jdouble(market_value), jdouble(avg_cost), jdouble(unrealized), jdouble(realized), account]


def account_time(hhmm: str) -> list[Field]:
    return [8, 1, hhmm]


def account_download_end(account: str) -> list[Field]:
    return [54, 1, account]


def account_summary(req_id: int, account: str, tag: str, value: str, currency: str) -> list[Field]:
    return [63, 1, req_id, account, tag, value, currency]


def account_update_multi(req_id: int, account: str, model_code: str, tag: str, value: str,
                         currency: str) -> list[Field]:
    return [73, 1, req_id, account, model_code, tag, value, currency]


# --- orders and executions ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class OrderView:
    """What openOrder / orderStatus say about one order."""

    order_id: int
    client_id: int
    perm_id: int
    contract: FakeContract
    action: str
    qty: Decimal
    order_type: str
    lmt_price: Decimal | None
    aux_price: Decimal | None
    tif: str
    account: str
    order_ref: str
    status: str
    filled: Decimal = Decimal(0)
    avg_fill_price: Decimal = Decimal(0)
    last_fill_price: Decimal = Decimal(0)
    parent_id: int = 0
    outside_rth: bool = False
    what_if: bool = False
    margin: tuple[str, ...] = (UNSET_DOUBLE,) * 9  # init/maint/equity before, change, after
    commission: tuple[str, str, str, str] = ("", "", "", "")  # commission, min, max, currency
    warning: str = ""


def open_order(server_version: int, o: OrderView) -> list[Field]:
    fields: list[Field] = [
        5, o.order_id, *o.contract.order_fields(),
        o.action, quantity(o.qty), o.order_type,
        jdouble(o.lmt_price or Decimal(0)), jdouble(o.aux_price or Decimal(0)),
        o.tif, "", o.account, "", 0, o.order_ref, o.client_id, o.perm_id,
        o.outside_rth, 0, 0, "",  # outsideRth, hidden, discretionaryAmt, goodAfterTime
        f"{o.perm_id}.0/{o.account}/{quantity(o.qty)}",  # shares allocation, as TWS fills it in
        "", "", "",  # faGroup, faMethod, faPercentage
    ]
    if server_version < 177:
        fields.append("")  # faProfile
    fields += [
        "", "", "", "", "",  # modelCode, goodTillDate, rule80A, percentOffset, settlingFirm
        0, "", -1, 0,  # shortSaleSlot, designatedLocation, exemptCode, auctionStrategy
        "", "", "", "", "",  # startingPrice, stockRefPrice, delta, stockRangeLower/Upper
        UNSET_INTEGER, 0, 0, 0, "", 3, 0, 0, "",  # displaySize .. nbboPriceCap
        o.parent_id, 0, "", 0,  # parentId, triggerMethod, volatility, volatilityType
        "None", "",  # deltaNeutralOrderType (TWS writes the word), deltaNeutralAuxPrice
        0, "", "", "", "?", 0, 0, "",  # the delta-neutral block that "None" implies
        0, 0, "", "", "", "", o.contract.combo_legs_descrip,  # continuousUpdate .. comboLegsDescrip
        *o.contract.leg_fields(), 0, 0,  # combo legs, order combo legs, smart combo routing params
        UNSET_INTEGER, UNSET_INTEGER, "",  # scaleInitLevelSize, scaleSubsLevelSize, increment
        "", 0, "", "IB", 0, 0,  # hedgeType, optOutSmartRouting, clearing acct/intent, notHeld, dnc
        "", 0, o.what_if,  # algoStrategy, solicited, whatIf
        o.status, *o.margin, *o.commission, o.warning,
        0, 0, 0,  # randomizeSize, randomizePrice, conditions
        "None", *(UNSET_DOUBLE,) * 6, 0,  # adjusted order type, trigger .. trailing amount, unit
        "", "", "", 0, 1, 0, 0, 0,  # soft dollar tier, cashQty .. usePriceMgmtAlgo
    ]
    if server_version >= 159:
        fields.append("")  # duration
    if server_version >= 160:
        fields.append("")  # postToAts
    if server_version >= 162:
        fields.append(0)  # autoCancelParent
    if server_version >= 170:
        fields += ["", "", "", "", ""]  # minTradeQty .. midOffsetAtHalf
    return fields


def completed_order(server_version: int, o: OrderView, completed_at: str) -> list[Field]:
    """reqCompletedOrders' answer for one filled or cancelled order (msg 101). It carries no order id and
    no fill price: the orderRef, permId, filled quantity, status and completion time identify the fill."""
    fields: list[Field] = [
        101, *o.contract.order_fields(), o.action, quantity(o.qty), o.order_type,
        jdouble(o.lmt_price or Decimal(0)), jdouble(o.aux_price or Decimal(0)), o.tif, "", o.account,
        "O", 0, o.order_ref, o.perm_id, o.outside_rth, 0, 0, "", "", "", "",  # openClose .. faPercentage
    ]
    if server_version < 177:
        fields.append("")  # faProfile
    fields += [
        "", "", "", "", "",  # modelCode, goodTillDate, rule80A, percentOffset, settlingFirm
        0, "", -1, "", "", "", "", "",  # shortSaleSlot .. stockRangeUpper
        "", 0, 0, "", 0, 0, "", 0,  # displaySize, sweepToFill, allOrNone, minQty, ocaType .. volatilityType
        "", "",  # deltaNeutralOrderType (none), deltaNeutralAuxPrice
        0, 0, "", "", o.contract.combo_legs_descrip,  # continuousUpdate .. trailingPercent, comboLegsDescrip
        *o.contract.leg_fields(), 0, 0,  # combo legs, order combo legs, smart combo routing params
        "", "", "",  # scaleInitLevelSize, scaleSubsLevelSize, scalePriceIncrement
        "",  # hedgeType
        "", "", 0, 0,  # clearingAccount, clearingIntent, notHeld, delta-neutral contract
        "",  # algoStrategy
        0, o.status, 0, 0,  # solicited, status, randomizeSize, randomizePrice
        0,  # conditions
        "", "", "", 0, 0, "", quantity(o.filled), 0, 0, "", 0, 0, 0,  # trailStopPrice .. parentPermId
        completed_at, o.status,  # completedTime, completedStatus
    ]
    if server_version >= 170:
        fields += ["", "", "", "", ""]  # minTradeQty .. midOffsetAtHalf
    return fields


def order_status(o: OrderView) -> list[Field]:
    return [3, o.order_id, o.status, quantity(o.filled), quantity(o.qty - o.filled),
            jdouble(o.avg_fill_price), o.perm_id, o.parent_id, jdouble(o.last_fill_price),
            o.client_id, "", jdouble(Decimal(0))]


@dataclass(frozen=True, slots=True)
class ExecutionView:
    exec_id: str
    order_id: int
    client_id: int
    perm_id: int
    contract: FakeContract
    time: datetime
    account: str
    side: str  # BOT / SLD
    shares: Decimal
    price: Decimal
    cum_qty: Decimal
    avg_price: Decimal
    order_ref: str
    commission: Decimal
    currency: str
    realized_pnl: Decimal | None


def exec_time(moment: datetime, zone: bool = True) -> str:
    """TWS writes the zone; some builds (and older gateways) write the gateway's local time without one."""
    return f"{moment:%Y%m%d %H:%M:%S} {TWS_TIME_ZONE}" if zone else f"{moment:%Y%m%d  %H:%M:%S}"


def exec_details(server_version: int, req_id: int, e: ExecutionView, zone: bool = True) -> list[Field]:
    fields: list[Field] = [
        11, req_id, e.order_id, *e.contract.execution_fields(), e.exec_id, exec_time(e.time, zone),
        e.account, e.contract.venue, e.side, quantity(e.shares), jdouble(e.price), e.perm_id,
        e.client_id, 0, quantity(e.cum_qty), jdouble(e.avg_price), e.order_ref,
        "", "", "", 2,  # evRule, evMultiplier, modelCode, lastLiquidity (2 = removed liquidity)
    ]
    if server_version >= 178:
        fields.append(0)  # pendingPriceRevision
    return fields


def commission_report(e: ExecutionView) -> list[Field]:
    realized = jdouble(e.realized_pnl)  # opening fills carry Double.MAX, as TWS sends
    return [59, 1, e.exec_id, jdouble(e.commission), e.currency, realized, UNSET_DOUBLE, ""]


# --- contracts ---------------------------------------------------------------------------
def session_hours(first_day: date, days: int, open_hhmm: str, close_hhmm: str) -> str:
    """TWS's `YYYYMMDD:HHMM-YYYYMMDD:HHMM;YYYYMMDD:CLOSED` list; weekends closed, holidays not modelled."""
    parts = []
    for n in range(days):
        day = first_day + timedelta(days=n)
        stamp = f"{day:%Y%m%d}"
        parts.append(f"{stamp}:CLOSED" if day.weekday() >= 5
                     else f"{stamp}:{open_hhmm}-{stamp}:{close_hhmm}")
    return ";".join(parts)


def contract_details(req_id: int, c: FakeContract, underlying: FakeContract | None, today: date) -> list[Field]:
    if c.is_option:
        hours = (session_hours(today, 7, "0930", "1600"),) * 2
        order_types, valid, market_name = OPTION_ORDER_TYPES, "SMART,CBOE,AMEX,ISE,PHLX,BOX,NASDAQOM", c.trading_class
        month, rules, under = c.expiry[:6], "32,109,109,109,109", underlying
    else:
        hours = (session_hours(today, 7, "0400", "2000"), session_hours(today, 7, "0930", "1600"))
        order_types = STOCK_ORDER_TYPES if c.sec_type == "STK" else ""
        valid = "SMART,AMEX,NYSE,CBOE,ARCA,ISLAND" if c.sec_type == "STK" else c.exchange
        market_name, month, rules, under = c.symbol, "", "26" if c.sec_type == "STK" else "", None
    return [
        10, req_id, c.symbol, c.sec_type, c.expiry, jdouble(c.strike) if c.is_option else "0",
        c.right, c.exchange, c.currency, c.local_symbol, market_name, c.trading_class, c.con_id,
        jdouble(c.min_tick), c.multiplier, order_types, valid, 1,
        under.con_id if under else 0, c.symbol, c.primary_exchange, month,
        "", "", "", TWS_TIME_ZONE, *hours, "", "", 0,  # industry..subcategory, tz, hours, ev, secIds
        1, under.symbol if under else "", under.sec_type if under else "", rules,
        c.expiry, "ETF" if c.sec_type == "STK" else "", "1", "1", "1",
    ]


def sec_def_opt_params(req_id: int, exchange: str, underlying_con_id: int, trading_class: str,
                       multiplier: str, expiries: Iterable[str], strikes: Iterable[Decimal]) -> list[Field]:
    exp, stk = sorted(set(expiries)), sorted(set(strikes))
    return [75, req_id, exchange, underlying_con_id, trading_class, multiplier,
            len(exp), *exp, len(stk), *(jdouble(s) for s in stk)]


# --- market data -------------------------------------------------------------------------
def tick_price(req_id: int, tick_type: int, price: Decimal | None, size: int | None, mask: int = 0) -> list[Field]:
    return [1, 6, req_id, tick_type, jdouble(price) if price is not None else "-1.0",
            size if size is not None else 0, mask]


def tick_size(req_id: int, tick_type: int, size: int) -> list[Field]:
    return [2, 6, req_id, tick_type, size]


def tick_option_computation(req_id: int, tick_type: int, iv: Decimal | None, delta: Decimal | None,
                            opt_price: Decimal | None, gamma: Decimal | None, vega: Decimal | None,
                            theta: Decimal | None, und_price: Decimal | None) -> list[Field]:
    # TWS's "not computed" markers: -1 for iv/prices/dividend, -2 for the greeks.
    def val(v: Decimal | None, missing: str) -> str:
        return missing if v is None else format(v, "f")

    return [21, req_id, tick_type, 0, val(iv, "-1"), val(delta, "-2"), val(opt_price, "-1"), "0",
            val(gamma, "-2"), val(vega, "-2"), val(theta, "-2"), val(und_price, "-1")]


def tick_req_params(req_id: int, min_tick: Decimal, bbo_exchange: str, permissions: int) -> list[Field]:
    return [81, req_id, jdouble(min_tick), bbo_exchange, permissions]


def market_data_type(req_id: int, data_type: int) -> list[Field]:
    return [58, 1, req_id, data_type]


def end(kind: str, req_id: int | None = None) -> list[Field]:
    """The end markers, by the request they close."""
    msg = {
        "positions": [62, 1], "open_orders": [53, 1], "completed_orders": [102],
        "executions": [55, 1], "contract_details": [52, 1], "account_summary": [64, 1],
        "account_multi": [74, 1], "positions_multi": [72, 1], "sec_def": [76], "snapshot": [57, 1],
    }[kind]
    return [*msg, req_id] if req_id is not None else list(msg)
