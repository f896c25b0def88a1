"""The fake gateway's market: instruments, option chains and the current quote of each.

Every `set_*` replaces the quote, refreshes the displayed liquidity the matching engine may
take, and tells the gateway (which streams ticks and re-runs matching).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from tests.fakegw.contracts import (
    FakeContract,
    make_option,
    make_underlying,
    normalize_right,
)
from tests.fakegw.entitlements import FULL, Entitlement

Price = Decimal | float | int | str


def to_decimal(value: Price | None) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except ArithmeticError as exc:
        raise ValueError(f"bad_price: {value!r}") from exc


@dataclass(slots=True)
class FakeQuote:
    bid: Decimal | None = None
    ask: Decimal | None = None
    last: Decimal | None = None
    bid_size: int = 0
    ask_size: int = 0
    close: Decimal | None = None
    open_interest: int | None = None
    delta: Decimal | None = None
    gamma: Decimal | None = None
    iv: Decimal | None = None
    vega: Decimal | None = None
    theta: Decimal | None = None

    @property
    def mid(self) -> Decimal | None:
        if self.bid is not None and self.ask is not None and self.bid > 0 and self.ask >= self.bid:
            return (self.bid + self.ask) / 2
        return self.last


@dataclass(slots=True)
class Liquidity:
    """Size the matching engine may still take at the touch until the next market update."""

    bid: int = 0
    ask: int = 0


@dataclass(frozen=True, slots=True)
class ContractQuery:
    """The contract fields of a request, as the client sent them."""

    con_id: int = 0
    symbol: str = ""
    sec_type: str = ""
    expiry: str = ""
    strike: Decimal | None = None
    right: str = ""
    multiplier: str = ""
    exchange: str = ""
    primary_exchange: str = ""
    currency: str = ""
    local_symbol: str = ""
    trading_class: str = ""


@dataclass(slots=True)
class Market:
    currency: str = "USD"
    on_update: Callable[[FakeContract], None] | None = None
    contracts: dict[int, FakeContract] = field(default_factory=dict)
    quotes: dict[int, FakeQuote] = field(default_factory=dict)
    liquidity: dict[int, Liquidity] = field(default_factory=dict)
    _underlyings: dict[str, FakeContract] = field(default_factory=dict)
    _entitled_contracts: dict[int, Entitlement] = field(default_factory=dict)
    _entitled_symbols: dict[tuple[str, bool], Entitlement] = field(default_factory=dict)  # (symbol, options)

    # --- instruments ---------------------------------------------------------------
    def underlying(self, symbol: str) -> FakeContract:
        contract = self._underlyings.get(symbol)
        if contract is None:
            contract = make_underlying(symbol, self.currency)
            self._register(contract)
            self._underlyings[symbol] = contract
        return contract

    def option(self, underlying: str, expiry: date, strike: Price, right: str,
               trading_class: str | None = None) -> FakeContract:
        contract = make_option(self.underlying(underlying), expiry, to_decimal(strike), right,
                               trading_class)
        return self.contracts.get(contract.con_id) or self._register(contract)

    def add_chain(self, underlying: str, expiries: Iterable[date], strikes: Iterable[Price],
                  trading_class: str | None = None) -> list[FakeContract]:
        """Every call and put of expiries x strikes becomes a known contract."""
        return [self.option(underlying, expiry, strike, right, trading_class)
                for expiry in expiries for strike in strikes for right in ("C", "P")]

    def _register(self, contract: FakeContract) -> FakeContract:
        clash = self.contracts.get(contract.con_id)
        if clash is not None and clash != contract:
            raise ValueError(f"con_id_collision: {contract.con_id} for {clash.local_symbol} and {contract.local_symbol}")
        self.contracts[contract.con_id] = contract
        return contract

    # --- quotes --------------------------------------------------------------------
    def set_stock(self, symbol: str, bid: Price | None, ask: Price | None, last: Price | None = None,
                  bid_size: int = 100, ask_size: int = 100, close: Price | None = None) -> FakeContract:
        """Quote an underlying; index symbols (VIX, SPX, ...) are served as CBOE indices."""
        contract = self.underlying(symbol)
        self._set(contract, FakeQuote(bid=to_decimal(bid), ask=to_decimal(ask), last=to_decimal(last),
                                      bid_size=bid_size, ask_size=ask_size, close=to_decimal(close)))
        return contract

    def set_index(self, symbol: str, last: Price, close: Price | None = None) -> FakeContract:
        contract = self.underlying(symbol)
        self._set(contract, FakeQuote(last=to_decimal(last), close=to_decimal(close)))
        return contract

    def set_option(self, underlying: str, expiry: date, strike: Price, right: str,
                   bid: Price | None, ask: Price | None, bid_size: int = 10, ask_size: int = 10,
                   open_interest: int | None = None, delta: Price | None = None,
                   gamma: Price | None = None, iv: Price | None = None, last: Price | None = None,
                   vega: Price | None = None, theta: Price | None = None) -> FakeContract:
        contract = self.option(underlying, expiry, strike, right)
        self._set(contract, FakeQuote(
            bid=to_decimal(bid), ask=to_decimal(ask), last=to_decimal(last), bid_size=bid_size,
            ask_size=ask_size, open_interest=open_interest, delta=to_decimal(delta),
            gamma=to_decimal(gamma), iv=to_decimal(iv), vega=to_decimal(vega), theta=to_decimal(theta)))
        return contract

    def _set(self, contract: FakeContract, quote: FakeQuote) -> None:
        for size in (quote.bid_size, quote.ask_size):
            if size < 0:
                raise ValueError(f"bad_size: {size} for {contract.local_symbol}")
        self.quotes[contract.con_id] = quote
        self.liquidity[contract.con_id] = Liquidity(bid=quote.bid_size if quote.bid is not None else 0,
                                                    ask=quote.ask_size if quote.ask is not None else 0)
        if self.on_update is not None:
            self.on_update(contract)

    def quote(self, con_id: int) -> FakeQuote | None:
        return self.quotes.get(con_id)

    def mark(self, contract: FakeContract) -> Decimal | None:
        quote = self.quotes.get(contract.con_id)
        return quote.mid if quote else None

    # --- entitlements ---------------------------------------------------------------
    def entitle(self, target: str | FakeContract, *, live: bool = True, delayed: bool = True,
                options: bool = False) -> None:
        """What market data the account may have for `target` (every instrument may have all of it
        until told otherwise). A symbol means its underlying, or with `options=True` every option on
        it (an OPRA-like subscription); a FakeContract means that one instrument and wins over its
        symbol's. Checked when a request arrives: running subscriptions keep what they were given."""
        entitlement = Entitlement(live=live, delayed=delayed)
        if isinstance(target, FakeContract):
            if options:
                raise ValueError(f"bad_entitlement: options=True applies to a symbol, not {target.local_symbol}")
            self._entitled_contracts[target.con_id] = entitlement
        elif isinstance(target, str) and target.strip():
            self._entitled_symbols[(target.strip(), options)] = entitlement
        else:
            raise ValueError(f"bad_entitlement: target must be a symbol or a FakeContract, got {target!r}")

    def entitlement(self, contract: FakeContract) -> Entitlement:
        exact = self._entitled_contracts.get(contract.con_id)
        if exact is not None:
            return exact
        return self._entitled_symbols.get((contract.symbol, contract.is_option), FULL)

    # --- lookups -------------------------------------------------------------------
    def find(self, query: ContractQuery) -> list[FakeContract]:
        """Contracts matching every field the query sets (conId alone is decisive)."""
        if query.con_id:
            found = self.contracts.get(query.con_id)
            return [found] if found else []
        if not query.symbol and not query.local_symbol:
            return []
        return sorted((c for c in self.contracts.values() if _matches(c, query)),
                      key=lambda c: (c.expiry, c.strike, c.right))

    def find_underlying(self, symbol: str) -> FakeContract | None:
        return self._underlyings.get(symbol)

    def options_of(self, symbol: str) -> list[FakeContract]:
        return [c for c in self.contracts.values() if c.is_option and c.symbol == symbol]

    def open_interest_by_right(self, symbol: str) -> dict[str, int]:
        totals = {"C": 0, "P": 0}
        for contract in self.options_of(symbol):
            quote = self.quotes.get(contract.con_id)
            if quote and quote.open_interest:
                totals[contract.right] += quote.open_interest
        return totals


def _matches(c: FakeContract, q: ContractQuery) -> bool:
    if q.symbol and q.symbol != c.symbol:
        return False
    if q.local_symbol and q.local_symbol != c.local_symbol:
        return False
    if q.sec_type and q.sec_type != c.sec_type:
        return False
    if q.currency and q.currency != c.currency:
        return False
    if q.exchange and q.exchange not in (c.exchange, c.primary_exchange, c.venue):
        return False
    if q.trading_class and q.trading_class != c.trading_class:
        return False
    if q.multiplier and c.multiplier and Decimal(q.multiplier) != Decimal(c.multiplier):
        return False
    if q.expiry and not c.expiry.startswith(q.expiry):
        return False
    if q.strike and q.strike != c.strike:
        return False
    return not (q.right and normalize_right(q.right) not in ("", "?") and normalize_right(q.right) != c.right)
