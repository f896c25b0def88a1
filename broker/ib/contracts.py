"""Our contract keys <-> IB contracts: qualification (cached by key) and option chains.

A key is an underlying symbol (`SPY`, `VIX`) or an `OptionContract.key`
(`SPY 20190211 C 270`). Index symbols (the profile's VIX) are IB indices; everything
else is a stock routed SMART.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from ib_async import IB, ComboLeg, Contract, Index, Option, Stock

from broker.base import BrokerError
from market.types import ComboLeg as Leg
from market.types import OptionChain, OptionContract

SMART = "SMART"
BAG = "BAG"
INDEX_EXCHANGE = "CBOE"  # where VIX (the only index a profile streams) is listed
Within = Callable[[Awaitable[Any]], Awaitable[Any]]
Pace = Callable[[], Awaitable[None]]


def is_option_key(key: str) -> bool:
    return " " in key


def unqualified(key: str, *, currency: str, multiplier: int, index_symbols: frozenset[str]) -> Contract:
    """The IB contract a key names, before qualification fills in conId and the rest."""
    if is_option_key(key):
        try:
            opt = OptionContract.from_key(key, multiplier)
        except ValueError:
            raise BrokerError("bad_key", f"not a contract key: {key!r} (want `SYM YYYYMMDD C|P STRIKE`)") from None
        return ib_option(opt, currency)
    if not key or not key.isascii() or not key.replace(".", "").isalnum():
        raise BrokerError("bad_key", f"not a symbol: {key!r}")
    if key in index_symbols:
        return Index(key, INDEX_EXCHANGE, currency)
    return Stock(key, SMART, currency)


def ib_option(opt: OptionContract, currency: str) -> Contract:
    if opt.con_id:
        return Contract(conId=opt.con_id, secType="OPT", exchange=opt.exchange or SMART, currency=currency)
    return Option(opt.underlying, f"{opt.expiry:%Y%m%d}", float(opt.strike), opt.right, opt.exchange or SMART,
                  str(opt.multiplier), currency, tradingClass=opt.trading_class or "")


def ib_combo(underlying: str, legs: Iterable[tuple[int, Leg]], currency: str) -> Contract:
    """An IB combo (secType BAG) over qualified legs (conId, leg): each leg's side is its side when the combo
    is bought, as in IB's own convention, so the same contract serves the opening BUY and the closing SELL.
    SMART-routed US option-vs-option combos are guaranteed by IB (no NonGuaranteed tag is sent): IB fills every
    leg of a unit or none, never one leg alone (ibkr.info article 1323)."""
    return Contract(secType=BAG, symbol=underlying, currency=currency, exchange=SMART,
                    comboLegs=[ComboLeg(conId=con_id, ratio=leg.ratio, action=leg.side, exchange=SMART)
                               for con_id, leg in legs])


def option_from_ib(c: Contract, default_multiplier: int) -> OptionContract | None:
    """Our OptionContract for an IB option contract; None for anything that is not a plain option."""
    if c.secType != "OPT" or not c.lastTradeDateOrContractMonth or not c.right:
        return None
    expiry = datetime.strptime(c.lastTradeDateOrContractMonth[:8], "%Y%m%d").date()
    return OptionContract(
        underlying=c.symbol, expiry=expiry, strike=plain_decimal(c.strike), right=c.right[0].upper(),  # type: ignore[arg-type]
        multiplier=int(c.multiplier or default_multiplier), con_id=c.conId or None, exchange=SMART,
        trading_class=c.tradingClass or None,
    )


def key_of(c: Contract, default_multiplier: int) -> str | None:
    if c.secType == "OPT":
        opt = option_from_ib(c, default_multiplier)
        return opt.key if opt else None
    return c.symbol or None


class ContractBook:
    def __init__(self, ib: IB, *, currency: str, multiplier: int, index_symbols: Iterable[str],
                 pace: Pace, within: Within, expiry_days: int = 10):
        self.ib = ib
        self.expiry_days = expiry_days  # expiries this close get their own strikes asked for
        self.currency = currency
        self.multiplier = multiplier
        self.index_symbols = frozenset(index_symbols)
        self._pace = pace
        self._within = within
        self._by_key: dict[str, Contract] = {}
        self._key_by_con_id: dict[int, str] = {}
        self._chains: dict[str, tuple[date, OptionChain]] = {}

    def key_for(self, c: Contract) -> str | None:
        return self._key_by_con_id.get(c.conId) or key_of(c, self.multiplier)

    def cached(self, key: str) -> Contract | None:
        return self._by_key.get(key)

    async def qualify(self, key: str) -> Contract:
        """The qualified IB contract (conId known) for a key; BrokerError `200` when IB knows none."""
        found = self._by_key.get(key)
        if found is not None:
            return found
        contract = unqualified(key, currency=self.currency, multiplier=self.multiplier,
                               index_symbols=self.index_symbols)
        await self._pace()
        result = await self._within(self.ib.qualifyContractsAsync(contract))
        qualified = result[0] if result else None
        if not isinstance(qualified, Contract) or not qualified.conId:
            raise BrokerError("200", f"IB has no (or no unique) contract for {key}")
        self._by_key[key] = qualified
        self._key_by_con_id[qualified.conId] = key
        return qualified

    async def qualify_option(self, opt: OptionContract) -> Contract:
        return await self.qualify(opt.key)

    async def combo(self, legs: Iterable[Leg]) -> Contract:
        """The BAG contract for `legs`, every leg qualified first (IB needs each leg's conId)."""
        legs = tuple(legs)
        qualified = [(await self.qualify(leg.contract.key)).conId for leg in legs]
        return ib_combo(legs[0].contract.underlying, zip(qualified, legs), self.currency)

    async def option_by_con_id(self, con_id: int) -> OptionContract | None:
        """The option IB lists under `con_id` (a combo leg IB reported back); cached; None when IB knows none."""
        key = self._key_by_con_id.get(con_id)
        if key is None:
            await self._pace()
            try:
                details = await self._within(self.ib.reqContractDetailsAsync(Contract(conId=con_id)))
            except BrokerError:
                return None
            found = [d.contract for d in details or [] if d.contract is not None and d.contract.conId == con_id]
            if len(found) != 1 or option_from_ib(found[0], self.multiplier) is None:
                return None
            key = key_of(found[0], self.multiplier)
            if key is None:
                return None
            self._by_key.setdefault(key, found[0])
            self._key_by_con_id[con_id] = key
        opt = OptionContract.from_key(key, self.multiplier)
        return OptionContract(opt.underlying, opt.expiry, opt.strike, opt.right, opt.multiplier, con_id=con_id)

    async def chain(self, underlying: str, day: date, *, refresh: bool = False) -> OptionChain:
        """Expiries and strikes listed for `underlying` (SMART, its own trading class), cached for `day`
        (listings change overnight: a new weekly, an expired one gone)."""
        cached = self._chains.get(underlying)
        if not refresh and cached is not None and cached[0] == day:
            return cached[1]
        und = await self.qualify(underlying)
        await self._pace()
        params = await self._within(self.ib.reqSecDefOptParamsAsync(und.symbol, "", und.secType, und.conId))
        if not params:
            raise BrokerError("no_chain", f"IB lists no options for {underlying}")
        smart = [p for p in params if p.exchange == SMART] or list(params)
        own = [p for p in smart if p.tradingClass == underlying] or smart
        expiries = sorted({_date(e) for p in own for e in p.expirations})
        strikes = sorted({plain_decimal(s) for p in own for s in p.strikes})
        multiplier = int(own[0].multiplier or self.multiplier)
        trading_class = own[0].tradingClass or underlying
        # IB's option parameters list the union of strikes over all expiries; real chains are uneven, so the
        # expiries a profile can trade soon are asked for their own strikes (one contract-details request each).
        by_expiry = []
        for expiry in expiries:
            if (expiry - day).days > self.expiry_days:
                break
            listed = await self._expiry_strikes(und, expiry, trading_class)
            if listed:
                by_expiry.append((expiry, listed))
        chain = OptionChain(underlying, tuple(expiries), tuple(strikes), multiplier, tuple(by_expiry))
        self._chains[underlying] = (day, chain)
        return chain


    async def _expiry_strikes(self, und: Contract, expiry: date, trading_class: str) -> tuple[Decimal, ...]:
        """The strikes IB lists for one expiry (calls; puts share them); () when IB does not answer."""
        query = Option(und.symbol, f"{expiry:%Y%m%d}", 0.0, "C", SMART, "", self.currency, tradingClass=trading_class)
        await self._pace()
        try:
            details = await self._within(self.ib.reqContractDetailsAsync(query))
        except BrokerError:
            return ()
        return tuple(sorted({plain_decimal(d.contract.strike) for d in details or [] if d.contract is not None}))


def plain_decimal(x: float) -> Decimal:
    """A float from the wire as the Decimal a person would write: 470.0 -> 470, 2.50 -> 2.5 (never 4.7E+2)."""
    d = Decimal(str(x))
    return d.quantize(Decimal(1)) if d == d.to_integral_value() else d.normalize()


def _date(text: str) -> date:
    return datetime.strptime(text[:8], "%Y%m%d").date()
