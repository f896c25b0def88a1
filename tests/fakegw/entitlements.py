"""Market data entitlements: what TWS serves a reqMktData given the account's subscriptions.

TWS semantics (IB's "Market Data Types" and message-code pages, and what clients report):
- Live (1) and frozen (2) need the live subscription; without it the request fails with 354.
- Delayed (3) and delayed-frozen (4) are "live when subscribed, delayed otherwise": a subscribed
  instrument streams live and TWS announces type 1; an unsubscribed one with delayed data
  enabled gets notice 10167, type 3 and the delayed tick types (66..76, greeks 83); with
  delayed data not enabled either it fails with 10168.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.fakegw.contracts import FakeContract

LIVE, FROZEN, DELAYED, DELAYED_FROZEN = 1, 2, 3, 4
NOT_SUBSCRIBED, DISPLAYING_DELAYED, DELAYED_NOT_ENABLED = 354, 10167, 10168


@dataclass(frozen=True, slots=True)
class Entitlement:
    live: bool = True
    delayed: bool = True


FULL = Entitlement()


@dataclass(frozen=True, slots=True)
class Grant:
    """TWS's answer to one reqMktData: the type it announces (None: none, or refused) and the
    error or notice it sends for that reqId first (None: nothing)."""

    data_type: int | None
    notice: tuple[int, str] | None = None

    @property
    def refused(self) -> bool:
        return self.data_type is None and self.notice is not None

    @property
    def delayed(self) -> bool:
        return self.data_type in (DELAYED, DELAYED_FROZEN)


def grant(requested: int | None, entitlement: Entitlement, contract: FakeContract) -> Grant:
    """What TWS does for a request made under market data type `requested` (None: never set)."""
    wants_delayed = requested in (DELAYED, DELAYED_FROZEN)
    if entitlement.live:
        # Live data wins over delayed whenever it is there; a client that never chose a type
        # hears nothing about it (as this fake has always answered).
        return Grant(LIVE if wants_delayed else requested)
    if not wants_delayed:
        return Grant(None, (NOT_SUBSCRIBED, not_subscribed_text(contract, entitlement.delayed)))
    if not entitlement.delayed:
        return Grant(None, (DELAYED_NOT_ENABLED,
                            "Requested market data is not subscribed. Delayed market data is not enabled."))
    # The fake's market is always open, so delayed-frozen streams delayed too (TWS reports 3).
    return Grant(DELAYED, (DISPLAYING_DELAYED,
                           "Requested market data is not subscribed. Displaying delayed market data."))


def not_subscribed_text(contract: FakeContract, delayed_available: bool) -> str:
    """354's text as TWS words it, naming the missing feed (shape copied from a real STK request)."""
    feed = f"BEST/{contract.sec_type}/Top"
    hint = "Delayed market data is available." if delayed_available else ""
    return f"Requested market data is not subscribed.{hint}Error&{feed}&{feed}"
