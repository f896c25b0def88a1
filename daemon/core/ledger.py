"""A fill applied to a position in memory, with the store's own arithmetic (`ops_positions.apply_to_position`).

The core decides on these values at once; the store, replaying the same `apply_fill` record,
computes the same row (same quantization, same averaging), so memory and database agree.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from daemon.store.records import FillRecord, PositionRecord
from daemon.store.types import quantize_money
from market.types import Fill, OptionContract


def new_position(position_id: int, contract: OptionContract, opened_at, signal_id: str | None) -> PositionRecord:  # type: ignore[no-untyped-def]
    return PositionRecord(id=position_id, underlying=contract.underlying, contract_key=contract.key,
                          expiry=contract.expiry, strike=contract.strike, right=contract.right,
                          multiplier=contract.multiplier, entry_time=opened_at, entry_price=quantize_money(0),
                          original_qty=0, open_qty=0, realized_pnl=quantize_money(0), status="open",
                          opened_by_signal_id=signal_id, closed_at=None, close_reason=None)


def apply_fill(record: PositionRecord | None, fill: Fill,
               contract_key: str | None = None) -> tuple[PositionRecord | None, FillRecord, int]:
    """(the position after, the fill as recorded, contracts sold beyond the open quantity).
    `contract_key`: a combo's (its units' fill carries the first leg's contract)."""
    commission = quantize_money(fill.commission)
    realized, unmatched, after = -commission, 0, record
    if record is not None:
        if fill.side == "BUY":
            total = record.open_qty + fill.quantity
            after = replace(record, entry_price=quantize_money((record.entry_price * record.open_qty
                                                                + fill.price * fill.quantity) / total),
                            entry_time=fill.at if record.original_qty == 0 else record.entry_time,
                            original_qty=record.original_qty + fill.quantity, open_qty=total,
                            status="open", closed_at=None, close_reason=None,
                            realized_pnl=record.realized_pnl + realized)
        else:
            matched = min(fill.quantity, record.open_qty)
            unmatched = fill.quantity - matched
            realized += quantize_money((fill.price - record.entry_price) * matched * record.multiplier)
            open_qty = record.open_qty - matched
            closes = open_qty == 0 and record.original_qty > 0 and record.status == "open"
            after = replace(record, open_qty=open_qty, realized_pnl=record.realized_pnl + realized,
                            status="closed" if closes else record.status,
                            closed_at=fill.at if closes else record.closed_at,
                            close_reason="filled" if closes else record.close_reason)
    recorded = FillRecord(exec_id=fill.exec_id, order_id=fill.order_id, order_ref=fill.order_ref,
                          contract_key=contract_key or fill.contract.key, side=fill.side, quantity=fill.quantity, price=fill.price,
                          commission=commission, at=fill.at, position_id=None if record is None else record.id,
                          realized_pnl=realized)
    return after, recorded, unmatched


def settle_record(record: PositionRecord, price: Decimal, at, reason: str) -> tuple[PositionRecord, Decimal]:  # type: ignore[no-untyped-def]
    """(the position after, what it realized): every open contract closed at `price` without a fill,
    with the store's own arithmetic (`ops_positions.close_position` with an `exit_price`)."""
    realized = quantize_money((price - record.entry_price) * record.open_qty * record.multiplier)
    return replace(record, open_qty=0, realized_pnl=record.realized_pnl + realized, status="closed",
                   closed_at=record.closed_at or at, close_reason=reason), realized


ZERO = Decimal(0)
