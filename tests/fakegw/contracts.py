"""Instruments the fake gateway knows, with stable conIds, and how each message lays them out."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from tests.fakegw.wire import Field, jdouble

# Symbols served as CBOE indices (secType IND) rather than stocks.
INDEX_SYMBOLS = frozenset({"VIX", "VIX9D", "VVIX", "SPX", "NDX", "RUT", "XSP"})
STOCK_PRIMARY_EXCHANGE = {"SPY": "ARCA", "QQQ": "NASDAQ", "IWM": "ARCA", "DIA": "ARCA"}
OPTION_EXCHANGE = "CBOE"
# TWS reports every SMART-routed combo (secType BAG) under this one generic conId; the legs say what it is.
BAG_CON_ID = 28812380
CON_ID_SPACE = 900_000_000  # keeps derived conIds positive and within Java int range


def derive_con_id(key: str) -> int:
    """The same instrument gets the same conId in every run (CRC of its identity)."""
    return zlib.crc32(key.encode()) % CON_ID_SPACE + 1_000


def normalize_right(right: str) -> str:
    return {"CALL": "C", "PUT": "P"}.get(right.upper(), right.upper())


def occ_symbol(symbol: str, expiry: date, right: str, strike: Decimal) -> str:
    """OCC option symbol, as TWS shows an option's localSymbol: `SPY   240119C00470000`."""
    return f"{symbol:<6}{expiry:%y%m%d}{right}{int(strike * 1000):08d}"


@dataclass(frozen=True, slots=True)
class FakeContract:
    con_id: int
    symbol: str
    sec_type: str  # STK, IND or OPT
    expiry: str = ""  # YYYYMMDD for options
    strike: Decimal = Decimal(0)
    right: str = ""  # C or P for options
    multiplier: str = ""
    exchange: str = "SMART"
    primary_exchange: str = ""
    currency: str = "USD"
    local_symbol: str = ""
    trading_class: str = ""
    underlying_con_id: int = 0
    min_tick: Decimal = Decimal("0.01")
    legs: tuple[FakeLeg, ...] = ()  # a combo's (secType BAG) legs, as its placeOrder named them

    @property
    def is_option(self) -> bool:
        return self.sec_type == "OPT"

    @property
    def is_combo(self) -> bool:
        return self.sec_type == "BAG"

    @property
    def combo_legs_descrip(self) -> str:
        """openOrder's comboLegsDescrip: `conId|ratio` per leg, comma-separated."""
        return ",".join(f"{leg.contract.con_id}|{leg.ratio}" for leg in self.legs)

    @property
    def contract_multiplier(self) -> Decimal:
        return Decimal(self.multiplier) if self.multiplier else Decimal(1)

    @property
    def venue(self) -> str:
        """Where fills of this instrument are reported to have happened."""
        return OPTION_EXCHANGE if self.is_option else (self.primary_exchange or self.exchange)

    # Field layouts. TWS writes a non-option's strike as `0`; options get Java doubles.
    def _strike(self) -> str:
        return jdouble(self.strike) if self.is_option else "0"

    def leg_fields(self) -> list[Field]:
        """The combo legs block of openOrder / completedOrder: count, then 8 fields per leg."""
        out: list[Field] = [len(self.legs)]
        for leg in self.legs:
            out += [leg.contract.con_id, leg.ratio, leg.action, leg.exchange, 0, 0, "", -1]
        return out

    def order_fields(self) -> list[Field]:
        """openOrder layout; TWS marks a non-option's right as `?` there."""
        return [self.con_id, self.symbol, self.sec_type, self.expiry, self._strike(),
                self.right or "?", self.multiplier, self.exchange, self.currency,
                self.local_symbol, self.trading_class]

    def execution_fields(self) -> list[Field]:
        """execDetails layout: the exchange is the venue of the fill."""
        return [self.con_id, self.symbol, self.sec_type, self.expiry, self._strike(),
                self.right, self.multiplier, self.venue if self.is_option else self.exchange,
                self.currency, self.local_symbol, self.trading_class]

    def position_fields(self) -> list[Field]:
        """position layout: a stock shows its listing exchange, an option none."""
        return [self.con_id, self.symbol, self.sec_type, self.expiry, self._strike(),
                self.right, self.multiplier, self.primary_exchange, self.currency,
                self.local_symbol, self.trading_class]

    def portfolio_fields(self) -> list[Field]:
        """updatePortfolio layout (primary exchange in place of exchange)."""
        return [self.con_id, self.symbol, self.sec_type, self.expiry, self._strike(),
                self.right, self.multiplier, self.primary_exchange, self.currency,
                self.local_symbol, self.trading_class]


@dataclass(frozen=True, slots=True)
class FakeLeg:
    """One leg of a combo: `action` is the leg's side when the combo is bought (IB's convention)."""

    contract: FakeContract
    ratio: int
    action: str
    exchange: str = "SMART"

    def action_for(self, combo_action: str) -> str:
        """The side this leg trades when the combo is traded `combo_action` (a sell reverses every leg)."""
        if combo_action == "BUY":
            return self.action
        return "SELL" if self.action == "BUY" else "BUY"


def make_bag(symbol: str, legs: tuple[FakeLeg, ...], currency: str = "USD") -> FakeContract:
    """A SMART option combo as TWS reports it back: the generic BAG conId, the symbol, the legs."""
    return FakeContract(con_id=BAG_CON_ID, symbol=symbol, sec_type="BAG", exchange="SMART",
                        currency=currency, local_symbol="", trading_class="", legs=legs)


def make_underlying(symbol: str, currency: str = "USD") -> FakeContract:
    if symbol in INDEX_SYMBOLS:
        return FakeContract(con_id=derive_con_id(f"IND:{symbol}"), symbol=symbol, sec_type="IND",
                            exchange="CBOE", primary_exchange="", currency=currency,
                            local_symbol=symbol, trading_class=symbol)
    return FakeContract(con_id=derive_con_id(f"STK:{symbol}"), symbol=symbol, sec_type="STK",
                        exchange="SMART", primary_exchange=STOCK_PRIMARY_EXCHANGE.get(symbol, "NASDAQ"),
                        currency=currency, local_symbol=symbol, trading_class=symbol)


def make_option(underlying: FakeContract, expiry: date, strike: Decimal, right: str,
                trading_class: str | None = None, multiplier: int = 100) -> FakeContract:
    right = normalize_right(right)
    if right not in ("C", "P"):
        raise ValueError(f"bad_right: {right!r} (want C or P)")
    strike = Decimal(strike)
    key = f"OPT:{underlying.symbol}:{expiry:%Y%m%d}:{right}:{strike.normalize():f}"
    return FakeContract(con_id=derive_con_id(key), symbol=underlying.symbol, sec_type="OPT",
                        expiry=f"{expiry:%Y%m%d}", strike=strike, right=right,
                        multiplier=str(multiplier), exchange="SMART", primary_exchange="",
                        currency=underlying.currency,
                        local_symbol=occ_symbol(underlying.symbol, expiry, right, strike),
                        trading_class=trading_class or underlying.symbol,
                        underlying_con_id=underlying.con_id)
