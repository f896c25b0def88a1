"""One client connection: the handshake, then each request answered the way TWS answers it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import traceback
from collections import deque
from collections.abc import Callable
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from tests.fakegw import messages as msg
from tests.fakegw.entitlements import grant
from tests.fakegw.requests import (
    ExecutionFilter,
    read_contract,
    read_execution_filter,
    read_market_data,
    read_place_order,
)
from tests.fakegw.ticks import Subscription, quote_ticks
from tests.fakegw.wire import Cursor, Field, ProtocolError, encode_frame, read_frame, read_greeting

if TYPE_CHECKING:
    from tests.fakegw.gateway import FakeGateway
    from tests.fakegw.orders import FakeExecution

log = logging.getLogger("tests.fakegw")
GATEWAY_TZ = ZoneInfo("America/New_York")
# Where each request carries the id its errors are reported under.
REQ_ID_FIELD = {1: 2, 3: 1, 4: 2, 6: 0, 7: 2, 9: 2, 62: 2, 74: 2, 76: 2, 78: 1}
ERROR_TEXT_10197 = "No market data during competing live session"
ERROR_TEXT_10089 = ("Requested market data requires additional subscription for API. "
                    "See link in 'Market Data Connections' dialog for more details.")
ERROR_TEXT_10090 = "Part of requested market data is not subscribed. Subscription-independent ticks are still active."
SNAPSHOT_GENERIC_ERROR = "Error validating request.-'bW' : cause - Snapshot market data subscription is not applicable to generic ticks"


class ClientSession:
    def __init__(self, gw: FakeGateway, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.gw, self.reader, self.writer = gw, reader, writer
        self.client_id: int | None = None
        self.ready = False
        self.held: list[bytes] = []  # frames written while the gateway is stalled
        self.market_data: dict[int, Subscription] = {}
        self.market_data_type: int | None = None
        self.account_updates = False
        self.positions_stream = False
        self.multi_streams: dict[int, str] = {}  # reqId -> model code
        self._recent: deque[float] = deque()
        self._closed = asyncio.Event()
        self.handlers: dict[int, Callable[[list[str]], None]] = {
            49: self._current_time, 61: self._positions, 64: self._cancel_positions,
            5: self._open_orders, 16: self._all_open_orders, 15: self._ignore, 99: self._completed,
            7: self._executions, 6: self._account_updates, 62: self._account_summary,
            63: self._ignore, 76: self._account_multi, 77: self._cancel_multi,
            74: self._positions_multi, 75: self._ignore, 92: self._ignore, 93: self._ignore,
            94: self._ignore, 95: self._ignore, 9: self._contract_details, 78: self._sec_def,
            1: self._market_data, 2: self._cancel_market_data, 59: self._set_market_data_type,
            3: self._place_order, 4: self._cancel_order, 58: self._global_cancel, 8: self._ids,
            17: self._managed_accounts, 14: self._ignore, 20: self._historical, 25: self._ignore,
        }

    # --- plumbing ------------------------------------------------------------------
    def send(self, fields: list[Field]) -> None:
        frame = encode_frame(fields)
        if self.gw.stalled:
            self.held.append(frame)
        elif not self.writer.is_closing():
            self.writer.write(frame)

    def flush_held(self) -> None:
        frames, self.held = self.held, []
        if not self.writer.is_closing():
            for frame in frames:
                self.writer.write(frame)

    def _end(self, kind: str, *args: int | None) -> None:
        """An end marker, unless the test withholds it (some TWS builds never send a few of them)."""
        if kind not in self.gw.withheld_ends:
            self.send(msg.end(kind, *args))

    def error(self, req_id: int, code: int, message: str) -> None:
        self.gw.errors_sent.append((self.client_id, req_id, code, message))
        self.send(msg.error(self.gw.server_version, req_id, code, message))

    async def run(self) -> None:
        try:
            await read_greeting(self.reader)
            await self._until_unstalled()
            now = self.gw.clock()
            conn_time = self.gw.connection_time or f"{now:%Y%m%d %H:%M:%S} {now.tzname()}"
            self.send([self.gw.server_version, conn_time])
            while True:
                fields = await read_frame(self.reader)
                await self._until_unstalled()
                self._dispatch(fields)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except ProtocolError as exc:
            log.warning("fakegw: closing client %s: %s", self.client_id, exc)
        finally:
            self.gw.forget(self)
            self.writer.close()

    async def _until_unstalled(self) -> None:
        """Wait out a stall; a socket closed meanwhile ends the session."""
        if self.gw.stalled:
            waits = [asyncio.ensure_future(self.gw.unstalled()), asyncio.ensure_future(self._closed.wait())]
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waits:
                waiter.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
        if self._closed.is_set():
            raise ConnectionError("closed while stalled")

    def abort(self) -> None:
        """Close the socket without waiting (a network cut in the middle of a burst of messages)."""
        self._closed.set()
        self.writer.close()

    async def close(self) -> None:
        self._closed.set()
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()

    def _dispatch(self, fields: list[str]) -> None:
        if not fields:
            return
        msg_id = int(fields[0]) if fields[0].isdigit() else -1
        self.gw.received.append((self.client_id, fields))
        self._pace()
        if msg_id == 71:
            self._start_api(fields)
            return
        handler = self.handlers.get(msg_id)
        if not self.ready or handler is None:
            self.gw.unhandled.append((self.client_id, fields))
            return
        try:
            handler(fields)
        except ProtocolError as exc:
            at = REQ_ID_FIELD.get(msg_id, 0)
            req_id = int(fields[at]) if at and len(fields) > at and fields[at].lstrip("-").isdigit() else -1
            self.error(req_id, 321, f"Error validating request.-'fakegw' : cause - {exc}")
        except Exception:  # a bug in the fake: keep serving, but make it visible to the test
            log.exception("fakegw: handler for %s failed", fields[:3])
            self.gw.internal_errors.append((fields, traceback.format_exc()))

    def _pace(self) -> None:
        now = asyncio.get_running_loop().time()
        self._recent.append(now)
        while self._recent and now - self._recent[0] > 1.0:
            self._recent.popleft()
        limit = self.gw.max_messages_per_second
        if limit and len(self._recent) > limit:
            self.gw.pacing_violations += 1
            self.error(-1, 100, f"Max rate of messages per second has been exceeded:max={limit} rec={len(self._recent)} (1)")

    # --- session -------------------------------------------------------------------
    def _start_api(self, fields: list[str]) -> None:
        c = Cursor(fields, 2)
        client_id = c.int()
        self.client_id = client_id
        if client_id in self.gw.refused_client_ids or client_id in self.gw.client_ids:
            self.error(-1, 326, "Unable to connect as the client id is already in use.  Retry with a unique client id.")
            self.writer.close()
            return
        self.ready = True
        self.send(msg.managed_accounts(self.gw.account_id))
        self.send(msg.next_valid_id(self.gw.desk.next_valid_id))
        for code, text in self.gw.farm_notices:
            self.error(-1, code, text)

    def _current_time(self, fields: list[str]) -> None:
        if self.gw.withhold_current_time:
            return
        self.send(msg.current_time(int(self.gw.clock().timestamp())))

    def _managed_accounts(self, fields: list[str]) -> None:
        self.send(msg.managed_accounts(self.gw.account_id))

    def _ids(self, fields: list[str]) -> None:
        self.send(msg.next_valid_id(self.gw.desk.next_valid_id))

    def _ignore(self, fields: list[str]) -> None:
        """Requests TWS answers with nothing we model (auto-bind, PnL, log level, cancels)."""

    # --- positions and account -----------------------------------------------------
    def _positions(self, fields: list[str]) -> None:
        for pos in self.gw.account.positions.values():
            self.send(msg.position(self.gw.account_id, pos.contract, pos.qty, pos.avg_cost))
        self._end("positions")
        self.positions_stream = True

    def _cancel_positions(self, fields: list[str]) -> None:
        self.positions_stream = False

    def _positions_multi(self, fields: list[str]) -> None:
        c = Cursor(fields, 2)
        req_id, _account, model = c.int(), c.str(), c.str()
        for pos in self.gw.account.positions.values():
            self.send(msg.position_multi(req_id, self.gw.account_id, pos.contract, pos.qty, pos.avg_cost, model))
        self._end("positions_multi", req_id)

    def _account_updates(self, fields: list[str]) -> None:
        c = Cursor(fields, 2)
        subscribe, account = c.bool(), c.str()
        if account and account != self.gw.account_id:
            raise ProtocolError(f"unknown account {account}")
        self.account_updates = subscribe
        if not subscribe:
            return
        for row in self.gw.account.update_rows:
            self.send(msg.account_value(row.tag, row.value, row.currency, self.gw.account_id))
        for pos in self.gw.account.positions.values():
            if pos.qty:
                self.send(self.gw.portfolio_message(pos))
        self.send(msg.account_time(f"{self.gw.clock():%H:%M}"))
        self.send(msg.account_download_end(self.gw.account_id))

    def _account_summary(self, fields: list[str]) -> None:
        c = Cursor(fields, 2)
        req_id, _group, tags = c.int(), c.str(), c.str()
        for row in self.gw.account.summary_for({t.strip() for t in tags.split(",")}):
            self.send(msg.account_summary(req_id, row.account, row.tag, row.value, row.currency))
        self._end("account_summary", req_id)

    def _account_multi(self, fields: list[str]) -> None:
        c = Cursor(fields, 2)
        req_id, _account, model = c.int(), c.str(), c.str()
        for row in self.gw.account.multi_rows:
            self.send(msg.account_update_multi(req_id, self.gw.account_id, model, row.tag, row.value, row.currency))
        self._end("account_multi", req_id)
        self.multi_streams[req_id] = model

    def _cancel_multi(self, fields: list[str]) -> None:
        self.multi_streams.pop(Cursor(fields, 2).int(), None)

    # --- orders and executions -----------------------------------------------------
    def _open_orders(self, fields: list[str]) -> None:
        self._send_open_orders(None if self.client_id == 0 else self.client_id)

    def _all_open_orders(self, fields: list[str]) -> None:
        self._send_open_orders(None)

    def _send_open_orders(self, client_id: int | None) -> None:
        for order in self.gw.desk.working(client_id):
            view = order.view()
            self.send(msg.open_order(self.gw.server_version, view))
            self.send(msg.order_status(view))
        self._end("open_orders")

    def _completed(self, fields: list[str]) -> None:
        """Every order that ended (filled or cancelled), whichever client placed it and whatever the day."""
        for order in self.gw.desk.orders.values():
            if order.done and order.status in ("Filled", "Cancelled"):
                at = order.completed_at or order.placed_at
                self.send(msg.completed_order(self.gw.server_version, order.view(),
                                              f"{at:%Y%m%d %H:%M:%S} {GATEWAY_TZ.key}"))
        self._end("completed_orders")

    def _executions(self, fields: list[str]) -> None:
        flt = read_execution_filter(fields)
        for execution in self.gw.desk.executions:
            if _passes(execution, flt, self.gw.clock().astimezone(GATEWAY_TZ).date()
                       if self.gw.executions_today_only else None):
                view = execution.view()
                self.send(msg.exec_details(self.gw.server_version, flt.req_id, view,
                                           zone=not self.gw.exec_times_without_zone))
                self.send(msg.commission_report(view))
        self._end("executions", flt.req_id)

    def _place_order(self, fields: list[str]) -> None:
        assert self.client_id is not None
        self.gw.desk.place(self.client_id, read_place_order(fields, self.gw.server_version))

    def _cancel_order(self, fields: list[str]) -> None:
        assert self.client_id is not None
        self.gw.desk.cancel(self.client_id, Cursor(fields, 2).int())

    def _global_cancel(self, fields: list[str]) -> None:
        self.gw.desk.cancel_all()

    # --- contracts -----------------------------------------------------------------
    def _contract_details(self, fields: list[str]) -> None:
        c = Cursor(fields, 2)
        req_id = c.int()
        found = self.gw.market.find(read_contract(c))
        if not found:
            self.error(req_id, 200, "No security definition has been found for the request")
            return
        today = self.gw.clock().date()
        for contract in found:
            under = self.gw.market.contracts.get(contract.underlying_con_id)
            self.send(msg.contract_details(req_id, contract, under, today))
        self._end("contract_details", req_id)

    def _sec_def(self, fields: list[str]) -> None:
        c = Cursor(fields, 1)
        req_id, symbol, _fut_exchange, _sec_type, con_id = c.int(), c.str(), c.str(), c.str(), c.int()
        under = self.gw.market.find_underlying(symbol)
        if under is not None and con_id in (0, under.con_id):
            by_class: dict[str, list] = {}
            for option in self.gw.market.options_of(symbol):
                by_class.setdefault(option.trading_class, []).append(option)
            for exchange in self.gw.option_exchanges:
                for trading_class, options in sorted(by_class.items()):
                    self.send(msg.sec_def_opt_params(
                        req_id, exchange, under.con_id, trading_class, options[0].multiplier,
                        (o.expiry for o in options), (o.strike for o in options)))
        self._end("sec_def", req_id)

    # --- historical data -----------------------------------------------------------
    def _historical(self, fields: list[str]) -> None:
        """Daily bars (`barSize` "1 day") of the closes the test set, the last `N D` of them before today."""
        c = Cursor(fields, 1)
        req_id = c.int()
        query = read_contract(c)
        _include_expired, _end, bar_size, duration = c.str(), c.str(), c.str(), c.str()
        found = self.gw.market.find(query)
        if len(found) != 1 or bar_size.strip() != "1 day":
            self.error(req_id, 162, "Historical Market Data Service error message:no data of the requested kind")
            return
        self.gw.history_requests.append((found[0].symbol, duration))
        days = int(duration.split()[0]) if duration.split()[0].isdigit() else 30
        today = self.gw.clock().astimezone(GATEWAY_TZ).date()
        bars = sorted((d, v) for d, v in self.gw.daily_closes.get(found[0].symbol, {}).items() if d < today)[-days:]
        if not bars:
            self.error(req_id, 162, "Historical Market Data Service error message:HMDS query returned no data")
            return
        out: list = [17, req_id, f"{bars[0][0]:%Y%m%d}", f"{bars[-1][0]:%Y%m%d}", len(bars)]
        for day, close in bars:
            out += [f"{day:%Y%m%d}", close, close, close, close, 1000, close, 10]
        self.send(out)

    # --- market data ---------------------------------------------------------------
    def _market_data(self, fields: list[str]) -> None:
        req = read_market_data(fields)
        found = self.gw.market.find(req.contract)
        if len(found) != 1:
            self.error(req.req_id, 200, "No security definition has been found for the request")
            return
        if req.snapshot and req.generic_ticks:
            self.error(req.req_id, 321, SNAPSHOT_GENERIC_ERROR)
            return
        if req.req_id in self.market_data:
            self.error(req.req_id, 322, f"Error processing request.-'bV' : cause - Duplicate ticker id {req.req_id}")
            return
        if self.gw.market_data_lines >= self.gw.max_market_data_lines:  # per account; a snapshot takes a line too
            self.error(req.req_id, 101, f"Max number of tickers has been reached:max={self.gw.max_market_data_lines}")
            return
        contract = found[0]
        if self.gw.competing_live_session:
            self.error(req.req_id, 10197, ERROR_TEXT_10197)
            return
        paper_code = self.gw.paper_data_codes.get(contract.symbol) if self.gw.account_id.startswith("DU") else None
        if paper_code == 10089:
            self.error(req.req_id, 10089, ERROR_TEXT_10089)
            return
        granted = grant(self.market_data_type, self.gw.market.entitlement(contract), contract)
        notice = granted.notice
        if notice is not None and granted.refused:
            self.error(req.req_id, *notice)
            return
        sub = Subscription(req.req_id, contract, req.generic_ticks, delayed=granted.delayed)
        self.send(msg.tick_req_params(req.req_id, contract.min_tick, "9c0001", 3))
        if granted.data_type is not None:
            self.send(msg.market_data_type(req.req_id, granted.data_type))
        if notice is not None:
            self.error(req.req_id, *notice)
        if paper_code == 10090:  # part of it: the last price streams, bid and ask do not
            sub = Subscription(req.req_id, contract, req.generic_ticks, delayed=granted.delayed, last_only=True)
            self.error(req.req_id, 10090, ERROR_TEXT_10090)
        if not req.snapshot:
            self.market_data[req.req_id] = sub
        if not self.gw.connectivity_lost:
            self.push_ticks(sub)
        if req.snapshot:
            self._end("snapshot", req.req_id)

    def push_ticks(self, sub: Subscription) -> None:
        market = self.gw.market
        quote = market.quote(sub.contract.con_id)
        if quote is None:
            return
        under = market.contracts.get(sub.contract.underlying_con_id)
        und_price = market.mark(under) if under else None
        totals = None if sub.contract.is_option else market.open_interest_by_right(sub.contract.symbol)
        for fields in quote_ticks(sub, quote, und_price, totals):
            self.send(fields)

    def _cancel_market_data(self, fields: list[str]) -> None:
        self.market_data.pop(Cursor(fields, 2).int(), None)

    def _set_market_data_type(self, fields: list[str]) -> None:
        self.market_data_type = Cursor(fields, 2).int()


def _passes(e: FakeExecution, f: ExecutionFilter, today: date | None = None) -> bool:
    if f.client_id and e.client_id != f.client_id:
        return False
    if f.account and e.account != f.account:
        return False
    if f.symbol and e.contract.symbol != f.symbol:
        return False
    if f.sec_type and e.contract.sec_type != f.sec_type:
        return False
    if f.exchange and f.exchange not in (e.contract.exchange, e.contract.venue):
        return False
    if f.side and f.side not in (e.action, e.side):
        return False
    if today is not None and e.time.astimezone(GATEWAY_TZ).date() != today:
        return False  # IB reports the current day's executions only
    return not f.time or e.time >= parse_filter_time(f.time)


def parse_filter_time(text: str) -> datetime:
    """`yyyymmdd-hh:mm:ss` is UTC; `yyyymmdd hh:mm:ss [zone]` is that zone, or the gateway's."""
    text = text.strip()
    if len(text) >= 9 and text[8] == "-":
        return datetime.strptime(text[:17], "%Y%m%d-%H:%M:%S").replace(tzinfo=timezone.utc)
    day, clock, *zone = text.split() + [""]
    zone = [z for z in zone if z]
    try:
        tz = ZoneInfo(zone[0]) if zone else GATEWAY_TZ
        return datetime.strptime(f"{day} {clock}", "%Y%m%d %H:%M:%S").replace(tzinfo=tz)
    except (ValueError, KeyError) as exc:
        raise ProtocolError(f"bad execution filter time {text!r}") from exc

