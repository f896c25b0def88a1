"""Start-up and reconnect reconciliation of the store with any Broker (SPEC §6, §6.1).

Run after every (re)connect, before entries are accepted:

1. executions since the last one stored are applied exactly once (by exec id);
2. order intents are matched with the broker's open orders, by order id and then by
   orderRef; an intent the broker never saw is marked never-sent at start-up (order
   status CANCELLED, reason `never_sent`) and is not resent: the engine decides;
   an intent sent before but no longer open has ended while we could not see it;
3. broker open orders carrying our orderRef that the store does not know are reported
   and their ids remembered, so no id is ever reused;
4. positions: a broker position the store does not know is adopted only when an order
   for that contract carries our orderRef (an execution today or an open order such as
   its resting stop); any other difference is reported and its underlying blocked for
   entries until an operator acknowledges it;
5. combos (`reconcile_combos`): a BAG order's legs are held as separate positions; by orderRef they are
   one combo again, filled in whole units; a leg missing, extra or out of ratio blocks the underlying,
   and a combo is adopted whole or not at all.

Fills and order updates go through `apply_fill` / `on_update` (the engine passes its own
handlers so its in-memory state follows; the store's are the default). An `apply_fill` that
returns the store's FillOutcome lets the report tell new fills from known ones; one that
returns None has every fill counted as applied.
"""

from __future__ import annotations

import inspect
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

import structlog

from broker.base import Broker, BrokerError
from broker.order_ref import OrderRefError, parse_order_ref
from exits.settlement import is_expired
from market.calendar import session_for
from market.types import BrokerPosition, Fill, OpenOrder, OptionContract, OrderStatus, OrderUpdate
from daemon.reconcile_combos import ComboMismatch, combo_groups, leg_problems, stored_legs, units_filled
from daemon.store.records import FillOutcome, IntentRecord
from daemon.store.types import jsonable

if TYPE_CHECKING:
    from daemon.store import Store

log = structlog.get_logger(__name__)

Kind = Literal["startup", "reconnect"]
ApplyFill = Callable[[Fill], Awaitable["FillOutcome | None"]]  # None: applied, new or not unknown
OnUpdate = Callable[[OrderUpdate], Awaitable[Any]]

NEVER_SENT = "never_sent"
ENDED_UNSEEN = "ended_while_disconnected"
UNKNOWN_POSITION = "unknown_broker_position"
POSITION_MISMATCH = "position_mismatch"
CLIENT_ID_MOVED = "client_id_moved"
_UNSENT_STATE = "intent"


@dataclass(frozen=True, slots=True)
class AdoptedPosition:
    position_id: int
    contract_key: str
    quantity: int
    avg_cost: Decimal
    order_refs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class UnknownPosition:
    contract_key: str
    underlying: str
    quantity: int
    avg_cost: Decimal


@dataclass(frozen=True, slots=True)
class PositionMismatch:
    contract_key: str
    underlying: str
    store_quantity: int
    broker_quantity: int


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    profile: str
    kind: Kind
    at: datetime
    fills_applied: tuple[str, ...] = ()  # exec ids applied now
    fills_known: int = 0  # executions the store had already applied
    fills_foreign: int = 0  # executions of orders that are not ours (not applied)
    matched_orders: tuple[int, ...] = ()  # our intents working at the broker
    never_sent: tuple[int, ...] = ()
    ended_unseen: tuple[int, ...] = ()  # sent before, no longer open at the broker
    orphan_orders: tuple[int, ...] = ()  # open at the broker with our orderRef, unknown to the store
    adopted: tuple[AdoptedPosition, ...] = ()
    unknown_positions: tuple[UnknownPosition, ...] = ()
    mismatches: tuple[PositionMismatch, ...] = ()
    blocked: tuple[str, ...] = ()  # underlyings blocked for entries until acknowledged
    highest_order_id: int = 0
    incomplete: tuple[str, ...] = ()  # steps the broker did not answer in time (retried)
    fills_recovered: tuple[str, ...] = ()  # fills rebuilt from completed orders (made before midnight)
    combo_mismatches: tuple[ComboMismatch, ...] = ()  # combos whose legs at the broker are not whole

    @property
    def clean(self) -> bool:
        """Nothing an operator needs to look at."""
        return not (self.never_sent or self.orphan_orders or self.unknown_positions or self.mismatches
                    or self.incomplete or self.combo_mismatches)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = jsonable(self)
        data["clean"] = self.clean
        return data


class _Ours:
    def __init__(self, profile: str, prefix: str):
        self.profile, self.prefix = profile, prefix

    def __call__(self, order_ref: str | None) -> bool:
        if not order_ref:
            return False
        try:
            return parse_order_ref(order_ref, self.prefix).profile == self.profile
        except OrderRefError:
            return False


async def reconcile(broker: Broker, store: Store, *, profile: str, prefix: str, now: datetime,
                    kind: Kind = "startup", apply_fill: ApplyFill | None = None,
                    on_update: OnUpdate | None = None) -> ReconcileReport:
    """Bring the store in line with the broker; see the module docstring. Never sends an order."""
    ours = _Ours(profile, prefix)
    apply = apply_fill or store.apply_fill
    update = on_update or store.update_order
    # Intents first: an order sent before the broker is asked is in its answer (one socket, in order).
    snapshot = await store.load_snapshot()
    unanswered: list[str] = []
    open_orders = await _ask("open_orders", broker.open_orders, unanswered)
    executions = await _ask("executions", lambda: broker.executions(since=snapshot.last_execution_time), unanswered)
    broker_positions = await _ask("positions", broker.positions, unanswered)

    own_fills = [f for f in executions or [] if ours(f.order_ref)]
    applied, known = await _apply_fills(own_fills, apply)
    own_open = [o for o in open_orders or [] if ours(o.request.order_ref)]
    # IB reports the current day's executions only: a fill made while we were down across midnight is
    # found in the completed orders (filled quantity, no price) and applied from there, once.
    completed = (await _ask("completed_orders", broker.completed_orders, unanswered)  # type: ignore[attr-defined]
                 if broker.reports_completed_orders else [])
    recovered, completed_filled = await _fills_from_completed(completed or [], own_fills, ours, store, apply, now)
    own_fills = [*own_fills, *recovered]

    matched, never_sent, ended, orphans = [], [], [], []
    if open_orders is not None and executions is not None and completed is not None:  # judged on all answers
        intents = list(snapshot.pending_intents)
        matched, never_sent, ended, handled = await _match_intents(intents, own_open, own_fills, kind, now, update,
                                                                   completed_filled)
        for o in own_open:
            oid = o.request.order_id
            if oid not in handled and await store.find_intent(oid) is None:
                orphans.append(oid)

    # positions are compared only with all three answers: a missing fill or order would read as a mismatch
    adopted, unknown, mismatches, combos = ([], [], [], []) if unanswered else (
        await _positions(store, broker_positions, own_open, own_fills, now))
    blocked = []
    # Orders IB ties to a client id this session no longer has (IB 326 moved it): they can no longer be
    # changed or cancelled from here, so their underlyings take no new entries until an operator looks.
    # (IB's; a broker that reports completed orders is one that has client ids)
    for o in (broker.orders_of_other_clients(own_open)  # type: ignore[attr-defined]
              if broker.reports_completed_orders else ()):
        underlying = o.request.contract.underlying
        log.error("order_of_another_client", order_id=o.request.order_id, order_ref=o.request.order_ref,
                  underlying=underlying)
        await store.block_underlying(underlying, reason=CLIENT_ID_MOVED, at=now,
                                     detail={"order_id": o.request.order_id, "order_ref": o.request.order_ref})
        if underlying not in blocked:
            blocked.append(underlying)
    for item in (*unknown, *mismatches, *combos):
        reason = (UNKNOWN_POSITION if isinstance(item, UnknownPosition) else
                  item.reason if isinstance(item, ComboMismatch) else POSITION_MISMATCH)
        await store.block_underlying(item.underlying, reason=reason, at=now, detail=jsonable(item))
        if item.underlying not in blocked:
            blocked.append(item.underlying)

    highest = max([snapshot.highest_order_id, *(o.request.order_id for o in own_open),
                   *(f.order_id for f in own_fills)])
    if highest > snapshot.highest_order_id:
        await store.note_order_id(highest)

    report = ReconcileReport(
        profile=profile, kind=kind, at=now, fills_applied=tuple(applied), fills_known=known,
        fills_foreign=len(executions or []) - len(own_fills), matched_orders=tuple(matched),
        never_sent=tuple(never_sent), ended_unseen=tuple(ended), orphan_orders=tuple(orphans),
        adopted=tuple(adopted), unknown_positions=tuple(unknown), mismatches=tuple(mismatches),
        blocked=tuple(blocked), highest_order_id=highest, incomplete=tuple(unanswered),
        fills_recovered=tuple(f.exec_id for f in recovered), combo_mismatches=tuple(combos))
    (log.info if report.clean else log.warning)("reconciled", **_summary(report))
    return report


async def _fills_from_completed(completed: list[Any], own_fills: list[Fill], ours: _Ours, store: Store,
                                apply: ApplyFill, now: datetime) -> tuple[list[Fill], dict[int, int]]:
    """Fills IB no longer lists as executions, rebuilt from its completed orders: our order (by orderRef, its
    intent gives the order id and position), IB's filled quantity less what the store and today's executions
    already hold. IB gives no fill price there: the order's own price stands in (a limit fills at it or better;
    a stop about it), logged as estimated. The exec id is fixed per order, so a second pass adds nothing."""
    mine = [c for c in completed if ours(c.order_ref) and c.filled > 0]
    if not mine:
        return [], {}
    stored = await store.list_fills(limit=100_000)
    seen = {f.exec_id for f in stored}
    held: dict[int, int] = defaultdict(int)
    for f in stored:
        held[f.order_id] += f.quantity
    for f in own_fills:
        if f.exec_id not in seen:
            held[f.order_id] += f.quantity
    recovered: list[Fill] = []
    totals: dict[int, int] = {}
    for c in mine:
        intents = await store.intents_by_ref(c.order_ref)
        if not intents:
            continue  # not ours to apply: the orphan-order and position checks report it
        intent = intents[-1]
        totals[intent.order_id] = c.filled
        missing = c.filled - held[intent.order_id]
        price = c.price_estimate
        if missing <= 0 or price is None:
            continue
        fill = Fill(exec_id=f"completed-{c.perm_id}", order_id=intent.order_id, order_ref=c.order_ref,
                    contract=c.contract, side=c.side, quantity=missing, price=price, at=c.completed_at or now,
                    commission=Decimal(0))
        await apply(fill)
        recovered.append(fill)
        log.warning("fill_from_completed_order", order_id=intent.order_id, order_ref=c.order_ref,
                    contracts=missing, price=str(price), price_estimated=True, completed_at=str(c.completed_at),
                    perm_id=c.perm_id)
    return recovered, totals


async def _ask(step: str, call: Callable[[], Awaitable[Any]], unanswered: list[str]) -> Any:
    """One question to the broker; None when it timed out (some gateways never send an end marker). The rest
    of the reconciliation goes on without it (SPEC §6.1: never RECONCILING forever); the caller retries."""
    try:
        return await call()
    except BrokerError as exc:
        if exc.code != "timeout":
            raise
        unanswered.append(step)
        log.error("reconcile_step_unanswered", step=step, code=exc.code, error=str(exc))
        return None


async def _apply_fills(fills: list[Fill], apply: ApplyFill) -> tuple[list[str], int]:
    applied, known = [], 0
    for fill in sorted(fills, key=lambda f: (f.at, f.exec_id)):
        outcome = await apply(fill)
        if outcome is None or outcome.new:
            applied.append(fill.exec_id)
            if outcome is not None and outcome.unmatched_qty:
                log.warning("fill_beyond_open_quantity", exec_id=fill.exec_id, order_id=fill.order_id,
                            unmatched=outcome.unmatched_qty)
        else:
            known += 1
    return applied, known


async def _match_intents(intents: list[IntentRecord], own_open: list[OpenOrder], own_fills: list[Fill],
                         kind: Kind, now: datetime, update: OnUpdate, completed_filled: dict[int, int] | None = None,
                         ) -> tuple[list[int], list[int], list[int], set[int]]:
    by_id = {o.request.order_id: o for o in own_open}
    by_ref = {o.request.order_ref: o for o in own_open}
    by_order: dict[int, list[Fill]] = defaultdict(list)
    for f in own_fills:
        by_order[f.order_id].append(f)
    filled: dict[int, int] = defaultdict(int)  # in the order's units: whole combo units for a combo
    for order_id, fills in by_order.items():
        filled[order_id] = units_filled(fills)
    for order_id, total in (completed_filled or {}).items():  # IB's own total for an order it completed
        filled[order_id] = max(filled[order_id], total)
    matched: list[int] = []
    never_sent: list[int] = []
    ended: list[int] = []
    handled: set[int] = set()
    for intent in intents:
        at_broker = by_id.get(intent.order_id) or by_ref.get(intent.order_ref)
        if at_broker is not None:
            handled.add(at_broker.request.order_id)
            matched.append(intent.order_id)
            if at_broker.request.order_id == intent.order_id:
                await update(_status_update(intent, at_broker.status, at_broker.filled, now))
            continue
        done = filled.get(intent.order_id, 0)
        if done:
            status = OrderStatus.FILLED if done >= intent.quantity else OrderStatus.CANCELLED
            ended.append(intent.order_id)
            await update(_status_update(intent, status, done, now, None if status is OrderStatus.FILLED else ENDED_UNSEEN))
        elif intent.state == _UNSENT_STATE:
            if kind == "startup":  # on a reconnect the engine may be about to send it right now
                never_sent.append(intent.order_id)
                await update(_status_update(intent, OrderStatus.CANCELLED, 0, now, NEVER_SENT))
        else:
            ended.append(intent.order_id)
            await update(_status_update(intent, OrderStatus.CANCELLED, 0, now, ENDED_UNSEEN))
    return matched, never_sent, ended, handled


def _status_update(intent: IntentRecord, status: OrderStatus, filled: int, now: datetime,
                   reason: str | None = None) -> OrderUpdate:
    return OrderUpdate(order_id=intent.order_id, order_ref=intent.order_ref, status=status, filled=filled,
                       remaining=max(0, intent.quantity - filled), avg_fill_price=None, at=now, reason=reason)


def _expired(contract: OptionContract, now: datetime) -> bool:
    """Past its expiry's session close (SPEC §6.3): the exchange has settled it."""
    return is_expired(contract.expiry, now, session_for(contract.expiry))


async def _positions(store: Store, broker_positions: list[BrokerPosition], own_open: list[OpenOrder],
                     own_fills: list[Fill], now: datetime
                     ) -> tuple[list[AdoptedPosition], list[UnknownPosition], list[PositionMismatch], list[ComboMismatch]]:
    stored: dict[str, int] = defaultdict(int)
    underlying_of: dict[str, str] = {}
    for p in await store.load_open_positions():
        for key, qty in stored_legs(p.contract_key, p.open_qty, p.multiplier):  # a combo: its legs, as IB holds them
            stored[key] += qty
            underlying_of[key] = p.underlying
    refs: dict[str, set[str]] = defaultdict(set)
    for f in own_fills:
        refs[f.contract.key].add(f.order_ref)
    for o in own_open:
        for leg_key in ([leg.contract.key for leg in o.request.legs] or [o.request.contract.key]):
            refs[leg_key].add(o.request.order_ref)
    combos = leg_problems(combo_groups(own_open, own_fills), broker_positions, stored)
    held_back = {key for c in combos for key, _ in c.broker_legs}  # a combo not whole is never half-adopted

    adopted: list[AdoptedPosition] = []
    unknown: list[UnknownPosition] = []
    mismatches: list[PositionMismatch] = []
    at_broker = {}
    for bp in broker_positions:
        key = bp.contract.key
        at_broker[key] = bp.quantity
        have = stored.get(key, 0)
        if have == bp.quantity:
            continue
        if key in held_back and have == 0:
            continue  # reported (and its underlying blocked) as the combo it belongs to
        if have == 0 and _expired(bp.contract, now):
            # room expiry: the core settled it after its close; IB drops expired options overnight
            log.info("expired_position_at_broker", option=key, quantity=bp.quantity, code="expired_not_adopted")
            continue
        if have == 0 and bp.quantity > 0 and refs.get(key):
            record = await store.open_position(bp.contract, now, quantity=bp.quantity, entry_price=bp.avg_cost)
            adopted.append(AdoptedPosition(record.id, key, bp.quantity, bp.avg_cost, tuple(sorted(refs[key]))))
        elif have == 0:
            unknown.append(UnknownPosition(key, bp.contract.underlying, bp.quantity, bp.avg_cost))
        else:
            mismatches.append(PositionMismatch(key, bp.contract.underlying, have, bp.quantity))
    for key, have in stored.items():
        if have and key not in at_broker:
            if _expired(OptionContract.from_key(key), now):
                # room expiry: expired while the daemon was away; the broker settled it, the core settles
                # its record at its next settlement (session open, or the settlement after the close)
                log.info("expired_position_settled_at_broker", option=key, quantity=have)
                continue
            mismatches.append(PositionMismatch(key, underlying_of[key], have, 0))
    return adopted, unknown, mismatches, combos


def _summary(report: ReconcileReport) -> dict[str, Any]:
    return {
        "kind": report.kind, "fills_applied": len(report.fills_applied), "fills_known": report.fills_known,
        "matched_orders": len(report.matched_orders), "never_sent": list(report.never_sent),
        "ended_unseen": list(report.ended_unseen), "orphan_orders": list(report.orphan_orders),
        "adopted": [a.contract_key for a in report.adopted],
        "unknown_positions": [u.contract_key for u in report.unknown_positions],
        "mismatches": [m.contract_key for m in report.mismatches], "blocked": list(report.blocked),
        "highest_order_id": report.highest_order_id, "incomplete": list(report.incomplete),
        "fills_recovered": list(report.fills_recovered),
        "combo_mismatches": [(c.underlying, c.reason) for c in report.combo_mismatches],
    }


def reconciler(broker: Broker, store: Store, *, profile: str, prefix: str, now: Callable[[], datetime],
               apply_fill: ApplyFill | None = None, on_update: OnUpdate | None = None,
               on_report: Callable[[ReconcileReport], Any] | None = None
               ) -> Callable[[str], Awaitable[ReconcileReport]]:
    """A reconciler for `IBBroker.set_reconciler`: the first connect is the start-up one, later ones reconnects."""
    seen_startup = False

    async def run(reason: str) -> ReconcileReport:
        nonlocal seen_startup
        kind: Kind = "reconnect" if seen_startup else "startup"
        report = await reconcile(broker, store, profile=profile, prefix=prefix, now=now(), kind=kind,
                                 apply_fill=apply_fill, on_update=on_update)
        # the start-up judgement (never-sent intents) waits for a reconciliation that had its answers
        seen_startup = seen_startup or not {"open_orders", "executions", "completed_orders"} & set(report.incomplete)
        if on_report is not None:
            result = on_report(report)
            if inspect.isawaitable(result):
                await result
        return report

    return run
