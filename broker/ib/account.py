"""Which IB account tradingd may trade (paper unless configured live), and its snapshot. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Protocol

from broker.base import BrokerError
from broker.ib.paper import PAPER_PREFIXES, is_paper
from market.types import AccountSnapshot
from config.models import IBConfig


class AccountValueLike(Protocol):
    account: str
    tag: str
    value: str
    currency: str


def check_account(accounts: Sequence[str], cfg: IBConfig) -> str:
    """The account to trade, or BrokerError: a live account needs `ib.live = true` and `ib.account` naming it."""
    if not accounts:
        raise BrokerError("no_account", "the gateway reported no managed account")
    if cfg.account:
        if cfg.account not in accounts:
            raise BrokerError("account_not_found",
                              f"ib.account {cfg.account!r} is not among the gateway's accounts {list(accounts)}")
        account = cfg.account
    elif len(accounts) > 1:
        raise BrokerError("account_ambiguous",
                          f"the gateway manages several accounts {list(accounts)}; set ib.account to one of them")
    else:
        account = accounts[0]
    if is_paper(account) or (cfg.live and cfg.account == account):
        return account
    raise BrokerError(
        "live_account_refused",
        f"account {account} is a live account (paper accounts are {' or '.join(PAPER_PREFIXES)} followed by digits); "
        f"refusing to start. To trade it live set ib.live = true and ib.account = \"{account}\"",
    )


_TAGS = {"NetLiquidation": "net_liquidation", "BuyingPower": "buying_power", "TotalCashValue": "cash"}


def snapshot_from_values(account: str, values: Iterable[AccountValueLike],
                         server_version: int | None) -> AccountSnapshot:
    """Net liquidation, buying power and cash in the account's base currency (the currency IB reports them in)."""
    found: dict[str, Decimal] = {}
    currency = ""
    for v in values:
        field = _TAGS.get(v.tag)
        if field is None or v.account not in (account, "") or v.currency in ("", "BASE"):
            continue
        try:
            found[field] = Decimal(v.value)
        except InvalidOperation:
            raise BrokerError("bad_account_value", f"{v.tag} = {v.value!r} is not a number") from None
        if v.tag == "NetLiquidation":
            currency = v.currency
    missing = sorted(set(_TAGS.values()) - set(found))
    if missing:
        raise BrokerError("account_values_missing", f"the gateway did not report {', '.join(missing)} for {account}")
    return AccountSnapshot(account_id=account, currency=currency, net_liquidation=found["net_liquidation"],
                           buying_power=found["buying_power"], cash=found["cash"], paper=is_paper(account),
                           server_version=server_version)
