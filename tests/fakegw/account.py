"""The account behind the fake gateway: its value rows, positions and cash arithmetic.

Rows are kept in three lists because TWS answers the three account requests in three
different orders (and the summary also carries the `$LEDGER` rows under the group name).
Fills move cash, positions and the derived tags (net liquidation, buying power, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from tests.fakegw.contracts import FakeContract

CASH_TAGS = frozenset({"TotalCashValue", "CashBalance", "TotalCashBalance"})
NET_LIQ_TAGS = frozenset({"NetLiquidation", "NetLiquidationByCurrency", "EquityWithLoanValue"})
SUMMARY_TAGS = ("AccountType", "AvailableFunds", "BuyingPower", "EquityWithLoanValue",
                "ExcessLiquidity", "GrossPositionValue", "InitMarginReq", "MaintMarginReq",
                "NetLiquidation", "TotalCashValue")
LEDGER_TAGS = ("Currency", "CashBalance", "TotalCashBalance", "StockMarketValue",
               "OptionMarketValue", "NetLiquidationByCurrency", "UnrealizedPnL", "RealizedPnL")


def money(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01'))}"


@dataclass(slots=True)
class AccountRow:
    tag: str
    value: str
    currency: str
    account: str = ""  # only summary rows name their account ("All" for $LEDGER rows)


@dataclass(slots=True)
class FakePosition:
    contract: FakeContract
    qty: Decimal = Decimal(0)
    avg_cost: Decimal = Decimal(0)  # per contract, multiplier and commission included (as IB)
    realized_pnl: Decimal = Decimal(0)


@dataclass(slots=True)
class AccountBook:
    account: str
    currency: str
    cash: Decimal = Decimal(100_000)
    update_rows: list[AccountRow] = field(default_factory=list)
    multi_rows: list[AccountRow] = field(default_factory=list)
    summary_rows: list[AccountRow] = field(default_factory=list)
    positions: dict[int, FakePosition] = field(default_factory=dict)
    _base_cash: Decimal = Decimal(100_000)
    _base_buying_power: Decimal = Decimal(400_000)
    _other_assets: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        self.update_rows = self._default_rows()
        self.multi_rows = [AccountRow(r.tag, r.value, r.currency) for r in self.update_rows]
        self.summary_rows = self._default_summary()

    # --- configuration -------------------------------------------------------------
    def set_values(self, mark: Callable[[FakeContract], Decimal | None],
                   net_liquidation: Decimal | None = None, buying_power: Decimal | None = None,
                   cash: Decimal | None = None) -> None:
        if cash is not None:
            self.cash = self._base_cash = Decimal(cash)
        if buying_power is not None:
            self._base_buying_power = Decimal(buying_power) - (self.cash - self._base_cash)
        if net_liquidation is not None:
            self._other_assets = Decimal(net_liquidation) - self.cash - self.position_value(mark)
        self.revalue(mark)

    def load_rows(self, update_rows: Iterable[AccountRow], multi_rows: Iterable[AccountRow],
                  summary_rows: Iterable[AccountRow]) -> None:
        """Serve these rows verbatim (e.g. a recorded session's) until fills change them."""
        self.update_rows, self.multi_rows = list(update_rows), list(multi_rows)
        self.summary_rows = list(summary_rows)
        self.cash = self._base_cash = self._number("TotalCashValue", self.cash)
        self._base_buying_power = self._number("BuyingPower", self._base_buying_power)
        self._other_assets = self._number("NetLiquidation", self.cash) - self.cash

    def _number(self, tag: str, default: Decimal) -> Decimal:
        for row in self.update_rows:
            if row.tag == tag and row.currency == self.currency:
                return Decimal(row.value)
        return default

    # --- fills and valuation -------------------------------------------------------
    def apply_fill(self, contract: FakeContract, action: str, qty: Decimal, price: Decimal,
                   commission: Decimal) -> tuple[FakePosition, Decimal | None]:
        """Update cash and the position; returns it and the fill's realized P&L (None when opening)."""
        mult = contract.contract_multiplier
        signed = qty if action == "BUY" else -qty
        self.cash -= signed * price * mult + commission
        pos = self.positions.setdefault(contract.con_id, FakePosition(contract))
        realized: Decimal | None = None
        if pos.qty == 0 or (pos.qty > 0) == (signed > 0):
            cost = abs(pos.qty) * pos.avg_cost + qty * price * mult + commission
            pos.qty += signed
            pos.avg_cost = cost / abs(pos.qty)
        else:
            closing = min(qty, abs(pos.qty))
            direction = 1 if pos.qty > 0 else -1
            realized = (price * mult - pos.avg_cost) * closing * direction - commission
            pos.realized_pnl += realized
            pos.qty += signed
            opened = qty - closing
            if opened > 0:
                pos.avg_cost = price * mult
            elif pos.qty == 0:
                pos.avg_cost = Decimal(0)
        return pos, realized

    def market_value(self, pos: FakePosition, mark: Decimal | None) -> tuple[Decimal, Decimal]:
        """(market price, market value); unquoted positions are valued at cost."""
        mult = pos.contract.contract_multiplier
        price = mark if mark is not None else (pos.avg_cost / mult if mult else Decimal(0))
        return price, pos.qty * price * mult

    def position_value(self, mark: Callable[[FakeContract], Decimal | None]) -> Decimal:
        return sum((self.market_value(p, mark(p.contract))[1] for p in self.positions.values()), Decimal(0))

    def revalue(self, mark: Callable[[FakeContract], Decimal | None]) -> list[AccountRow]:
        """Recompute the derived tags; returns the update rows whose value changed."""
        values = {p.contract.con_id: self.market_value(p, mark(p.contract)) for p in self.positions.values()}
        options = sum((v for cid, (_, v) in values.items() if self.positions[cid].contract.is_option), Decimal(0))
        stocks = sum((v for _, v in values.values()), Decimal(0)) - options
        unrealized = sum((v - p.qty * p.avg_cost for p in self.positions.values()
                          for v in [values[p.contract.con_id][1]]), Decimal(0))
        net_liq = self.cash + options + stocks + self._other_assets
        derived = {tag: self.cash for tag in CASH_TAGS} | {tag: net_liq for tag in NET_LIQ_TAGS} | {
            "BuyingPower": self._base_buying_power + (self.cash - self._base_cash),
            "OptionMarketValue": options, "StockMarketValue": stocks,
            "GrossPositionValue": abs(options) + abs(stocks), "UnrealizedPnL": unrealized,
            "RealizedPnL": sum((p.realized_pnl for p in self.positions.values()), Decimal(0)),
        }
        changed = []
        for rows in (self.update_rows, self.multi_rows, self.summary_rows):
            for row in rows:
                if row.tag in derived and row.currency in (self.currency, "BASE"):
                    text = money(derived[row.tag])
                    if row.value != text:
                        row.value = text
                        if rows is self.update_rows:
                            changed.append(row)
        return changed

    def summary_for(self, tags: set[str]) -> list[AccountRow]:
        ledger = any(t.startswith("$LEDGER") for t in tags)
        return [r for r in self.summary_rows
                if r.tag in tags and r.account == self.account or (ledger and r.account != self.account)]

    # --- defaults ------------------------------------------------------------------
    def _default_rows(self) -> list[AccountRow]:
        ccy, zero = self.currency, money(Decimal(0))
        cash, bp = money(self.cash), money(self._base_buying_power)
        account_level = {
            "AccountCode": (self.account, ""), "AccountReady": ("true", ""),
            "AccountType": ("INDIVIDUAL", ""), "AvailableFunds": (cash, ccy), "BuyingPower": (bp, ccy),
            "EquityWithLoanValue": (cash, ccy), "ExcessLiquidity": (cash, ccy),
            "GrossPositionValue": (zero, ccy), "InitMarginReq": (zero, ccy),
            "MaintMarginReq": (zero, ccy), "NetLiquidation": (cash, ccy), "TotalCashValue": (cash, ccy),
        }
        per_currency = {"CashBalance": cash, "Currency": None, "NetLiquidationByCurrency": cash,
                        "OptionMarketValue": zero, "RealizedPnL": zero, "StockMarketValue": zero,
                        "TotalCashBalance": cash, "UnrealizedPnL": zero}
        rows = [AccountRow(tag, value, currency) for tag, (value, currency) in account_level.items()]
        for tag, value in per_currency.items():
            rows += [AccountRow(tag, value or c, c) for c in ("BASE", ccy)]
        return sorted(rows, key=lambda r: r.tag)

    def _default_summary(self) -> list[AccountRow]:
        by_tag = {r.tag: r for r in self.update_rows if r.currency in ("", self.currency)}
        rows = [AccountRow(t, by_tag[t].value, by_tag[t].currency, self.account)
                for t in SUMMARY_TAGS if t in by_tag]
        for ccy in (self.currency, "BASE"):
            rows += [AccountRow(r.tag, r.value, r.currency, "All") for tag in LEDGER_TAGS
                     for r in self.update_rows if r.tag == tag and r.currency == ccy]
        return rows
