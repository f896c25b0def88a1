"""FakeGateway: a TWS / IB Gateway stand-in on 127.0.0.1 that real `ib_async` clients talk to.

It holds the state a gateway holds across client connections (orders, executions, positions,
the account), streams the market the test sets, matches orders against it, and injects the
faults an unattended daemon meets (drops, stalls, rejects, refused client ids, restarts).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime

from tests.fakegw import messages as msg
from tests.fakegw.account import AccountBook, FakePosition
from tests.fakegw.contracts import FakeContract
from tests.fakegw.desk import OrderDesk
from tests.fakegw.market import Market, Price, to_decimal
from tests.fakegw.orders import CommissionSchedule, FakeExecution, FakeOrder, combo_touch
from tests.fakegw.session import GATEWAY_TZ, ClientSession
from tests.fakegw.wire import Field

MIN_SERVER_VERSION, MAX_SERVER_VERSION = 170, 178  # the range whose layouts this fake writes
# What a real TWS says right after startApi (recorded session, shared/data/ib-captures).
FARM_NOTICES: tuple[tuple[int, str], ...] = (
    (2104, "Market data farm connection is OK:usfarm.nj"),
    (2104, "Market data farm connection is OK:usfarm"),
    (2106, "HMDS data farm connection is OK:euhmds"),
    (2106, "HMDS data farm connection is OK:fundfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefil"),
)
ERROR_TEXT = {
    100: "Max rate of messages per second has been exceeded",
    201: "Order rejected - reason:",
    202: "Order Canceled - reason:",
    326: "Unable to connect as the client id is already in use.  Retry with a unique client id.",
    354: "Requested market data is not subscribed.",
    1100: "Connectivity between IB and Trader Workstation has been lost.",
    1101: "Connectivity between IB and Trader Workstation has been restored - data lost.",
    1102: "Connectivity between IB and Trader Workstation has been restored - data maintained.",
    2103: "Market data farm connection is broken:usfarm",
    2104: "Market data farm connection is OK:usfarm",
    2105: "HMDS data farm connection is broken:ushmds",
    2106: "HMDS data farm connection is OK:ushmds",
    2158: "Sec-def data farm connection is OK:secdefil",
    10167: "Requested market data is not subscribed. Displaying delayed market data.",
    10168: "Requested market data is not subscribed. Delayed market data is not enabled.",
    10197: "No market data during competing live session",
    10089: "Requested market data requires additional subscription for API. See link in 'Market Data Connections' dialog for more details.",
    10090: "Part of requested market data is not subscribed. Subscription-independent ticks are still active.",
}


class FakeGateway:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, account: str = "DU1234567",
                 server_version: int = 176, next_valid_id: int = 1, currency: str = "USD", *,
                 clock: Callable[[], datetime] | None = None, connection_time: str | None = None,
                 commission: CommissionSchedule | None = None,
                 option_exchanges: tuple[str, ...] = ("SMART", "CBOE"),
                 max_messages_per_second: int = 50, max_market_data_lines: int = 100):
        if not MIN_SERVER_VERSION <= server_version <= MAX_SERVER_VERSION:
            raise ValueError(f"unsupported_server_version: {server_version} "
                             f"(this fake writes {MIN_SERVER_VERSION}..{MAX_SERVER_VERSION})")
        self.host, self._port = host, port
        self.account_id, self.currency, self.server_version = account, currency, server_version
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(GATEWAY_TZ))
        self.connection_time = connection_time
        self.option_exchanges = option_exchanges
        self.max_messages_per_second = max_messages_per_second
        self.max_market_data_lines = max_market_data_lines
        self.farm_notices = FARM_NOTICES
        self.market = Market(currency=currency, on_update=self._on_market_update)
        self.account = AccountBook(account, currency)
        self.desk = OrderDesk(self.market, self.account, self, self.clock,
                              commission or CommissionSchedule(), next_valid_id=next_valid_id)
        self.refused_client_ids: set[int] = set()
        self.connectivity_lost = False
        self.stalled = False
        # Real gateways' quirks (issue 9), each off by default.
        self.withhold_current_time = False  # reqCurrentTime never answered (some TWS builds, replays)
        self.withheld_ends: set[str] = set()  # end markers never sent: "executions", "open_orders", ...
        self.silent_modifications = False  # a modification is taken but its openOrder/orderStatus never sent
        self.status_before_exec = False  # a fill's orderStatus before its execDetails
        self.duplicate_filled_status = False  # the Filled orderStatus sent twice
        self.commission_delay_s = 0.0  # the commissionReport this long after the execution
        self.exec_times_without_zone = False  # execution times in the gateway's zone, unnamed
        self.drop_mid_combo = False  # the next combo fill cuts every socket right after its first leg's execDetails
        self.executions_today_only = False
        self.daily_closes: dict[str, dict] = {}  # symbol -> {date: close}: reqHistoricalData's daily bars
        self.history_requests: list[tuple[str, str]] = []  # (symbol, duration) asked  # reqExecutions answers the gateway's current day only, as IB does
        self.competing_live_session = False  # the same login is live elsewhere: market data gets 10197
        # A paper account without shared data: symbol -> 10089 (needs an API subscription, nothing
        # served) or 10090 (part not subscribed: the last price is served, quotes are not).
        self.paper_data_codes: dict[str, int] = {}
        # What happened, for assertions: every request frame, unanswered ones, errors sent.
        self.received: list[tuple[int | None, list[str]]] = []
        self.unhandled: list[tuple[int | None, list[str]]] = []
        self.errors_sent: list[tuple[int | None, int, int, str]] = []
        self.internal_errors: list[tuple[list[str], str]] = []  # bugs in the fake, never expected
        self.pacing_violations = 0
        self.connections = 0
        self._sessions: dict[ClientSession, asyncio.Task] = {}
        self._server: asyncio.AbstractServer | None = None
        self._unstalled = asyncio.Event()
        self._unstalled.set()

    # --- lifecycle -----------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._port

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._on_client, self.host, self._port)
        self._port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        await self._shut_down()

    async def __aenter__(self) -> FakeGateway:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _shut_down(self) -> None:
        """Stop listening, release stalled readers, close every client, then wait for the listener."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        self.stall(False)
        await self.drop_clients()
        if server is not None:
            await server.wait_closed()

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = ClientSession(self, reader, writer)
        self._sessions[session] = asyncio.current_task()  # type: ignore[assignment]
        self.connections += 1
        await session.run()

    def forget(self, session: ClientSession) -> None:
        self._sessions.pop(session, None)

    @property
    def sessions(self) -> list[ClientSession]:
        return [s for s in self._sessions if s.ready]

    @property
    def market_data_lines(self) -> int:
        """Lines in use on the account: every client's streams (IB's budget is per account, not per client)."""
        return sum(len(s.market_data) for s in self.sessions)

    @property
    def client_ids(self) -> list[int]:
        return [s.client_id for s in self.sessions if s.client_id is not None]

    # --- state views (the API other rooms assert on) -------------------------------
    @property
    def orders(self) -> dict[int, FakeOrder]:
        return self.desk.orders

    @property
    def executions(self) -> list[FakeExecution]:
        return self.desk.executions

    @property
    def positions(self) -> dict[int, FakePosition]:
        return self.account.positions

    @property
    def auto_fill(self) -> bool:
        return self.desk.auto_fill

    @auto_fill.setter
    def auto_fill(self, on: bool) -> None:
        self.desk.auto_fill = on

    @property
    def next_valid_id(self) -> int:
        return self.desk.next_valid_id

    def account_values(self, net_liquidation: Price | None = None, buying_power: Price | None = None,
                       cash: Price | None = None) -> None:
        self.account.set_values(self.market.mark, to_decimal(net_liquidation),
                                to_decimal(buying_power), to_decimal(cash))
        self.account_changed(None)

    # --- fault injection -----------------------------------------------------------
    async def drop_clients(self) -> None:
        """Close every client socket (what a gateway crash or network cut looks like)."""
        sessions = list(self._sessions.items())
        for session, _task in sessions:
            await session.close()
        tasks = [task for _, task in sessions if task is not asyncio.current_task()]
        if tasks:  # each session ends by itself once its socket is closed
            await asyncio.wait(tasks, timeout=2)
        self._sessions.clear()

    def stall(self, on: bool) -> None:
        """Keep sockets open but answer nothing; requests and pushes wait until un-stalled."""
        self.stalled = on
        if on:
            self._unstalled.clear()
            return
        for session in list(self._sessions):
            session.flush_held()
        self._unstalled.set()

    async def unstalled(self) -> None:
        await self._unstalled.wait()

    async def send_error(self, req_id: int, code: int, message: str | None = None) -> None:
        for session in self.sessions:
            session.error(req_id, code, message if message is not None else ERROR_TEXT.get(code, f"error {code}"))
        await self._drain()

    async def lose_connectivity(self) -> None:
        """TWS lost its link to IB (1100): market data stops until restored."""
        self.connectivity_lost = True
        await self.send_error(-1, 1100)

    async def restore_connectivity(self, data_lost: bool = False) -> None:
        """1102 keeps subscriptions and resumes ticks; 1101 drops them (the client must resubscribe)."""
        self.connectivity_lost = False
        for session in self.sessions:
            if data_lost:
                session.market_data.clear()
            else:
                for sub in session.market_data.values():
                    session.push_ticks(sub)
        await self.send_error(-1, 1101 if data_lost else 1102)

    def reject_next_order(self, reason: str = "Insufficient buying power") -> None:
        self.desk.reject_reasons.append(reason)

    def refuse_client_id(self, client_id: int) -> None:
        self.refused_client_ids.add(client_id)

    def accept_client_id(self, client_id: int) -> None:
        self.refused_client_ids.discard(client_id)

    async def fill(self, order_id: int, qty: Price, price: Price, when: datetime | None = None) -> FakeExecution:
        """Force a fill, connected client or not (an absent client learns of it on reconnect)."""
        order = self.desk.orders.get(order_id)
        if order is None:
            raise KeyError(f"unknown_order: {order_id}")
        execution = self.desk.fill(order, to_decimal(qty), to_decimal(price), when)  # type: ignore[arg-type]
        await self._drain()
        return execution

    async def fill_combo(self, order_id: int, units: Price, leg_prices: tuple[Price, ...] | None = None,
                         when: datetime | None = None) -> FakeExecution:
        """Force a combo fill of whole units, every leg at once; each leg at `leg_prices` or its touch now."""
        order = self.desk.orders.get(order_id)
        if order is None:
            raise KeyError(f"unknown_order: {order_id}")
        if leg_prices is None:
            touch = combo_touch(order, self.market.quotes)
            if touch is None:
                raise ValueError(f"no_touch: a leg of combo order {order_id} has no quote on its side")
            prices = touch[1]
        else:
            prices = tuple(to_decimal(p) for p in leg_prices)  # type: ignore[misc]
        execution = self.desk.fill_combo(order, to_decimal(units), prices, when)  # type: ignore[arg-type]
        await self._drain()
        return execution

    def cut_sockets(self) -> None:
        """Close every client socket now, from synchronous code (frames already written still go out)."""
        for session in list(self._sessions):
            session.abort()

    async def restart(self, next_valid_id: int | None = None) -> None:
        """Drop everyone and come back on the same port; orders, executions and positions survive."""
        await self._shut_down()
        self.connectivity_lost = False
        if next_valid_id is not None:
            self.desk.next_valid_id = next_valid_id
        await self.start()

    # --- Outbox for the desk, and the account / market pushes ---------------------
    def to_owner(self, client_id: int, fields: list[Field]) -> None:
        for session in self.sessions:
            if session.client_id == client_id:
                session.send(fields)

    def error_to(self, client_id: int, req_id: int, code: int, message: str) -> None:
        for session in self.sessions:
            if session.client_id == client_id:
                session.error(req_id, code, message)

    def account_changed(self, con_id: int | None) -> None:
        changed = self.account.revalue(self.market.mark)
        changed_tags = {(r.tag, r.currency) for r in changed}
        pos = self.account.positions.get(con_id) if con_id is not None else None
        for session in self.sessions:
            if session.positions_stream and pos is not None:
                session.send(msg.position(self.account_id, pos.contract, pos.qty, pos.avg_cost))
            if session.account_updates and (changed or pos is not None):
                for row in changed:
                    session.send(msg.account_value(row.tag, row.value, row.currency, self.account_id))
                if pos is not None:
                    session.send(self.portfolio_message(pos))
                session.send(msg.account_time(f"{self.clock():%H:%M}"))
            for req_id, model in session.multi_streams.items():
                for row in self.account.multi_rows:
                    if (row.tag, row.currency) in changed_tags:
                        session.send(msg.account_update_multi(req_id, self.account_id, model,
                                                              row.tag, row.value, row.currency))

    def portfolio_message(self, pos: FakePosition) -> list[Field]:
        price, value = self.account.market_value(pos, self.market.mark(pos.contract))
        return msg.portfolio(pos.contract, pos.qty, price, value, pos.avg_cost,
                             value - pos.qty * pos.avg_cost, pos.realized_pnl, self.account_id)

    def _on_market_update(self, contract: FakeContract) -> None:
        if not self.connectivity_lost:
            related = {contract.con_id, contract.underlying_con_id}
            for session in self.sessions:
                for sub in session.market_data.values():
                    if sub.contract.con_id in related:
                        session.push_ticks(sub)
        self.desk.run_matching(contract.con_id)

    async def _drain(self) -> None:
        for session in list(self._sessions):
            with contextlib.suppress(ConnectionError, OSError):
                await session.writer.drain()

