"""Streaming quotes from IB into `on_quote`: subscriptions, Ticker -> Quote, staleness.

Every quote carries its receive time (the injected clock). Codes 354/10197/10168 make
one subscription's quotes unusable, 2103 (farm broken) all of them; a fresh tick makes
that key usable again. Delayed or frozen data (marketDataType != 1) is never usable.
Subscriptions are kept by key so they can be made again after a reconnect (ib_async
forgets every ticker when the socket goes).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

import structlog
from ib_async import IB, Ticker

from broker.base import BrokerError
from broker.ib import codes
from broker.ib.contracts import ContractBook, is_option_key
from broker.ib.lines import AccountLines
from market.types import Quote
from market.clock import Clock

log = structlog.get_logger("broker.ib")

OPTION_GENERIC_TICKS = "100,101"  # option volume and open interest; model greeks come with every option
LIVE, DELAYED = 1, 3  # IB marketDataType: 1 live, 2 frozen, 3 delayed, 4 delayed frozen
DELAYED_TYPES = (3, 4)
# A snapshot that ends with one of these for its request id has no fresh price (SPEC §6.1).
_SNAPSHOT_FAILS = (codes.Effect.QUOTE_STALE, codes.Effect.LINES_EXCEEDED, codes.Effect.NO_CONTRACT)
Alert = Callable[[str, Mapping[str, Any]], None]
NO_CONTRACT = "200"
PROBE_POLL_S = 0.05  # how often `probe` looks whether its tickers have data yet
Pace = Callable[[], Awaitable[None]]
Within = Callable[[Awaitable[Any], float], Awaitable[Any]]


def quote_from_ticker(key: str, t: Ticker, received_at: datetime, *, usable: bool = True,
                      delayed_ok: bool = False) -> Quote:
    """`delayed_ok` (paper accounts whose config allows delayed data): delayed quotes are usable, labelled delayed."""
    right = key.split(" ")[2] if is_option_key(key) else None
    greeks = t.modelGreeks
    oi = _first_number(t.openInterest, t.callOpenInterest if right == "C" else t.putOpenInterest,
                       t.putOpenInterest if right == "C" else t.callOpenInterest)
    return Quote(
        key=key, bid=_price(t.bid), ask=_price(t.ask), last=_price(t.last), received_at=received_at,
        bid_size=_size(t.bidSize), ask_size=_size(t.askSize),
        open_interest=None if oi is None else int(oi),
        delta=_dec(greeks.delta) if greeks else None, gamma=_dec(greeks.gamma) if greeks else None,
        iv=_dec(greeks.impliedVol) if greeks else None,
        usable=usable and (t.marketDataType == LIVE or (delayed_ok and t.marketDataType in DELAYED_TYPES)),
        delayed=t.marketDataType in DELAYED_TYPES,
    )


class MarketData:
    def __init__(self, ib: IB, book: ContractBook, clock: Clock, *, lines: int, pace: Pace, within: Within,
                 snapshot_timeout_s: float, emit: Callable[[Quote], None], alert: Alert | None = None):
        self.ib = ib
        self.book = book
        self.clock = clock
        self.lines = lines
        self._pace = pace
        self._within = within
        self._snapshot_timeout_s = snapshot_timeout_s
        self._emit = emit
        self._wanted: list[str] = []  # subscription order, kept across reconnects
        self._tickers: dict[str, Ticker] = {}
        self._key_by_ticker: dict[int, str] = {}
        self._last: dict[str, Quote] = {}
        self._stale: set[str] = set()
        self._snapshots = 0  # snapshots running: each holds one of the account's lines meanwhile
        self._alert = alert or (lambda kind, detail: log.error("alert", alert=kind, **detail))
        self.delayed_ok = False  # set by the broker on a paper account whose config allows delayed data
        self.shared: AccountLines | None = None  # the account's lines as other profiles hold them (set on connect)
        ib.pendingTickersEvent += self._on_tickers
        ib.errorEvent += self._on_error

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self._wanted)

    def last(self, key: str) -> Quote | None:
        return self._last.get(key)

    def is_stale(self, key: str) -> bool:
        return key in self._stale

    async def subscribe(self, keys: Iterable[str]) -> list[str]:
        """Stream each key; returns the keys IB has no contract for (logged, skipped: their quotes
        never arrive, so entries on them refuse for want of a quote, and the rest still streams)."""
        new = [k for k in dict.fromkeys(keys) if k not in self._wanted]
        others = self.shared.others() if self.shared is not None and new else 0
        if len(self._wanted) + self._snapshots + len(new) + others > self.lines:
            self._alert("ib_market_data_lines", {"key": ", ".join(new), "code": "market_data_lines",
                                                 "message": f"the account's {self.lines} lines are in use"})
            raise BrokerError("market_data_lines",
                              f"{len(self._wanted)} lines streaming, {self._snapshots} snapshots running and "
                              f"{others} held by other profiles on the account: {len(new)} more would pass "
                              f"the account's budget of {self.lines}")
        unknown = []
        for key in new:
            try:
                await self.book.qualify(key)
            except BrokerError as exc:
                if exc.code != NO_CONTRACT:
                    raise
                unknown.append(key)
                continue
            self._wanted.append(key)
            await self._request(key)
        self.publish()
        if unknown:
            log.error("ib_no_contract", keys=unknown)
        return unknown

    def _take_line(self, key: str, *, snapshot: bool) -> None:
        """A snapshot needs a free line of this profile's share of the account's budget, as a stream does."""
        others = self.shared.others() if self.shared is not None else 0
        if len(self._wanted) + self._snapshots + 1 + others > self.lines:
            self._alert("ib_market_data_lines", {"key": key, "code": "market_data_lines",
                                                 "message": f"budget of {self.lines} lines in use"})
            raise BrokerError("market_data_lines", f"no line free for {key}: {len(self._wanted)} streaming, "
                                                   f"{self._snapshots} snapshots, {others} held by other "
                                                   f"profiles, account budget {self.lines}")
        if snapshot:
            self._snapshots += 1
            self.publish()

    def publish(self) -> None:
        """Tell the other profiles on the account how many lines this one holds now."""
        if self.shared is not None:
            self.shared.publish(len(self._wanted) + self._snapshots)

    def _lines_refused(self, key: str, code: int, message: str) -> None:
        """IB's 101: the account's lines are all taken (other profiles count too). Alert naming the key."""
        log.error("ib_market_data_lines_exceeded", key=key, code=code, message=message)
        self._alert("ib_market_data_lines", {"key": key, "code": code, "message": message})

    async def unsubscribe(self, keys: Iterable[str]) -> None:
        for key in keys:
            if key not in self._wanted:
                continue
            self._wanted.remove(key)
            ticker = self._tickers.pop(key, None)
            self._last.pop(key, None)
            self._stale.discard(key)
            if ticker is not None:
                self._key_by_ticker.pop(id(ticker), None)
                if self.ib.isConnected() and ticker.contract is not None:
                    await self._pace()
                    self.ib.cancelMktData(ticker.contract)
        self.publish()

    async def resubscribe(self) -> None:
        """After a reconnect: ib_async forgot every ticker; ask again for each key, in order."""
        self._tickers.clear()
        self._key_by_ticker.clear()
        for key in list(self._wanted):
            await self._request(key)

    def mark_all_stale(self, reason: str) -> None:
        """The connection went: every streamed quote is unusable until a fresh tick."""
        self._mark_stale(list(self._wanted), reason)

    async def snapshot(self, key: str) -> Quote:
        """One fresh quote for `key`, or BrokerError: never the last streamed price restamped as now.

        ib_async keeps one Ticker per contract and ends a snapshot that IB refused (354, 10089-10091,
        10197, 101) without raising, handing back that Ticker with whatever streamed before. Here the
        snapshot writes into a Ticker of its own, so only ticks of this request can reach it, and any
        refusal IB sends for the request fails it. It takes one of the account's lines while it runs.
        """
        contract = await self.book.qualify(key)
        self._take_line(key, snapshot=True)
        wrapper = self.ib.wrapper
        req_id = self.ib.client.getReqId()
        refused: list[tuple[int, str]] = []

        def on_error(err_req_id: int, code: int, message: str, _contract: Any) -> None:
            if err_req_id == req_id and codes.info(code).effect in _SNAPSHOT_FAILS:
                refused.append((code, message))

        ticker = Ticker(contract=contract, defaults=wrapper.defaults)
        self.ib.errorEvent += on_error
        try:
            await self._pace()
            future = wrapper.startReq(req_id, contract)
            wrapper.reqId2Ticker[req_id] = ticker
            try:
                self.ib.client.reqMktData(req_id, contract, "", True, False, [])
            except ConnectionError as exc:
                raise BrokerError("not_connected", f"no snapshot for {key}: {exc}") from None
            try:
                await self._within(future, self._snapshot_timeout_s)
            except TimeoutError:
                wrapper._endReq(req_id)
                raise BrokerError("snapshot_timeout",
                                  f"no snapshot for {key} within {self._snapshot_timeout_s} s") from None
        finally:
            self.ib.errorEvent -= on_error
            wrapper.reqId2Ticker.pop(req_id, None)
            self._snapshots -= 1
            self.publish()
        if refused:
            code, message = refused[0]
            if codes.info(code).effect is codes.Effect.LINES_EXCEEDED:
                self._lines_refused(key, code, message)
            raise BrokerError(str(code), f"IB refused the snapshot for {key}: {message}")
        quote = quote_from_ticker(key, ticker, self.clock.now(), delayed_ok=self.delayed_ok)
        if quote.bid is None and quote.ask is None and quote.last is None:
            raise BrokerError("snapshot_empty", f"IB's snapshot for {key} has no prices")
        return quote

    async def probe(self, keys: Iterable[str], wait_s: float) -> dict[str, str]:
        """For `broker check`: is market data for each key `live`, `delayed`, `missing` or `timed_out`?

        Contracts are looked up all at once (a gateway that never answers costs one timeout, not one
        per key); `timed_out` when that lookup got no answer, `missing` when IB has no such contract or
        no data. Live is asked for first; what has none is asked again as delayed (IB type 3).
        """
        wanted = list(dict.fromkeys(keys))
        result: dict[str, str] = {}
        contracts: dict[str, Any] = {}
        outcomes = await asyncio.gather(*(self.book.qualify(k) for k in wanted), return_exceptions=True)
        for key, outcome in zip(wanted, outcomes, strict=True):
            if isinstance(outcome, BrokerError):
                result[key] = "timed_out" if outcome.code == "timeout" else "missing"
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                contracts[key] = outcome
        pending = list(contracts)
        for data_type in (LIVE, DELAYED):
            if not pending:
                break
            await self._pace()
            self.ib.reqMarketDataType(data_type)
            for key, state in (await self._probe_once({k: contracts[k] for k in pending}, wait_s, data_type)).items():
                result[key] = state
            pending = [k for k in pending if k not in result]
        if contracts:
            await self._pace()
            self.ib.reqMarketDataType(DELAYED if self.delayed_ok else LIVE)
        return {k: result.get(k, "missing") for k in wanted}

    async def _probe_once(self, contracts: dict[str, Any], wait_s: float, data_type: int) -> dict[str, str]:
        tickers: dict[str, Ticker] = {}
        failed: set[str] = set()
        by_req: dict[int, str] = {}

        def on_error(req_id: int, code: int, _message: str, _contract: Any) -> None:
            if req_id in by_req and codes.info(code).effect in (
                    codes.Effect.QUOTE_STALE, codes.Effect.NO_CONTRACT, codes.Effect.LINES_EXCEEDED):
                failed.add(by_req[req_id])

        self.ib.errorEvent += on_error
        try:
            for key, contract in contracts.items():
                await self._pace()
                tickers[key] = self.ib.reqMktData(contract, "", False, False)
                by_req[self.ib.wrapper.ticker2ReqId["mktData"][tickers[key]]] = key
            deadline = self.clock.now().timestamp() + wait_s
            while self.clock.now().timestamp() < deadline and not all(
                    k in failed or _has_data(t) for k, t in tickers.items()):
                await self.clock.sleep(PROBE_POLL_S)
            for ticker in tickers.values():
                if ticker.contract is not None:
                    await self._pace()
                    self.ib.cancelMktData(ticker.contract)
        finally:
            self.ib.errorEvent -= on_error
        found = {}
        for key, ticker in tickers.items():
            if key not in failed and _has_data(ticker):
                found[key] = "delayed" if data_type == DELAYED or ticker.marketDataType in DELAYED_TYPES else "live"
        return found

    async def _request(self, key: str) -> None:
        contract = await self.book.qualify(key)
        generic = OPTION_GENERIC_TICKS if is_option_key(key) else ""
        await self._pace()
        try:
            ticker = self.ib.reqMktData(contract, generic, False, False)
        except ConnectionError as exc:  # the socket went since the caller looked: asked again on reconnect
            raise BrokerError("not_connected", f"no market data request for {key}: {exc}") from None
        self._tickers[key] = ticker
        self._key_by_ticker[id(ticker)] = key

    def _on_tickers(self, tickers: Iterable[Ticker]) -> None:
        now = self.clock.now()
        for t in tickers:
            key = self._key_by_ticker.get(id(t))
            if key is None:
                continue
            self._stale.discard(key)
            quote = quote_from_ticker(key, t, now, delayed_ok=self.delayed_ok)
            self._last[key] = quote
            self._emit(quote)

    def _on_error(self, req_id: int, code: int, _message: str, _contract: Any) -> None:
        effect = codes.info(code).effect
        if effect is codes.Effect.LINES_EXCEEDED:
            ticker = self.ib.wrapper.reqId2Ticker.get(req_id)
            key = self._key_by_ticker.get(id(ticker)) if ticker is not None else None
            if key is not None:  # a streaming line IB refused: it will never quote; its line is free again
                self._mark_stale([key], str(code))
                self._wanted.remove(key)
                self._key_by_ticker.pop(id(self._tickers.pop(key, None)), None)
                self.publish()
                self._lines_refused(key, code, _message)
            return
        if effect is codes.Effect.ALL_QUOTES_STALE:
            self._mark_stale(list(self._wanted), str(code))
        elif effect is codes.Effect.QUOTE_STALE:
            ticker = self.ib.wrapper.reqId2Ticker.get(req_id)
            key = self._key_by_ticker.get(id(ticker)) if ticker is not None else None
            if key is not None:
                self._mark_stale([key], str(code))

    def _mark_stale(self, keys: list[str], reason: str) -> None:
        for key in keys:
            self._stale.add(key)
            last = self._last.get(key)
            if last is not None and last.usable:
                self._last[key] = replace(last, usable=False)
                self._emit(self._last[key])
        if keys:
            log.warning("ib_quotes_unusable", reason=reason, keys=len(keys))


def _number(x: float | None) -> float | None:
    if x is None or math.isnan(x) or math.isinf(x):
        return None
    return x


def _price(x: float | None) -> Decimal | None:
    v = _number(x)
    return None if v is None or v < 0 else Decimal(str(v))  # IB sends -1 for "no price"


def _size(x: float | None) -> int:
    v = _number(x)
    return 0 if v is None or v < 0 else int(v)


def _dec(x: float | None) -> Decimal | None:
    v = _number(x)
    return None if v is None else Decimal(str(v))


def _has_data(t: Ticker) -> bool:
    return any(_number(x) is not None and x > 0 for x in (t.bid, t.ask, t.last, t.close))


def _first_number(*xs: float | None) -> float | None:
    for x in xs:
        v = _number(x)
        if v is not None and v >= 0:
            return v
    return None
