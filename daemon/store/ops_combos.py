"""Combo positions (SPEC §9): their legs and value offset, and the per-leg executions of their orders.

A combo position is one `positions` row (key: the combo's, prices in its value space: market.combo)
plus one `combo_positions` row with its legs. Its orders fill per leg; each leg execution is kept in
`combo_leg_fills` exactly once (by exec id), the whole units they make up go to `fills` as usual.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from daemon.store.errors import StoreError
from daemon.store.models import ComboLegFillRow, ComboPositionRow, PositionRow
from daemon.store.ops_positions import position_row
from daemon.store.types import quantize_money
from market.combo import Combo
from market.types import Fill, OptionContract


def record_combo(session: Session, profile: str, position_id: int, combo: dict[str, Any]) -> None:
    """Attach a combo's legs to its position (opened just before); the position takes the combo's key."""
    try:
        parsed = Combo.from_record(combo)
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise StoreError(f"combo of position {position_id}: {exc}", "bad_combo") from None
    row = position_row(session, profile, position_id)
    row.contract_key = parsed.key
    existing = session.get(ComboPositionRow, position_id)
    if existing is not None:
        return  # written once: a replayed record changes nothing
    session.add(ComboPositionRow(position_id=position_id, profile=profile, strategy=parsed.strategy,
                                 structure=parsed.structure, value_offset=parsed.value_offset,
                                 legs={"legs": parsed.to_record()["legs"]}))


def record_leg_fill(session: Session, profile: str, fill: Fill, position_id: int | None = None) -> bool:
    """One leg execution, stored once (False: seen before)."""
    if session.get(ComboLegFillRow, fill.exec_id) is not None:
        return False
    session.add(ComboLegFillRow(exec_id=fill.exec_id, profile=profile, order_id=fill.order_id,
                                order_ref=fill.order_ref, position_id=position_id, contract_key=fill.contract.key,
                                side=fill.side, quantity=fill.quantity, price=fill.price,
                                commission=quantize_money(fill.commission), at=fill.at))
    return True


def load_combos(session: Session, profile: str) -> dict[int, dict[str, Any]]:
    """The combo of every open position that is one: position id -> `Combo.to_record()`."""
    rows = session.execute(select(ComboPositionRow).join(PositionRow, PositionRow.id == ComboPositionRow.position_id)
                           .where(ComboPositionRow.profile == profile, PositionRow.status == "open")).scalars()
    return {r.position_id: {"strategy": r.strategy, "structure": r.structure, "value_offset": str(r.value_offset),
                            "legs": list(r.legs["legs"])} for r in rows}


def open_leg_fills(session: Session, profile: str) -> tuple[tuple[int, Fill], ...]:
    """(position id, leg execution) of every open combo position, in the order they happened: the core
    folds them again at start-up, so units of an order half-filled before a restart count right."""
    rows = session.execute(select(ComboLegFillRow).join(PositionRow, PositionRow.id == ComboLegFillRow.position_id)
                           .where(ComboLegFillRow.profile == profile, PositionRow.status == "open")
                           .order_by(ComboLegFillRow.at, ComboLegFillRow.exec_id)).scalars()
    return tuple((r.position_id, Fill(r.exec_id, r.order_id, r.order_ref, OptionContract.from_key(r.contract_key),
                                      r.side, r.quantity, Decimal(r.price), r.at, Decimal(r.commission)))  # type: ignore[arg-type]
                 for r in rows)


def leg_fills(session: Session, profile: str, position_id: int) -> list[dict[str, Any]]:
    rows = session.execute(select(ComboLegFillRow).where(ComboLegFillRow.profile == profile,
                                                         ComboLegFillRow.position_id == position_id)
                           .order_by(ComboLegFillRow.at, ComboLegFillRow.exec_id)).scalars()
    return [{"exec_id": r.exec_id, "order_id": r.order_id, "contract": r.contract_key, "side": r.side,
             "quantity": r.quantity, "price": Decimal(r.price)} for r in rows]
