"""Protective stops (SPEC §6.1): each open position's hard stop also rests at the broker.

A SELL STP order per position, so a dead daemon still has a floor. The core's stop desk
(`daemon/core/stops.py`) decides each stop (place, change in place, cancel; the price only
ratchets up; the quantity is the open quantity less any working exit); the live shell's effect
lane carries the changes out (`daemon/live_effects.py`: with IB, a change is believed only once
the gateway confirms it). orderRef = `<prefix>:<profile>:stop-<position id>:<n>`, so a restart
finds the stops again. Broker-agnostic: any `Broker` that takes STP orders (IB, sim).
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal

STOP_SOURCE = "stop-"
# Broker errors that say nothing about the order (the change never reached the broker, or no answer came);
# any other error on a change is a refusal: the broker's truth.
UNANSWERED = frozenset({"not_connected", "timeout", "unknown_order", "bad_order"})


def stop_price(entry_price: Decimal, hard_stop_pct: Decimal, tick: Decimal) -> Decimal:
    """entry x (1 + hard_stop_pct), rounded down to the tick: the broker's floor never fires before the daemon's own stop."""
    raw = entry_price * (1 + hard_stop_pct)
    price = (raw / tick).to_integral_value(rounding=ROUND_FLOOR) * tick
    return max(price, tick)
