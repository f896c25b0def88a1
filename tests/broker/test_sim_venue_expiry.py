"""Room expiry (SPEC §6.3): the sim venue settles its expired contracts as the exchange does."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

from broker.sim import starting_cash
from broker.sim_venue import SimAccountState, SimVenue
from broker.quotes import QuoteBook
from market.types import BrokerPosition, OrderRequest, OrderStatus, OrderUpdate
from tests.broker.helpers import T0, contract, settings

S = settings("0dte")
CLOSE = T0.replace(hour=16, minute=5)


def venue_holding(*held: tuple, cash: str = "10000") -> SimVenue:  # type: ignore[type-arg]
    venue = SimVenue(S.broker.sim, quotes=QuoteBook(), cash=starting_cash(S))
    venue.restore(SimAccountState(tuple(BrokerPosition(c, q, D(cost)) for c, q, cost in held), D(cash)))
    return venue


def test_an_expired_otm_option_leaves_the_account_worthless_and_an_itm_one_pays_its_intrinsic_value() -> None:
    otm, itm, later = contract("280", "C"), contract("270", "C"), contract("270", "C", expiry=T0.date() + timedelta(days=1))
    venue = venue_holding((otm, 3, "1.00"), (itm, 2, "1.50"), (later, 1, "2.00"))
    settled = venue.settle_expired(CLOSE, {"SPY": D("274.25")})
    assert {p.contract.key for p in settled} == {otm.key, itm.key}
    assert [p.contract for p in venue.positions()] == [later]  # tomorrow's stays
    assert venue.cash == D("10000") + D("4.25") * 2 * 100  # the OTM call pays nothing


def test_a_combo_settles_leg_by_leg_a_short_leg_pays() -> None:
    long_put, short_put = contract("270", "P"), contract("265", "P")
    venue = venue_holding((long_put, 1, "3.00"), (short_put, -1, "1.00"))
    venue.settle_expired(CLOSE, {"SPY": D("262")})  # both in the money: the spread is worth its width
    assert venue.positions() == [] and venue.cash == D("10000") + (D(8) - D(3)) * 100


def test_working_orders_on_an_expired_contract_are_cancelled() -> None:
    held = contract("280", "C")
    venue = venue_holding((held, 3, "1.00"))
    sell = OrderRequest(7, "tradingd:0dte:x1:1", held, "SELL", 3, "LMT", D("0.05"))
    venue.place(sell, T0)
    venue.advance(T0 + timedelta(seconds=1))
    venue.take_events()
    venue.settle_expired(CLOSE, {"SPY": D("270")})
    updates = [e for e in venue.take_events() if isinstance(e, OrderUpdate)]
    assert updates and updates[-1].order_id == 7 and updates[-1].status is OrderStatus.CANCELLED
    assert venue.open_orders() == [] and venue.positions() == []


def test_nothing_settles_before_its_expiry_day() -> None:
    venue = venue_holding((contract("270", "C"), 1, "1.00"))
    assert venue.settle_expired(CLOSE - timedelta(days=1), {"SPY": D("300")}) == []
    assert len(venue.positions()) == 1 and venue.cash == D("10000")
